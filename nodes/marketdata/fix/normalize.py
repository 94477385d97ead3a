"""Turn valid FIX market-data messages into normalized ``book_deltas``, ``trades`` and ``quotes`` rows.

**35=W (MarketDataSnapshotFullRefresh)**: the symbol's whole book, as a snapshot event:

- a clear row (``ACTION_CLEAR``, side 0, price ``UNDEF_PRICE``, size 0), then one ``ACTION_ADD`` row per
  price level (bids first as listed, then asks), all flagged ``F_SNAPSHOT``, ``F_LAST`` on the last one;
  several entries at one price (an order-by-order snapshot) are summed into the level, zero-size levels
  are left out; MDEntryType J (empty book) leaves just the clear row;
- one ``quotes`` row: best bid and ask of the snapshot with their sizes (``UNDEF_PRICE`` and 0 for an empty
  side);
- trade entries (MDEntryType 2) describe the last trade, not a new one: counted, no row. Other entry types
  (opening price, settlement, volume, ...) give no row and are counted by type.

**35=X (MarketDataIncrementalRefresh)**: one row per entry, by MDEntryType (269) and MDUpdateAction (279):

| 269 | 279 | row |
|---|---|---|
| 0 bid / 1 offer | 0 new | book_deltas ``ACTION_ADD``, size = MDEntrySize (the level's new size) |
| 0 / 1 | 1 change, 5 overlay | book_deltas ``ACTION_MODIFY``, size = MDEntrySize |
| 0 / 1 | 2 delete | book_deltas ``ACTION_CANCEL``, size 0 |
| 0 / 1 | 3 delete thru, 4 delete from | the message is rejected (``unsupported_update_action``): these are position-based (MDPriceLevel) and a price-keyed L2 book cannot apply them |
| 2 trade | 0 new | trades: price, size, side from AggressorSide (2446: 1 buy → 1, 2 sell → -1; else 0), trade_id from TradeID (1003) or MDEntryID (278) when numeric |
| 2 | 1 / 2 | a trade correction or bust: counted (``trade_corrections_skipped``), no row |
| J empty book | any | book_deltas ``ACTION_CLEAR`` |

Book sizes follow L2 set-size semantics (``book.l2``): a level's size is replaced, 0 removes it. ``F_LAST``
marks the last book row of each symbol in a message. A book entry without MDEntryPx, a new/change without
MDEntrySize or an entry without MDEntryType rejects the message (``missing_price``, ``missing_size``,
``missing_entry_type``): books keyed by MDEntryID or MDPriceLevel alone are not in scope.

**Symbol**: the entry's Symbol (55), else its SecurityID (48), else the previous entry's in the same
message (FIX lets later entries inherit the instrument), else the message's 55/48, else the ``symbol``
option; none → ``missing_symbol``. **Venue**: the ``venue`` option, else SecurityExchange (207) of the entry or
message, else SenderCompID (49). **sequence**: RptSeq (83) of the entry, else MsgSeqNum (34).

**Prices and sizes** are parsed from the decimal text digit by digit into int64 1e-9 units (never through a
float); a value with non-zero digits past the 9th decimal or beyond int64 rejects the message (``bad_decimal``);
a negative size too (``negative_size``).

**Time** (ns since the epoch, UTC):

- ``ts_event`` of a 35=X entry: MDEntryDate (272) + MDEntryTime (273); MDEntryTime alone takes the date of
  SendingTime (52), the nearest one (an entry at 23:59:59.9 sent at 00:00:00.1 is of the day before); else the
  entry's TransactTime (60); else SendingTime. A 35=W is one event: LastUpdateTime (779), else TransactTime
  (60), else SendingTime, for all its rows (entry times say when each level last changed, not when the
  snapshot was taken).
- ``ts_recv``: the log line's receive timestamp when the log has one (QuickFIX file log prefix), else
  SendingTime (the report counts each source). Rows keep log order, so ``ts_recv`` must not decrease: a
  message received "before" the previous one (the receive clock stepped back) is raised to it, counted
  (``ts_recv_repaired``) and its book rows flagged ``F_BAD_TS_RECV``.
- **Clock policy** for a row whose ``ts_event`` is after its ``ts_recv`` (the sender's clock runs ahead of
  the receiver's, or the log's timestamps are not receive times): ``clamp`` (default) sets ``ts_event =
  ts_recv`` and flags book rows ``F_BAD_TS_RECV``; ``report`` keeps both as they are; ``reject`` raises
  ``DataQualityError`` at the first such row. Each counts (``ts_event_clamped`` / ``ts_recv_before_ts_event``)
  and the distribution of ``ts_recv - ts_event`` goes into the report. ``ts_recv`` is never moved earlier:
  that would let a backtest act on data before it arrived.

**Lost data**: when a market-data message is quarantined (or its MsgType cannot be read) or MsgSeqNum skips,
the book of every symbol may be missing an update: book rows are flagged ``F_MAYBE_BAD_BOOK`` until that
symbol's next 35=W.
"""

from typing import Literal

import numpy as np
import polars as pl

from nodes.errors import DataQualityError
from nodes.marketdata.binance.clock import OffsetDistribution
from nodes.marketdata.fix.parse import utc_date_ns, utc_time_only_ns, utc_timestamp_ns
from nodes.marketdata.fix.report import FixQualityReport
from nodes.marketdata.fix.validate import FixMessage
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
)

ClockPolicy = Literal["clamp", "report", "reject"]
CLOCK_POLICIES = ("clamp", "report", "reject")

MISSING_SYMBOL = "missing_symbol"
MISSING_PRICE = "missing_price"
MISSING_SIZE = "missing_size"
MISSING_ENTRY_TYPE = "missing_entry_type"
UNSUPPORTED_UPDATE_ACTION = "unsupported_update_action"
BAD_DECIMAL = "bad_decimal"
NEGATIVE_SIZE = "negative_size"
BAD_SEQUENCE = "bad_sequence"

MARKET_DATA_TYPES = frozenset({"W", "X"})
_DAY_NS = 86_400_000_000_000
_INT64_MAX = 9_223_372_036_854_775_807
_BOOK_ACTIONS = {"0": ACTION_ADD, "1": ACTION_MODIFY, "5": ACTION_MODIFY, "2": ACTION_CANCEL}
_AGGRESSOR = {"1": 1, "2": -1}
_UPDATE_ACTION_NAMES = {"3": "Delete Thru", "4": "Delete From"}
_UNITS_CACHE = 1 << 16  # decimal texts remembered with their units


class NotNormalizable(Exception):
    """A valid FIX message that cannot become rows: ``reason`` (a code above) and ``detail``."""

    def __init__(self, reason: str, detail: str, tag: int | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.tag = reason, detail, tag


def decimal_units(text: str, what: str = "value") -> int:
    """A FIX decimal (``-12.5``, ``3``, ``.25``, ``7.``) in int64 units of 1e-9, exactly.

    Raises:
        NotNormalizable: more than 9 significant decimal places, or beyond int64.
    """
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    whole, _, fraction = digits.partition(".")
    if len(fraction) > 9:
        if fraction[9:].strip("0"):
            raise NotNormalizable(BAD_DECIMAL, f"{what} {text!r} has more than 9 decimal places: 1e-9 units cannot "
                                  "hold it exactly")
        fraction = fraction[:9]
    value = int(whole or "0") * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)
    if value > _INT64_MAX:
        raise NotNormalizable(BAD_DECIMAL, f"{what} {text!r} is beyond int64 in 1e-9 units")
    return -value if negative else value


def _sequence(text: str, what: str) -> int:
    value = int(text)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise NotNormalizable(BAD_SEQUENCE, f"{what} {text} does not fit the int64 sequence column")
    return value


class FixNormalizer:
    """Accumulate rows from valid messages (``add``); ``take()`` returns them as frames and starts anew.

    Parameters:
        report: the ``FixQualityReport`` to count into.
        venue, symbol: see the module docstring (``symbol`` only names entries that name no instrument).
        clock_policy: ``clamp`` (default), ``report`` or ``reject``.

    Raises:
        ValueError: an unknown ``clock_policy``.
    """

    def __init__(self, report: FixQualityReport, venue: str | None = None, symbol: str | None = None,
                 clock_policy: ClockPolicy = "clamp"):
        if clock_policy not in CLOCK_POLICIES:
            raise ValueError(f"clock_policy must be one of {', '.join(CLOCK_POLICIES)}, not {clock_policy!r}")
        self.report = report
        self.venue = venue
        self.symbol = symbol
        self.clock_policy = clock_policy
        self._rows: dict[str, list[tuple]] = {"book_deltas": [], "trades": [], "quotes": []}
        self._offsets: list[int] = []
        self._distribution = OffsetDistribution()
        self._last_ts_recv: int | None = None
        self._taint_epoch = 0
        self._snapshot_epoch: dict[str, int] = {}
        self._symbols: dict[str, None] = {}
        self._units: dict[str, int] = {}
        self._times: dict[str, int] = {}
        clock = report.clock
        clock.update({"policy": clock_policy, "ts_recv_source": {"log": 0, "sending_time": 0}, "ts_recv_repaired": 0,
                      "ts_event_clamped": 0, "ts_recv_before_ts_event": 0, "first_clamped_byte": None,
                      "first_clamped_line": None, "offset": {}})

    # -- lost data -------------------------------------------------------------------------------------------

    def lost(self) -> None:
        """Say that a market-data message may be missing: flag every book until its next snapshot."""
        self._taint_epoch += 1
        self.report.book["losses"] += 1

    # -- messages --------------------------------------------------------------------------------------------

    def add(self, message: FixMessage) -> None:
        """Add the rows of ``message`` (35=W or 35=X; other types give none).

        Raises:
            NotNormalizable: the message cannot become rows (nothing of it is added).
            DataQualityError: ``clock_policy="reject"`` and a row received before its event time.
        """
        msg_type = message.msg_type
        if msg_type not in MARKET_DATA_TYPES:
            return
        header = message.header
        sending = utc_timestamp_ns(header["52"])
        ts_recv = message.frame.ts_recv
        clock = self.report.clock
        if ts_recv is None:
            ts_recv = sending
            clock["ts_recv_source"]["sending_time"] += 1
        else:
            clock["ts_recv_source"]["log"] += 1
        flags = 0
        if self._last_ts_recv is not None and ts_recv < self._last_ts_recv:
            ts_recv = self._last_ts_recv
            flags = F_BAD_TS_RECV
        if msg_type == "W":
            book, trades, quotes = self._snapshot(message, sending, ts_recv, flags)
        else:
            book, trades, quotes = self._incremental(message, sending, ts_recv, flags)
        if flags:
            clock["ts_recv_repaired"] += 1
        self._last_ts_recv = ts_recv
        if book:
            tainted = 0
            seen: set[str] = set()
            for k in range(len(book) - 1, -1, -1):  # F_LAST on each symbol's last row of the message
                row = book[k]
                extra = 0
                if row[3] not in seen:
                    seen.add(row[3])
                    extra = F_LAST
                if self._snapshot_epoch.get(row[3], 0) < self._taint_epoch:
                    extra |= F_MAYBE_BAD_BOOK
                    tainted += 1
                if extra:
                    book[k] = (*row[:9], row[9] | extra)
            self.report.book["tainted_rows"] += tainted
            self._rows["book_deltas"].extend(book)
        if trades:
            self._rows["trades"].extend(trades)
        if quotes:
            self._rows["quotes"].extend(quotes)

    def take(self) -> dict[str, pl.DataFrame]:
        """The rows added since the last call, one frame per schema (empty schemas left out), in log order."""
        out = {}
        for schema, rows in self._rows.items():
            if rows:
                out[schema] = pl.DataFrame(rows, schema=SCHEMAS[schema], orient="row")
                self.report.rows[schema] += len(rows)
                self._rows[schema] = []
        if self._offsets:
            self._distribution.add(np.asarray(self._offsets, dtype=np.int64))
            self._offsets = []
            self.report.clock["offset"] = self._distribution.summary()
        self.report.symbols = list(self._symbols)
        return out

    # -- internals -------------------------------------------------------------------------------------------

    def _snapshot(self, message: FixMessage, sending: int, ts_recv: int, flags: int):
        header, body = message.header, message.body
        symbol = body.get("55") or body.get("48") or self.symbol
        if symbol is None:
            raise NotNormalizable(MISSING_SYMBOL, "35=W names no instrument (no Symbol 55 or SecurityID 48) and no "
                                  "'symbol' option is set", 55)
        venue = self.venue or body.get("207") or header.get("49", "")
        sequence = _sequence(header["34"], "MsgSeqNum (34)")
        stamp = body.get("779") or body.get("60")
        ts_event = utc_timestamp_ns(stamp) if stamp else sending
        ts_event, row_flags = self._clock(ts_event, ts_recv, message)
        row_flags |= flags
        levels: dict[tuple[int, int], int] = {}
        report = self.report
        for k, entry in enumerate(body.get("268", ())):
            entry_type = entry.get("269")
            if entry_type == "0" or entry_type == "1":
                price, size = self._price_size(entry, k, need_size=True)
                key = (1 if entry_type == "0" else -1, price)
                levels[key] = levels.get(key, 0) + size
            elif entry_type == "2":
                report.snapshot_trades_skipped += 1
            elif entry_type != "J":
                report.entries_skipped[entry_type] = report.entries_skipped.get(entry_type, 0) + 1
        snapshot_flags = F_SNAPSHOT | row_flags
        book = [(ts_event, ts_recv, venue, symbol, sequence, 0, UNDEF_PRICE, 0, ACTION_CLEAR, snapshot_flags)]
        best = {1: None, -1: None}
        for side in (1, -1):
            for (level_side, price), size in levels.items():
                if level_side != side or size == 0:
                    continue
                book.append((ts_event, ts_recv, venue, symbol, sequence, side, price, size, ACTION_ADD, snapshot_flags))
                top = best[side]
                if top is None or (price > top[0] if side == 1 else price < top[0]):
                    best[side] = (price, size)
        bid, ask = best[1] or (UNDEF_PRICE, 0), best[-1] or (UNDEF_PRICE, 0)
        quotes = [(ts_event, ts_recv, venue, symbol, sequence, bid[0], ask[0], bid[1], ask[1])]
        self._snapshot_epoch[symbol] = self._taint_epoch
        self._symbols.setdefault(symbol)
        return book, None, quotes

    def _incremental(self, message: FixMessage, sending: int, ts_recv: int, flags: int):
        header, body = message.header, message.body
        message_sequence = _sequence(header["34"], "MsgSeqNum (34)")
        message_symbol = body.get("55") or body.get("48")
        default_venue = self.venue or body.get("207") or header.get("49", "")
        message_time = utc_timestamp_ns(body["60"]) if "60" in body else sending
        offsets = self._offsets
        book: list[tuple] = []
        trades: list[tuple] = []
        symbol = None
        for k, entry in enumerate(body.get("268", ())):
            get = entry.get
            symbol = get("55") or get("48") or symbol or message_symbol or self.symbol
            if symbol is None:
                raise NotNormalizable(MISSING_SYMBOL, f"entry {k + 1} of 35=X names no instrument (no Symbol 55 or "
                                      "SecurityID 48 in it or before it) and no 'symbol' option is set", 55)
            entry_type = get("269")
            action = entry["279"]
            if entry_type is None:
                raise NotNormalizable(MISSING_ENTRY_TYPE, f"entry {k + 1} has no MDEntryType (269): cannot tell a bid, "
                                      "an offer or a trade (books keyed by MDEntryID alone are not supported)", 269)
            book_entry = entry_type == "0" or entry_type == "1"
            if not book_entry:
                if entry_type != "2" and entry_type != "J":
                    skipped = self.report.entries_skipped
                    skipped[entry_type] = skipped.get(entry_type, 0) + 1
                    continue
                if entry_type == "2" and action != "0":
                    self.report.trade_corrections_skipped += 1
                    continue
            venue = self.venue or get("207") or default_venue
            sequence = _sequence(entry["83"], "RptSeq (83)") if "83" in entry else message_sequence
            ts_event = message_time if "273" not in entry and "60" not in entry else \
                self._entry_time(entry, sending, message_time)
            if ts_event <= ts_recv:
                offsets.append(ts_recv - ts_event)
                row_flags = flags
            else:
                ts_event, row_flags = self._clock(ts_event, ts_recv, message)
                row_flags |= flags
            if book_entry:
                book_action = _BOOK_ACTIONS.get(action)
                if book_action is None:
                    raise NotNormalizable(UNSUPPORTED_UPDATE_ACTION, f"entry {k + 1}: MDUpdateAction {action} "
                                          f"({_UPDATE_ACTION_NAMES.get(action, '?')}) is position-based; a price-keyed "
                                          "L2 book cannot apply it", 279)
                price, size = self._price_size(entry, k, need_size=book_action != ACTION_CANCEL)
                if book_action == ACTION_CANCEL:
                    size = 0
                book.append((ts_event, ts_recv, venue, symbol, sequence, 1 if entry_type == "0" else -1, price, size,
                             book_action, row_flags))
            elif entry_type == "2":
                price, size = self._price_size(entry, k, need_size=True)
                trade_id = get("1003") or get("278")
                trades.append((ts_event, ts_recv, venue, symbol, sequence, price, size, _AGGRESSOR.get(get("2446"), 0),
                               int(trade_id) if trade_id is not None and trade_id.isdigit() and len(trade_id) < 19
                               else None))
            else:
                book.append((ts_event, ts_recv, venue, symbol, sequence, 0, UNDEF_PRICE, 0, ACTION_CLEAR, row_flags))
            if symbol not in self._symbols:
                self._symbols[symbol] = None
        return book, trades, None

    def _price_size(self, entry: dict, k: int, need_size: bool) -> tuple[int, int]:
        text = entry.get("270")
        if text is None:
            raise NotNormalizable(MISSING_PRICE, f"entry {k + 1} has no MDEntryPx (270): a price-keyed book needs it "
                                  "(books keyed by MDEntryID or MDPriceLevel alone are not supported)", 270)
        cache = self._units
        price = cache.get(text)
        if price is None:
            price = self._remember(text, "MDEntryPx (270)")
        size_text = entry.get("271")
        if size_text is None:
            if need_size:
                raise NotNormalizable(MISSING_SIZE, f"entry {k + 1} has no MDEntrySize (271): the level's size is "
                                      "unknown", 271)
            return price, 0
        size = cache.get(size_text)
        if size is None:
            size = self._remember(size_text, "MDEntrySize (271)")
        if size < 0:
            raise NotNormalizable(NEGATIVE_SIZE, f"entry {k + 1}: MDEntrySize {size_text} is negative", 271)
        return price, size

    def _remember(self, text: str, what: str) -> int:
        """Convert a decimal not seen recently and remember it (prices and sizes repeat)."""
        value = decimal_units(text, what)
        if len(self._units) >= _UNITS_CACHE:
            self._units.clear()
        self._units[text] = value
        return value

    def _entry_time(self, entry: dict, sending: int, message_time: int) -> int:
        time_text = entry.get("273")
        if time_text is not None:
            date_text = entry.get("272")
            if date_text is not None:
                return utc_date_ns(date_text) + utc_time_only_ns(time_text)
            stamp = sending - sending % _DAY_NS + utc_time_only_ns(time_text)
            if stamp - sending > _DAY_NS // 2:
                stamp -= _DAY_NS
            elif sending - stamp > _DAY_NS // 2:
                stamp += _DAY_NS
            return stamp
        transact = entry.get("60")
        if transact is None:
            return message_time
        stamp = self._times.get(transact)  # entries of one message usually share it
        if stamp is None:
            if len(self._times) >= _UNITS_CACHE:
                self._times.clear()
            stamp = self._times[transact] = utc_timestamp_ns(transact)
        return stamp

    def _clock(self, ts_event: int, ts_recv: int, message: FixMessage) -> tuple[int, int]:
        """Apply the clock policy to one row (or snapshot): return (ts_event, flags to add)."""
        self._offsets.append(ts_recv - ts_event)
        if ts_event <= ts_recv:
            return ts_event, 0
        clock = self.report.clock
        frame = message.frame
        if clock["first_clamped_byte"] is None:
            clock["first_clamped_byte"], clock["first_clamped_line"] = frame.offset, frame.line
        if self.clock_policy == "reject":
            raise DataQualityError(
                f"{self.report.path}: byte {frame.offset} (line {frame.line}): ts_event {ts_event} is after ts_recv "
                f"{ts_recv} by {ts_event - ts_recv} ns (clock_policy reject; 'clamp' or 'report' keep going)")
        if self.clock_policy == "report":
            clock["ts_recv_before_ts_event"] += 1
            return ts_event, 0
        clock["ts_event_clamped"] += 1
        return ts_recv, F_BAD_TS_RECV
