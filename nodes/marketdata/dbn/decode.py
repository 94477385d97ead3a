"""Decode a Databento DBN file (plain or zstd) into normalized polars frames, chunk by chunk, with a quality report.

Example::

    decoding = decode_dbn("glbx-mdp3-20240508.mbo.dbn.zst", chunk_records=65_536)
    for chunk in decoding:
        orders = chunk.tables.get("orders")      # a polars frame in the ``orders`` schema, or None
    print(decoding.report.to_json())             # complete once the iteration ends

Scope: every DBN record kind of DBN versions 1–3 (see ``normalize`` for which table each feeds); streaming with
memory bounded by ``chunk_records``, not by the file; bad bytes quarantined and reported rather than raised
(``stream``). Non-goals: writing DBN, upgrading records between versions, building order books.

Operational limits: a chunk holds ``chunk_records`` records (fewer at the end), so its frames hold up to
``chunk_records`` rows — up to 21 times more in ``book_deltas`` for MBP-10. The decompressed bytes are read in
blocks of at most 8 MiB.
"""

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from nodes.errors import DataQualityError
from nodes.marketdata.dbn.normalize import NormalizeContext, normalize
from nodes.marketdata.dbn.quality import DbnQualityReport, QualityTracker
from nodes.marketdata.dbn.stream import RecordSplitter, open_dbn_bytes, read_metadata
from nodes.marketdata.dbn.symbols import SymbolResolver

DEFAULT_CHUNK_RECORDS = 65_536
_BLOCK_BYTES_PER_RECORD = 64
_MIN_BLOCK_BYTES = 64 * 1024
_MAX_BLOCK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class DecodedChunk:
    """The normalized frames of ``record_count`` consecutive records, from record ``first_record`` of the file.

    ``tables`` maps a table name (``orders``, ``quotes``, ``trades``, ``book_deltas``, ``bars``,
    ``definitions``, ``imbalance``, ``statistics``, ``status``) to a frame in that schema; tables the chunk
    does not feed are absent.
    """

    tables: dict[str, pl.DataFrame]
    first_record: int
    record_count: int


class DbnDecoding:
    """An iterator of ``DecodedChunk`` over one DBN file; ``report`` fills in as it goes.

    Attributes: ``path``, ``metadata`` (``databento_dbn.Metadata`` as written), ``venue`` (the dataset code,
    e.g. ``GLBX.MDP3``), ``schema`` (the metadata's schema, None for mixed files), ``resolver`` (symbols),
    ``report`` (``DbnQualityReport``: complete when the iteration has ended).
    """

    def __init__(self, path: str | Path, chunk_records: int = DEFAULT_CHUNK_RECORDS):
        if chunk_records < 1:
            raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
        self.path = Path(path)
        if not self.path.is_file():
            raise DataQualityError(f"{self.path}: no such DBN file")
        self._chunk_records = chunk_records
        self._handle, reader, compressed = open_dbn_bytes(self.path)
        try:
            self.metadata, header_bytes, version, notes = read_metadata(reader, self.path)
        except BaseException:
            self._handle.close()
            raise
        self.venue = str(self.metadata.dataset)
        self.schema = str(self.metadata.schema) if self.metadata.schema is not None else None
        self.resolver = SymbolResolver(self.metadata)
        block_bytes = min(max(chunk_records * _BLOCK_BYTES_PER_RECORD, _MIN_BLOCK_BYTES), _MAX_BLOCK_BYTES)
        self._splitter = RecordSplitter(
            reader, str(self.path), header_bytes, version, bool(self.metadata.ts_out), block_bytes
        )
        self.report = DbnQualityReport(
            file=str(self.path), dataset=self.venue, schema=self.schema, dbn_version=version, compressed=compressed,
        )
        self.report.quarantined = self._splitter.quarantined
        self.report.notes.extend(notes)
        self._tracker = QualityTracker(self.report)
        self._context = NormalizeContext(self.venue, self.resolver, self.schema)
        self._done = False

    def __iter__(self) -> "DbnDecoding":
        return self

    def __next__(self) -> DecodedChunk:
        if self._done:
            raise StopIteration
        try:
            runs = self._splitter.runs(self._chunk_records)
        except BaseException:
            self.close()
            raise
        if not runs:
            self.close()
            raise StopIteration
        parts: dict[str, list[pl.DataFrame]] = {}
        for run in runs:
            self._tracker.observe(run)
            if run.layout is None:
                continue
            for table, frame in normalize(run.layout.kind, run.rtype, run.records, self._context).items():
                parts.setdefault(table, []).append(frame)
        tables = {t: frames[0] if len(frames) == 1 else pl.concat(frames, rechunk=False) for t, frames in parts.items()}
        self._tracker.count_rows(tables)
        return DecodedChunk(tables, runs[0].first_record, sum(run.count for run in runs))

    def close(self) -> None:
        """Release the file; the iteration ends."""
        self._done = True
        self._handle.close()

    def __enter__(self) -> "DbnDecoding":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_dbn(path: str | Path, *, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> DbnDecoding:
    """Stream a DBN file (``.dbn`` or ``.dbn.zst``) as chunks of normalized polars frames.

    Parameters:
        path: the file; zstd is recognised by its magic bytes, not its name.
        chunk_records: records per chunk (default 65,536). Bounds memory; never changes the concatenated
            result or the report.

    Returns a ``DbnDecoding``: iterate it for ``DecodedChunk``s; its ``report`` is the file's
    ``DbnQualityReport``, complete when the iteration ends.

    Raises:
        DataQualityError: the file does not exist, is not DBN, has unreadable metadata or a DBN version this
            reader does not know. Damage after the metadata is quarantined in the report, never raised.
        ValueError: ``chunk_records`` < 1.

    Example::

        for chunk in decode_dbn("esh4.mbo.dbn.zst"):
            print(chunk.tables["orders"].height)
    """
    return DbnDecoding(path, chunk_records)


def check_dbn(path: str | Path, *, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> DbnQualityReport:
    """Decode a whole DBN file and return its quality report (the frames are dropped as they come).

    Raises ``DataQualityError`` like ``decode_dbn``.
    """
    decoding = decode_dbn(path, chunk_records=chunk_records)
    for _ in decoding:
        pass
    return decoding.report


def read_dbn_frames(path: str | Path, *, chunk_records: int = DEFAULT_CHUNK_RECORDS) -> tuple[dict[str, pl.DataFrame], DbnQualityReport]:
    """Decode a whole DBN file into one frame per table (eager: memory grows with the file) and its report."""
    decoding = decode_dbn(path, chunk_records=chunk_records)
    parts: dict[str, list[pl.DataFrame]] = {}
    for chunk in decoding:
        for table, frame in chunk.tables.items():
            parts.setdefault(table, []).append(frame)
    return {t: pl.concat(frames) for t, frames in parts.items()}, decoding.report
