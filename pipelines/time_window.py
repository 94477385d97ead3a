"""Run a spec on a slice of time: a window of events, with warm-up events before it and nothing after it.

Scope: the one rule that walk-forward, notebooks and any windowed run share. A ``TimeWindow`` selects events by
``ts_recv`` (the time tickloom learns of them), half-open: ``start_ns <= ts_recv < end_ns``. Events at or after
``end_ns`` never reach a node, so a windowed run cannot see the future of its window. Non-goals: windows on
``ts_event``, several disjoint windows in one run.

Warm-up. Events in ``[warmup_start_ns, start_ns)`` go through every node, so indicators hold full windows when
the window opens, but they are not recorded and do not count as the run's events. The account does not
survive the warm-up: when the window opens, every node that keeps an account (an op with ``summarize``, such
as ``backtest.bar_venue``) and every node that reads one, directly or through ``prev(...)`` (the sizing that
reads ``prev(sim.equity)``), goes back to its initial state, and so do the values they hold. The window thus
starts flat with the starting cash, with warm indicators and signals; a trade opens on the first signal inside
the window (for a ``cross``-mode crossover: the first cross after ``start_ns``, not a cross seen during
warm-up). Trades, equity and stats cover the window only.

A window without warm-up (``warmup_start_ns`` None) starts every node cold at ``start_ns``; a window with
neither bound is the whole history, the same run as no window at all.
"""

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nodes.sources.merge import MergedBatch


@dataclass(frozen=True)
class TimeWindow:
    """Events with ``start_ns <= ts_recv < end_ns``, warmed up from ``warmup_start_ns``; None = unbounded.

    Raises:
        ValueError: ``end_ns <= start_ns``, or ``warmup_start_ns`` after ``start_ns``, or a bound that is not
            an integer.

    Example:
        >>> TimeWindow(start_ns=to_ns("2013-01-01"), end_ns=to_ns("2014-01-01"), warmup_start_ns=to_ns("2012-07-01"))
        TimeWindow(start=2013-01-01T00:00:00Z, end=2014-01-01T00:00:00Z, warmup_start=2012-07-01T00:00:00Z)
    """

    start_ns: int | None = None
    end_ns: int | None = None
    warmup_start_ns: int | None = None

    def __post_init__(self):
        for name in ("start_ns", "end_ns", "warmup_start_ns"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be int nanoseconds since the epoch (UTC) or None, got {value!r}")
        if self.start_ns is not None and self.end_ns is not None and self.end_ns <= self.start_ns:
            raise ValueError(f"end_ns ({self.end_ns}) must be after start_ns ({self.start_ns})")
        if self.warmup_start_ns is not None:
            if self.start_ns is None:
                raise ValueError("warmup_start_ns needs a start_ns: warm-up is the time before the window opens")
            if self.warmup_start_ns > self.start_ns:
                raise ValueError(f"warmup_start_ns ({self.warmup_start_ns}) must not be after start_ns ({self.start_ns})")

    def __repr__(self) -> str:
        shown = ", ".join(f"{name[:-3]}={_iso(value)}" for name, value in self.as_dict().items() if value is not None)
        return f"TimeWindow({shown})"

    def as_dict(self) -> dict[str, int | None]:
        return {"start_ns": self.start_ns, "end_ns": self.end_ns, "warmup_start_ns": self.warmup_start_ns}

    def cut(self, batches: Iterator[MergedBatch]) -> Iterator[tuple[MergedBatch, bool]]:
        """Yield ``(batch, warming_up)`` for the events of ``batches`` this window keeps, then stop reading.

        Events before the warm-up are dropped; a batch that straddles a bound is split there. Iteration stops at
        the first event at or after ``end_ns``, so no later chunk is even requested from the sources.
        """
        first = self.warmup_start_ns if self.warmup_start_ns is not None else self.start_ns
        for merged in batches:
            ts = merged.ts_recv
            lo = 0 if first is None else int(np.searchsorted(ts, first, "left"))
            hi = len(ts) if self.end_ns is None else int(np.searchsorted(ts, self.end_ns, "left"))
            opens = lo if self.start_ns is None else min(max(int(np.searchsorted(ts, self.start_ns, "left")), lo), hi)
            if opens > lo:
                yield slice_batch(merged, lo, opens), True
            if hi > opens:
                yield slice_batch(merged, opens, hi), False
            if hi < len(ts):
                return


def slice_batch(merged: MergedBatch, lo: int, hi: int) -> MergedBatch:
    """Events ``lo:hi`` of a merged batch as a batch of their own (each stream's rows re-based to 0).

    Within one stream, events in merged order are its rows in order, so events ``lo:hi`` hold a contiguous run
    of each stream's rows; the parts are cut to those runs.
    """
    if lo == 0 and hi == len(merged):
        return merged
    stream, row = merged.stream[lo:hi], merged.row[lo:hi]
    parts, rebased = [], row.copy()
    for index, part in enumerate(merged.parts):
        mine = stream == index
        if mine.any():
            first, last = int(row[mine].min()), int(row[mine].max()) + 1
            rebased[mine] -= first
        else:
            first = last = 0
        parts.append({name: column[first:last] for name, column in part.items()})
    return MergedBatch(stream=stream, row=rebased, ts_recv=merged.ts_recv[lo:hi], parts=parts)


def account_nodes(graph) -> list[str]:
    """Nodes that are reset when a window opens: account keepers and every node reading them (see module doc)."""
    reset = {n for n, node in graph.nodes.items() if hasattr(node.op, "summarize")}
    grown = True
    while grown:
        grown = False
        for node_id, node in graph.nodes.items():
            if node_id not in reset and any(a.node in reset for a in node.args):
                reset.add(node_id)
                grown = True
    return [n for n in graph.order if n in reset]


def event_times(spec) -> np.ndarray:
    """The distinct ``ts_recv`` of every event of ``spec``'s sources, ascending (int64 ns): the run's bars.

    Reads the sources only; runs no node. Walk-forward counts its windows in these.
    """
    graph = spec.graph
    base_dir = Path(spec.path).parent
    times = []
    for source_id in graph.sources:
        node = graph.nodes[source_id]
        reader = node.op.open(node.definition.params, base_dir)
        for chunk in reader.chunks(spec.model.defaults.chunk_events):
            times.append(np.asarray(chunk["ts_recv"], dtype=np.int64))
    return np.unique(np.concatenate(times)) if times else np.empty(0, dtype=np.int64)


def to_ns(value) -> int:
    """A time as int ns since the epoch (UTC): int ns as is, ISO 8601 text or a datetime/date (naive = UTC).

    Example:
        >>> to_ns("2013-01-02"), to_ns("2013-01-02T14:30:00Z") - to_ns("2013-01-02")
        (1357084800000000000, 52200000000000)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"time {value!r}: expected ISO 8601 such as 2013-01-02 or 2013-01-02T14:30:00Z") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    raise ValueError(f"time {value!r}: expected int ns, ISO 8601 text or a datetime")


def _iso(ts_ns: int) -> str:
    seconds, fraction = divmod(int(ts_ns), 10**9)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"
