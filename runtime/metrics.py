"""Export a live (or paper) session's health as Prometheus metrics on an HTTP endpoint.

    metrics = LiveMetrics(spec="sma_cross", spec_hash=spec.spec_hash, stage="paper")
    port = metrics.serve(9464)             # http://127.0.0.1:9464/metrics; port 0 picks a free port
    metrics.observe_tick_to_trade(latency_ns)   # hot path: one bisect and two integer adds
    metrics.add_events("bars", 512)             # batch updates: once per chunk
    metrics.stop()

Scope: what a session exports and how cheaply. Every metric is named ``tickloom_*``; the list with units is
``METRICS`` (and docs/operations.md). ``deploy/prometheus/prometheus.yml`` scrapes the endpoint and
``deploy/grafana/tickloom_dashboard.json`` shows it. Non-goals: pushing (Prometheus pulls), alert rules, and
multi-process aggregation (one session is one process is one scrape target).

Cost on the hot path. ``prometheus_client``'s own ``Histogram.observe`` takes a lock and walks Python objects
(about 1-2 µs). The two latency histograms here are kept as plain lists of bucket counts in integer
nanoseconds instead, turned into Prometheus histograms only when scraped, so ``observe_tick_to_trade`` costs
a few hundred nanoseconds (``python -m runtime.metrics --bench`` measures it). They assume one writer thread
(the event loop); the scrape thread only reads. Everything else goes through ``prometheus_client`` and is meant
for batch updates (per chunk, per fill), where a microsecond does not matter: ``SessionPublisher.batch`` costs
about 20 µs per batch of the paper market maker (``--bench`` again), after the batch's orders have left.

Drift. ``set_drift_reference(feature, values)`` takes a feature's (or a prediction's) values over the training
window; ``update_drift(feature, recent)`` compares recent values with them and sets
``tickloom_feature_drift_psi`` (population stability index over the reference's deciles) and
``tickloom_feature_drift_ks`` (the two-sample Kolmogorov-Smirnov statistic). Rules of thumb for PSI: below
0.1 stable, 0.1-0.25 drifting, above 0.25 a different population.

What a session publishes comes from one place: ``SessionPublisher(metrics, run).batch(merged, drained)`` after
every batch of a ``pipelines.replay.StreamRun`` reads the events of the batch, the rows the graph's logs drained
(the venue's orders, fills and equity, the pre-trade rejects, the breaker's trips) and the latest outputs of
drift nodes. ``tickloom live`` calls it per live batch; ``publish_replay`` drives a spec's real plan one event at
a time through it, and ``python -m runtime.metrics SPEC --port 9464`` serves that, so the dashboard can be tried
without a venue.
"""

import argparse
import bisect
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest, start_http_server
from prometheus_client.core import HistogramMetricFamily

# Upper bounds of the tick-to-trade and node-latency buckets: 1 µs to 10 ms, 1-2-5 per decade (log-spaced).
LATENCY_BUCKETS_NS = tuple(m * 10**e for e in range(3, 7) for m in (1, 2, 5)) + (10_000_000,)

# Every metric family this module exports: name → (type, labels, help). Names are what Prometheus stores
# (counters end in _total; a histogram adds _bucket, _sum and _count).
METRICS = {
    "tickloom_tick_to_trade_seconds": ("histogram", (), "time from a feed event's receipt to its order written"),
    "tickloom_node_latency_seconds": ("histogram", ("node",), "time one node (or segment) took per event or batch"),
    "tickloom_events_total": ("counter", ("source",), "events received per source"),
    "tickloom_event_rate_per_second": ("gauge", ("source",), "events per second over the last second or more"),
    "tickloom_queue_depth": ("gauge", ("queue",), "events or orders waiting in a queue"),
    "tickloom_dropped_events_total": ("counter", ("source", "reason"), "events dropped (gap, stale, overflow)"),
    "tickloom_quarantined_events_total": ("counter", ("source", "reason"), "events set aside as bad data"),
    "tickloom_orders_total": ("counter", ("instrument",), "orders written"),
    "tickloom_fills_total": ("counter", ("instrument",), "fills received"),
    "tickloom_rejects_total": ("counter", ("reason",), "orders refused (by pre-trade risk or the venue)"),
    "tickloom_position": ("gauge", ("instrument",), "position per instrument, in units"),
    "tickloom_equity": ("gauge", (), "account equity, in the account's currency"),
    "tickloom_pnl": ("gauge", (), "equity minus the starting equity"),
    "tickloom_drawdown": ("gauge", (), "fraction of peak equity lost: (peak - equity) / peak"),
    "tickloom_risk_state": ("gauge", (), "0 running, 1 halted (a circuit breaker tripped), 2 flattening (halted, "
                           "working the position to 0)"),
    "tickloom_risk_trips_total": ("counter", ("reason",), "circuit-breaker trips and operator halts, by breaker"),
    "tickloom_feature_drift_psi": ("gauge", ("feature",), "population stability index against the training window"),
    "tickloom_feature_drift_ks": ("gauge", ("feature",), "Kolmogorov-Smirnov statistic against the training window"),
    "tickloom_session": ("info", ("spec", "spec_hash", "stage"), "the spec, hash and stage this session runs"),
}

_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",), "info": ("_info",)}


def exported_series() -> set[str]:
    """Every series name a scrape can contain (histograms' _bucket/_sum/_count, info's _info)."""
    return {name + suffix for name, (kind, _, _) in METRICS.items() for suffix in _SUFFIXES[kind]}


class _NsHistogram:
    """Bucket counts of integer-nanosecond observations; one writer thread, read at scrape time."""

    __slots__ = ("bounds_ns", "counts", "sum_ns")

    def __init__(self, bounds_ns: tuple[int, ...]):
        self.bounds_ns = list(bounds_ns)
        self.counts = [0] * (len(bounds_ns) + 1)  # the last bucket is +Inf
        self.sum_ns = 0

    def observe(self, latency_ns: int) -> None:
        # bisect_left: the first bound >= the value, i.e. Prometheus' "le" (less than or equal)
        self.counts[bisect.bisect_left(self.bounds_ns, latency_ns)] += 1
        self.sum_ns += latency_ns

    def observe_many(self, latencies_ns: np.ndarray) -> None:
        latencies_ns = np.asarray(latencies_ns, dtype=np.int64)
        index = np.searchsorted(np.asarray(self.bounds_ns, dtype=np.int64), latencies_ns, side="left")
        for bucket, count in enumerate(np.bincount(index, minlength=len(self.counts)).tolist()):
            self.counts[bucket] += count
        self.sum_ns += int(latencies_ns.sum())

    def buckets(self) -> tuple[list[tuple[str, int]], float]:
        counts = list(self.counts)  # one copy, so buckets and count agree even while the writer runs
        cumulative, running = [], 0
        for bound_ns, count in zip(self.bounds_ns + [math.inf], counts):
            running += count
            cumulative.append(("+Inf" if bound_ns == math.inf else repr(bound_ns / 1e9), running))
        return cumulative, self.sum_ns / 1e9


class _LatencyCollector:
    """Turns the nanosecond histograms into Prometheus histograms (seconds) when scraped."""

    def __init__(self, metrics: "LiveMetrics"):
        self.metrics = metrics

    def collect(self):
        name = "tickloom_tick_to_trade_seconds"
        family = HistogramMetricFamily(name, METRICS[name][2])
        buckets, total_s = self.metrics._tick_to_trade.buckets()
        family.add_metric([], buckets, total_s)
        yield family
        name = "tickloom_node_latency_seconds"
        family = HistogramMetricFamily(name, METRICS[name][2], labels=["node"])
        for node, histogram in list(self.metrics._node_latency.items()):
            buckets, total_s = histogram.buckets()
            family.add_metric([node], buckets, total_s)
        yield family


class LiveMetrics:
    """The metrics of one session, in a registry of their own, served over HTTP on loopback.

    ``spec``, ``spec_hash`` and ``stage`` label ``tickloom_session_info``. Update methods never raise on a
    value a session can produce; a negative latency (clocks stepped) counts in the lowest bucket.
    """

    def __init__(self, spec: str = "", spec_hash: str = "", stage: str = "",
                 buckets_ns: tuple[int, ...] = LATENCY_BUCKETS_NS):
        self.registry = CollectorRegistry(auto_describe=True)
        self._buckets_ns = tuple(buckets_ns)
        self._tick_to_trade = _NsHistogram(self._buckets_ns)
        self._node_latency: dict[str, _NsHistogram] = {}
        self.registry.register(_LatencyCollector(self))

        def make(name):
            kind, labels, text = METRICS[name]
            if kind == "counter":  # prometheus_client adds the _total itself
                return Counter(name[: -len("_total")], text, labelnames=labels, registry=self.registry)
            return Gauge(name, text, labelnames=labels, registry=self.registry)

        self.events = make("tickloom_events_total")
        self.event_rate = make("tickloom_event_rate_per_second")
        self.queue_depth = make("tickloom_queue_depth")
        self.dropped = make("tickloom_dropped_events_total")
        self.quarantined = make("tickloom_quarantined_events_total")
        self.orders = make("tickloom_orders_total")
        self.fills = make("tickloom_fills_total")
        self.rejects = make("tickloom_rejects_total")
        self.position = make("tickloom_position")
        self.equity = make("tickloom_equity")
        self.pnl = make("tickloom_pnl")
        self.drawdown = make("tickloom_drawdown")
        self.risk_state = make("tickloom_risk_state")
        self.trips = make("tickloom_risk_trips_total")
        self.drift_psi = make("tickloom_feature_drift_psi")
        self.drift_ks = make("tickloom_feature_drift_ks")
        self.session = Info("tickloom_session", METRICS["tickloom_session"][2], registry=self.registry)
        self.session.info({"spec": spec, "spec_hash": spec_hash, "stage": stage})
        self._rate_windows: dict[str, list[int]] = {}  # source → [window start ns, events since]
        self._start_equity: float | None = None
        self._peak_equity = -math.inf
        self._drift_reference: dict[str, np.ndarray] = {}
        self._server = None
        self._thread = None

    # --- hot path ----------------------------------------------------------------------------------------

    def observe_tick_to_trade(self, latency_ns: int) -> None:
        """Count one tick-to-trade latency (feed receive → order written), in integer nanoseconds."""
        self._tick_to_trade.observe(latency_ns)

    def observe_node_latency(self, node: str, latency_ns: int) -> None:
        """Count one latency of ``node`` (per event or per batch, as the caller times it), in nanoseconds."""
        histogram = self._node_latency.get(node)
        if histogram is None:
            histogram = self._node_latency[node] = _NsHistogram(self._buckets_ns)
        histogram.observe(latency_ns)

    # --- batch updates -----------------------------------------------------------------------------------

    def observe_tick_to_trade_many(self, latencies_ns: np.ndarray) -> None:
        """Count many tick-to-trade latencies at once (int64 ns array)."""
        self._tick_to_trade.observe_many(latencies_ns)

    def add_events(self, source: str, count: int, now_ns: int | None = None) -> None:
        """Count ``count`` events of ``source``; refresh its rate once a second or more has passed.

        ``now_ns`` defaults to the monotonic clock; a replay may pass event time instead.
        """
        self.events.labels(source).inc(count)
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        window = self._rate_windows.setdefault(source, [now_ns, 0])
        window[1] += count
        elapsed_ns = now_ns - window[0]
        if elapsed_ns >= 1_000_000_000:
            self.event_rate.labels(source).set(window[1] * 1e9 / elapsed_ns)
            window[0], window[1] = now_ns, 0

    def set_queue_depth(self, queue: str, depth: int) -> None:
        self.queue_depth.labels(queue).set(depth)

    def add_dropped(self, source: str, reason: str, count: int = 1) -> None:
        self.dropped.labels(source, reason).inc(count)

    def add_quarantined(self, source: str, reason: str, count: int = 1) -> None:
        self.quarantined.labels(source, reason).inc(count)

    def add_orders(self, instrument: str, count: int = 1) -> None:
        self.orders.labels(instrument).inc(count)

    def add_fills(self, instrument: str, count: int = 1) -> None:
        self.fills.labels(instrument).inc(count)

    def add_rejects(self, reason: str, count: int = 1) -> None:
        self.rejects.labels(reason).inc(count)

    def set_position(self, instrument: str, qty: float) -> None:
        self.position.labels(instrument).set(qty)

    def set_equity(self, equity: float) -> None:
        """Set equity; PnL is measured from the first equity set, drawdown from the highest one so far."""
        self.observe_equity(np.array([equity], np.float64))

    def observe_equity(self, curve: np.ndarray) -> None:
        """Take a run of equity samples (oldest first, NaNs skipped): every one counts toward the peak, the last
        is the equity; PnL from the first equity ever seen."""
        curve = _finite(curve)
        if curve.size == 0:
            return
        if self._start_equity is None:
            self._start_equity = float(curve[0])
        self._peak_equity = max(self._peak_equity, float(curve.max()))
        equity = float(curve[-1])
        self.equity.set(equity)
        self.pnl.set(equity - self._start_equity)
        self.drawdown.set((self._peak_equity - equity) / self._peak_equity if self._peak_equity > 0 else 0.0)

    def set_risk_state(self, state: int | bool) -> None:
        """0 (or False) running, 1 (True) halted, 2 flattening: ``nodes.risk.codes`` STATE_NAMES."""
        self.risk_state.set(int(state))

    def add_trips(self, reason: str, count: int = 1) -> None:
        self.trips.labels(reason).inc(count)

    def set_drift(self, feature: str, psi_value: float, ks_value: float) -> None:
        """Set ``feature``'s drift as computed elsewhere (a ``risk.drift`` node's outputs); NaN: no full window yet."""
        self.drift_psi.labels(feature).set(psi_value)
        self.drift_ks.labels(feature).set(ks_value)

    def set_drift_reference(self, feature: str, values: Iterable[float]) -> None:
        """Keep ``values`` (the training window's, NaNs dropped) as what ``feature`` is compared against.

        Raises:
            ValueError: no finite value to compare against.
        """
        reference = _finite(values)
        if reference.size == 0:
            raise ValueError(f"drift reference of {feature!r}: no finite value in the training window")
        self._drift_reference[feature] = np.sort(reference)

    def update_drift(self, feature: str, recent: Iterable[float]) -> tuple[float, float]:
        """Compare ``recent`` values of ``feature`` with its reference; set and return ``(psi, ks)``.

        Raises:
            KeyError: ``set_drift_reference`` was not called for ``feature``.
        """
        if feature not in self._drift_reference:
            raise KeyError(f"no drift reference for {feature!r}; call set_drift_reference first "
                           f"(known: {', '.join(self._drift_reference) or 'none'})")
        reference, values = self._drift_reference[feature], _finite(recent)
        index, ks = psi(reference, values), ks_statistic(reference, values)
        self.set_drift(feature, index, ks)
        return index, ks

    # --- serving -----------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format, as a scrape returns them."""
        return generate_latest(self.registry)

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; return the bound port (0 picks a free one).

        Raises:
            RuntimeError: already serving.
            OSError: the port is taken.
        """
        if self._server is not None:
            raise RuntimeError(f"already serving on port {self.port}")
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return self.port

    @property
    def port(self) -> int | None:
        return self._server.server_address[1] if self._server is not None else None

    def stop(self) -> None:
        """Stop serving and wait for the server thread; a no-op when not serving."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None


def _finite(values: Iterable[float]) -> np.ndarray:
    array = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    return array[np.isfinite(array)]


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index of ``recent`` against ``reference``: Σ (a − e) · ln(a / e) over bins.

    Bins are the reference's quantiles (``bins`` of equal reference mass; ties merge bins); a bin's share is
    floored at ``floor`` so an empty bin gives a large, finite index. NaN when either side is empty.
    """
    reference, recent = _finite(reference), _finite(recent)
    if reference.size == 0 or recent.size == 0:
        return math.nan
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) / reference.size
    actual = np.bincount(np.searchsorted(edges, recent, side="right"), minlength=edges.size + 1) / recent.size
    expected, actual = np.maximum(expected, floor), np.maximum(actual, floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_statistic(reference: np.ndarray, recent: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs (NaN if empty)."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(recent))
    if a.size == 0 or b.size == 0:
        return math.nan
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / a.size - np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(gap)))


# --- a session's batches → metrics: one publisher for live sessions and replays --------------------------------

RISK_OP = "risk.order_limits"
DRIFT_OP = "risk.drift"
BREAKER_OP = "risk.circuit_breaker"
TRIP_EVENTS = ("trip", "halt")  # breaker log events that halt the system (an operator's halt counts as "manual")


class FeedHealthPublisher:
    """Publish what a live session's feeds report about their data: events dropped and quarantined, by reason.

    Read from each reader's ``report`` (``nodes.marketdata.binance.live.LiveFeedReport`` for a websocket feed,
    the source's quality report for a paced file): update-id gaps (each followed by a resync from a snapshot),
    duplicates and stale quotes as dropped; bad messages as quarantined, by the normalizer's reason. Counters in
    the reports only grow, so each call adds what changed since the last one; call it every second or so (it
    walks a few small dicts), not per batch.
    """

    def __init__(self, metrics: LiveMetrics, sources: list[str], readers: list):
        self.metrics = metrics
        self.feeds = list(zip(sources, readers))
        self.seen: dict[tuple[str, str, str], int] = {}

    def publish(self) -> None:
        for source, reader in self.feeds:
            report = getattr(reader, "report", None)
            if report is None:
                continue
            quality = getattr(report, "quality", report)
            counts = {("dropped", "gap"): getattr(report, "gaps", 0)}
            if hasattr(quality, "bad_reasons"):
                counts[("dropped", "duplicate")] = quality.duplicates.get("count", 0)
                counts[("dropped", "stale_quote")] = quality.quotes.get("stale_dropped", 0)
                for reason, lines in list(quality.bad_reasons.items()):
                    counts[("quarantined", reason)] = lines
            for (kind, reason), count in counts.items():
                added = int(count) - self.seen.get((source, kind, reason), 0)
                if added > 0:
                    self.seen[(source, kind, reason)] = int(count)
                    (self.metrics.add_dropped if kind == "dropped" else self.metrics.add_quarantined)(
                        source, reason, added)


class SessionPublisher:
    """Publish what each batch of a ``StreamRun`` shows; a live session and ``publish_replay`` both use it.

        publisher = SessionPublisher(metrics, run)        # after StreamRun(plan, ...): times its segments
        for merged in run.merged_batches():
            drained = run.run_batch(merged)
            publisher.batch(merged, drained)              # per batch: numpy over the drained rows

    From the merged batch: events per source. From the logs the batch drained (node → log → columns, what
    ``StreamRun.run_batch`` returns): a tick venue's ``orders`` (``sent`` rows are orders; ``rejected`` rows
    rejects with reason ``venue: <reason>``), ``fills`` (fills per instrument; the position after the last
    fill) and ``equity`` (the account's equity every ``equity_interval`` of exchange time, all of them toward
    the peak; the position where no fill came after); ``risk.pre_trade``'s ``rejects`` (by check);
    ``risk.circuit_breaker``'s ``trips`` (trips and operator halts by breaker; the risk state after the last
    row, the worst over breakers). From the nodes' latest outputs (what the engine holds after the batch):
    ``risk.drift``'s ``psi`` and ``ks`` under the feature it reads (e.g. ``md.size``, or the node's id when two
    drift nodes read one feature; NaN until its reference and first window are full), and a bar venue's equity when its outputs are not recorded. From ``records``
    (node → the batch's recorded outputs, as ``publish_replay`` keeps them): a bar venue's fills, positions and
    equity, ``risk.order_limits``' orders and rejects, and without such a node the changes of a bar venue's
    order node as orders.

    At the start: every source's events, every venue instrument's orders, fills and position (0), the
    venues' starting cash as equity (PnL counts from it), risk state 0 and drift NaN exist, so a scrape sees
    every series from the first second. Each segment's run is timed into ``node_latency`` (label: its nodes
    joined by ``+``; a fused segment runs as one kernel). Latest outputs are the last event's: with several
    instruments, a drift node's value is the last updated instrument's. Tick-to-trade is the caller's (it
    knows when the order left).
    """

    def __init__(self, metrics: LiveMetrics, run, time_segments: bool = True):
        from nodes.risk.codes import STATE_NAMES

        self.metrics, self.run = metrics, run
        graph = self.graph = run.plan.graph
        self.instruments = graph.instruments
        self.state_codes = {name: code for code, name in enumerate(STATE_NAMES)}
        ops = {node_id: graph.nodes[node_id].op for node_id in graph.order}
        self.venues = graph.venues()
        self.venue_keys = {v: np.array(sorted({graph.instruments.index(i) for s in graph.nodes[v].sources
                                               for i in graph.source_instruments[s]}), np.int64)
                           for v in self.venues}
        self.bar_venues = [v for v in self.venues if not ops[v].logs]
        self.limits = [n for n in graph.order if ops[n].name == RISK_OP]
        self.order_inputs = [] if self.limits else graph.order_nodes(self.bar_venues)
        features = {n: str(graph.nodes[n].args[0]) for n in graph.order if ops[n].name == DRIFT_OP}
        # the feature a drift node reads names its series; two nodes on one feature are told apart by node id
        self.drifts = {n: f if list(features.values()).count(f) == 1 else n for n, f in features.items()}
        self.breaker_states = {n: 0 for n in graph.order if ops[n].name == BREAKER_OP}
        wanted = {(n, p) for n in self.drifts for p in ("psi", "ks")} | {(v, "equity") for v in self.bar_venues}
        self.latest = {detail for detail in wanted if run.latest(*detail) is not None}
        self.last_order: dict[str, float] = {}
        self.equity = {v: float(getattr(graph.nodes[v].definition.params, "cash", math.nan)) for v in self.venues}
        self._open()
        if time_segments:
            for bound in run.segments:
                label = "+".join(bound.segment.nodes)
                bound.run = _timed(metrics, label, bound.run)
                if hasattr(bound, "step_live"):  # the live session's path (StreamRun.step)
                    bound.step_live = _timed(metrics, label, bound.step_live)

    def _open(self) -> None:
        metrics = self.metrics
        for source in self.graph.sources:
            metrics.events.labels(source)
        for venue, keys in self.venue_keys.items():
            for key in keys.tolist():
                instrument = self.instruments[key]
                metrics.add_orders(instrument, 0)
                metrics.add_fills(instrument, 0)
                metrics.set_position(instrument, 0.0)
        if self.venues:
            metrics.set_equity(sum(self.equity.values()))
        if self.breaker_states:
            metrics.set_risk_state(0)
        for feature in self.drifts.values():
            metrics.set_drift(feature, math.nan, math.nan)

    def batch(self, merged, drained: dict, records: dict | None = None) -> None:
        """Publish one batch: ``merged`` as ``run_batch`` took it, ``drained`` as it returned, ``records`` (node →
        a frame of the batch's recorded outputs) when the run records per event."""
        metrics = self.metrics
        for index, source in enumerate(self.graph.sources):
            count = len(merged.parts[index]["ts_recv"])
            if count:
                metrics.add_events(source, count)
        curves: dict[str, np.ndarray] = {}
        for node_id, logs in drained.items():
            if node_id in self.venue_keys:
                curves[node_id] = self._venue_logs(node_id, logs)
            if "rejects" in logs:
                self._count(metrics.add_rejects, logs["rejects"].get("check", ()))
            if node_id in self.breaker_states and "trips" in logs:
                self._trips(node_id, logs["trips"])
        for venue in self.bar_venues:
            if records is not None and venue in records:
                curves[venue] = self._bar_venue(venue, records[venue])
            elif (venue, "equity") in self.latest:
                curves[venue] = np.array([self._latest(venue, "equity")])
        if records is not None:
            self._orders_from_records(records)
        self._account(curves)
        for node_id, feature in self.drifts.items():
            metrics.set_drift(feature, self._latest(node_id, "psi"), self._latest(node_id, "ks"))

    # --- logs -----------------------------------------------------------------------------------------------

    def _venue_logs(self, venue: str, logs: dict) -> np.ndarray:
        """Orders, venue rejects, fills and positions from a tick venue's logs; return its equity samples."""
        metrics = self.metrics
        orders = logs.get("orders")
        if orders is not None and len(orders.get("event", ())):
            events = np.asarray(orders["event"])
            self._count(metrics.add_orders, np.asarray(orders["key"])[events == "sent"], by_key=True)
            reasons = np.asarray(orders["reason"])[events == "rejected"]
            self._count(metrics.add_rejects, np.char.add("venue: ", reasons.astype(str)) if len(reasons) else ())
        fills = logs.get("fills")
        if fills is not None:
            self._count(metrics.add_fills, fills.get("key", ()), by_key=True)
        # the position at the last fill, else (no fill since) at the last equity row: it only changes on fills
        positions = {}
        for log in ("equity", "fills"):
            rows = logs.get(log)
            if rows is not None and len(rows.get("key", ())):
                positions.update(_last_by_key(rows["key"], rows["position"]))
        for key, position in positions.items():
            if key in self.venue_keys[venue]:
                metrics.set_position(self.instruments[key], position / 1e9)  # 1e-9 units
        equity = logs.get("equity")
        return np.asarray(equity["equity"], np.float64) if equity is not None else np.zeros(0)

    def _trips(self, breaker: str, trips: dict) -> None:
        events = np.asarray(trips.get("event", ()))
        if not len(events):
            return
        self._count(self.metrics.add_trips, np.asarray(trips["breaker"])[np.isin(events, TRIP_EVENTS)])
        self.breaker_states[breaker] = self.state_codes.get(str(trips["state"][-1]), 1)
        self.metrics.set_risk_state(max(self.breaker_states.values()))

    # --- records (a replay's per-event outputs) -------------------------------------------------------------

    def _bar_venue(self, venue: str, frame) -> np.ndarray:
        """Fills and positions from a bar venue's recorded outputs; return its equity samples."""
        if not frame.height:
            return np.zeros(0)
        keys = frame["key"].to_numpy()
        filled = frame["fill_qty"].to_numpy()
        self._count(self.metrics.add_fills, keys[np.isfinite(filled) & (filled != 0)], by_key=True)
        for key, position in _last_by_key(keys, frame["position"].to_numpy()).items():
            self.metrics.set_position(self.instruments[key], float(position))
        return frame["equity"].to_numpy()

    def _orders_from_records(self, records: dict) -> None:
        from nodes.execution.order_limits import REASONS

        metrics = self.metrics
        for node_id in self.limits:
            frame = records.get(node_id)
            if frame is None or not frame.height:
                continue
            self._count(metrics.add_orders, frame["key"].to_numpy()[frame["order_qty"].to_numpy() != 0], by_key=True)
            reject = frame["reject"].to_numpy()
            for bit, reason in REASONS.items():
                count = int(np.count_nonzero(reject & bit))
                if count:
                    metrics.add_rejects(reason, count)
        for node_id in self.order_inputs:
            frame = records.get(node_id)
            if frame is None or not frame.height:
                continue
            # an order is a new wish of the order node: its first output changing (NaN is "no change")
            values = frame[:, 3].to_numpy().astype(np.float64)  # ts_event, ts_recv, key, then the first port
            wished = np.isfinite(values)
            values, keys = values[wished], frame["key"].to_numpy()[wished]
            if not len(values):
                continue
            before = np.concatenate([[self.last_order.get(node_id, math.nan)], values[:-1]])
            self._count(metrics.add_orders, keys[values != before], by_key=True)
            self.last_order[node_id] = float(values[-1])

    # --- helpers --------------------------------------------------------------------------------------------

    def _account(self, curves: dict[str, np.ndarray]) -> None:
        curves = {v: c for v, c in curves.items() if np.isfinite(c).any()}
        if not curves:
            return
        if len(self.equity) == 1:  # one account: every sample of the batch counts toward the peak
            (curve,) = curves.values()
            self.metrics.observe_equity(curve)
        for venue, curve in curves.items():
            self.equity[venue] = float(_finite(curve)[-1])
        if len(self.equity) > 1:  # several accounts: their sum, as of each batch's end
            self.metrics.observe_equity(np.array([sum(self.equity.values())]))

    def _latest(self, node_id: str, port: str) -> float:
        """The output as of the batch's last event (the held value the engine carries to the next batch)."""
        return float(self.run.latest(node_id, port)) if (node_id, port) in self.latest else math.nan

    def _count(self, add, labels, by_key: bool = False) -> None:
        """``add(label, count)`` per distinct label (instrument keys named when ``by_key``)."""
        labels = np.asarray(labels)
        if not len(labels):
            return
        distinct, counts = np.unique(labels, return_counts=True)
        for label, count in zip(distinct.tolist(), counts.tolist()):
            add(self.instruments[int(label)] if by_key else str(label), count)


def _last_by_key(keys, values) -> dict[int, float]:
    """Each key's last value (rows oldest first)."""
    keys = np.asarray(keys)
    distinct, first_from_end = np.unique(keys[::-1], return_index=True)
    last = len(keys) - 1 - first_from_end
    return dict(zip(distinct.tolist(), np.asarray(values)[last].tolist()))


def _timed(metrics: LiveMetrics, label: str, run_segment):
    """``run_segment`` timed into ``node_latency`` under ``label`` (a fused segment's nodes run as one kernel)."""

    def timed(*args):
        started_ns = time.perf_counter_ns()
        result = run_segment(*args)
        metrics.observe_node_latency(label, time.perf_counter_ns() - started_ns)
        return result

    return timed


def publish_replay(metrics: LiveMetrics, spec_path: str | Path, *, pace_s: float = 0.0, events: int | None = None,
                   should_stop=None, sets=()) -> int:
    """Drive ``spec_path``'s compiled plan one event per batch, as a session does, and publish what happens.

    Each event (a source's rows that share one receive time, such as one depth message, stay together) is handed
    to the same ``StreamRun`` a live session uses and published by the same
    ``SessionPublisher``; the wall time from handing it over to the batch returning (every segment run, the
    order computed) is counted as tick-to-trade (no network in it: it is the engine's share). Bar venues,
    ``risk.order_limits`` nodes and bar venues' order nodes are recorded per event, since their outputs are
    their record (a tick venue's and the risk ops' logs need no record). ``pace_s`` sleeps between events;
    ``events`` stops early; ``should_stop()`` is polled; ``sets`` are ``--set`` overrides. Returns the events
    published.

    Raises:
        SpecError, GraphError, DataQualityError: as loading and replaying the spec do.
    """
    from pipelines.plan import compile_plan
    from pipelines.replay import StreamRun
    from pipelines.spec import load_spec

    spec = load_spec(spec_path, sets=list(sets))
    model = spec.model.model_copy(update={"defaults": spec.model.defaults.model_copy(update={"chunk_events": 1})})
    spec = replace(spec, model=model)
    graph = spec.graph
    bar_venues = [v for v in graph.venues() if not graph.nodes[v].op.logs]
    limits = [n for n in graph.order if graph.nodes[n].op.name == RISK_OP]
    run = StreamRun(compile_plan(spec, record=bar_venues + limits + graph.order_nodes(bar_venues)))
    publisher = SessionPublisher(metrics, run)
    published = 0
    for merged in run.merged_batches():
        started_ns = time.perf_counter_ns()
        drained = run.run_batch(merged)
        metrics.observe_tick_to_trade(time.perf_counter_ns() - started_ns)
        records = {n: parts[-1] for n, parts in run.recorded_parts.items() if parts}
        for parts in run.recorded_parts.values():
            parts.clear()  # read once: memory stays bounded however long the session runs
        publisher.batch(merged, drained, records)
        published += len(merged)
        if (events is not None and published >= events) or (should_stop is not None and should_stop()):
            break
        if pace_s:
            time.sleep(pace_s)
    return published


# --- command line: serve a replay, or measure the hot path ----------------------------------------------------


def bench_observe(calls: int = 1_000_000) -> dict[str, float]:
    """Time ``observe_tick_to_trade`` and ``prometheus_client``'s ``Histogram.observe``: ns per call (best of 5)."""
    from prometheus_client import Histogram

    metrics = LiveMetrics()
    values = [int(v) for v in np.random.default_rng(1).lognormal(np.log(20_000), 1.0, 4096)]
    reference = Histogram("reference_seconds", "x", buckets=[b / 1e9 for b in LATENCY_BUCKETS_NS],
                          registry=CollectorRegistry())
    seconds = [v / 1e9 for v in values]

    def best(function, inputs) -> float:
        runs = []
        for _ in range(5):
            started = time.perf_counter_ns()
            for i in range(calls):
                function(inputs[i & 4095])
            runs.append((time.perf_counter_ns() - started) / calls)
        return min(runs)

    def empty(value):
        return None

    return {
        "observe_tick_to_trade_ns": best(metrics.observe_tick_to_trade, values),
        "observe_node_latency_ns": best(lambda v: metrics.observe_node_latency("seg", v), values),
        "prometheus_client_histogram_observe_ns": best(reference.observe, seconds),
        "empty_python_call_ns": best(empty, values),
    }


PAPER_SPEC = Path(__file__).resolve().parents[1] / "specs" / "deploy" / "market_making_paper.yaml"


def bench_publisher(spec_path: str | Path = PAPER_SPEC, chunk_events: int = 16) -> dict[str, float]:
    """Time ``SessionPublisher.batch`` over a spec's batches (run once, published 5 times): ns per batch (best)."""
    from pipelines.plan import compile_plan
    from pipelines.replay import StreamRun
    from pipelines.spec import load_spec

    spec = load_spec(spec_path)
    defaults = spec.model.defaults.model_copy(update={"chunk_events": chunk_events})
    spec = replace(spec, model=spec.model.model_copy(update={"defaults": defaults}))
    run = StreamRun(compile_plan(spec), record=False)
    publisher = SessionPublisher(LiveMetrics(), run, time_segments=False)
    batches = [(merged, run.run_batch(merged)) for merged in run.merged_batches()]
    runs = []
    for _ in range(5):
        started = time.perf_counter_ns()
        for merged, drained in batches:
            publisher.batch(merged, drained)
        runs.append((time.perf_counter_ns() - started) / len(batches))
    return {f"session_publisher_batch_ns ({len(batches)} batches)": min(runs)}


def main(argv: list[str] | None = None) -> int:
    """``python -m runtime.metrics SPEC [--port N] [--pace S]``: serve a replay; ``--bench``: time the hot path."""
    parser = argparse.ArgumentParser(prog="python -m runtime.metrics", description=main.__doc__)
    parser.add_argument("spec", type=Path, nargs="?")
    parser.add_argument("--port", type=int, default=9464, help="port on 127.0.0.1 (default 9464; 0: a free one)")
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between events (default 0.05)")
    parser.add_argument("--bench", action="store_true", help="time observe_tick_to_trade and the session "
                        "publisher, and exit")
    args = parser.parse_args(argv)
    if args.bench:
        for name, ns in {**bench_observe(), **bench_publisher()}.items():
            print(f"{name:<42} {ns:8.1f} ns")
        return 0
    if args.spec is None:
        parser.error("give a SPEC to replay, or --bench")
    from pipelines.spec import load_spec

    spec = load_spec(args.spec)
    metrics = LiveMetrics(spec.name, spec.spec_hash, "replay")
    port = metrics.serve(args.port)
    print(f"serving http://127.0.0.1:{port}/metrics while replaying {spec.name} (Ctrl-C stops)", flush=True)
    try:
        events = publish_replay(metrics, args.spec, pace_s=args.pace)
        print(f"replayed {events} events; still serving (Ctrl-C stops)", flush=True)
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        metrics.stop()


if __name__ == "__main__":
    sys.exit(main())
