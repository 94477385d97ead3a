"""Run a compiled plan over history: sources → merged chunks → segments → recorded outputs.

Sources yield columnar chunks; ``merge_chunks`` orders events across sources by ``ts_recv`` (ties: source
declaration order, then row order). Each chunk goes through the segments in order; state and held values
carry over from chunk to chunk, so results do not depend on the chunk size. Memory for the stream pass is
bounded by the chunk size; recorded outputs (what the run returns) grow with the events of recorded nodes.

A ``TimeWindow`` (``pipelines/time_window.py``) restricts the replay to a slice of time, with warm-up events
before it; events after the window never reach a node.

The live runtime drives the same ``StreamRun`` a batch (often one event) at a time through a lean path:
``step`` runs the kernels with their arguments bound once (only the batch's arrays are set per call; chunk
arrays between segments are reused, not allocated per batch) and ``take_logs`` drains only the nodes that
logged (ops that say so through ``logged_rows``). Same kernels, same state, same arguments: the outputs are
those of ``run_batch``.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from hardware.targets import compile_segment, step_function
from nodes.errors import InvariantError
from nodes.sources.merge import MergedBatch, merge_chunks, merge_parts
from pipelines.codegen import (
    SegmentCode,
    generate_segment,
    initial_state,
    initial_value,
    keyed_state_arrays,
    node_constants,
    node_implementation,
    node_is_threaded,
)
from pipelines.plan import Plan, Segment
from pipelines.time_window import TimeWindow, account_nodes

# Wraps one source's chunk iterator: a stress scenario that shocks prices, delays or drops events.
SourceTransform = Callable[[Iterator[dict[str, np.ndarray]]], Iterator[dict[str, np.ndarray]]]


@dataclass
class ReplayResult:
    """What a replay produced: per recorded node a frame of its outputs, per table node its tables."""

    plan: Plan
    recorded: dict[str, pl.DataFrame]
    tables: dict[str, dict[str, pl.DataFrame]]
    events: int
    seconds: float
    summaries: dict[str, object] = field(default_factory=dict)
    warmup_events: int = 0  # events that only warmed nodes up before the window (not in ``events``)
    logs: dict[str, dict[str, pl.DataFrame]] = field(default_factory=dict)  # node → log name → rows


class _BoundSegment:
    """A compiled segment and the state it carries between chunks."""

    def __init__(self, plan: Plan, segment: Segment, holds: dict):
        self.plan = plan
        self.segment = segment
        self.code: SegmentCode = generate_segment(plan, segment)
        namespace = {"np": np}
        dependencies = []
        for global_name, node_id in self.code.steps.items():
            step = node_implementation(plan, node_id).step
            namespace[global_name] = step_function(step, segment.target)
            dependencies.append(step)
        self.function = compile_segment(self.code.source, self.code.entry, namespace, segment.target, dependencies)
        self.constants = {n: node_constants(plan, n) for n in segment.nodes}
        self._states = {n: initial_state(plan, n) for n in segment.nodes if node_is_threaded(plan, n)}
        self.state_arrays = {n: keyed_state_arrays(plan, n) for n in segment.nodes if not node_is_threaded(plan, n)}
        self._values = {
            detail: initial_value(plan, *detail) for _, kind, detail in self.code.arguments if kind == "held_value"
        }
        self.holds = holds
        # the lean path (``step_live``): the argument list bound once; between calls it holds the newest states
        # and held values (``_args_ahead``) until something reads the dicts
        self._args: list | None = None
        self._args_ahead = False
        self._dicts_lent = False
        self._log_nodes: list[tuple[str, object, tuple, object]] = []

    @property
    def states(self) -> dict:
        """Each threaded node's state (node → state tuple), as of the last batch run."""
        self._settle()
        return self._states

    @property
    def values(self) -> dict:
        """Each held port's latest value ((node, port) → value), as of the last batch run."""
        self._settle()
        return self._values

    def _settle(self) -> None:
        """Bring the dicts up to the lean path's arguments; the next lean step reloads them (they may change)."""
        if self._args_ahead:
            for (kind, detail), slot in zip(self.code.returns, self._return_slots):
                if kind == "state":
                    self._states[detail[0]] = self._args[slot]
                else:
                    self._values[detail] = self._args[slot]
            self._args_ahead = False
        self._dicts_lent = self._args is not None

    def reset(self, node_ids: set[str]) -> None:
        """Put these nodes back to their initial state and held values (the account opening at a window)."""
        self._settle()
        self._args = None  # state arrays are replaced: bind again
        states = self._states
        for node_id in node_ids.intersection(self.segment.nodes):
            if node_id in states:
                states[node_id] = initial_state(self.plan, node_id)
            else:
                self.state_arrays[node_id] = keyed_state_arrays(self.plan, node_id)
            for port in self.plan.graph.nodes[node_id].op.outputs:
                if (node_id, port) in self._values:
                    self._values[(node_id, port)] = initial_value(self.plan, node_id, port)
                if (node_id, port) in self.holds:
                    self.holds[(node_id, port)][:] = initial_value(self.plan, node_id, port)

    def run(self, batch: "_Batch", start: int, stop: int) -> None:
        self._settle()
        args = [self._argument(kind, detail, batch, start, stop) for _, kind, detail in self.code.arguments]
        returned = self.function(*args)
        for (kind, detail), value in zip(self.code.returns, returned):
            if kind == "state":
                self._states[detail[0]] = value
            else:
                self._values[detail] = value

    def drain_logs(self) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """Take the rows the segment's logging ops wrote since the last drain: node → log → columns."""
        self._settle()
        drained = {}
        for node_id in self.segment.nodes:
            op = self.plan.graph.nodes[node_id].op
            if op.logs:
                self._states[node_id], drained[node_id] = op.drain(self.constants[node_id], self._states[node_id])
        return drained

    # -- the lean path (a live session) ------------------------------------------------------------------------

    def step_live(self, batch: "_Batch", start: int, stop: int) -> None:
        """Run events ``start:stop`` of ``batch`` like ``run``, with the arguments bound once (see the module)."""
        args = self._args
        if args is None:
            args = self._bind()
        elif self._dicts_lent:
            self._reload()
        whole = start == 0 and stop == batch.n
        for slot, kind, detail in self._batch_slots:
            if kind == "n":
                args[slot] = stop - start
            elif kind == "column":
                column = batch.column(*detail)
                args[slot] = column if whole or batch.many_sources else column[start:stop]
            elif kind == "transfer_in" or kind == "transfer_out":
                transfer = batch.transfer(detail, self.plan)
                args[slot] = transfer if whole else transfer[start:stop]
            elif kind == "record":
                record = batch.record(detail, self.plan)
                args[slot] = record if whole else record[start:stop]
            else:  # src, row, key, ts_event, ts_recv
                args[slot] = batch.arrays[kind] if whole else batch.arrays[kind][start:stop]
        returned = self.function(*args)
        for slot, value in zip(self._return_slots, returned):
            args[slot] = value
        self._args_ahead = True

    def take_logs(self) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """Drain the logging nodes that logged since the last drain (all of them for ops without ``logged_rows``)."""
        drained = {}
        if self._args is None:
            return self.drain_logs()
        if self._dicts_lent:
            self._reload()
        args = self._args
        for node_id, op, constants, slot in self._log_nodes:
            counted = op.logged_rows
            if counted is not None and counted(constants, args[slot]) == 0:
                continue
            args[slot], drained[node_id] = op.drain(constants, args[slot])
            self._args_ahead = True
        return drained

    def _bind(self) -> list:
        """The argument list from the dicts; which slots change per batch and which take the returned values."""
        self._settle()
        per_batch = ("n", "src", "row", "key", "ts_event", "ts_recv", "column", "transfer_in", "transfer_out",
                     "record")
        args, self._batch_slots = [], []
        slot_of = {}
        for slot, (_, kind, detail) in enumerate(self.code.arguments):
            slot_of[(kind, detail)] = slot
            if kind in per_batch:
                self._batch_slots.append((slot, kind, detail))
                args.append(None)
            else:
                args.append(self._argument(kind, detail, None, 0, 0))
        self._return_slots = [slot_of[("state" if kind == "state" else "held_value", detail)]
                              for kind, detail in self.code.returns]
        self._log_nodes = []
        for node_id in self.segment.nodes:
            op = self.plan.graph.nodes[node_id].op
            if op.logs:
                self._log_nodes.append((node_id, _LogReader(op), self.constants[node_id],
                                        slot_of[("state", (node_id,))]))
        self._args = args
        self._dicts_lent = False
        return args

    def _reload(self) -> None:
        """Someone had the dicts (they may have changed a state): load them into the bound arguments again."""
        args = self._args
        for (kind, detail), slot in zip(self.code.returns, self._return_slots):
            args[slot] = self._states[detail[0]] if kind == "state" else self._values[detail]
        self._dicts_lent = False

    def _argument(self, kind: str, detail: tuple, batch: "_Batch", start: int, stop: int):
        if kind == "n":
            return stop - start
        if kind in ("src", "row", "key", "ts_event", "ts_recv"):
            return batch.arrays[kind][start:stop]
        if kind == "column":
            column = batch.column(*detail)
            return column if batch.many_sources else column[start:stop]
        if kind in ("transfer_in", "transfer_out"):
            return batch.transfer(detail, self.plan)[start:stop]
        if kind == "record":
            return batch.record(detail, self.plan)[start:stop]
        if kind == "hold":
            return self.holds[detail]
        if kind == "constants":
            return self.constants[detail[0]]
        if kind == "state":
            return self._states[detail[0]]
        if kind == "state_array":
            return self.state_arrays[detail[0]][detail[1]]
        if kind == "held_value":
            return self._values[detail]
        raise InvariantError(f"unknown kernel argument kind {kind!r}")


class _LogReader:
    """A logging op as the lean path drains it: ``drain``, and ``logged_rows`` when the op can count its rows."""

    def __init__(self, op):
        self.drain = op.drain
        self.logged_rows = getattr(op, "logged_rows", None)


class _Batch:
    """One merged chunk with the arrays the segments share (transfers and records are allocated on demand)."""

    def __init__(self, merged: MergedBatch, key_maps: list[np.ndarray], many_sources: bool,
                 buffers: "_Buffers | None" = None):
        self.merged = merged
        self.buffers = buffers
        self.many_sources = many_sources
        n = len(merged)
        parts = merged.parts
        if len(parts) == 1:
            # one source: events are its rows in order, no gathering needed
            only = parts[0]
            if len(key_maps[0]) > 1:
                keys = key_maps[0][only["instrument"]]
            else:
                keys = buffers.zeros(n) if buffers is not None else np.zeros(n, np.int64)
            ts_event = only["ts_event"]
        else:
            sizes = [len(p["ts_recv"]) for p in parts]
            if sizes.count(0) == len(parts) - 1:
                # the events of one source (a live batch, usually): its rows in order, as with one source
                only = parts[sizes.index(n)]
                keys = key_maps[sizes.index(n)][only["instrument"]]
                ts_event = only["ts_event"]
            else:
                offsets = np.cumsum([0] + sizes)[:-1]
                position = offsets[merged.stream] + merged.row
                keys = np.concatenate([key_maps[s][p["instrument"]] for s, p in enumerate(parts)])[position]
                ts_event = np.concatenate([p["ts_event"] for p in parts])[position]
        self.arrays = {
            "src": merged.stream,
            "row": merged.row,
            "key": keys.astype(np.int64, copy=False),
            "ts_recv": merged.ts_recv,
            "ts_event": ts_event.astype(np.int64, copy=False),
        }
        self.n = n
        self._transfers: dict = {}
        self.records: dict = {}

    def column(self, source_id_index: int, port: str) -> np.ndarray:
        return self.merged.parts[source_id_index][port]

    def transfer(self, detail: tuple, plan: Plan) -> np.ndarray:
        if detail not in self._transfers:
            dtype = plan.graph.nodes[detail[0]].op.outputs[detail[1]].dtype
            self._transfers[detail] = (self.buffers.take(("transfer", detail), dtype, self.n)
                                       if self.buffers is not None else np.empty(self.n, dtype=dtype))
        return self._transfers[detail]

    def record(self, detail: tuple, plan: Plan) -> np.ndarray:
        if detail not in self.records:
            dtype = plan.graph.nodes[detail[0]].op.outputs[detail[1]].dtype
            self.records[detail] = (self.buffers.take(("record", detail), dtype, self.n)
                                    if self.buffers is not None else np.empty(self.n, dtype=dtype))
        return self.records[detail]


class _Buffers:
    """Arrays the lean path reuses from batch to batch (transfers between segments, records nobody keeps, the
    key column of a one-instrument plan): each grows to the largest batch seen, a batch gets its first n."""

    def __init__(self):
        self._arrays: dict = {}
        self._zeros = np.zeros(64, np.int64)

    def take(self, name, dtype, n: int) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or len(array) < n:
            array = self._arrays[name] = np.empty(max(n, 64), dtype=dtype)
        return array[:n]

    def zeros(self, n: int) -> np.ndarray:
        if len(self._zeros) < n:
            self._zeros = np.zeros(2 * n, np.int64)
        return self._zeros[:n]


def replay(
    plan: Plan,
    base_dir: Path | None = None,
    window: TimeWindow | None = None,
    summarize: bool = True,
    source_transforms: dict[str, SourceTransform] | None = None,
) -> ReplayResult:
    """Run ``plan`` over its sources' history and return the recorded outputs, logs and table results.

    ``window`` keeps only the events of a time window, warmed up as ``pipelines/time_window.py`` describes.
    ``summarize`` also derives what ops summarize from their records and logs (a venue's trades and stats); a
    benchmark of the stream pass alone turns it off. ``source_transforms`` wraps a source's chunk iterator
    (source node id → function of the iterator), e.g. a stress scenario that shocks prices or delays events;
    a transform must keep each source's events sorted by ``ts_recv``.

    Raises:
        DataQualityError: a source found bad data (named with file and line).
    """
    run = StreamRun(plan, base_dir, source_transforms=source_transforms)
    merged_batches = run.merged_batches()
    window_batches = window.cut(merged_batches) if window is not None else ((m, False) for m in merged_batches)
    opened = window is None or window.warmup_start_ns is None
    for merged, warming_up in window_batches:
        if not warming_up and not opened:
            run.reset(set(account_nodes(plan.graph)))
            opened = True
        run.run_batch(merged, keep=not warming_up)
    return run.finish(summarize)


class StreamRun:
    """One pass of a plan's stream: bound segments and the state they carry from batch to batch.

    ``replay`` drives it over history; the live runtime drives the same object over batches that arrive from
    live feeds, so backtest and live run exactly the same kernels on exactly the same state. ``readers``
    replaces the sources' own readers (a live feed for a file source); ``record=False`` keeps no per-event
    record (a live session keeps its logs only).
    """

    def __init__(self, plan: Plan, base_dir: Path | None = None, *, readers: list | None = None,
                 source_transforms: dict[str, SourceTransform] | None = None, record: bool = True):
        self.started = time.perf_counter()
        self.plan = plan
        graph = plan.graph
        base_dir = Path(base_dir) if base_dir is not None else plan.spec.path.parent
        self.readers = readers if readers is not None else [
            graph.nodes[s].op.open(graph.nodes[s].definition.params, base_dir) for s in graph.sources
        ]
        unknown = set(source_transforms or ()) - set(graph.sources)
        if unknown:
            raise KeyError(f"source transforms for {sorted(unknown)}: not sources of the spec (sources: {graph.sources})")
        self.source_transforms = source_transforms or {}
        self.key_maps = [np.array([graph.instruments.index(i) for i in r.instruments], dtype=np.int64)
                         for r in self.readers]
        holds = _hold_arrays(plan)
        # columns of each source's chunks, so a batch without rows of a source still has its (empty) columns
        self.columns = [{"ts_event": np.int64, "ts_recv": np.int64, "instrument": np.int32,
                         **{port: t.dtype for port, t in graph.nodes[s].op.outputs.items()}} for s in graph.sources]
        # sources are referenced by their index in the generated code
        self.source_index = {s: i for i, s in enumerate(graph.sources)}
        self.segments = [_BoundSegment(plan, segment, holds) for segment in plan.segments]
        for segment in self.segments:
            segment.code.arguments = [
                (name, kind, (self.source_index[detail[0]], detail[1]) if kind == "column" else detail)
                for name, kind, detail in segment.code.arguments
            ]
        self.recorded_parts: dict[str, list[pl.DataFrame]] = {n: [] for n in plan.recorded} if record else {}
        self.log_parts: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {}
        self.events = self.warmup_events = 0
        self.many_sources = len(graph.sources) > 1
        self._buffers = _Buffers()
        self._pending_records: _Batch | None = None  # a step's batch whose records take_logs keeps

    def merged_batches(self) -> Iterator[MergedBatch]:
        """The sources' events merged in ``ts_recv`` order, in batches of up to the spec's ``chunk_events``."""
        chunk_events = self.plan.spec.model.defaults.chunk_events
        streams = [
            self.source_transforms.get(s, lambda chunks: chunks)(r.chunks(chunk_events))
            for s, r in zip(self.plan.graph.sources, self.readers)
        ]
        return merge_chunks(streams, self.columns)

    def reset(self, node_ids: set[str]) -> None:
        """Put these nodes back to their initial state (the account opening at a window's start)."""
        for segment in self.segments:
            segment.reset(node_ids)

    def run_batch(self, merged: MergedBatch, keep: bool = True) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """Run one merged batch through every segment; return the rows logged in it (node → log → columns).

        ``keep=False`` (warm-up before a window) runs the batch but keeps neither its records nor its logs.
        """
        batch = _Batch(merged, self.key_maps, self.many_sources)
        if self.plan.interleaved:
            for i in range(batch.n):
                for segment in self.segments:
                    segment.run(batch, i, i + 1)
        else:
            for segment in self.segments:
                segment.run(batch, 0, batch.n)
        drained: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for segment in self.segments:
            drained.update(segment.drain_logs())
        if not keep:
            self.warmup_events += batch.n
            return {}
        self._keep_logs(drained)
        for node_id in self.recorded_parts:
            self.recorded_parts[node_id].append(_recorded_frame(self.plan, node_id, batch, self.source_index))
        self.events += batch.n
        return drained

    def step(self, merged: MergedBatch) -> None:
        """Run one merged batch through every segment, the lean way (a live session); drain with ``take_logs``.

        Same kernels, state and outputs as ``run_batch``; the arguments are bound once and the arrays between
        segments reused, so a one-event batch costs little more than the kernels themselves. The batch's arrays
        must stay untouched until the next ``step`` (transfers are reused). A run that records per event takes
        ``run_batch``'s way for its records.
        """
        if self.recorded_parts:
            self._pending_records = _Batch(merged, self.key_maps, self.many_sources)
            batch = self._pending_records
        else:
            batch = _Batch(merged, self.key_maps, self.many_sources, self._buffers)
        if self.plan.interleaved and batch.n > 1:
            for i in range(batch.n):
                for segment in self.segments:
                    segment.step_live(batch, i, i + 1)
        else:
            for segment in self.segments:
                segment.step_live(batch, 0, batch.n)
        self.events += batch.n

    def latest(self, node_id: str, port: str):
        """The value ``node_id.port`` holds after the last batch (its last event's), for a port the engine holds
        between batches (a port read across segments or fed back); None for one it does not hold."""
        for segment in self.segments:
            if (node_id, port) in segment.values:
                return segment.values[(node_id, port)]
        return None

    def warm_up(self) -> None:
        """Compile the compiled segments (or load them from numba's cache) for the types of this run's batches,
        by running a batch of no events through them: no state changes, no time lost at the first event."""
        empty = merge_parts([None] * len(self.columns), self.columns)
        batch = _Batch(empty, self.key_maps, self.many_sources, self._buffers)
        for segment in self.segments:
            if segment.segment.target != "cpu":  # a cpu segment has nothing to compile
                segment.step_live(batch, 0, 0)

    def take_logs(self) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """The rows logged since the last ``step`` (node → log → columns; logs without rows left out), kept for
        ``finish`` as ``run_batch`` keeps them."""
        drained: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for segment in self.segments:
            for node_id, logs in segment.take_logs().items():
                # only logs with rows: a session steps millions of batches, most of which log nothing
                logged = {log: columns for log, columns in logs.items() if len(next(iter(columns.values()), ()))}
                if logged:
                    drained[node_id] = logged
        self._keep_logs(drained)
        if self._pending_records is not None:
            for node_id in self.recorded_parts:
                self.recorded_parts[node_id].append(
                    _recorded_frame(self.plan, node_id, self._pending_records, self.source_index))
            self._pending_records = None
        return drained

    def _keep_logs(self, drained: dict) -> None:
        for node_id, by_log in drained.items():
            for log, columns in by_log.items():
                self.log_parts.setdefault(node_id, {}).setdefault(log, []).append(columns)

    def finish(self, summarize: bool = True) -> ReplayResult:
        """Assemble what the pass recorded and logged, run the table ops and the summaries."""
        plan, graph = self.plan, self.plan.graph
        recorded = {n: _concat(parts, plan, n) for n, parts in self.recorded_parts.items()}
        recorded = {n: _with_instrument_names(frame, graph.instruments) for n, frame in recorded.items()}
        # a logging op that saw no batch still gets its (empty) logs, with their columns
        for segment in self.segments:
            self._keep_logs(segment.drain_logs())
        logs = {
            n: {log: _log_frame(parts, graph.instruments) for log, parts in by_log.items()}
            for n, by_log in self.log_parts.items()
        }
        tables = _run_tables(plan, recorded)
        summaries = {}
        for node_id in list(recorded) + [n for n in logs if n not in recorded]:
            op = graph.nodes[node_id].op
            if summarize and hasattr(op, "summarize"):
                summaries[node_id] = op.summarize(graph.nodes[node_id].definition.params, recorded.get(node_id),
                                                  logs.get(node_id, {}))
        seconds = time.perf_counter() - self.started
        return ReplayResult(plan, recorded, tables, self.events, seconds, summaries, self.warmup_events, logs)


def _log_frame(parts: list[dict[str, np.ndarray]], instruments: list[str]) -> pl.DataFrame:
    """One log's drained parts as a frame; a ``key`` column gets the instrument's name beside it."""
    frame = pl.concat([pl.DataFrame(p) for p in parts], rechunk=True)
    if "key" in frame.columns:
        names = pl.Series("instrument", instruments, dtype=pl.Enum(instruments)).gather(frame["key"])
        frame = frame.insert_column(frame.columns.index("key") + 1, names)
    return frame


def _hold_arrays(plan: Plan) -> dict:
    from nodes.contract import Scope

    holds = {}
    n_keys = len(plan.graph.instruments)
    for node_id, port in plan.held:
        op = plan.graph.nodes[node_id].op
        size = n_keys if op.scope_of(port) is Scope.KEY else 1
        holds[(node_id, port)] = np.full(size, initial_value(plan, node_id, port), dtype=op.outputs[port].dtype)
    return holds


def _recorded_frame(plan: Plan, node_id: str, batch: _Batch, source_index: dict) -> pl.DataFrame:
    node = plan.graph.nodes[node_id]
    if len(plan.graph.sources) == 1:
        fired = slice(None)
    else:
        fired = np.isin(batch.arrays["src"], [source_index[s] for s in node.sources])
    data = {
        "ts_event": batch.arrays["ts_event"][fired],
        "ts_recv": batch.arrays["ts_recv"][fired],
        "key": batch.arrays["key"][fired],
    }
    if node.op.kind == "source":
        part = batch.merged.parts[source_index[node_id]]
        rows = batch.merged.row[fired]
        for port in node.op.outputs:
            data[port] = part[port][rows]
    else:
        for port in node.op.outputs:
            data[port] = batch.record((node_id, port), plan)[fired]
    return pl.DataFrame(data)


def _concat(parts: list[pl.DataFrame], plan: Plan, node_id: str) -> pl.DataFrame:
    if parts:
        return pl.concat(parts, rechunk=False)  # chunks stay where they are: no copy of the whole recording
    op = plan.graph.nodes[node_id].op
    schema = {"ts_event": pl.Int64, "ts_recv": pl.Int64, "key": pl.Int64}
    schema.update({p: pl.Float64 if t.value == "f64" else pl.Int64 if t.value == "i64" else pl.Boolean
                   for p, t in op.outputs.items()})
    return pl.DataFrame(schema=schema)


def _with_instrument_names(frame: pl.DataFrame, instruments: list[str]) -> pl.DataFrame:
    # an Enum column: 4 bytes a row instead of a string per row
    names = pl.Series("instrument", instruments, dtype=pl.Enum(instruments)).gather(frame["key"])
    rest = [c for c in frame.columns if c not in ("ts_event", "ts_recv", "key")]
    return frame.select("ts_event", "ts_recv").with_columns(names).hstack(frame.select(rest))


def _run_tables(plan: Plan, recorded: dict[str, pl.DataFrame]) -> dict[str, dict[str, pl.DataFrame]]:
    results: dict[str, dict[str, pl.DataFrame]] = {}
    for node_id in plan.table_nodes:
        node = plan.graph.nodes[node_id]
        inputs = {}
        for name, producer in node.tables.items():
            # a stream node's input is its recorded outputs; a table node's is its "out" table
            inputs[name] = recorded[producer] if producer in recorded else results[producer]["out"]
        results[node_id] = node.op.run(node.definition.params, inputs)
    return results
