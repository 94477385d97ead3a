"""``tickloom live``: run a promoted spec's compiled graph on live feeds, with the paper venue, metrics and a journal.

    tickloom live SPEC --stage paper [--speed N] [--session DIR] [--metrics-port N] [--max-events N]

The session is the backtest engine driven by live batches: the spec's plan is compiled once and one
``pipelines.replay.StreamRun`` (the object ``replay`` drives over history) is fed the batches that arrive from the
spec's sources — a live source (``source.binance_ws``) as it is, the operator's control file
(``source.control``) followed (new lines become events while the session runs, whatever the spec says), a file
source paced to real time (``--speed``, with ``ts_recv`` restamped to the wall clock at release, so latencies are
the session's own). The same kernels, the same state, the same tick venue (the paper venue: latency, queue and
fee models of the backtest).

The event loop (``runtime.feeds.LiveBatches``) never waits on a source: it sleeps until a websocket has data, a
feed's thread wakes it, a paced row is due or the control file is due a look, then takes whatever every source
has ready as one batch in receive order (a silent source holds nothing back). The kernels are compiled before
the first event. Per batch: its inputs are written first (write-ahead, so a killed session can be rebuilt from
them), then the batch runs (``StreamRun.step``: the kernels with their arguments bound once), then what it
logged is drained, journaled and published. ``LiveOptions.busy_poll`` waits spinning instead of sleeping.

A session folder (``--session``, default ``runs/live/<spec>-<UTC time>``) holds:

- ``journal.tlj``: every log row the graph writes (venue orders and fills, risk rejects, breaker trips) as it
  happens, in ``runtime.journal``'s framed records, fsynced per ``--fsync``;
- ``inputs/<source>.<segment>.arrows``: every event the session saw, as Arrow IPC record batches written per
  batch before it runs (``runtime.feeds.InputLog``; a crash loses at most a batch that never ran) — the input of
  the shadow check and of a rebuild;
- ``session.json``: the spec, its hash, stage, options; at the end the summary and ``<node>.<log>.parquet``.

``shadow_check(SESSION)`` (``tickloom shadow SESSION``) replays the recorded inputs through the same spec as a
backtest and compares its decisions (the venue's orders and fills) with the session's, row for row.

Refuses a spec whose hash is not promoted to the stage (``runtime.promotion.require_promoted``). Tick-to-trade
(Prometheus ``tickloom_tick_to_trade_seconds``) is measured from the receive time of the oldest event of the
batch that decided orders (the websocket reader stamps a message when its socket read returns) to the moment
the batch's kernels have run (orders handed to the paper venue, before its logs are drained).

Not yet here: reconnecting a session to a real exchange gateway (the paper venue is in the graph) and resuming a
killed session (the pieces are ``open_readers``, ``open_run`` and ``open_recorder``: a resume rebuilds the run
from the recorded inputs, then continues the same loop).
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

from nodes.errors import TickloomError
from pipelines.plan import compile_plan
from pipelines.replay import StreamRun
from pipelines.spec import load_spec
from runtime.feeds import LiveBatches, live_feed
from runtime.session import InputLog

LIVE_SOURCES = ("source.binance_ws", "source.control")  # sources that are live feeds already (not paced)
FOLLOWED_SOURCES = ("source.control",)  # file sources a live session tails (``follow: true``)
DECISION_LOGS = (("orders", "sent"),)  # venue log rows that mean an order left the strategy
# per batch of a traced session: the oldest event's receive time, when the loop had the batch, when its inputs
# were written, when its kernels had run (its orders at the venue), its events, whether it decided orders
TRACE_COLUMNS = ("received_ns", "taken_ns", "recorded_ns", "ran_ns", "events", "decided")


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
    busy_poll: bool = False  # the loop never sleeps: it waits for its feeds in a tight loop
    resume: bool = False  # continue the session in ``session_dir`` (after a crash or kill -9): runtime/recovery.py
    standby: bool = False  # wait while another process runs the session, then resume it when that one dies
    trace: bool = False  # keep every batch's times (``LiveSession.trace``): what benchmarks/live_latency.py reads


@dataclass
class LiveSession:
    """What a finished session did: its folder, events, the replay-style result and measured latencies."""

    folder: Path
    events: int
    result: object
    tick_to_trade_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    metrics_port: int | None = None
    trace: dict[str, np.ndarray] | None = None  # with ``LiveOptions.trace``: per batch, see ``TRACE_COLUMNS``

    def format(self) -> str:
        lines = [f"session {self.folder}: {self.events:,} events"]
        if len(self.tick_to_trade_ns):
            p50, p99, p999 = np.percentile(self.tick_to_trade_ns, [50, 99, 99.9]) / 1e3
            lines.append(f"tick-to-trade over {len(self.tick_to_trade_ns):,} order decisions: p50 {p50:.1f} µs, "
                         f"p99 {p99:.1f} µs, p99.9 {p999:.1f} µs")
        for node_id, summary in (self.result.summaries.items() if self.result is not None else ()):
            if hasattr(summary, "format"):
                lines.append(f"{node_id}:\n{summary.format()}")
        return "\n".join(lines)


def run_live(spec_path: str | Path, options: LiveOptions, sets=(), places=(), stop: threading.Event | None = None,
             started: threading.Event | None = None) -> LiveSession:
    """Run ``spec_path`` live until its feeds end, ``max_events``, ``stop`` is set, or SIGINT/SIGTERM.

    A followed control file never ends: a session whose other feeds have ended ends.

    Raises:
        PromotionError: the spec's hash is not promoted to ``options.stage``.
        SpecError, GraphError: the spec is invalid.
    """
    from runtime.journal import Journal
    from runtime.metrics import FeedHealthPublisher, LiveMetrics, SessionPublisher
    from runtime.promotion import Registry, require_promoted

    spec = load_spec(spec_path, sets=list(sets), places=list(places))
    require_promoted(spec.spec_hash, options.stage, options.registry, spec.name)
    plan = compile_plan(spec)
    graph = plan.graph
    folder = Path(options.session_dir or Path("runs") / "live" /
                  f"{spec.name}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}")
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    try:
        recovery = _recover(folder, spec, plan, options, stop)
    except BaseException:
        restore()
        raise
    if recovery is False:  # a standby whose session ended cleanly, or was stopped while waiting
        restore()
        return LiveSession(folder, 0, None)
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    readers = open_readers(plan, options.speed, recovery.skip_rows if recovery else None)
    run = recovery.run if recovery else open_run(plan, readers)
    metrics = LiveMetrics(spec.name, spec.spec_hash, options.stage)
    publisher = SessionPublisher(metrics, run)
    feed_health = FeedHealthPublisher(metrics, graph.sources, readers)
    if recovery:
        for view in recovery.reconciliation.venue.values():  # the rebuilt account, before the next fill says it
            for instrument, qty in view.positions.items():
                if qty:  # flat ones the publisher has set to 0 already
                    metrics.set_position(instrument, qty / 1e9)
    port = metrics.serve(options.metrics_port) if options.metrics_port is not None else None
    described = {"spec": str(Path(spec_path).resolve()), "name": spec.name, "spec_hash": spec.spec_hash,
                 "stage": options.stage, "sets": list(sets), "places": list(places), "speed": options.speed,
                 "sources": graph.sources, "started_utc": dt.datetime.now(dt.timezone.utc).isoformat()}
    if recovery is None:
        (folder / "session.json").write_text(json.dumps(described, indent=2))
    registry = Registry(options.registry)
    deployment = registry.start_deployment(spec.name, spec.spec_hash, options.stage, os.getpid(), socket.gethostname())
    recorder = open_recorder(folder / "inputs", graph.sources, fsync=options.fsync == "always")
    run.warm_up()  # compiled (or loaded from numba's cache) before the first event, not on it
    feeds = LiveBatches([live_feed(r) for r in readers], run.columns, busy_poll=options.busy_poll)
    latencies: list[int] = []
    trace: list[tuple] | None = [] if options.trace else None
    events = recovery.events if recovery else 0
    last_beat = last_health = time.monotonic()
    with Journal(folder / "journal.tlj", fsync=options.fsync) as journal:
        if recovery is None:
            journal.append("session", {**described, "deployment": deployment})
        else:
            from runtime.recovery import journal_recovery

            journal_recovery(journal, recovery, deployment)
            if recovery.previous_deployment is not None:
                registry.end_deployment(recovery.previous_deployment)  # its process is dead: we hold its journal
            print(recovery.format(), flush=True)
        if started is not None:
            started.set()
        try:
            for merged in feeds.batches(stop):
                taken_ns = time.time_ns()
                recorder.write(merged)  # write-ahead: the inputs are on disk before they act
                recorded_ns = time.time_ns()
                run.step(merged)
                done_ns = time.time_ns()  # the batch's orders are at the (paper) venue
                drained = run.take_logs()
                events += len(merged)
                decided = _decided(drained)
                if decided:
                    latencies.append(done_ns - int(merged.ts_recv[0]))
                    metrics.observe_tick_to_trade(latencies[-1])
                if trace is not None:
                    trace.append((int(merged.ts_recv[0]), taken_ns, recorded_ns, done_ns, len(merged), decided))
                _journal(journal, drained)
                publisher.batch(merged, drained)
                if time.monotonic() - last_health > 1.0:
                    feed_health.publish()
                    last_health = time.monotonic()
                if time.monotonic() - last_beat > options.heartbeat_s:
                    registry.heartbeat(deployment)
                    last_beat = time.monotonic()
                if options.max_events is not None and events >= options.max_events:
                    break
        finally:
            feeds.close()
            recorder.close()
            restore()
            registry.end_deployment(deployment)
        feed_health.publish()
        journal.append("ended", {"events": events, "stopped": stop.is_set()})  # not reached when killed
    result = run.finish(summarize=True)
    for node_id, logs in result.logs.items():
        for name, frame in logs.items():
            frame.write_parquet(folder / f"{node_id}.{name}.parquet")
    if port is not None:
        metrics.stop()
    traced = None if trace is None else {name: np.array([row[k] for row in trace], np.int64)
                                         for k, name in enumerate(TRACE_COLUMNS)}
    return LiveSession(folder, events, result, np.asarray(latencies, np.int64), port, traced)


def open_readers(plan, speed: float, skip_rows: dict[str, int] | None = None) -> list:
    """The live reader of each of the plan's sources, in the plan's order (see ``open_reader``); paced file
    sources share one clock, so their rows keep their recorded relative timing. ``skip_rows`` (a resumed
    session): per source, the rows the session had already seen."""
    from nodes.sources.paced import PaceClock

    clock = PaceClock(speed)
    skip_rows = skip_rows or {}
    return [open_reader(plan, source_id, clock, skip_rows.get(source_id, 0)) for source_id in plan.graph.sources]


def open_reader(plan, source_id: str, clock, skip_rows: int = 0):
    """A live source as it is; a followed source (the control file) with ``follow`` on; a file source paced on
    ``clock`` (a ``PaceClock``) with ``ts_recv`` restamped to the wall clock at release.

    ``skip_rows`` > 0 resumes after the rows a session had seen: a file source (paced or followed) passes over
    them; a live feed (a websocket) starts where the market is now, from a fresh snapshot."""
    from nodes.sources.paced import PacedReader
    from runtime.recovery import SkipRows

    node = plan.graph.nodes[source_id]
    params = node.definition.params
    if node.op.name in FOLLOWED_SOURCES:
        params = params.model_copy(update={"follow": True})
    reader = node.op.open(params, plan.spec.path.parent)
    if node.op.name in FOLLOWED_SOURCES:
        reader.skip(skip_rows)
        return reader
    if node.op.name in LIVE_SOURCES:
        return reader
    # a file replayed as a live feed: released at its recorded pace, stamped with the wall clock it arrives at
    return PacedReader(SkipRows(reader, skip_rows) if skip_rows else reader, clock, restamp=True)


def _recover(folder: Path, spec, plan, options: LiveOptions, stop: threading.Event):
    """None for a new session; the ``Recovery`` of the session in ``folder`` to continue; False for a standby
    with nothing to take over.

    Raises:
        SessionError: a new session's folder holds one already, a resumed folder holds none or another spec's,
            or the reconciliation found differences.
        RecoveryError: the journal and the recorded inputs disagree (runtime/recovery.py).
    """
    from runtime.recovery import recover_session, wait_to_take_over

    journal = folder / "journal.tlj"
    if not (options.resume or options.standby):
        if journal.exists():
            raise SessionError(f"{folder} holds a session already: --resume continues it, or choose another "
                               "--session folder")
        return None
    if options.standby:
        print(f"standby: waiting for the session in {folder} to need a runtime", flush=True)
        if not wait_to_take_over(folder, stop=stop):
            print(f"standby: {folder} ended cleanly; nothing to take over", flush=True)
            return False
    if not (folder / "session.json").exists() or not journal.exists():
        raise SessionError(f"{folder} holds no session to resume (no session.json and journal.tlj)")
    described = json.loads((folder / "session.json").read_text())
    if described["spec_hash"] != spec.spec_hash:
        raise SessionError(f"{folder} ran spec {described['spec_hash'][:12]}, this is {spec.spec_hash[:12]}: a "
                           "session resumes with the spec, sets and placement it started with")
    recovery = recover_session(folder, plan)
    if recovery.reconciliation.differences:
        raise SessionError(f"{folder}: the runtime and the venue disagree; not trading until an operator looks:\n"
                           + recovery.reconciliation.format())
    return recovery


class SessionError(TickloomError):
    """Raised when a session folder cannot be started or resumed as asked (the message says why)."""


def open_run(plan, readers: list) -> StreamRun:
    """The stream run a session drives (no per-event records: a session keeps its logs)."""
    return StreamRun(plan, readers=readers, record=False)


def open_recorder(folder: Path, sources: list[str], fsync: bool = False) -> InputLog:
    """The write-ahead log of the session's inputs (``inputs/<source>.<segment>.arrows``, read back by
    ``runtime.session.recorded_inputs``)."""
    return InputLog(folder, sources, fsync=fsync)


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


def _stop_on_signals(stop: threading.Event):
    """Set ``stop`` on SIGINT/SIGTERM (main thread only); return a function that restores the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: stop.set())
    return lambda: [signal.signal(s, handler) for s, handler in previous.items()]
