"""Read a FIX log as decompressed pieces: plain, gzip or zstd (by magic bytes), incrementally, memory flat.

Several concatenated gzip members or zstd frames read as one stream. A damaged file does not raise: a stream
that ends before its end marker (a truncated download, a log cut mid-write) sets ``truncated``; corrupt data
sets ``error`` and ends the stream there. Everything decompressed before the damage is yielded, so the framer
keeps the whole messages and quarantines the cut one. gzip uses ISA-L (``isal``) when installed, else zlib.
"""

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

try:
    from isal import isal_zlib as _gzip

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (zlib.error, _gzip.error)
except ImportError:  # pragma: no cover - depends on the environment
    _gzip = zlib
    _GZIP_ERRORS = (zlib.error,)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
STEP_BYTES = 64 * 1024  # compressed bytes per decompress call: bounds one call's output and what corruption costs


@dataclass
class StreamStatus:
    """How reading the file went: compression, sizes, and damage (``truncated``, ``error``)."""

    path: str
    compression: str = "none"  # none | gzip | zstd
    bytes_read: int = 0
    bytes_decompressed: int = 0
    truncated: bool = False
    error: str | None = None

    @property
    def damaged(self) -> bool:
        return self.truncated or self.error is not None


def read_pieces(path: str | Path, status: StreamStatus, read_bytes: int = 1 << 20) -> Iterator[bytes]:
    """Yield the decompressed bytes of ``path`` piece by piece (each at most about ``read_bytes``), filling ``status``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``read_bytes`` below 1.
    """
    if read_bytes < 1:
        raise ValueError(f"read_bytes must be >= 1, got {read_bytes}")
    with open(path, "rb") as file:
        head = file.read(4)
        status.bytes_read = len(head)
        if head[:2] == GZIP_MAGIC:
            status.compression = "gzip"
            yield from _inflate(file, head, status, read_bytes, lambda: _gzip.decompressobj(31), _GZIP_ERRORS)
        elif head == ZSTD_MAGIC:
            status.compression = "zstd"
            yield from _inflate(file, head, status, read_bytes, lambda: zstandard.ZstdDecompressor().decompressobj(),
                                (zstandard.ZstdError,))
        else:
            data = head + file.read(read_bytes)
            while data:
                status.bytes_decompressed += len(data)
                yield data
                data = file.read(read_bytes)
                status.bytes_read += len(data)
            status.bytes_read = status.bytes_decompressed


def _inflate(file, head: bytes, status: StreamStatus, read_bytes: int, new, errors) -> Iterator[bytes]:
    decompressor = new()
    in_frame = True
    data = head
    out_parts: list[bytes] = []
    out_size = 0
    while True:
        if not data:
            data = file.read(STEP_BYTES)
            if not data:
                break
            status.bytes_read += len(data)
        while data:
            if not in_frame:
                if not data.strip(b"\x00"):  # zero padding after the last member
                    data = b""
                    break
                decompressor, in_frame = new(), True  # another member / frame (concatenated files)
            try:
                out = decompressor.decompress(data)
            except errors as error:
                if out_parts:
                    yield b"".join(out_parts)
                status.error = (f"{status.compression} data is corrupt after {status.bytes_decompressed} "
                                f"decompressed bytes: {error}")
                return
            if out:
                out_parts.append(out)
                out_size += len(out)
                status.bytes_decompressed += len(out)
            if decompressor.eof:
                in_frame = False
                data = decompressor.unused_data
            else:
                data = b""
        if out_size >= read_bytes:
            yield b"".join(out_parts)
            out_parts, out_size = [], 0
    if out_parts:
        yield b"".join(out_parts)
    if in_frame:
        status.truncated = True
