"""Reading a DBN file incrementally: plain or zstd bytes in, runs of same-rtype records out.

Memory stays flat in the file size: the file is read in blocks (zstd input in 16 KiB pieces), and records are
handed out as numpy views over the current block. Nothing here builds a Python object per record.

**Splitting.** Records are length-prefixed. From a record whose header is valid (a known rtype whose layout
size equals its ``length``), a run is every following record at the same stride with the same length and
rtype — checked for a whole block at once with one strided comparison. A header that is not valid is:

- an **unknown record** when its own length leads to a chain of valid headers (it is counted and skipped);
- otherwise **corruption**: the splitter searches forward, byte by byte, for the first offset that starts a
  chain of ``RESYNC_CHAIN`` valid headers (or a valid chain that ends exactly at the end of the file), and the
  bytes in between are quarantined. No record is invented: decoding resumes at a record boundary.

Bytes left over at the end that cannot hold a whole record are quarantined as ``truncated``. A zstd stream
that is corrupt stops the decoding (a compressed stream cannot be resynchronised), and one that ends inside a
frame is reported as truncated; what was decoded before is kept either way.

DBN has no checksums: a flipped byte inside a record body decodes as a wrong value. The zstd frame checksum,
when the writer stored one (Databento's files have it), catches such flips in compressed files — but only at
the end of the frame, and a Databento file holds its records in one frame: records decoded before the error
may already be wrong. The quarantine entry says from which byte of the stream the damaged frame's records
came; a consumer that must not use them (the ``source.dbn`` op by default) fails on the entry.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nodes.errors import DataQualityError
from nodes.marketdata.dbn.records import (
    HEADER_BYTES, SUPPORTED_VERSIONS, RecordLayout, dbn_module, is_known_rtype, layout,
)

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DBN_MAGIC = b"DBN"
RESYNC_CHAIN = 4
_SCHEMA_AT = 24  # the metadata's u16 schema code: after the 8-byte prelude and the 16-byte dataset
_MIXED_SCHEMA = b"\xff\xff"
_ZSTD_INPUT_BYTES = 16 * 1024
_TARGET_OUTPUT = 128 * 1024
_MAX_RECORD_BYTES = 255 * 4
_MAX_RUN_BYTES = 64 * 1024 * 1024
_SEARCH_WINDOW = 64 * 1024


@dataclass(frozen=True)
class Quarantine:
    """Bytes that could not be decoded: where (offsets in the decompressed DBN stream) and why."""

    file: str
    byte_start: int
    byte_end: int
    record_index: int  # index the next decoded record gets: where in the record sequence the hole is
    reason: str

    def to_dict(self) -> dict:
        return {
            "file": self.file, "byte_start": self.byte_start, "byte_end": self.byte_end,
            "record_index": self.record_index, "reason": self.reason,
        }


@dataclass(frozen=True)
class RecordRun:
    """Consecutive records of one rtype: a structured array view (None for unknown rtypes) and its position."""

    rtype: int
    layout: RecordLayout | None
    records: np.ndarray | None
    first_record: int  # index of the first record among all records of the file
    first_byte: int  # offset of the first record in the decompressed DBN stream
    count: int


class _ZstdReader:
    """Decompress a zstd stream frame by frame, with bounded output, tracking where frames start and end.

    Output is bounded whatever the compression ratio (a repetitive file can expand a thousandfold): input is
    fed in pieces whose size adapts so that one piece yields about ``_TARGET_OUTPUT`` bytes.
    """

    def __init__(self, handle: BinaryIO):
        import zstandard

        self._zstandard = zstandard
        self._handle = handle
        self._context = zstandard.ZstdDecompressor()
        self._frame = None
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._input = b""
        self._piece = 64  # grows while the output stays small: a tiny file may expand a thousandfold
        self._input_done = False
        self._error: _CorruptCompression | None = None
        self._produced = 0
        self._frame_start_out = 0
        self.compressed_offset = 0
        self.frame_incomplete = False

    def read(self, size: int, exact: bool = False) -> list[bytes]:
        """Return about ``size`` decompressed bytes as pieces (a little more unless ``exact``, less at the end).

        Raises ``_CorruptCompression`` once the bytes decoded before the damage have been returned.
        """
        while self._pending_bytes < size and self._error is None:
            if not self._input:
                self._input = self._handle.read(_ZSTD_INPUT_BYTES)
                if not self._input:
                    self._input_done = True
                    self.frame_incomplete = self._frame is not None
                    break
            piece, self._input = self._input[: self._piece], self._input[self._piece:]
            try:
                produced = self._feed(piece)
            except _CorruptCompression as error:
                self._error = error
                break
            if produced > _TARGET_OUTPUT:
                self._piece = max(16, self._piece // 4)
            elif produced < _TARGET_OUTPUT // 8:
                self._piece = min(_ZSTD_INPUT_BYTES, self._piece * 2)
        if not self._pending and self._error is not None:
            raise self._error
        parts, self._pending, self._pending_bytes = self._pending, [], 0
        if not exact:
            return parts
        out = b"".join(parts)
        if len(out) > size:
            out, rest = out[:size], out[size:]
            self._pending, self._pending_bytes = [rest], len(rest)
        return [out]

    def _feed(self, data: bytes) -> int:
        produced = 0
        while data:
            if self._frame is None:
                self._frame = self._context.decompressobj()
                self._frame_start_out = self._produced
            try:
                out = self._frame.decompress(data)
            except self._zstandard.ZstdError as error:
                raise _CorruptCompression(
                    f"corrupt zstd data near compressed byte {self.compressed_offset} ({error}); zstd checks a "
                    f"frame only as a whole, so records decoded from this frame (from byte "
                    f"{self._frame_start_out} of the DBN stream on) may hold corrupt values"
                ) from error
            if out:
                self._pending.append(out)
                self._pending_bytes += len(out)
            produced += len(out)
            self._produced += len(out)
            if self._frame.eof:
                unused = self._frame.unused_data
                self.compressed_offset += len(data) - len(unused)
                self._frame = None
                data = unused
            else:
                self.compressed_offset += len(data)
                data = b""
        return produced


class _CorruptCompression(Exception):
    """Raised inside the reader when the zstd stream cannot be decompressed past a point."""


class _PlainReader:
    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self.frame_incomplete = False

    def read(self, size: int, exact: bool = False) -> list[bytes]:
        data = self._handle.read(size)
        return [data] if data else []


def open_dbn_bytes(path: Path) -> tuple[BinaryIO, object, bool]:
    """Open ``path`` and return (file handle, reader of the decompressed DBN stream, whether it is zstd)."""
    handle = open(path, "rb")
    magic = handle.read(4)
    handle.seek(0)
    if magic == ZSTD_MAGIC:
        return handle, _ZstdReader(handle), True
    if magic[:3] == DBN_MAGIC:
        return handle, _PlainReader(handle), False
    handle.close()
    raise DataQualityError(
        f"{path}: not a DBN file (starts with {magic!r}; expected b'DBN' or a zstd frame)"
    )


def read_metadata(reader, path: Path) -> tuple[object, int, int, list[str]]:
    """Read the metadata block; return (databento_dbn.Metadata as written, its length in bytes, the version,
    notes about what had to be worked around).

    A schema code that databento-dbn does not know is not fatal: the file is read as a mixed-schema file
    (records are dispatched by rtype anyway) and a note says so. Raises ``DataQualityError`` when the header
    is not readable DBN metadata otherwise.
    """
    dbn = dbn_module()
    try:
        prelude = b"".join(reader.read(8, exact=True))
    except _CorruptCompression as error:
        raise DataQualityError(f"{path}: {error}") from error
    if len(prelude) < 8 or prelude[:3] != DBN_MAGIC:
        raise DataQualityError(f"{path}: not a DBN stream (starts with {prelude[:8]!r})")
    version = prelude[3]
    if version not in SUPPORTED_VERSIONS:
        raise DataQualityError(
            f"{path}: DBN version {version}; this reader knows versions {SUPPORTED_VERSIONS} "
            "(a newer databento-dbn may know more)"
        )
    length = int.from_bytes(prelude[4:8], "little")
    try:
        body = b"".join(reader.read(length, exact=True))
    except _CorruptCompression as error:
        raise DataQualityError(f"{path}: {error}") from error
    if len(body) < length:
        raise DataQualityError(f"{path}: truncated in the metadata header ({len(body)} of {length} bytes)")
    header = prelude + body
    notes: list[str] = []
    try:
        metadata = dbn.Metadata.decode(header, upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
    except Exception as error:  # databento_dbn raises its own DBNError (and ValueError for bad enums)
        schema_code = int.from_bytes(header[_SCHEMA_AT:_SCHEMA_AT + 2], "little")
        mixed = header[:_SCHEMA_AT] + _MIXED_SCHEMA + header[_SCHEMA_AT + 2:]
        try:
            metadata = dbn.Metadata.decode(mixed, upgrade_policy=dbn.VersionUpgradePolicy.AS_IS)
        except Exception:
            raise DataQualityError(f"{path}: unreadable DBN metadata: {error}") from error
        notes.append(f"unknown schema code {schema_code} in the metadata ({error}); read as a mixed-schema file")
    return metadata, 8 + length, version, notes


class RecordSplitter:
    """Cut the record section of a DBN stream into ``RecordRun``s; collect quarantined regions.

    ``block_bytes`` bounds how much decompressed data is held at once (plus one partial record).
    """

    def __init__(self, reader, file: str, start_offset: int, version: int, ts_out: bool, block_bytes: int):
        self._block_bytes = max(block_bytes, 4 * _MAX_RECORD_BYTES * RESYNC_CHAIN)
        self._reader = reader
        self._file = file
        self._version = version
        self._ts_out = ts_out
        self._buf = b""
        self._buf_offset = start_offset  # stream offset of self._buf[0]
        self._pos = 0
        self._eof = False
        self._record_index = 0
        self.quarantined: list[Quarantine] = []
        self.stopped = False
        self._corruption: str | None = None
        # size of each rtype's layout, -1 for unknown: validates headers in bulk
        self._sizes = np.full(256, -1, dtype=np.int64)
        for rtype in range(256):
            if is_known_rtype(rtype):
                self._sizes[rtype] = layout(rtype, version, ts_out).size

    @property
    def records_seen(self) -> int:
        return self._record_index

    def runs(self, max_records: int) -> list[RecordRun]:
        """Return the next runs, ``max_records`` records at most in total; an empty list at the end."""
        out: list[RecordRun] = []
        budget = max_records
        while budget > 0 and not self.stopped:
            if not self._ensure(HEADER_BYTES):
                self._finish()
                break
            buf, pos = self._buf, self._pos
            size, rtype = buf[pos] * 4, buf[pos + 1]
            if size >= HEADER_BYTES and self._sizes[rtype] == size:
                if not self._ensure(size):
                    self._finish()
                    break
                # the whole budget in one buffer, so that a chunk is one run (one frame per table) when it can be
                self._ensure(min(budget * size, max(self._block_bytes, _MAX_RUN_BYTES)))
                run = self._take_run(size, rtype, budget)
                out.append(run)
                budget -= run.count
            elif size >= HEADER_BYTES and self._sizes[rtype] < 0 and self._unknown_record_fits(size):
                out.append(RecordRun(rtype, None, None, self._record_index, self._buf_offset + self._pos, 1))
                self._pos += size
                self._record_index += 1
                budget -= 1
            else:
                self._resync(f"invalid record header (length {size} bytes, rtype {rtype:#04x})")
        return out

    # -- internals -------------------------------------------------------------------------------------------

    def _ensure(self, nbytes: int) -> bool:
        """Make ``nbytes`` available from the current position; False when the stream ends first."""
        have = len(self._buf) - self._pos
        if have >= nbytes or self._eof:
            return have >= nbytes
        parts = [self._buf[self._pos:]] if have else []
        while have < nbytes and not self._eof:
            block = self._next_block()
            parts.extend(block)
            have += sum(len(piece) for piece in block)
        self._buf_offset += self._pos
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)  # one copy, however many pieces
        self._pos = 0
        return have >= nbytes

    def _next_block(self) -> list[bytes]:
        """Read one block (as pieces); at the end of the stream (or of a corrupt zstd stream) set ``_eof``."""
        try:
            pieces = self._reader.read(self._block_bytes)
        except _CorruptCompression as error:
            self._eof = True
            self._corruption = str(error)
            return []
        if not pieces:
            self._eof = True
        return pieces

    def _read_more(self) -> None:
        """Append one block to the buffer."""
        self._buf = b"".join([self._buf, *self._next_block()])

    def _take_run(self, size: int, rtype: int, budget: int) -> RecordRun:
        buf, pos = self._buf, self._pos
        available = min((len(buf) - pos) // size, budget)
        headers = np.frombuffer(buf, dtype=np.uint8, count=available * size, offset=pos).reshape(available, size)
        same = (headers[:, 0] == buf[pos]) & (headers[:, 1] == rtype)
        count = available if same.all() else int(np.argmin(same))
        record_layout = layout(rtype, self._version, self._ts_out)
        records = np.frombuffer(buf, dtype=record_layout.dtype, count=count, offset=pos)
        run = RecordRun(rtype, record_layout, records, self._record_index, self._buf_offset + pos, count)
        self._pos += count * size
        self._record_index += count
        return run

    def _chain_valid(self, start: int, links: int) -> bool:
        """Whether ``links`` valid headers follow each other from ``start`` (or run exactly to the end)."""
        buf, at = self._buf, start
        for _ in range(links):
            if at == len(buf) and self._eof:
                return True
            if at + 2 > len(buf):
                return False
            size = buf[at] * 4
            if size < HEADER_BYTES or self._sizes[buf[at + 1]] != size:
                return False
            at += size
            if at > len(buf):
                return False
        return True

    def _unknown_record_fits(self, size: int) -> bool:
        self._ensure(size + RESYNC_CHAIN * _MAX_RECORD_BYTES)
        return self._pos + size <= len(self._buf) and self._chain_valid(self._pos + size, RESYNC_CHAIN)

    def _resync(self, reason: str) -> None:
        """Quarantine from the current position up to the next offset that starts a valid chain of headers."""
        start_offset = self._buf_offset + self._pos
        search_from = self._pos + 1
        while True:
            self._ensure(self._block_bytes)
            found = self._find_chain(search_from)
            if found is not None:
                self._record_quarantine(start_offset, self._buf_offset + found, reason)
                self._pos = found
                return
            if self._eof:
                end = self._buf_offset + len(self._buf)
                self._record_quarantine(start_offset, end, f"{reason}; no valid record follows up to byte {end}")
                self._pos = len(self._buf)
                return
            # keep the unsearched tail (a chain may start in it) and read on
            keep_from = max(search_from, len(self._buf) - RESYNC_CHAIN * _MAX_RECORD_BYTES)
            self._buf_offset += keep_from
            self._buf = self._buf[keep_from:]
            self._pos = search_from = 0
            self._read_more()

    def _find_chain(self, search_from: int) -> int | None:
        """First offset >= search_from where a chain of valid headers starts (bulk check, then exact check)."""
        buf = self._buf
        last = len(buf) - 2
        raw = np.frombuffer(buf, dtype=np.uint8)
        for window in range(search_from, last + 1, _SEARCH_WINDOW):
            offsets = np.arange(window, min(window + _SEARCH_WINDOW, last + 1))
            sizes = raw[offsets].astype(np.int64) * 4
            valid = (sizes >= HEADER_BYTES) & (self._sizes[raw[offsets + 1]] == sizes)
            for candidate in offsets[valid].tolist():
                if self._chain_valid(candidate, RESYNC_CHAIN):
                    return candidate
        return None

    def _finish(self) -> None:
        """At the end of the stream: quarantine a trailing partial record, note corrupt or unfinished zstd."""
        remaining = len(self._buf) - self._pos
        start = self._buf_offset + self._pos
        if self._corruption is not None:
            self._record_quarantine(
                start, start + remaining, f"{self._corruption}; decoding stopped at byte {start}"
            )
        elif remaining > 0:
            need = self._buf[self._pos] * 4
            self._record_quarantine(
                start, start + remaining,
                f"truncated at byte {start}: the last record is incomplete ({remaining} of {need} bytes)",
            )
        if self._corruption is None and getattr(self._reader, "frame_incomplete", False):
            end = start + remaining
            self._record_quarantine(end, end, f"truncated at byte {end}: the zstd stream ends inside a frame")
        self._pos = len(self._buf)
        self.stopped = True

    def _record_quarantine(self, start: int, end: int, reason: str) -> None:
        self.quarantined.append(Quarantine(self._file, start, end, self._record_index, reason))
