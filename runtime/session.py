"""A live session's folder: the inputs it saw (recorded per batch) and the shadow check that replays them.

``InputRecorder`` writes every event a session saw, per source, as Arrow IPC record batches; ``recorded_inputs``
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

from pipelines.plan import compile_plan
from pipelines.spec import load_spec


class InputRecorder:
    """Every event's source row, per source, as Arrow IPC record batches appended batch by batch.

    A session writes a batch here before it runs it (write-ahead): whatever the journal says the session did
    was decided on recorded inputs, so a restart can rebuild it. Each ``InputRecorder`` starts a new segment
    per source (``<source>.<n>.arrows``, n counting from 0): a killed writer's file may end in a torn batch,
    and an Arrow stream cannot be appended after one. ``recorded_inputs`` reads the segments in order.
    """

    def __init__(self, folder: Path, sources: list[str], fsync: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sources = sources
        self.fsync = fsync
        self.segment = next_segment(self.folder)
        self.writers: dict[str, ipc.RecordBatchStreamWriter] = {}
        self.sinks = {}

    def write(self, merged) -> None:
        for index, source_id in enumerate(self.sources):
            part = merged.parts[index]
            if not len(part["ts_recv"]):
                continue
            batch = pa.record_batch({k: pa.array(np.asarray(v)) for k, v in part.items()})
            if source_id not in self.writers:
                path = self.folder / f"{source_id}.{self.segment}.arrows"
                self.sinks[source_id] = pa.OSFile(str(path), "wb")
                self.writers[source_id] = ipc.new_stream(self.sinks[source_id], batch.schema)
            self.writers[source_id].write_batch(batch)
            self.sinks[source_id].flush()
            if self.fsync:
                os.fsync(self.sinks[source_id].fileno())

    def close(self) -> None:
        for source_id, writer in self.writers.items():
            writer.close()
            self.sinks[source_id].close()


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
