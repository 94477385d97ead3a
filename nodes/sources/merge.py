"""Merge streams of columnar chunks, each sorted by ``ts_recv``, into one deterministic event order.

Order: ``ts_recv``, then the stream's index, then the row's order within its stream. The result does not
depend on how the streams were cut into chunks. Memory is bounded by one buffered chunk per stream (more only
while a stream holds a run of equal timestamps longer than a chunk).
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class MergedBatch:
    """A run of merged events: ``stream[i]`` and ``row[i]`` locate event i in ``parts[stream[i]]``."""

    stream: np.ndarray  # int32
    row: np.ndarray  # int64, index into that stream's part
    ts_recv: np.ndarray  # int64
    parts: list[dict[str, np.ndarray]]  # per stream, the rows of this batch (possibly empty)

    def __len__(self) -> int:
        return len(self.stream)


class _Buffer:
    def __init__(self, chunks: Iterator[dict[str, np.ndarray]]):
        self.chunks = chunks
        self.columns: dict[str, np.ndarray] | None = None
        self.exhausted = False

    def remaining(self) -> int:
        return 0 if self.columns is None else len(self.columns["ts_recv"])

    def extend(self) -> None:
        """Append the next non-empty chunk, or mark the stream exhausted."""
        for chunk in self.chunks:
            if len(chunk["ts_recv"]) == 0:
                continue
            if self.columns is None or self.remaining() == 0:
                self.columns = chunk
            else:
                self.columns = {k: np.concatenate([self.columns[k], chunk[k]]) for k in self.columns}
            return
        self.exhausted = True

    def take_before(self, bound: int | None) -> dict[str, np.ndarray] | None:
        """Remove and return the rows with ts_recv < bound (all rows when bound is None)."""
        if self.columns is None:
            return None
        ts = self.columns["ts_recv"]
        cut = len(ts) if bound is None else int(np.searchsorted(ts, bound, side="left"))
        if cut == 0:
            return None
        taken = {k: v[:cut] for k, v in self.columns.items()}
        self.columns = {k: v[cut:] for k, v in self.columns.items()}
        return taken


def merge_chunks(streams: list[Iterator[dict[str, np.ndarray]]], columns: list[list[str]]) -> Iterator[MergedBatch]:
    """Merge chunk streams (each sorted by ``ts_recv``) into batches in deterministic event order.

    ``columns[i]`` names the columns of stream i (a list, or a dict name → dtype), used for its empty part in a
    batch that has none of its rows.
    """
    if len(streams) == 1:
        yield from _single(streams[0])
        return
    buffers = [_Buffer(s) for s in streams]
    for buffer in buffers:
        buffer.extend()
    while True:
        active = [b for b in buffers if not b.exhausted]
        if not active and all(b.remaining() == 0 for b in buffers):
            return
        # Every row of every stream below the smallest last-buffered timestamp of the active streams is known.
        bound = min((int(b.columns["ts_recv"][-1]) for b in active if b.remaining()), default=None)
        if any(not b.remaining() for b in active):
            for b in active:
                if not b.remaining():
                    b.extend()
            continue
        parts = [b.take_before(bound) for b in buffers]
        if all(p is None for p in parts):
            for b in active:
                if int(b.columns["ts_recv"][-1]) == bound:
                    b.extend()
            continue
        yield _order(parts, columns)


def merge_parts(parts: list[dict[str, np.ndarray] | None], columns: list) -> MergedBatch:
    """One batch of the rows of ``parts`` (part i: rows of stream i, sorted by ``ts_recv``, or None for none), in
    the order ``merge_chunks`` gives: ``ts_recv``, then stream, then row. ``columns`` as for ``merge_chunks``."""
    present = [i for i, p in enumerate(parts) if p is not None and len(p["ts_recv"])]
    if len(present) == 1:  # one stream's rows: already in order
        i = present[0]
        n = len(parts[i]["ts_recv"])
        filled = [p if p is not None else _empty_part(cols) for p, cols in zip(parts, columns)]
        return MergedBatch(np.full(n, i, np.int32), np.arange(n, dtype=np.int64),
                           parts[i]["ts_recv"].astype(np.int64, copy=False), filled)
    return _order(parts, columns)


def _order(parts: list[dict[str, np.ndarray] | None], columns: list) -> MergedBatch:
    filled = [p if p is not None else _empty_part(cols) for p, cols in zip(parts, columns)]
    for p in filled:
        p.setdefault("ts_recv", np.empty(0, dtype=np.int64))
    sizes = [len(p["ts_recv"]) for p in filled]
    stream = np.repeat(np.arange(len(filled), dtype=np.int32), sizes)
    row = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes])
    ts = np.concatenate([p["ts_recv"].astype(np.int64, copy=False) for p in filled])
    order = np.lexsort((row, stream, ts))
    return MergedBatch(stream=stream[order], row=row[order], ts_recv=ts[order], parts=filled)


def _empty_part(columns) -> dict[str, np.ndarray]:
    """A stream's part in a batch that has none of its rows, typed like its rows: ``columns`` maps name → dtype
    (a list of names gets int64 times, int32 instruments and float64 for the rest). An untyped empty
    ``instrument`` (float64) cannot index the key map, and a port of the wrong dtype makes numba compile the
    segment again."""
    if isinstance(columns, dict):
        return {c: np.empty(0, dtype=d) for c, d in columns.items()}
    defaults = {"ts_event": np.int64, "ts_recv": np.int64, "instrument": np.int32}
    return {c: np.empty(0, dtype=defaults.get(c, np.float64)) for c in columns}


def _single(chunks: Iterator[dict[str, np.ndarray]]) -> Iterator[MergedBatch]:
    """One stream is already in order: pass its chunks through without sorting."""
    for chunk in chunks:
        n = len(chunk["ts_recv"])
        if n:
            yield MergedBatch(np.zeros(n, np.int32), np.arange(n, dtype=np.int64), chunk["ts_recv"], [chunk])
