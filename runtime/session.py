"""A live session's folder: the inputs it saw (recorded per batch) and the shadow check that replays them.

``InputLog`` writes every event a session saw, per source, as Arrow IPC record batches; ``recorded_inputs``
reads them back (a batch torn by a kill is left out); ``shadow_check`` replays them through the session's spec as
a backtest and compares the venue's decisions with the session's.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from nodes.errors import InvariantError
from nodes.sources.merge import MergedBatch
from pipelines.plan import compile_plan
from pipelines.spec import load_spec

_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the end of an Arrow IPC stream


class InputLog:
    """Every event's source row, per source, as Arrow IPC record batches, written batch by batch before the
    batch runs (write-ahead: whatever the journal says the session did was decided on recorded inputs, so a
    restart can rebuild it).

    Each log starts a new segment per source (``<source>.<n>.arrows``, n counting from 0): a killed writer's file
    may end in a torn batch, and an Arrow stream cannot be appended after one; ``recorded_inputs`` reads the
    segments in order. A message is the batch's arrays behind a header pyarrow makes once per batch size (checked
    to be pyarrow's own message for that batch), in one ``os.write`` per source: a few µs a batch instead of
    ~50 µs through pyarrow's stream writer. A kill leaves whole messages and at most one torn one at the end.
    ``fsync`` syncs every write.
    """

    def __init__(self, folder: Path, sources: list[str], fsync: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sources = sources
        self.fsync = fsync
        self.segment = next_segment(self.folder)
        self._fds: dict[int, int] = {}
        self._names: dict[int, list[str]] = {}
        self._dtypes: dict[int, list[np.dtype]] = {}
        self._headers: dict[tuple[int, int], bytes] = {}  # (source, rows) → the record batch message's header
        self._scratch: dict[int, tuple[list[np.ndarray], pa.RecordBatch]] = {}  # what headers are made from

    def write(self, merged: MergedBatch) -> None:
        for index, part in enumerate(merged.parts):
            n = len(part["ts_recv"])
            if n:
                fd = self._fds[index] if index in self._fds else self._open(index, part)
                os.write(fd, self._message(index, part, n))
                if self.fsync:
                    os.fsync(fd)

    def _open(self, index: int, part: dict[str, np.ndarray]) -> int:
        self._names[index] = list(part)
        self._dtypes[index] = [np.asarray(v).dtype for v in part.values()]
        schema = pa.schema([(name, pa.from_numpy_dtype(d)) for name, d in zip(part, self._dtypes[index])])
        path = self.folder / f"{self.sources[index]}.{self.segment}.arrows"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, schema.serialize().to_pybytes())
        self._fds[index] = fd
        return fd

    def _message(self, index: int, part: dict[str, np.ndarray], n: int) -> bytes:
        pieces = [self._headers.get((index, n)) or self._header(index, part, n)]
        for name, dtype in zip(self._names[index], self._dtypes[index]):
            values = part[name]
            if values.dtype != dtype or not values.flags.c_contiguous:
                values = np.ascontiguousarray(values, dtype=dtype)
            pieces.append(values.data)
            if values.nbytes % 8:
                pieces.append(b"\0" * (8 - values.nbytes % 8))  # Arrow pads every buffer to 8 bytes
        return b"".join(pieces)

    def _header(self, index: int, part: dict[str, np.ndarray], n: int) -> bytes:
        """The record batch message of ``n`` rows up to its body, made by pyarrow once per size (from a record
        batch over scratch arrays, sliced: ~10 µs) and checked against pyarrow's whole message, so the bytes
        written are pyarrow's."""
        scratch = self._scratch.get(index)
        if scratch is None or len(scratch[0][0]) < n:
            arrays = [np.zeros(max(n, 1024), dtype) for dtype in self._dtypes[index]]
            scratch = self._scratch[index] = (arrays, pa.record_batch([pa.array(a) for a in arrays],
                                                                     names=self._names[index]))
        arrays, batch = scratch
        for array, name in zip(arrays, self._names[index]):
            array[:n] = part[name]
        message = batch.slice(0, n).serialize().to_pybytes()
        header = message[:8 + int.from_bytes(message[4:8], "little")]
        self._headers[(index, n)] = header
        if self._message(index, part, n) != message:
            raise InvariantError(f"the input log's message for {n} rows is not pyarrow's (an Arrow version "
                                 "change?): the log cannot vouch for what it would write")
        return header

    def close(self) -> None:
        for fd in self._fds.values():
            os.write(fd, _EOS)
            os.close(fd)
        self._fds = {}


def segment_of(path: Path) -> tuple[str, int]:
    """``<source>.<n>.arrows`` → (source, n); a session from before segments (``<source>.arrows``) is segment 0."""
    source, _, number = path.stem.rpartition(".")
    return (source, int(number)) if source and number.isdigit() else (path.stem, 0)


def next_segment(folder: Path) -> int:
    """The segment number a new writer of the inputs in ``folder`` takes (one past the highest there)."""
    return 1 + max((n for _, n in map(segment_of, Path(folder).glob("*.arrows"))), default=-1)


def recorded_inputs(folder: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """The chunks a session saw, per source, segment after segment (a batch torn by a kill is left out)."""
    chunks: dict[str, list[dict[str, np.ndarray]]] = {}
    for path in sorted((Path(folder) / "inputs").glob("*.arrows"), key=segment_of):
        parts = chunks.setdefault(segment_of(path)[0], [])
        try:
            with pa.OSFile(str(path), "rb") as source:
                for batch in ipc.open_stream(source):
                    # writable copies: Arrow's read-only views would make numba compile a second kernel variant
                    parts.append({name: batch.column(name).to_numpy().copy() for name in batch.schema.names})
        except (pa.ArrowInvalid, OSError):
            pass  # a batch cut by a kill (or a stream cut before its schema): everything before it is whole
    return chunks


@dataclass
class ShadowReport:
    """The shadow check of a session: its decisions against a backtest of the inputs it recorded."""

    folder: Path
    compared: dict[str, int]
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences

    def format(self) -> str:
        lines = [f"shadow check of {self.folder}: " + ("same decisions" if self.ok else "DECISIONS DIFFER")]
        lines += [f"  {name}: {rows:,} rows compared" for name, rows in self.compared.items()]
        lines += [f"  {difference}" for difference in self.differences]
        return "\n".join(lines)


def shadow_check(folder: str | Path) -> ShadowReport:
    """Replay a session's recorded inputs through its spec as a backtest; compare the venue's orders and fills."""
    from pipelines.replay import replay

    folder = Path(folder)
    described = json.loads((folder / "session.json").read_text())
    spec = load_spec(described["spec"], sets=described["sets"], places=described["places"])
    inputs = recorded_inputs(folder)
    transforms = {s: (lambda chunks, parts=inputs.get(s, []): iter(parts)) for s in spec.graph.sources}
    result = replay(compile_plan(spec), source_transforms=transforms)
    compared, differences = {}, []
    for node_id, logs in result.logs.items():
        for log in ("orders", "fills"):
            path = folder / f"{node_id}.{log}.parquet"
            if log not in logs or not path.exists():
                continue
            live, shadow = pl.read_parquet(path), logs[log]
            compared[f"{node_id}.{log}"] = live.height
            if not live.equals(shadow.select(live.columns) if set(live.columns) <= set(shadow.columns) else shadow):
                differences.append(f"{node_id}.{log}: the session has {live.height} rows, the backtest {shadow.height}"
                                   " (or their values differ)")
    if spec.spec_hash != described["spec_hash"]:
        differences.append(f"the spec changed since the session: hash {spec.spec_hash[:12]} vs "
                           f"{described['spec_hash'][:12]}")
    return ShadowReport(folder, compared, differences)
