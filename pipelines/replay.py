"""Run a compiled plan over history: sources → merged chunks → segments → recorded outputs.

Sources yield columnar chunks; ``merge_chunks`` orders events across sources by ``ts_recv`` (ties: source
declaration order, then row order). Each chunk goes through the segments in order; state and held values
carry over from chunk to chunk, so results do not depend on the chunk size. Memory for the stream pass is
bounded by the chunk size; recorded outputs (what the run returns) grow with the events of recorded nodes.

A ``TimeWindow`` (``pipelines/time_window.py``) restricts the replay to a slice of time, with warm-up events
before it; events after the window never reach a node.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from hardware.targets import compile_segment, step_function
from nodes.errors import InvariantError
from nodes.sources.merge import MergedBatch, merge_chunks
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
        graph = plan.graph
        namespace = {"np": np}
        dependencies = []
        for global_name, node_id in self.code.steps.items():
            step = node_implementation(plan, node_id).step
            namespace[global_name] = step_function(step, segment.target)
            dependencies.append(step)
        self.function = compile_segment(self.code.source, self.code.entry, namespace, segment.target, dependencies)
        self.constants = {n: node_constants(plan, n) for n in segment.nodes}
        self.states = {n: initial_state(plan, n) for n in segment.nodes if node_is_threaded(plan, n)}
        self.state_arrays = {n: keyed_state_arrays(plan, n) for n in segment.nodes if not node_is_threaded(plan, n)}
        self.values = {
            detail: initial_value(plan, *detail) for _, kind, detail in self.code.arguments if kind == "held_value"
        }
        self.holds = holds

    def reset(self, node_ids: set[str]) -> None:
        """Put these nodes back to their initial state and held values (the account opening at a window)."""
        for node_id in node_ids.intersection(self.segment.nodes):
            if node_id in self.states:
                self.states[node_id] = initial_state(self.plan, node_id)
            else:
                self.state_arrays[node_id] = keyed_state_arrays(self.plan, node_id)
            for port in self.plan.graph.nodes[node_id].op.outputs:
                if (node_id, port) in self.values:
                    self.values[(node_id, port)] = initial_value(self.plan, node_id, port)
                if (node_id, port) in self.holds:
                    self.holds[(node_id, port)][:] = initial_value(self.plan, node_id, port)

    def run(self, batch: "_Batch", start: int, stop: int) -> None:
        args = [self._argument(kind, detail, batch, start, stop) for _, kind, detail in self.code.arguments]
        returned = self.function(*args)
        for (kind, detail), value in zip(self.code.returns, returned):
            if kind == "state":
                self.states[detail[0]] = value
            else:
                self.values[detail] = value

    def drain_logs(self) -> dict[str, dict[str, dict[str, np.ndarray]]]:
        """Take the rows the segment's logging ops wrote since the last drain: node → log → columns."""
        drained = {}
        for node_id in self.segment.nodes:
            op = self.plan.graph.nodes[node_id].op
            if op.logs:
                self.states[node_id], drained[node_id] = op.drain(self.constants[node_id], self.states[node_id])
        return drained

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
            return self.states[detail[0]]
        if kind == "state_array":
            return self.state_arrays[detail[0]][detail[1]]
        if kind == "held_value":
            return self.values[detail]
        raise InvariantError(f"unknown kernel argument kind {kind!r}")


class _Batch:
    """One merged chunk with the arrays the segments share (transfers and records are allocated on demand)."""

    def __init__(self, merged: MergedBatch, key_maps: list[np.ndarray], many_sources: bool):
        self.merged = merged
        self.many_sources = many_sources
        n = len(merged)
        parts = merged.parts
        if len(parts) == 1:
            # one source: events are its rows in order, no gathering needed
            only = parts[0]
            keys = key_maps[0][only["instrument"]] if len(key_maps[0]) > 1 else np.zeros(n, np.int64)
            ts_event = only["ts_event"]
        else:
            offsets = np.cumsum([0] + [len(p["ts_recv"]) for p in parts])[:-1]
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
            self._transfers[detail] = np.empty(self.n, dtype=dtype)
        return self._transfers[detail]

    def record(self, detail: tuple, plan: Plan) -> np.ndarray:
        if detail not in self.records:
            dtype = plan.graph.nodes[detail[0]].op.outputs[detail[1]].dtype
            self.records[detail] = np.empty(self.n, dtype=dtype)
        return self.records[detail]


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
