"""An append-only journal of state changes: length-prefixed, CRC-checked records, an fsync policy, recovery.

The live runtime appends every state change (order events, fills, positions, risk state, strategy state that
matters) before acting on it; after a restart — a clean stop or ``kill -9`` — ``recover`` gives the records to
replay and truncates a torn tail, so the journal can be appended to again.

File layout (little-endian)::

    file    = MAGIC (8 bytes: b"TLJRNL" + format version 1 as u16) record*
    record  = length u32 | crc32(body) u32 | body (length bytes)
    body    = seq u64 | ts_ns i64 | encoding u8 | kind_length u8 | kind (utf-8) | payload

``seq`` counts records from 0 with no gap; ``ts_ns`` is the wall clock at append; ``encoding`` 0 is JSON
(compact, UTF-8: numbers, strings, lists, maps; numpy scalars and arrays are converted), 1 raw bytes.

Why binary frames rather than JSON lines: the length says how many bytes must follow and the CRC whether they
are the bytes written, so a tail cut anywhere — inside the length, the body or a multi-byte character — is
detected without guessing (a JSON line cut after a complete inner value can still parse); payloads need no
escaping and may be bytes; ``read_journal`` (and ``python -m runtime.journal FILE``) prints them for people.

Durability. Every ``append`` hands its record to the operating system with one ``write`` before returning, so
a killed process (``kill -9``) loses nothing that ``append`` returned; ``fsync`` decides what survives a power
loss or kernel crash: ``always`` (fsync every record: ``append`` returns once it is on disk), ``batch``
(fsync every ``batch_records`` records or when ``batch_interval_ms`` has passed since the oldest unsynced one,
checked on each append; call ``sync()`` from the runtime's timer for an idle journal) and ``never`` (the OS
writes back when it likes). ``durable_seq`` is the last record known to be on disk, ``written_seq`` the last
handed to the OS. A kill during ``write`` can leave part of a record (a torn tail); reading stops before it
and ``recover`` cuts it off. One writer per file: the file is locked (``flock``) while a ``Journal`` has it
open, so a standby cannot append while the primary still runs.

One file per session: ``session_path(folder)`` names a new one (UTC start time and pid).
"""

import dataclasses
import datetime as dt
import fcntl
import json
import os
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

MAGIC = b"TLJRNL" + struct.pack("<H", 1)
FRAME = struct.Struct("<II")  # body length, crc32 of the body
BODY = struct.Struct("<QqBB")  # seq, ts_ns, encoding, kind length
MAX_BODY_BYTES = 256 * 1024 * 1024  # a longer length field is damage, not a record
JSON, RAW = 0, 1
FsyncPolicy = Literal["always", "batch", "never"]


class JournalError(Exception):
    """Raised when a file is not a journal, is locked by another writer, or a record cannot be encoded."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One journal record: its sequence number, append time (ns UTC), kind, payload and byte offset."""

    seq: int
    ts_ns: int
    kind: str
    payload: Any
    offset: int


@dataclasses.dataclass(frozen=True)
class JournalScan:
    """What reading a journal found: the good records, where they end, and what follows them.

    ``end_offset`` is the byte after the last good record; ``torn_bytes`` (file size − end_offset) are bytes
    after it that do not form a good record, ``reason`` says why (None for a clean end).
    """

    path: Path
    records: list[Record]
    end_offset: int
    file_size: int
    reason: str | None

    @property
    def torn_bytes(self) -> int:
        return self.file_size - self.end_offset

    @property
    def torn(self) -> bool:
        return self.reason is not None


@dataclasses.dataclass(frozen=True)
class RecoveredState:
    """The journal after recovery: the last consistent record, and what to replay to rebuild the state.

    ``records`` are all good records; ``snapshot`` is the last record of kind ``snapshot`` (a state written
    whole, so older records need not be replayed), or None; ``replay`` the records after it (all records
    without a snapshot). ``truncated_bytes`` were cut off the end (a torn tail), ``reason`` why.
    """

    path: Path
    records: list[Record]
    last_seq: int  # -1: no record
    end_offset: int
    truncated_bytes: int
    reason: str | None
    snapshot: Record | None
    replay: list[Record]

    @property
    def last_index(self) -> int:
        """The index of the last consistent record (= its seq), -1 when there is none."""
        return self.last_seq


def encode_record(seq: int, kind: str, payload: Any, ts_ns: int | None = None) -> bytes:
    """The bytes of one record (frame and body).

    Raises:
        JournalError: the kind is empty or longer than 255 bytes, or the payload is not JSON-encodable.
    """
    kind_bytes = kind.encode("utf-8")
    if not 0 < len(kind_bytes) < 256:
        raise JournalError(f"record kind {kind!r} must be 1 to 255 bytes of UTF-8")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        encoding, data = RAW, bytes(payload)
    else:
        try:
            data = json.dumps(payload, separators=(",", ":"), default=_plain).encode("utf-8")
        except (TypeError, ValueError) as error:
            raise JournalError(f"payload of a {kind!r} record is not JSON-encodable: {error}") from None
        encoding = JSON
    ts = time.time_ns() if ts_ns is None else ts_ns
    body = BODY.pack(seq, ts, encoding, len(kind_bytes)) + kind_bytes + data
    if len(body) > MAX_BODY_BYTES:
        raise JournalError(f"a {kind!r} record of {len(body)} bytes is larger than {MAX_BODY_BYTES}")
    return FRAME.pack(len(body), zlib.crc32(body)) + body


def _plain(value):
    """numpy scalars and arrays as plain JSON values (the risk ops' state is numpy)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")


def read_journal(path: Path | str) -> JournalScan:
    """Read every good record of a journal, in order, stopping cleanly at a torn or damaged tail.

    Raises:
        JournalError: the file does not start like a journal (it is some other file).
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < len(MAGIC):
        if MAGIC.startswith(data):  # killed while the header was written: an empty journal
            return JournalScan(path, [], 0, len(data), "incomplete file header" if data else None)
        raise JournalError(f"{path} is not a tickloom journal (bad header)")
    if data[:len(MAGIC)] != MAGIC:
        raise JournalError(f"{path} is not a tickloom journal (bad header {data[:len(MAGIC)]!r})")
    records, offset, reason = _scan(data, len(MAGIC))
    return JournalScan(path, records, offset, len(data), reason)


def _scan(data: bytes, offset: int) -> tuple[list[Record], int, str | None]:
    records: list[Record] = []
    size = len(data)
    while offset < size:
        if size - offset < FRAME.size:
            return records, offset, "incomplete record header"
        length, crc = FRAME.unpack_from(data, offset)
        if length < BODY.size or length > MAX_BODY_BYTES:
            return records, offset, f"bad record length {length}"
        start = offset + FRAME.size
        if size - start < length:
            return records, offset, f"incomplete record ({size - start} of {length} bytes)"
        body = data[start:start + length]
        if zlib.crc32(body) != crc:
            return records, offset, "crc mismatch"
        seq, ts_ns, encoding, kind_length = BODY.unpack_from(body)
        if seq != len(records):
            return records, offset, f"sequence break: record {seq} where {len(records)} was expected"
        try:
            kind = body[BODY.size:BODY.size + kind_length].decode("utf-8")
            raw = body[BODY.size + kind_length:]
            payload = raw if encoding == RAW else json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            return records, offset, "undecodable record"
        records.append(Record(seq, ts_ns, kind, payload, offset))
        offset = start + length
    return records, offset, None


def recover(path: Path | str, truncate: bool = True) -> RecoveredState:
    """Find the last consistent record and the records to replay; cut a torn tail off the file.

    ``truncate=False`` only reads (a standby inspecting the primary's journal must not write to it).

    Raises:
        JournalError: the file is not a journal, or it has a torn tail to cut while a writer holds it open.
    """
    return _recover(path, truncate, lock=True)


def _recover(path: Path | str, truncate: bool, lock: bool) -> RecoveredState:
    scan = read_journal(path)
    if scan.torn and truncate:
        with open(scan.path, "r+b") as handle:
            if lock:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise JournalError(f"{scan.path} is open for writing by another process: its tail cannot be "
                                       "cut now (recover with truncate=False to read it)") from None
            handle.truncate(scan.end_offset)
            handle.flush()
            os.fsync(handle.fileno())
    snapshot = next((r for r in reversed(scan.records) if r.kind == "snapshot"), None)
    replay = scan.records[snapshot.seq + 1:] if snapshot is not None else list(scan.records)
    last = scan.records[-1].seq if scan.records else -1
    return RecoveredState(scan.path, scan.records, last, scan.end_offset, scan.torn_bytes, scan.reason, snapshot,
                          replay)


def session_path(folder: Path | str, started: dt.datetime | None = None) -> Path:
    """A new session's journal file in ``folder``: ``<UTC start>-<pid>.journal``."""
    moment = (started or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S.%fZ")
    return Path(folder) / f"{moment}-{os.getpid()}.journal"


class Journal:
    """An open journal file that records are appended to (one writer; see the module docstring).

    Opening an existing journal recovers it first (a torn tail is cut off and reported in ``recovered``) and
    continues its sequence. Use as a context manager, or call ``close``.

    Raises:
        JournalError: the file is not a journal, or another process has it open for writing.
        ValueError: an unknown fsync policy or a batch size/interval below 1.
    """

    def __init__(self, path: Path | str, fsync: FsyncPolicy = "batch", batch_records: int = 64,
                 batch_interval_ms: float = 10.0):
        if fsync not in ("always", "batch", "never"):
            raise ValueError(f"fsync must be always, batch or never, not {fsync!r}")
        if batch_records < 1 or batch_interval_ms <= 0:
            raise ValueError("batch_records must be >= 1 and batch_interval_ms > 0")
        self.path = Path(path)
        self.policy = fsync
        self.batch_records = batch_records
        self.batch_interval_ns = int(batch_interval_ms * 1e6)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise JournalError(f"{self.path} is open for writing by another process") from None
        try:
            self.recovered = self._open_existing(created)
        except BaseException:
            os.close(self._fd)
            raise
        self._next_seq = self.recovered.last_seq + 1
        self._end = self.recovered.end_offset
        self.written_seq = self.recovered.last_seq
        self.durable_seq = self.recovered.last_seq
        self._unsynced = 0
        self._oldest_unsynced_ns = 0

    def _open_existing(self, created: bool) -> RecoveredState:
        if os.fstat(self._fd).st_size < len(MAGIC):
            read_journal(self.path)  # raises for a short file that is not a journal's start
            os.ftruncate(self._fd, 0)
            os.write(self._fd, MAGIC)
            os.fsync(self._fd)
            if created:
                _fsync_folder(self.path.parent)  # the new name is durable too
        return _recover(self.path, truncate=True, lock=False)  # this object holds the lock already

    def append(self, kind: str, payload: Any) -> int:
        """Append one record; return its seq. Written to the OS before returning; fsynced per the policy."""
        seq = self._next_seq
        frame = encode_record(seq, kind, payload)
        try:
            _write_all(self._fd, frame)
        except OSError:
            os.ftruncate(self._fd, self._end)  # no half record in front of the next one (a full disk, say)
            raise
        self._end += len(frame)
        self._next_seq = seq + 1
        self.written_seq = seq
        if self.policy == "always":
            self.sync()
        elif self.policy == "batch":
            now = time.monotonic_ns()
            if self._unsynced == 0:
                self._oldest_unsynced_ns = now
            self._unsynced += 1
            if self._unsynced >= self.batch_records or now - self._oldest_unsynced_ns >= self.batch_interval_ns:
                self.sync()
        return seq

    def sync(self) -> int:
        """fsync what was written; return ``durable_seq``."""
        if self.durable_seq != self.written_seq:
            os.fsync(self._fd)
            self.durable_seq = self.written_seq
        self._unsynced = 0
        return self.durable_seq

    def close(self) -> None:
        """fsync (unless the policy is ``never``) and close; idempotent."""
        if self._fd < 0:
            return
        if self.policy != "never":
            self.sync()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def iter_records(path: Path | str) -> Iterator[Record]:
    """The good records of a journal (``read_journal(path).records``)."""
    return iter(read_journal(path).records)


def main(argv: list[str] | None = None) -> int:
    """Print a journal's records, one per line, and what follows the last good one."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m runtime.journal FILE", file=sys.stderr)
        return 2
    scan = read_journal(args[0])
    for record in scan.records:
        payload = f"<{len(record.payload)} bytes>" if isinstance(record.payload, bytes) else record.payload
        print(f"{record.seq}\t{record.ts_ns}\t{record.kind}\t{json.dumps(payload, default=str)[:200]}")
    if scan.torn:
        print(f"# torn tail: {scan.torn_bytes} bytes after offset {scan.end_offset} ({scan.reason})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
