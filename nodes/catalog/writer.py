"""Write normalized frames into the catalog: partitioned, sorted, atomic, idempotent, in bounded memory.

``PartitionWriter`` takes frames of any normalized schema, chunk by chunk, and publishes one Parquet file per
(schema, venue, symbol, UTC date of ``ts_recv``) partition. ``write_partitioned`` wraps it for one schema.

Guarantees:

- **Replace, never append.** A published partition holds exactly the rows this writer received for it; the
  file it replaces is gone. Writing the same input twice leaves the same bytes (the second time a partition
  whose file already has those bytes is not rewritten at all).
- **Atomic per partition.** Each partition is written to ``.part-0.parquet.<run>.tmp`` in its own folder and
  renamed over ``part-0.parquet`` (``os.replace``). Readers only read ``part-0.parquet``, so they see the old
  day or the new day, never half of one. A run that fails before ``commit`` publishes nothing; a run that
  dies during the renames leaves some partitions new and the rest old, each whole.
- **Ordered.** Rows of a partition are sorted by ``ts_recv``; rows with equal ``ts_recv`` keep the order in
  which they were written (stable), so the result does not depend on chunk sizes.
- **Bounded memory.** Rows are buffered per partition; when the buffers of a run hold more than
  ``buffer_rows`` rows in total, every buffer is spilled to ``<root>/.staging/<run>/`` and emptied.

Policy for partitions that span chunks: nothing is published while input is still arriving, because any later
chunk (or a later input file of the same run) may add rows to any day. ``commit`` then assembles each
partition from its spill files and buffer, sorts it and writes its temp file, one partition at a time; once
every temp file is written (and flushed to disk), all of them are renamed. Operational limit: one partition
(a day of one symbol) must fit in memory at commit; the whole input need not.

Crash leftovers: each temp file is listed in a journal under ``.staging/<run>/`` before it is created; the next
writer, holding the catalog lock (``nodes/catalog/lock.py``), deletes the listed temp files and every staging
folder.
"""

import datetime as dt
import io
import os
import shutil
import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import NS_PER_DAY, PARTITION_FILE, CatalogLayout, PartitionKey, as_layout, check_schema, escape
from nodes.catalog.lock import catalog_lock
from nodes.errors import DataQualityError, InvariantError
from nodes.marketdata.schemas import conform

DEFAULT_BUFFER_ROWS = 1_000_000
_EPOCH = dt.date(1970, 1, 1)
_JOURNAL = "temp-files.txt"
_TEMP_PREFIX = f".{PARTITION_FILE}."


@dataclass(frozen=True)
class PartitionWrite:
    """A partition a commit wrote: its key, rows, file and ``outcome``: ``new``, ``replaced`` (an existing
    day with other content) or ``unchanged`` (the file already held exactly these bytes)."""

    key: PartitionKey
    rows: int
    path: Path
    outcome: Literal["new", "replaced", "unchanged"]


def new_run_id() -> str:
    """A run id that sorts by start time: ``20240102T030405Z-1a2b3c4d``."""
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class PartitionWriter:
    """Buffer normalized frames per partition and publish them atomically on ``commit``.

    Use as a context manager: entering takes the catalog's writer lock and removes what crashed writers left;
    leaving without ``commit`` (or with an exception) aborts: temp and spill files are deleted and nothing of
    this run is published.

    Args:
        catalog: the catalog root (path, ``CatalogLayout`` or ``Catalog``; None for the default root).
        run_id: names temp and staging files; a new one by default.
        buffer_rows: rows held in memory across all partitions before spilling to disk (default 1,000,000).
        durable: flush temp files to disk before renaming and the renames after (``os.sync``), so a power
            cut cannot leave an empty partition file. Default True.

    Example::

        with PartitionWriter("catalog") as writer:
            for schema, frame in decoded:
                writer.write(schema, frame)
            published = writer.commit()
    """

    def __init__(self, catalog=None, run_id: str | None = None, buffer_rows: int = DEFAULT_BUFFER_ROWS, durable: bool = True):
        if buffer_rows < 1:
            raise ValueError(f"buffer_rows must be >= 1, got {buffer_rows}")
        self.layout: CatalogLayout = as_layout(catalog)
        self.run_id = run_id or new_run_id()
        self.buffer_rows = buffer_rows
        self.durable = durable
        self._buffers: dict[PartitionKey, list[pl.DataFrame]] = {}
        self._spills: dict[PartitionKey, list[Path]] = {}
        self._rows: dict[PartitionKey, int] = {}
        self._buffered_rows = 0
        self._spill_count = 0
        self._temps: set[Path] = set()  # written, not yet published
        self._results: dict[PartitionKey, PartitionWrite] = {}
        self._state = "new"
        self._stack = ExitStack()

    @property
    def staging_dir(self) -> Path:
        return self.layout.staging_root / self.run_id

    @property
    def published(self) -> list[PartitionWrite]:
        """The partitions ``commit`` has made final so far, in key order: all of them once it returns, those
        before the failure if it failed while publishing."""
        return [self._results[key] for key in sorted(self._results)]

    @property
    def spilled_files(self) -> int:
        """How many spill files this writer has written so far (memory was over ``buffer_rows``)."""
        return self._spill_count

    def __enter__(self) -> "PartitionWriter":
        self._stack.enter_context(catalog_lock(self.layout))
        try:
            remove_leftovers(self.layout)
            self.staging_dir.mkdir(parents=True)
        except BaseException:
            self._stack.close()
            raise
        self._state = "open"
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._state != "committed":
                self.abort()
        finally:
            self._stack.close()

    def write(self, schema: str, frame: pl.DataFrame) -> int:
        """Add rows of ``schema`` (conformed first) to their partitions; return how many rows were added.

        Raises:
            CatalogError: unknown schema, a frame that does not fit the schema, or an unusable venue/symbol.
            DataQualityError: rows without ``ts_recv``, ``venue`` or ``symbol`` (they have no partition).
        """
        self._require("open", "write")
        check_schema(schema)
        try:
            frame = conform(frame, schema)
        except (ValueError, pl.exceptions.PolarsError) as error:
            raise CatalogError(f"frame does not fit the {schema} schema: {error}") from error
        if frame.height == 0:
            return 0
        nulls = frame.select(pl.col("ts_recv", "venue", "symbol").null_count()).row(0, named=True)
        if any(nulls.values()):
            counts = ", ".join(f"{n} without {c}" for c, n in nulls.items() if n)
            raise DataQualityError(f"{schema}: rows that cannot be placed in a partition: {counts}")
        day = (pl.col("ts_recv") // NS_PER_DAY).alias("__day")
        groups = frame.with_columns(day).partition_by(["venue", "symbol", "__day"], as_dict=True, maintain_order=True)
        for (venue, symbol, days), part in groups.items():
            key = PartitionKey(schema, venue, symbol, _EPOCH + dt.timedelta(days=days))
            if key not in self._rows:
                escape(venue), escape(symbol)  # refuse unusable names before buffering anything
                self._rows[key] = 0
            part.drop_in_place("__day")  # eager: a per-partition drop() would cost a lazy query each
            self._buffers.setdefault(key, []).append(part)
            self._rows[key] += part.height
        self._buffered_rows += frame.height
        if self._buffered_rows > self.buffer_rows:
            self._spill()
        return frame.height

    def commit(self) -> list[PartitionWrite]:
        """Publish every partition this writer received rows for; return them in key order.

        A partition whose file already holds exactly the bytes this run would write is left alone
        (``unchanged``): an idempotent re-run then costs reads, not renames and deletes.
        """
        self._require("open", "commit")
        self._state = "committing"
        pending = []
        with open(self.staging_dir / _JOURNAL, "a") as journal:
            for key in sorted(self._rows):
                data = _parquet_bytes(self._assemble(key))
                final = self.layout.partition_file(key)
                if final.is_file() and _same_bytes(final, data):
                    self._results[key] = PartitionWrite(key, self._rows[key], final, "unchanged")
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                temp = final.parent / f"{_TEMP_PREFIX}{self.run_id}.tmp"
                journal.write(f"{temp}\n")
                journal.flush()  # listed before it exists, so a crash cannot orphan it
                self._temps.add(temp)
                temp.write_bytes(data)
                pending.append((key, temp, final))
                del data
        self._sync()
        for key, temp, final in pending:
            outcome = "replaced" if final.exists() else "new"
            _publish(temp, final)
            self._temps.remove(temp)
            self._results[key] = PartitionWrite(key, self._rows[key], final, outcome)
        self._sync()
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self._state = "committed"
        return self.published

    def abort(self) -> None:
        """Delete this run's temp and spill files; published partitions stay as they are."""
        for temp in self._temps:
            temp.unlink(missing_ok=True)
        self._temps.clear()
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self._buffers.clear()
        self._spills.clear()
        self._state = "aborted"

    def _require(self, state: str, action: str) -> None:
        if self._state != state:
            hint = " (use the writer as a context manager)" if self._state == "new" else ""
            raise InvariantError(f"PartitionWriter.{action} called while {self._state}{hint}")

    def _spill(self) -> None:
        for key, parts in self._buffers.items():
            if not parts:
                continue
            self._spill_count += 1
            path = self.staging_dir / f"spill-{self._spill_count:06d}.parquet"
            pl.concat(parts, how="vertical", rechunk=False).write_parquet(path, compression="lz4", statistics=False)
            self._spills.setdefault(key, []).append(path)
        self._buffers.clear()
        self._buffered_rows = 0

    def _assemble(self, key: PartitionKey) -> pl.DataFrame:
        # spills first, then the buffer: that is the order the rows arrived in, which the stable sort keeps
        parts = [pl.read_parquet(path) for path in self._spills.pop(key, [])] + self._buffers.pop(key, [])
        frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
        return frame if frame["ts_recv"].is_sorted() else frame.sort("ts_recv", maintain_order=True)

    def _sync(self) -> None:
        if self.durable:
            os.sync()  # one flush for the batch: a per-file fsync costs ~4 ms each on small partitions


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def _same_bytes(path: Path, data: bytes) -> bool:
    if path.stat().st_size != len(data):
        return False
    with open(path, "rb") as file:
        return file.read() == data


def _publish(temp: Path, final: Path) -> None:
    """Make a written partition visible: one atomic rename over the old file (the crash tests cut here)."""
    os.replace(temp, final)


def remove_leftovers(layout: CatalogLayout) -> int:
    """Delete temp and spill files of writers that died; call only while holding the catalog lock.

    Returns how many temp files were removed.
    """
    removed = 0
    if not layout.staging_root.is_dir():
        return 0
    for run_dir in layout.staging_root.iterdir():
        journal = run_dir / _JOURNAL
        if journal.is_file():
            for line in journal.read_text().splitlines():
                temp = Path(line)
                if temp.name.startswith(_TEMP_PREFIX) and temp.name.endswith(".tmp") and temp.exists():
                    temp.unlink()
                    removed += 1
        shutil.rmtree(run_dir, ignore_errors=True)
    return removed


def write_partitioned(
    catalog,
    schema: str,
    frames: pl.DataFrame | Iterable[pl.DataFrame],
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
    durable: bool = True,
) -> list[PartitionWrite]:
    """Write one frame, or an iterator of chunks, of ``schema`` into the catalog, replacing their partitions.

    Chunks are consumed one at a time (memory is bounded by ``buffer_rows``, see ``PartitionWriter``). Nothing
    is recorded in the metadata database: ``pipelines.ingest`` records runs.

    Example::

        write_partitioned("catalog", "trades", decoder_chunks)

    Raises:
        CatalogError, DataQualityError: see ``PartitionWriter.write``; nothing is published then.
    """
    if isinstance(frames, pl.DataFrame):
        frames = [frames]
    with PartitionWriter(catalog, buffer_rows=buffer_rows, durable=durable) as writer:
        for frame in frames:
            writer.write(schema, frame)
        return writer.commit()
