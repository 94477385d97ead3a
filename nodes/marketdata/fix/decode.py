"""Decode a FIX market-data log into normalized ``book_deltas``, ``trades`` and ``quotes``, streaming.

Scope: tag=value logs (plain, gzip or zstd; SOH or ``|`` delimited; with or without a QuickFIX-style receive
timestamp per line) of FIX 4.2, FIX 4.4 and FIX 5.0 SP2 over FIXT.1.1 (other versions when their QuickFIX
dictionary is in ``dictionary_dir``). Market data comes from MarketDataSnapshotFullRefresh (35=W) and
MarketDataIncrementalRefresh (35=X); every other message (Logon, Heartbeat, SequenceReset, ...) is framed,
validated and counted, and gives no rows. Non-goals: order-by-order books keyed by MDEntryID, position-keyed
books (MDPriceLevel, Delete Thru/From), FAST or SBE encodings, FIXML.

The pipeline, one message at a time (each stage in its module):

1. ``stream``: decompress incrementally (memory flat in file size).
2. ``parse``: frame each message by BeginString/BodyLength, verify the CheckSum, read the log prefix.
3. ``validate``: check it against the dictionary of its BeginString/ApplVerID (fields, types, enums,
   required fields, repeating groups).
4. ``sequence``: follow MsgSeqNum per session: gaps, resends (PossDupFlag, dropped), resets.
5. ``normalize``: 35=W/35=X → rows (symbols, venue, exact decimals, time and clock policy).

**Bad input never stops the run**: a message that fails any stage is quarantined in the report with its byte
offset, line, stage, reason (and the field's tag and byte when one field is at fault) and its first bytes,
and decoding goes on with the next message. A lost market-data message or a sequence gap flags the books
``F_MAYBE_BAD_BOOK`` until each symbol's next snapshot. After the last chunk, more than ``max_bad_fraction``
bad records raises ``DataQualityError`` (the error carries the complete report as ``.report``).

Example::

    from nodes.marketdata.fix import decode_fix
    decoding = decode_fix("data/samples/fix/spot_btcusdt.fix44.log.gz")
    for chunk in decoding:
        chunk.tables["book_deltas"]            # polars frames in the normalized schemas
    decoding.report.to_json()                  # FixQualityReport
"""

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from nodes.errors import DataQualityError
from nodes.marketdata.fix.normalize import MARKET_DATA_TYPES, ClockPolicy, FixNormalizer, NotNormalizable
from nodes.marketdata.fix.parse import DEFAULT_MAX_MESSAGE_BYTES, GARBAGE, DANGLING_PREFIX, BadFrame, frame_messages
from nodes.marketdata.fix.report import FixQualityReport, QuarantinedMessage
from nodes.marketdata.fix.sequence import DUPLICATE, GAP, SequenceTracker
from nodes.marketdata.fix.stream import StreamStatus, read_pieces
from nodes.marketdata.fix.validate import Rejection, Validator

_DELIMITER_NAMES = {"\x01": "soh", "|": "pipe"}


@dataclass
class FixChunk:
    """The rows of ``messages`` consecutive messages, one frame per schema that has rows (log order)."""

    tables: dict[str, pl.DataFrame]
    messages: int


def decode_fix(
    path: str | Path,
    *,
    delimiter: str = "auto",
    clock_policy: ClockPolicy = "clamp",
    venue: str | None = None,
    symbol: str | None = None,
    unknown_tags: str = "reject",
    dictionary_dir: str | Path | None = None,
    default_appl_ver_id: str = "9",
    chunk_messages: int = 65_536,
    max_bad_fraction: float = 0.01,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_quarantine: int = 100,
    raw_bytes_cap: int = 300,
    read_bytes: int = 1 << 20,
) -> "FixDecoding":
    """Stream the FIX log at ``path`` into chunks of normalized frames; the report is complete once exhausted.

    Parameters:
        path: the log (plain, gzip or zstd).
        delimiter: ``auto`` (default: per message, SOH or ``|``), ``soh`` or ``pipe``.
        clock_policy: ``clamp`` (default), ``report`` or ``reject`` (see ``normalize``).
        venue: the venue of every row (default: SecurityExchange 207, else SenderCompID 49).
        symbol: the instrument of entries that name none (default: such messages are bad).
        unknown_tags: ``reject`` (default) or ``ignore`` tags the dictionary does not define.
        dictionary_dir: folder of the QuickFIX dictionaries (default: the vendored ``data/fix``).
        default_appl_ver_id: FIXT.1.1 application version when neither message nor Logon gives one (9: 5.0SP2).
        chunk_messages: messages per chunk (default 65,536): bounds memory, never changes rows.
        max_bad_fraction: raise at the end when more than this share of records is bad (default 1%).
        max_message_bytes: longest BodyLength accepted (default 1 MiB).
        max_quarantine, raw_bytes_cap: bad messages listed in the report (default 100), bytes of each kept (300).
        read_bytes: decompressed bytes per read (default 1 MiB).

    Raises:
        ValueError: a parameter out of range (named in the message).
        FileNotFoundError: ``path`` does not exist (when iteration starts).
        DataQualityError (while iterating): too many bad records (after the last chunk), or
            ``clock_policy="reject"`` and a row received before its event time.
    """
    if chunk_messages < 1:
        raise ValueError(f"chunk_messages must be >= 1, got {chunk_messages}")
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be within [0, 1], got {max_bad_fraction}")
    if max_quarantine < 0 or raw_bytes_cap < 0:
        raise ValueError("max_quarantine and raw_bytes_cap must be >= 0")
    validator = Validator(dictionary_dir, unknown_tags, default_appl_ver_id)  # checks unknown_tags
    report = FixQualityReport(str(path), max_bad_fraction=max_bad_fraction)
    normalizer = FixNormalizer(report, venue, symbol, clock_policy)  # checks clock_policy
    if delimiter not in ("auto", "soh", "pipe"):
        raise ValueError(f"delimiter must be one of auto, soh, pipe, not {delimiter!r}")
    if max_message_bytes < 64:
        raise ValueError(f"max_message_bytes must be >= 64, got {max_message_bytes}")
    return FixDecoding(Path(path), report, validator, normalizer, delimiter, chunk_messages, max_bad_fraction,
                       max_message_bytes, max_quarantine, raw_bytes_cap, read_bytes)


class FixDecoding:
    """An iterator of ``FixChunk``s over one log; ``report`` (``FixQualityReport``) fills as it runs."""

    def __init__(self, path: Path, report: FixQualityReport, validator: Validator, normalizer: FixNormalizer,
                 delimiter: str, chunk_messages: int, max_bad_fraction: float, max_message_bytes: int,
                 max_quarantine: int, raw_bytes_cap: int, read_bytes: int):
        self.path = path
        self.report = report
        self._validator = validator
        self._normalizer = normalizer
        self._delimiter = delimiter
        self._chunk_messages = chunk_messages
        self._max_bad_fraction = max_bad_fraction
        self._max_message_bytes = max_message_bytes
        self._max_quarantine = max_quarantine
        self._raw_bytes_cap = raw_bytes_cap
        self._read_bytes = read_bytes
        self._started = False

    def __iter__(self) -> Iterator[FixChunk]:
        if self._started:
            raise RuntimeError("a FixDecoding is iterated once; call decode_fix again to read the file again")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[FixChunk]:
        report, validator, normalizer = self.report, self._validator, self._normalizer
        status = StreamStatus(str(self.path))
        tracker = SequenceTracker(report.sequence)
        pieces = read_pieces(self.path, status, self._read_bytes)
        frames = frame_messages(pieces, self._delimiter, self._max_message_bytes, self._raw_bytes_cap)
        in_chunk = 0
        for item in frames:
            if isinstance(item, BadFrame):
                self._quarantine(QuarantinedMessage(item.offset, item.line, "framing", item.reason, item.detail,
                                                    item.msg_type, raw=item.raw))
                if item.reason not in (GARBAGE, DANGLING_PREFIX) and (item.msg_type is None
                                                                       or item.msg_type in MARKET_DATA_TYPES):
                    normalizer.lost()
                continue
            name = _DELIMITER_NAMES.get(item.delimiter, item.delimiter)
            report.delimiters[name] = report.delimiters.get(name, 0) + 1
            result = validator.validate(item)
            if isinstance(result, Rejection):
                field_byte = None if result.field_offset is None else item.offset + result.field_offset
                self._quarantine(QuarantinedMessage(item.offset, item.line, "validation", result.reason, result.detail,
                                                    result.msg_type, result.tag, field_byte, self._raw(item)))
                if result.msg_type is None or result.msg_type in MARKET_DATA_TYPES:
                    normalizer.lost()
                continue
            outcome = tracker.see(result)
            if outcome == DUPLICATE:
                self._good(result)
                continue
            if outcome == GAP:
                normalizer.lost()
            try:
                normalizer.add(result)
            except NotNormalizable as problem:
                self._quarantine(QuarantinedMessage(item.offset, item.line, "normalization", problem.reason,
                                                    problem.detail, result.msg_type, problem.tag, None, self._raw(item)))
                normalizer.lost()
                continue
            self._good(result)
            in_chunk += 1
            if in_chunk >= self._chunk_messages:
                yield FixChunk(normalizer.take(), in_chunk)
                in_chunk = 0
        report.stream = asdict(status)
        if status.error is not None:
            self._quarantine(QuarantinedMessage(status.bytes_decompressed, 0, "framing", "corrupt_stream",
                                                status.error))
            normalizer.lost()
        elif status.truncated:
            report.notes.append(f"the {status.compression} stream ends before its end marker: the log was cut "
                                "(any message cut with it is quarantined as truncated)")
        report.ignored_tags = dict(validator.ignored_tags)
        tables = normalizer.take()
        if tables or in_chunk:
            yield FixChunk(tables, in_chunk)
        if report.bad_fraction > self._max_bad_fraction:
            error = DataQualityError(self._too_many_bad())
            error.report = report
            raise error

    def _good(self, message) -> None:
        report = self.report
        report.messages_total += 1
        report.messages_good += 1
        report.by_msg_type[message.msg_type] = report.by_msg_type.get(message.msg_type, 0) + 1
        report.protocols[message.protocol] = report.protocols.get(message.protocol, 0) + 1

    def _quarantine(self, entry: QuarantinedMessage) -> None:
        self.report.add_bad(entry, self._max_quarantine)

    def _raw(self, frame) -> str:
        head = f"8={frame.begin_string}{frame.delimiter}9={len(frame.body)}{frame.delimiter}"
        return (head + frame.body)[: self._raw_bytes_cap]

    def _too_many_bad(self) -> str:
        report = self.report
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.bad_reasons.items()))
        first = "; ".join(f"byte {q.byte} (line {q.line}): {q.reason}: {q.detail}" for q in report.quarantine[:3])
        return (f"{self.path}: {report.messages_bad} bad record(s) of {report.messages_total} "
                f"({report.bad_fraction:.2%}) is above max_bad_fraction {self._max_bad_fraction:.2%} ({reasons}); "
                f"first: {first}")
