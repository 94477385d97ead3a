"""``tickloom live``: run a promoted spec's compiled graph on live feeds, with the paper venue, metrics and a journal.

    tickloom live SPEC --stage paper [--speed N] [--session DIR] [--metrics-port N] [--max-events N]

The session is the backtest engine driven by live batches: the spec's plan is compiled once and one
``pipelines.replay.StreamRun`` (the object ``replay`` drives over history) is fed the batches that arrive from the
spec's sources — a live source (``source.binance_ws``) as it is, a file source paced to real time (``--speed``,
with ``ts_recv`` restamped to the wall clock at release, so latencies are the session's own). The same kernels,
the same state, the same tick venue (the paper venue: latency, queue and fee models of the backtest).

A session folder (``--session``, default ``runs/live/<spec>-<UTC time>``) holds:

- ``journal.tlj``: every log row the graph writes (venue orders and fills, risk rejects, breaker trips) as it
  happens, in ``runtime.journal``'s framed records, fsynced per ``--fsync``;
- ``inputs/<source>.arrows``: every event the session saw, as Arrow IPC record batches written per batch (a
  crash loses at most the batch in flight) — the input of the shadow check;
- ``session.json``: the spec, its hash, stage, options; at the end the summary and ``<node>.<log>.parquet``.

``shadow_check(SESSION)`` (``tickloom shadow SESSION``) replays the recorded inputs through the same spec as a
backtest and compares its decisions (the venue's orders and fills) with the session's, row for row.

Refuses a spec whose hash is not promoted to the stage (``runtime.promotion.require_promoted``). Tick-to-trade
(Prometheus ``tickloom_tick_to_trade_seconds``) is measured from an event's receive time to the moment the
batch that decided its orders has run (orders handed to the venue).

Not yet here: reconnecting a session to a real exchange gateway (the paper venue is in the graph), recovery of a
killed session by replaying its recorded inputs, and a control source followed live (operator commands are read
when the session starts; merging a source that may stay silent needs watermarks in the merge).
"""

import datetime as dt
import json
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.plan import compile_plan
from pipelines.replay import StreamRun
from pipelines.spec import load_spec
from runtime.session import InputRecorder

LIVE_SOURCES = ("source.binance_ws",)  # sources that are live feeds already (not paced)
DECISION_LOGS = (("orders", "sent"),)  # venue log rows that mean an order left the strategy


@dataclass
class LiveOptions:
    stage: str = "paper"
    speed: float = 1.0
    session_dir: Path | None = None
    metrics_port: int | None = None
    max_events: int | None = None
    fsync: str = "batch"
    registry: str | None = None
    heartbeat_s: float = 5.0


@dataclass
class LiveSession:
    """What a finished session did: its folder, events, the replay-style result and measured latencies."""

    folder: Path
    events: int
    result: object
    tick_to_trade_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    metrics_port: int | None = None

    def format(self) -> str:
        lines = [f"session {self.folder}: {self.events:,} events"]
        if len(self.tick_to_trade_ns):
            p50, p99, p999 = np.percentile(self.tick_to_trade_ns, [50, 99, 99.9]) / 1e3
            lines.append(f"tick-to-trade over {len(self.tick_to_trade_ns):,} order decisions: p50 {p50:.1f} µs, "
                         f"p99 {p99:.1f} µs, p99.9 {p999:.1f} µs")
        for node_id, summary in self.result.summaries.items():
            if hasattr(summary, "format"):
                lines.append(f"{node_id}:\n{summary.format()}")
        return "\n".join(lines)


def run_live(spec_path: str | Path, options: LiveOptions, sets=(), places=(), stop: threading.Event | None = None,
             started: threading.Event | None = None) -> LiveSession:
    """Run ``spec_path`` live until its feeds end, ``max_events``, ``stop`` is set, or SIGINT/SIGTERM.

    Raises:
        PromotionError: the spec's hash is not promoted to ``options.stage``.
        SpecError, GraphError: the spec is invalid.
    """
    from runtime.journal import Journal
    from runtime.metrics import LiveMetrics
    from runtime.promotion import Registry, require_promoted

    spec = load_spec(spec_path, sets=list(sets), places=list(places))
    require_promoted(spec.spec_hash, options.stage, options.registry, spec.name)
    plan = compile_plan(spec)
    graph = plan.graph
    folder = Path(options.session_dir or Path("runs") / "live" /
                  f"{spec.name}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}")
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    readers = [_reader(plan, source_id, options.speed) for source_id in graph.sources]
    run = StreamRun(plan, readers=readers, record=False)
    metrics = LiveMetrics()
    port = metrics.serve(options.metrics_port) if options.metrics_port is not None else None
    described = {"spec": str(Path(spec_path).resolve()), "name": spec.name, "spec_hash": spec.spec_hash,
                 "stage": options.stage, "sets": list(sets), "places": list(places), "speed": options.speed,
                 "sources": graph.sources, "started_utc": dt.datetime.now(dt.timezone.utc).isoformat()}
    (folder / "session.json").write_text(json.dumps(described, indent=2))
    registry = Registry(options.registry)
    deployment = registry.start_deployment(spec.name, spec.spec_hash, options.stage, os.getpid(), socket.gethostname())
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    recorder = InputRecorder(folder / "inputs", graph.sources)
    latencies: list[int] = []
    events = 0
    last_beat = time.monotonic()
    with Journal(folder / "journal.tlj", fsync=options.fsync) as journal:
        journal.append("session", described)
        if started is not None:
            started.set()
        try:
            for merged in run.merged_batches():
                drained = run.run_batch(merged)
                done_ns = time.time_ns()
                events += len(merged)
                recorder.write(merged)
                if _decided(drained):
                    latencies.append(done_ns - int(merged.ts_recv[-1]))
                    metrics.observe_tick_to_trade(latencies[-1])
                _journal(journal, drained)
                _publish(metrics, graph, merged, drained)
                if time.monotonic() - last_beat > options.heartbeat_s:
                    registry.heartbeat(deployment)
                    last_beat = time.monotonic()
                if stop.is_set() or (options.max_events is not None and events >= options.max_events):
                    break
        finally:
            for reader in readers:
                getattr(reader, "stop", lambda: None)()
            recorder.close()
            restore()
            registry.end_deployment(deployment)
    result = run.finish(summarize=True)
    for node_id, logs in result.logs.items():
        for name, frame in logs.items():
            frame.write_parquet(folder / f"{node_id}.{name}.parquet")
    if port is not None:
        metrics.stop()
    return LiveSession(folder, events, result, np.asarray(latencies, np.int64), port)


def _reader(plan, source_id: str, speed: float):
    from nodes.sources.paced import paced

    node = plan.graph.nodes[source_id]
    reader = node.op.open(node.definition.params, plan.spec.path.parent)
    if node.op.name in LIVE_SOURCES:
        return reader
    # a file replayed as a live feed: released at its recorded pace, stamped with the wall clock it arrives at
    return paced(reader, speed, restamp=True)


def _decided(drained: dict) -> bool:
    for logs in drained.values():
        for log, event in DECISION_LOGS:
            rows = logs.get(log)
            if rows is not None and len(rows.get("event", ())) and (np.asarray(rows["event"]) == event).any():
                return True
    return False


def _journal(journal, drained: dict) -> None:
    for node_id, logs in drained.items():
        for log, columns in logs.items():
            if len(next(iter(columns.values()), ())):
                journal.append(f"{node_id}.{log}", {k: np.asarray(v).tolist() for k, v in columns.items()})


def _publish(metrics, graph, merged, drained: dict) -> None:
    for index, source_id in enumerate(graph.sources):
        count = len(merged.parts[index]["ts_recv"])
        if count:
            metrics.add_events(source_id, count)
    for logs in drained.values():
        fills = logs.get("fills")
        if fills is not None:
            for key in np.asarray(fills.get("key", ())):
                metrics.add_fills(graph.instruments[int(key)])
        orders = logs.get("orders")
        if orders is not None and len(orders.get("event", ())):
            sent = np.asarray(orders["event"]) == "sent"
            for key in np.asarray(orders["key"])[sent]:
                metrics.add_orders(graph.instruments[int(key)])


def _stop_on_signals(stop: threading.Event):
    """Set ``stop`` on SIGINT/SIGTERM (main thread only); return a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: stop.set())
    return lambda: [signal.signal(s, handler) for s, handler in previous.items()]
