"""Normalize Bybit order-book files (``orderbook.<depth>.<symbol>`` JSON lines) into ``book_deltas``, streaming.

Scope: the files Bybit publishes for its historical order books — a zip holding one ``.data`` file of JSON
lines, one websocket message a line (``{"topic", "type": "snapshot"|"delta", "ts", "cts", "data": {"s",
"b", "a", "u", "seq"}}``) — and the same lines plain or gzip. Non-goals: other topics (trades, tickers) are
quarantined as unknown messages.

Bybit's rules (v5 "Orderbook" websocket topic): a ``snapshot`` is the whole book (replace the local one; it
can come again at any time, e.g. with ``u = 1`` after a service restart); a ``delta`` sets each level's new
size, and size 0 deletes the level; ``u`` (update id) goes up by exactly 1 from message to message; ``seq``
(cross sequence) only grows. What the normalizer does, per symbol:

| message | when | rows |
|---|---|---|
| snapshot | always | a clear row (``R``, side 0, ``UNDEF_PRICE``, size 0), then bids and asks in file order (``A``); all ``F_SNAPSHOT`` |
| delta | ``u == previous u + 1`` | one row per level: ``C`` when the size is 0, else ``M`` |
| delta | before the first snapshot | none: dropped, counted (``unsynced_dropped``) |
| delta | ``u <=`` the book's ``u`` | none: a repeat or an old message, counted (``stale_dropped``) |
| delta | ``u > previous u + 1`` | a **gap**: one clear row flagged ``F_LAST | F_MAYBE_BAD_BOOK``, recorded with its line, the ``u`` expected and found; every delta is dropped until the next snapshot (``dropped_after_gap``) |

``F_LAST`` marks each message's last row (read the book there). ``sequence`` = ``u``. A ``seq`` that does not
grow is counted (``seq_not_increasing``), not treated as a gap: Bybit does not promise it is contiguous. A
gap clear asks a book consumer to drop its book and rebuild from the next snapshot, as the Binance normalizer
does, instead of silently continuing on a book with a hole.

Times: ``ts_event`` = ``cts`` (matching-engine time, ms → ns; ``ts`` when absent). These files hold no local
receive time: ``ts_recv`` = ``ts`` (when Bybit's market-data service published the message) plus
``assumed_latency_ns`` (default 0: the earliest a subscriber could have had it; set it to your one-way
latency for a backtest that should not see messages sooner than it could have). A ``ts`` earlier than the
previous message's is raised to it (counted, ``F_BAD_TS_RECV``); a ``cts`` after the receive time is handled
by ``clock_policy`` as in the Tardis normalizer (``clamp``, ``report``, ``reject``).

Bad input: a line that is not a usable message (invalid JSON, a missing or mistyped field, a price or size
that is not an exact decimal, a negative size, an unknown ``type``, a topic whose symbol is not ``data.s``)
is quarantined with its line number (and archive member), reason and text; the update-id rules then see the
hole it leaves (the next delta is a gap). More than ``max_bad_fraction`` bad lines raise ``DataQualityError``
after the last chunk (with ``.report``). A file that cannot be opened (not a zip, gzip or text file) raises
at once; a damaged compressed stream keeps the lines read before the damage and says so in the report.

Prices and sizes are decimal strings converted exactly to int64 1e-9 units, vectorised over a chunk
(``nodes.marketdata.decimal_units``). Memory holds ``chunk_messages`` messages at a time.

Example::

    from nodes.marketdata.bybit import read_bybit_orderbook
    frame, report = read_bybit_orderbook("2024-12-01_XRPUSDT_ob500.data.zip")
"""

import gzip
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import orjson
import polars as pl

from nodes.errors import DataQualityError
from nodes.marketdata.bybit.report import BybitQualityReport, new_symbol_entry
from nodes.marketdata.decimal_units import OK, parse_units
from nodes.marketdata.quarantine import Quarantine
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_MODIFY,
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    SCHEMAS,
    UNDEF_PRICE,
    conform,
)

VENUE = "BYBIT"
CLOCK_POLICIES = ("clamp", "report", "reject")
_MS = 1_000_000
_INT64_MAX = 9_223_372_036_854_775_807
_MAX_MS = _INT64_MAX // _MS
_MAX_SYMBOL = 64
_GAP_LIST = 20
_EMIT_NONE, _EMIT_SNAPSHOT, _EMIT_DELTA, _EMIT_GAP = 0, 1, 2, 3
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


class _BadLine(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class BybitChunk:
    """The ``book_deltas`` rows normalized from the lines ``first_line..last_line`` (of one archive member)."""

    frame: pl.DataFrame
    first_line: int
    last_line: int
    member: str | None = None


@dataclass
class _Message:
    line: int
    member: str | None
    snapshot: bool
    symbol: str
    u: int
    seq: int | None
    ts_ms: int
    cts_ms: int | None
    level_start: int
    level_count: int


def normalize_bybit_orderbook(
    path: str | Path,
    *,
    symbols: list[str] | None = None,
    unlisted_symbols: Literal["drop", "error"] = "drop",
    venue: str = VENUE,
    assumed_latency_ns: int = 0,
    clock_policy: Literal["clamp", "report", "reject"] = "clamp",
    max_bad_fraction: float = 0.0,
    chunk_messages: int = 10_000,
    max_quarantine_lines: int = 100,
    raw_bytes_cap: int = 300,
) -> "BybitNormalization":
    """Stream the Bybit order-book file at ``path`` into ``book_deltas`` chunks; ``.report`` is complete once exhausted.

    Parameters:
        path: a zip of JSON-lines files (Bybit's download), a gzip, or plain JSON lines.
        symbols: keep only these symbols (others counted in ``filtered_out``); default all.
        unlisted_symbols: with ``symbols``, ``error`` raises on the first message of another symbol instead.
        venue: the ``venue`` of every row (default ``BYBIT``).
        assumed_latency_ns: added to ``ts`` to make ``ts_recv`` (default 0; see the module docstring).
        clock_policy: ``clamp`` (default), ``report`` or ``reject`` messages whose ``cts`` is after ``ts_recv``.
        max_bad_fraction: raise ``DataQualityError`` at the end above this share of bad lines (default 0).
        chunk_messages: lines normalized at a time (default 10,000); bounds memory, never changes the rows.
        max_quarantine_lines, raw_bytes_cap: how many bad lines keep their text, and how much of it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an option out of range (named in the message).
        DataQualityError: the file cannot be opened (at once); while iterating: ``reject`` and a skewed
            clock, ``unlisted_symbols='error'`` and another symbol, too many bad lines (after the last chunk).
    """
    return BybitNormalization(
        Path(path), symbols=symbols, unlisted_symbols=unlisted_symbols, venue=venue,
        assumed_latency_ns=assumed_latency_ns, clock_policy=clock_policy, max_bad_fraction=max_bad_fraction,
        chunk_messages=chunk_messages, max_quarantine_lines=max_quarantine_lines, raw_bytes_cap=raw_bytes_cap,
    )


def read_bybit_orderbook(path: str | Path, **options) -> tuple[pl.DataFrame, BybitQualityReport]:
    """Normalize a whole file into memory: ``(book_deltas frame, report)``; options as ``normalize_bybit_orderbook``."""
    run = normalize_bybit_orderbook(path, **options)
    parts = [chunk.frame for chunk in run if chunk.frame.height]
    frame = pl.concat(parts, rechunk=True) if parts else pl.DataFrame(schema=SCHEMAS["book_deltas"])
    return frame, run.report


def list_symbols(path: str | Path, max_lines: int = 1_000) -> list[str]:
    """The symbols (``data.s``) of the first ``max_lines`` lines, in order of first appearance (a cheap scan)."""
    found: dict[str, None] = {}
    seen = 0
    for _, lines in _members(Path(path), {}):
        for raw in lines:
            seen += 1
            try:
                symbol = orjson.loads(raw)["data"]["s"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                symbol = None
            if isinstance(symbol, str) and symbol:
                found.setdefault(symbol)
            if seen >= max_lines:
                return list(found)
    return list(found)


class BybitNormalization:
    """The iterator ``normalize_bybit_orderbook`` returns: ``BybitChunk``s, then ``report`` is complete."""

    def __init__(self, path: Path, **options):
        _check_options(options)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such Bybit order-book file")
        self.path = path
        self.options = options
        self.report = BybitQualityReport(
            path=str(path), venue=options["venue"], max_bad_fraction=options["max_bad_fraction"],
            quarantine=Quarantine(options["max_quarantine_lines"], options["raw_bytes_cap"]),
        )
        self.report.clock["policy"] = options["clock_policy"]
        self.report.clock["assumed_latency_ns"] = options["assumed_latency_ns"]
        self._filter = None if options["symbols"] is None else set(options["symbols"])
        self._ts_max = np.iinfo(np.int64).min
        self._states: dict[str, dict] = {}  # symbol → its entry in report.sequence, which holds the rules' state
        self._members = _members(path, self.report.capture)  # opens the file now: unreadable fails here
        self._iterator = self._run()

    def __iter__(self) -> Iterator[BybitChunk]:
        return self

    def __next__(self) -> BybitChunk:
        return next(self._iterator)

    def _run(self) -> Iterator[BybitChunk]:
        step = self.options["chunk_messages"]
        for member, lines in self._members:
            batch: list[tuple[int, bytes]] = []
            for number, raw in enumerate(lines, start=1):
                batch.append((number, raw))
                if len(batch) >= step:
                    yield from self._chunk(batch, member)
                    batch = []
            if batch:
                yield from self._chunk(batch, member)
        self._finish()

    def _finish(self) -> None:
        r = self.report
        if r.bad_fraction > self.options["max_bad_fraction"]:
            error = DataQualityError(
                f"{self.path}: {r.lines_bad} of {r.lines_total} line(s) are bad ({r.bad_fraction:.4%}), above "
                f"max_bad_fraction {self.options['max_bad_fraction']:.4%}: {r.quarantine.summary()}"
            )
            error.report = r
            raise error

    # -- one chunk -------------------------------------------------------------------------------------------------

    def _chunk(self, batch: list[tuple[int, bytes]], member: str | None) -> Iterator[BybitChunk]:
        self.report.lines_total += len(batch)
        bad: list[tuple[int, str, str, bytes]] = []
        messages, sides, prices, sizes = self._parse(batch, member, bad)
        prices_u, sizes_u, level_bad = _levels(prices, sizes)
        if level_bad.any():
            messages = _drop_bad_levels(messages, level_bad, prices, sizes, dict(batch), bad)
        for number, reason, text, raw in sorted(bad, key=lambda b: b[0]):  # in line order, however found
            self.report.lines_bad += 1
            self.report.quarantine.add(number, reason, text, raw.rstrip(b"\r\n"), member)
        self.report.lines_good += len(messages)
        if not messages:
            return
        messages = self._select_symbols(messages)
        if not messages:
            return
        emits = self._rules(messages)
        frame = self._rows(messages, emits, np.asarray(sides, np.int8), prices_u, sizes_u)
        if frame.height:
            self.report.rows += frame.height
            yield BybitChunk(conform(frame, "book_deltas"), batch[0][0], batch[-1][0], member)

    def _parse(self, batch: list[tuple[int, bytes]], member: str | None, bad: list):
        """The chunk's parsed messages and all their levels (texts); bad lines are appended to ``bad``."""
        messages: list[_Message] = []
        sides: list[int] = []
        prices: list[str] = []
        sizes: list[str] = []
        for number, raw in batch:
            try:
                fields, levels = _parse_line(raw)
            except _BadLine as error:
                bad.append((number, error.reason, error.message, raw))
                continue
            if self.report.depth is None and fields["depth"] is not None:
                self.report.depth = fields["depth"]
            messages.append(_Message(number, member, fields["snapshot"], fields["symbol"], fields["u"], fields["seq"],
                                     fields["ts"], fields["cts"], len(prices), len(levels)))
            for side, price, size in levels:
                sides.append(side)
                prices.append(price)
                sizes.append(size)
        return messages, sides, prices, sizes

    def _select_symbols(self, messages: list[_Message]) -> list[_Message]:
        for m in messages:
            if m.symbol not in self.report.symbols:
                self.report.symbols.append(m.symbol)
        if self._filter is None:
            return messages
        kept = []
        for m in messages:
            if m.symbol in self._filter:
                kept.append(m)
            elif self.options["unlisted_symbols"] == "error":
                raise DataQualityError(f"{self.path}: line {m.line}: symbol {m.symbol!r} is not in the listed symbols "
                                       f"({', '.join(self.options['symbols'])})")
            else:
                self.report.filtered_out[m.symbol] = self.report.filtered_out.get(m.symbol, 0) + 1
        return kept

    def _rules(self, messages: list[_Message]) -> np.ndarray:
        """Bybit's update-id rules, message by message (see the module docstring); what each message emits."""
        emits = np.zeros(len(messages), np.int8)
        for i, m in enumerate(messages):
            s = self._states.get(m.symbol)
            if s is None:
                s = self._states[m.symbol] = self.report.sequence[m.symbol] = new_symbol_entry()
            if m.seq is not None:
                if s["last_seq"] is not None and m.seq <= s["last_seq"]:
                    s["seq_not_increasing"] += 1
                    s["first_seq_not_increasing_line"] = s["first_seq_not_increasing_line"] or m.line
                s["last_seq"] = m.seq
            if m.snapshot:
                s["snapshots"] += 1
                if s["state"] != "no_book":
                    s["snapshot_resets"] += 1
                s["state"] = "live"
                s["last_u"] = m.u
                emits[i] = _EMIT_SNAPSHOT
                continue
            if s["state"] == "no_book":
                s["unsynced_dropped"] += 1
            elif s["state"] == "invalid":
                s["dropped_after_gap"] += 1
            elif m.u <= s["last_u"]:
                s["stale_dropped"] += 1
            elif m.u == s["last_u"] + 1:
                s["deltas_applied"] += 1
                s["empty_deltas"] += m.level_count == 0
                s["last_u"] = m.u
                emits[i] = _EMIT_DELTA
            else:
                s["gaps"] += 1
                if len(s["gap_list"]) < _GAP_LIST:
                    s["gap_list"].append({"line": m.line, "member": m.member, "expected_u": s["last_u"] + 1,
                                          "found_u": m.u})
                s["state"] = "invalid"
                emits[i] = _EMIT_GAP
        return emits

    def _rows(self, messages: list[_Message], emits: np.ndarray, sides: np.ndarray, prices: np.ndarray,
              sizes: np.ndarray) -> pl.DataFrame:
        n = len(messages)
        ts_ms = np.fromiter((m.ts_ms for m in messages), np.int64, n)
        cts_ms = np.fromiter((m.ts_ms if m.cts_ms is None else m.cts_ms for m in messages), np.int64, n)
        lines = np.fromiter((m.line for m in messages), np.int64, n)
        ts_recv = ts_ms * _MS + self.options["assumed_latency_ns"]
        ts_event = cts_ms * _MS
        xflags = self._times(ts_event, ts_recv, lines)  # repairs both in place
        starts = np.fromiter((m.level_start for m in messages), np.int64, n)
        counts = np.fromiter((m.level_count for m in messages), np.int64, n)
        with_levels = (emits == _EMIT_SNAPSHOT) | (emits == _EMIT_DELTA)
        with_clear = (emits == _EMIT_SNAPSHOT) | (emits == _EMIT_GAP)
        level_msg = np.repeat(np.arange(n)[with_levels], counts[with_levels])
        level_index = _ranges(starts[with_levels], counts[with_levels])
        clear_msg = np.flatnonzero(with_clear)
        msg = np.concatenate([clear_msg, level_msg])
        position = np.concatenate([np.full(len(clear_msg), -1, np.int64), level_index])
        order = np.lexsort((position, msg))
        msg, position = msg[order], position[order]
        is_clear = position < 0
        level = np.where(is_clear, 0, position)
        snapshot_row = emits[msg] == _EMIT_SNAPSHOT
        size = np.where(is_clear, 0, sizes[level] if len(sizes) else 0)
        action = np.where(is_clear, ACTION_CLEAR,
                          np.where(snapshot_row, ACTION_ADD, np.where(size == 0, ACTION_CANCEL, ACTION_MODIFY)))
        last = np.ones(len(msg), bool)
        last[:-1] = msg[1:] != msg[:-1]
        flags = (xflags[msg] | np.where(snapshot_row, F_SNAPSHOT, 0)
                 | np.where(emits[msg] == _EMIT_GAP, F_MAYBE_BAD_BOOK, 0) | np.where(last, F_LAST, 0))
        symbols = np.array([m.symbol for m in messages], dtype=object)
        return pl.DataFrame({
            "ts_event": ts_event[msg],
            "ts_recv": ts_recv[msg],
            "venue": pl.Series([self.options["venue"]] * len(msg), dtype=pl.String),
            "symbol": pl.Series(symbols[msg], dtype=pl.String),
            "sequence": np.fromiter((m.u for m in messages), np.int64, n)[msg],
            "side": np.where(is_clear, 0, sides[level] if len(sides) else 0).astype(np.int8),
            "price": np.where(is_clear, UNDEF_PRICE, prices[level] if len(prices) else 0).astype(np.int64),
            "size": size.astype(np.int64),
            "action": action.astype(np.uint8),
            "flags": flags.astype(np.uint8),
        })

    def _times(self, ts_event: np.ndarray, ts_recv: np.ndarray, lines: np.ndarray) -> np.ndarray:
        xflags = np.zeros(len(ts_recv), np.uint8)
        running = np.maximum.accumulate(np.concatenate([[self._ts_max], ts_recv]))[1:]
        self._ts_max = int(running[-1])
        back = ts_recv < running
        if back.any():
            entry = self.report.ts_recv_backwards
            entry["count"] += int(back.sum())
            entry["first_line"] = entry["first_line"] or int(lines[back][0])
            xflags[back] |= F_BAD_TS_RECV
            ts_recv[:] = running
        early = ts_event > ts_recv
        if early.any():
            clock = self.report.clock
            clock["ts_event_after_ts_recv"] += int(early.sum())
            clock["first_line"] = clock["first_line"] or int(lines[early][0])
            clock["max_excess_ns"] = max(clock["max_excess_ns"], int((ts_event - ts_recv)[early].max()))
            if self.options["clock_policy"] == "reject":
                raise DataQualityError(f"{self.path}: line {int(lines[early][0])}: cts is after the receive time "
                                       "(ts + assumed_latency_ns); clock_policy is reject")
            if self.options["clock_policy"] == "clamp":
                ts_event[early] = ts_recv[early]
                xflags[early] |= F_BAD_TS_RECV
        return xflags


# -- parsing ---------------------------------------------------------------------------------------------------------


def _parse_line(raw: bytes) -> tuple[dict, list[tuple[int, str, str]]]:
    """One line → (message fields, levels as (side, price text, size text)).

    Raises:
        _BadLine: the line is not a usable order-book message (reason and message say why).
    """
    text = raw.rstrip(b"\r\n")
    if not text.strip():
        raise _BadLine("empty_line", "empty line")
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise _BadLine("invalid_json", f"invalid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise _BadLine("not_an_object", f"the line is a JSON {type(payload).__name__}, not an object")
    kind = payload.get("type")
    if kind not in ("snapshot", "delta"):
        raise _BadLine("unknown_message", f"type {kind!r} is not snapshot or delta (topic {payload.get('topic')!r})")
    data = payload.get("data")
    if not isinstance(data, dict):
        raise _BadLine("missing_field", "'data' is missing or not an object")
    symbol = data.get("s")
    if not isinstance(symbol, str) or not 1 <= len(symbol) <= _MAX_SYMBOL:
        raise _BadLine("bad_field", f"data.s (symbol) {symbol!r} is not a string of 1-{_MAX_SYMBOL} characters")
    topic = payload.get("topic")
    if topic is not None:
        parts = topic.split(".") if isinstance(topic, str) else []
        if len(parts) != 3 or parts[0] != "orderbook":
            raise _BadLine("unknown_message", f"topic {topic!r} is not orderbook.<depth>.<symbol>")
        if parts[2] != symbol:
            raise _BadLine("symbol_mismatch", f"topic {topic!r} is not about data.s {symbol!r}")
    fields = {
        "depth": int(parts[1]) if topic is not None and parts[1].isdigit() else None,
        "snapshot": kind == "snapshot",
        "symbol": symbol,
        "u": _integer(data, "u", "data.u", required=True, maximum=_INT64_MAX),
        "seq": _integer(data, "seq", "data.seq", required=False, maximum=_INT64_MAX),
        "ts": _integer(payload, "ts", "ts", required=True, maximum=_MAX_MS),
        "cts": _integer(payload, "cts", "cts", required=False, maximum=_MAX_MS),
    }
    levels = []
    for key, side in (("b", 1), ("a", -1)):
        value = data.get(key)
        if value is None:
            if kind == "snapshot":
                raise _BadLine("missing_field", f"snapshot without data.{key}")
            continue
        if not isinstance(value, list):
            raise _BadLine("bad_field", f"data.{key} is not a list of [price, size]")
        for level in value:
            if (not isinstance(level, list) or len(level) != 2 or not isinstance(level[0], str)
                    or not isinstance(level[1], str)):
                raise _BadLine("bad_field", f"data.{key} level {level!r} is not a [price, size] pair of strings")
            levels.append((side, level[0], level[1]))
    return fields, levels


def _integer(container: dict, key: str, name: str, required: bool, maximum: int) -> int | None:
    if key not in container or container[key] is None:
        if required:
            raise _BadLine("missing_field", f"missing {name}")
        return None
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise _BadLine("bad_field", f"{name} must be a non-negative integer (at most {maximum}), got {value!r}")
    return value


def _levels(prices: list[str], sizes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prices and sizes in 1e-9 units, and which levels are bad (not exact decimals, or a negative size)."""
    price, price_status = parse_units(prices)
    size, size_status = parse_units(sizes)
    return price, size, (price_status != OK) | (size_status != OK) | (size < 0)


def _drop_bad_levels(messages: list[_Message], level_bad: np.ndarray, prices: list[str], sizes: list[str],
                     raw_by_line: dict[int, bytes], bad: list) -> list[_Message]:
    """The messages whose levels are all good; the others are appended to ``bad`` with their first bad level."""
    kept = []
    for m in messages:
        wrong = np.flatnonzero(level_bad[m.level_start : m.level_start + m.level_count])
        if len(wrong) == 0:
            kept.append(m)
            continue
        k = m.level_start + int(wrong[0])
        reason, text = level_bad_reason(prices[k], sizes[k])
        bad.append((m.line, reason, f"level {int(wrong[0])}: {text}", raw_by_line[m.line]))
    return kept


def level_bad_reason(price: str, size: str) -> tuple[str, str]:
    """(reason, message) for a level ``_levels`` refused."""
    (price_value,), (price_status,) = parse_units([price])
    (size_value,), (size_status,) = parse_units([size])
    if price_status != OK:
        return "bad_decimal", f"price {price!r} is not an exact decimal (at most 9 decimal places, within int64 in 1e-9 units)"
    if size_status != OK:
        return "bad_decimal", f"size {size!r} is not an exact decimal (at most 9 decimal places, within int64 in 1e-9 units)"
    return "negative_size", f"size {size!r} is negative"


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(start, start + count)`` for each pair, without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    ends = np.cumsum(counts)
    offsets = np.repeat(starts - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + offsets


# -- the container ------------------------------------------------------------------------------------------------


def _members(path: Path, status: dict) -> Iterator[tuple[str | None, Iterator[bytes]]]:
    """Open ``path`` now and return an iterator of (member name, lines) over its JSON-lines files.

    Raises:
        DataQualityError: the file is neither a readable zip, a gzip nor text.
    """
    with open(path, "rb") as file:
        head = file.read(4)
    if head.startswith(_ZIP_MAGIC):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as error:
            raise DataQualityError(f"{path}: not a readable zip archive: {error}") from None
        infos = [i for i in archive.infolist() if not i.is_dir()]
        status.update(container="zip", members=[i.filename for i in infos], truncated=False, error=None)
        if not infos:
            raise DataQualityError(f"{path}: the zip archive holds no file")
        return _zip_lines(archive, infos, status)
    if head.startswith(_GZIP_MAGIC):
        status.update(container="gzip", members=[None], truncated=False, error=None)
        return iter([(None, _stream_lines(lambda: gzip.open(path, "rb"), status))])
    status.update(container="none", members=[None], truncated=False, error=None)
    return iter([(None, _stream_lines(lambda: open(path, "rb"), status))])


def _zip_lines(archive: zipfile.ZipFile, infos, status: dict):
    with archive:
        for info in infos:
            yield info.filename, _stream_lines(lambda info=info: archive.open(info), status, info.filename)


def _stream_lines(opener, status: dict, member: str | None = None) -> Iterator[bytes]:
    try:
        with opener() as file:
            yield from file
    except EOFError as error:
        status["truncated"] = True
        status["error"] = f"{member or 'the stream'}: compressed data ends early: {error}"
    except (zipfile.BadZipFile, zlib.error, OSError) as error:
        status["error"] = f"{member or 'the stream'}: damaged compressed data: {error}"


def _check_options(o: dict) -> None:
    if o["clock_policy"] not in CLOCK_POLICIES:
        raise ValueError(f"clock_policy must be one of {', '.join(CLOCK_POLICIES)}, not {o['clock_policy']!r}")
    if o["unlisted_symbols"] not in ("drop", "error"):
        raise ValueError(f"unlisted_symbols must be 'drop' or 'error', not {o['unlisted_symbols']!r}")
    if not 0.0 <= o["max_bad_fraction"] <= 1.0:
        raise ValueError(f"max_bad_fraction must be within [0, 1], got {o['max_bad_fraction']}")
    if o["chunk_messages"] < 1:
        raise ValueError(f"chunk_messages must be >= 1, got {o['chunk_messages']}")
    if o["assumed_latency_ns"] < 0:
        raise ValueError(f"assumed_latency_ns must be >= 0, got {o['assumed_latency_ns']}")
    if o["symbols"] is not None and (not o["symbols"] or len(set(o["symbols"])) != len(o["symbols"])):
        raise ValueError("symbols must be a non-empty list without duplicates")
