"""Frame FIX tag=value messages out of a log: BeginString, BodyLength and CheckSum verified, bad bytes quarantined.

A log is any byte stream holding FIX messages: one a line as engines write them (QuickFIX's file log prefixes
each with its receive time, ``20240808-23:54:14.123 : 8=FIX.4.4^A9=...``; QuickFIX/J writes ``...123: 8=``),
or messages back to back as they came off the wire. Messages are found by their BeginString (``8=FIX``) at a
field or line boundary and cut by their BodyLength, so line breaks are optional and a value may hold any byte.

Delimiter: SOH (``\\x01``) as on the wire, or ``|`` as in logs written for people. With ``delimiter="auto"``
(default) each message uses the byte that ends its BeginString; ``"soh"``/``"pipe"`` refuse the other. A
``|``-delimited log is taken to be a wire log with SOH shown as ``|``: the CheckSum is verified on the SOH
form (each ``|`` counts as 0x01), which is what the sender computed. Values must then not contain ``|``.

Checks on every message, in this order (each failure is a ``BadFrame`` with its reason, byte offset and line,
and the framer goes on with the next message):

- ``bad_header``: it does not start ``8=<BeginString><d>9=<digits><d>``.
- ``message_too_large``: BodyLength above ``max_message_bytes`` (default 1 MiB): not waited for.
- ``body_length_mismatch``: no ``<d>10=nnn<d>`` exactly BodyLength bytes after the BodyLength field; the
  reason gives the declared and the actual length (where the CheckSum really is).
- ``missing_checksum``: no CheckSum before the next message starts.
- ``truncated``: the file ends inside the message.
- ``bad_checksum``: the sum of the bytes before the CheckSum field, modulo 256, is not its value.
- ``garbage``: bytes between messages that are neither blank nor a log timestamp prefix (counted once per
  stretch); ``dangling_prefix``: a log prefix with no message after it at the end of the file.
- ``bad_log_prefix``: the message's log timestamp is not a valid time (month 13, hour 25): its receive time
  is unknown, so the message is not used (falling back to SendingTime would mix two clocks).

Offsets are in the decompressed stream (for a gzip or zstd log, offsets into what ``zcat``/``zstdcat``
print); lines are 1-based and count ``\\n`` bytes before the message.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

SOH = "\x01"
PIPE = "|"
DELIMITERS = {"auto": None, "soh": 0x01, "pipe": 0x7C}
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20

# reasons a stretch of the log is quarantined by the framer
BAD_HEADER = "bad_header"
MESSAGE_TOO_LARGE = "message_too_large"
BODY_LENGTH_MISMATCH = "body_length_mismatch"
MISSING_CHECKSUM = "missing_checksum"
TRUNCATED = "truncated"
BAD_CHECKSUM = "bad_checksum"
WRONG_DELIMITER = "wrong_delimiter"
GARBAGE = "garbage"
BAD_LOG_PREFIX = "bad_log_prefix"
DANGLING_PREFIX = "dangling_prefix"

_BOUNDARY = frozenset(b"\x01|\n\r \t:")  # bytes that may stand before a BeginString
_HEAD = re.compile(rb"8=(FIXT?\.\d{1,2}\.\d{1,2}(?:SP\d{1,2})?)([\x01|])9=(\d{1,10})\2")
_HEAD_MIN = 24  # bytes enough to tell whether a header is there
_HEAD_CUT = re.compile(rb"8=FIXT?[0-9.SP]*(?:[\x01|](?:9(?:=\d*)?)?)?\s*\Z")  # a header the end of the log cut
_TRAILERS = {d: re.compile(re.escape(bytes([d])) + rb"10=\d{3}" + re.escape(bytes([d]))) for d in (0x01, 0x7C)}
_PREFIX = re.compile(rb"(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)[ \t]?:[ \t]?")
_PREFIX_AT_END = re.compile(rb"(\d{8}-\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)[ \t]?:[ \t]?\Z")
_MSG_TYPE = re.compile(rb"[\x01|]35=([^\x01|]{1,8})[\x01|]")


@dataclass(slots=True)
class Frame:
    """One message whose framing and CheckSum are right.

    ``body`` is the text (latin-1) between the BodyLength field and the CheckSum field, ending with the
    delimiter; ``head_bytes`` is how many bytes precede it in the message (``8=...<d>9=...<d>``), so a field's
    byte offset is ``offset + head_bytes + its offset in body``.
    """

    offset: int
    line: int
    ts_recv: int | None  # from the log's timestamp prefix, ns since the epoch (UTC)
    begin_string: str
    delimiter: str
    body: str
    head_bytes: int
    size: int


@dataclass(slots=True)
class BadFrame:
    """A stretch of the log that is not a well-framed message: where, why, and its first bytes."""

    offset: int
    line: int
    reason: str
    detail: str
    raw: str
    size: int
    msg_type: str | None = None  # when one can be read: a lost market-data message taints the book


def frame_messages(
    pieces: Iterable[bytes],
    delimiter: str = "auto",
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    raw_bytes_cap: int = 300,
) -> Iterator[Frame | BadFrame]:
    """Yield every message of the log (``pieces``: its bytes in order, any sizes) as a ``Frame`` or ``BadFrame``.

    Memory holds the current piece and at most one unfinished message (bounded by ``max_message_bytes``).

    Raises:
        ValueError: an unknown ``delimiter`` (auto, soh, pipe) or ``max_message_bytes`` below 64.
    """
    if delimiter not in DELIMITERS:
        raise ValueError(f"delimiter must be one of {', '.join(DELIMITERS)}, not {delimiter!r}")
    if max_message_bytes < 64:
        raise ValueError(f"max_message_bytes must be >= 64, got {max_message_bytes}")
    forced = DELIMITERS[delimiter]
    buf = b""
    base = 0  # stream offset of buf[0]
    pos = 0  # first byte of buf not consumed
    line_no, line_at = 1, 0  # buf[line_at] is on line line_no
    pieces = iter(pieces)
    eof = False

    def line_of(k: int) -> int:
        nonlocal line_no, line_at
        line_no += buf.count(b"\n", line_at, k)
        line_at = k
        return line_no

    def bad(start: int, end: int, reason: str, detail: str, msg_type: str | None = None) -> BadFrame:
        return BadFrame(base + start, line_of(start), reason, detail,
                        buf[start : min(end, start + raw_bytes_cap)].decode("latin-1"), end - start, msg_type)

    while True:
        if not eof:
            piece = next(pieces, None)
            if piece is None:
                eof = True
            else:
                line_of(pos)  # count the lines of what is dropped
                buf = buf[pos:] + piece if pos < len(buf) else piece
                base += pos
                line_at -= pos
                pos = 0
        while True:
            start = _find_start(buf, pos)
            if start < 0:
                tail_from = pos
                if not eof:
                    keep = max(pos, len(buf) - _HEAD_MIN - 40)  # may hold a prefix or a cut "8=FIX"
                    if keep - pos > max_message_bytes:
                        yield from _garbage(buf, pos, keep, bad)
                        pos = keep
                    break
                if buf[tail_from:].strip():
                    yield from _garbage(buf, tail_from, len(buf), bad, at_end=True)
                pos = len(buf)
                break
            outcome = _frame_at(buf, start, eof, forced, max_message_bytes)
            if outcome is None:  # need more bytes
                break
            end, reason, detail, head = outcome
            ts_text = None
            if start > pos:
                ts_text, garbage_end = _gap(buf, pos, start)
                if garbage_end is not None:
                    yield from _garbage(buf, pos, garbage_end, bad)
            ts_recv = None
            if ts_text is not None:
                try:
                    ts_recv = utc_timestamp_ns(ts_text.decode("ascii"))
                except ValueError:
                    reason, detail = BAD_LOG_PREFIX, (f"the log's receive timestamp {ts_text.decode('latin-1')!r} is "
                                                      "not a valid time: the message's receive time is unknown")
            if reason is None:
                delim_char = chr(buf[head.end(2) - 1])
                yield Frame(base + start, line_of(start), ts_recv, head.group(1).decode("ascii"),
                            delim_char, buf[head.end() : end - 7].decode("latin-1"), head.end() - start, end - start)
            else:
                found = _MSG_TYPE.search(buf, start, end)
                yield bad(start, end, reason, detail, found.group(1).decode("latin-1") if found else None)
            pos = end
        if eof:
            return


def _find_start(buf: bytes, i: int) -> int:
    """The next ``8=FIX`` at or after ``i`` that starts a field (at ``i`` or after a boundary byte), else -1."""
    k = buf.find(b"8=FIX", i)
    while k > i and buf[k - 1] not in _BOUNDARY:
        k = buf.find(b"8=FIX", k + 1)
    return k


def _frame_at(buf: bytes, start: int, eof: bool, forced: int | None, max_message_bytes: int):
    """Decide what the message at ``start`` is: None (need more bytes) or (end, reason, detail, header match).

    ``reason`` None: a good message ending at ``end``; otherwise the stretch ``[start, end)`` is bad.
    """
    head = _HEAD.match(buf, start)
    if head is None:
        if not eof and len(buf) - start < _HEAD_MIN + 8:
            return None
        if eof and _HEAD_CUT.match(buf, start):
            return len(buf), TRUNCATED, "the log ends inside the message's header", None
        end = _resync(buf, start, eof, max_message_bytes)
        if end is None:
            return None
        return end, BAD_HEADER, "the message does not start with 8=<BeginString><SOH or |>9=<BodyLength><same>", None
    d = head.group(2)[0]
    if forced is not None and d != forced:
        end = _resync(buf, start, eof, max_message_bytes)
        if end is None:
            return None
        name = "SOH" if forced == 0x01 else "'|'"
        return end, WRONG_DELIMITER, f"fields are delimited by {chr(d)!r}, the log was declared {name}", head
    declared = int(head.group(3))
    if declared > max_message_bytes:
        end = _resync(buf, start, eof, max_message_bytes)
        if end is None:
            return None
        return end, MESSAGE_TOO_LARGE, f"BodyLength 9={declared} is above max_message_bytes {max_message_bytes}", head
    body_start = head.end()
    body_end = body_start + declared
    end = body_end + 7
    if (len(buf) >= end and buf[body_end - 1] == d and buf[end - 1] == d
            and buf.startswith(b"10=", body_end) and buf[body_end + 3 : end - 1].isdigit()):
        total = sum(buf[start:body_end])
        if d == 0x7C:
            total -= buf.count(b"|", start, body_end) * (0x7C - 0x01)  # as sent: SOH where the log shows |
        expected = int(buf[body_end + 3 : end - 1])
        if total % 256 != expected:
            return end, BAD_CHECKSUM, f"CheckSum 10={expected:03d} but the bytes sum to {total % 256:03d} (mod 256)", head
        return end, None, None, head
    if len(buf) < end and not eof:
        return None
    trailer = _TRAILERS[d].search(buf, body_start - 1)
    following = _find_start(buf, start + 1)
    if trailer is not None and (following < 0 or trailer.start() < following):
        actual = trailer.start() + 1 - body_start
        return (trailer.end(), BODY_LENGTH_MISMATCH,
                f"BodyLength 9={declared} but the body is {actual} bytes (CheckSum field at byte {actual} of the body)",
                head)
    if following >= 0:
        return following, MISSING_CHECKSUM, "no CheckSum (10) field before the next message", head
    if eof:
        return len(buf), TRUNCATED, (f"the log ends inside the message ({len(buf) - body_start} of {declared} body "
                                     "bytes and no CheckSum)"), head
    if len(buf) - start > max_message_bytes + 64:
        return len(buf), MISSING_CHECKSUM, f"no CheckSum (10) field within max_message_bytes {max_message_bytes}", head
    return None


def _resync(buf: bytes, start: int, eof: bool, max_message_bytes: int) -> int | None:
    """Where the bad stretch starting at ``start`` ends: the next message's start (None: need more bytes)."""
    following = _find_start(buf, start + 1)
    if following >= 0:
        return following
    if eof or len(buf) - start > max_message_bytes:
        return len(buf)
    return None


def _gap(buf: bytes, pos: int, start: int) -> tuple[bytes | None, int | None]:
    """Read the bytes between two messages: (log timestamp prefix or None, end of garbage in them or None)."""
    gap = buf[pos:start]
    stripped = gap.lstrip()
    if not stripped:
        return None, None
    match = _PREFIX.fullmatch(stripped)
    if match is not None:
        return match.group(1), None
    match = _PREFIX_AT_END.search(stripped)
    cut = len(gap) - len(stripped) + (match.start() if match else len(stripped))
    garbage = gap[:cut]
    end = pos + len(garbage.rstrip())
    return (match.group(1) if match else None), (end if garbage.strip() else None)


def _garbage(buf: bytes, start: int, end: int, bad, at_end: bool = False) -> Iterator[BadFrame]:
    """One ``BadFrame`` for the non-blank bytes in ``[start, end)``."""
    chunk = buf[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    trimmed = chunk.strip()
    if not trimmed:
        return
    if at_end and _PREFIX.fullmatch(trimmed + b" "):
        yield bad(start + lead, start + lead + len(trimmed), DANGLING_PREFIX,
                  "a log timestamp prefix with no message after it (the log ends there)")
        return
    yield bad(start + lead, start + lead + len(trimmed), GARBAGE,
              f"{len(trimmed)} byte(s) between messages that are neither a message nor a log timestamp prefix")


# -- FIX time values -----------------------------------------------------------------------------------------

_NS_PER_DAY = 86_400_000_000_000
_TIMESTAMP = re.compile(r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?")
_TIME_ONLY = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,12}))?")
_DATE_ONLY = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@lru_cache(maxsize=4096)
def utc_date_ns(text: str) -> int:
    """``YYYYMMDD`` → ns since the epoch at that day's UTC midnight.

    Raises:
        ValueError: not a valid date, or a year outside 1678-2261 (beyond int64 nanoseconds).
    """
    match = _DATE_ONLY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date YYYYMMDD")
    year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if not 1678 <= year <= 2261:
        raise ValueError(f"{text!r} is outside the years int64 nanoseconds since 1970 can hold (1678-2261)")
    if not 1 <= month <= 12 or not 1 <= day <= _DAYS_IN_MONTH[month - 1] or (
            month == 2 and day == 29 and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0))):
        raise ValueError(f"{text!r} is not a calendar date")
    return _days_from_civil(year, month, day) * _NS_PER_DAY


def utc_time_only_ns(text: str) -> int:
    """``HH:MM:SS[.fff...]`` → ns since midnight (digits past nanoseconds are dropped; a leap second is 60).

    Raises:
        ValueError: not a valid time of day.
    """
    match = _TIME_ONLY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time HH:MM:SS[.fraction]")
    return _clock_ns(match.group(1), match.group(2), match.group(3), match.group(4), text)


def utc_timestamp_ns(text: str) -> int:
    """``YYYYMMDD-HH:MM:SS[.fff...]`` (FIX UTCTimestamp, 0 to 12 fraction digits) → ns since the epoch.

    Raises:
        ValueError: not a valid timestamp.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a timestamp YYYYMMDD-HH:MM:SS[.fraction]")
    return utc_date_ns(text[:8]) + _clock_ns(match.group(4), match.group(5), match.group(6), match.group(7), text)


def _clock_ns(hours: str, minutes: str, seconds: str, fraction: str | None, text: str) -> int:
    h, m, s = int(hours), int(minutes), int(seconds)
    if h > 23 or m > 59 or s > 60:
        raise ValueError(f"{text!r} is not a time of day")
    ns = ((h * 60 + m) * 60 + s) * 1_000_000_000
    if fraction:
        ns += int(fraction[:9].ljust(9, "0"))
    return ns


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468
