"""DBN record arrays → normalized polars frames, column by column (no Python object per record).

Which table each record kind feeds:

| DBN records | tables |
|---|---|
| MBO | ``orders`` |
| trades (``TradeMsg``) | ``trades`` |
| MBP-1, TBBO, CMBP-1, TCBBO | ``quotes`` (one row per record: the top of book the record carries) and ``trades`` (records whose action is T) |
| BBO-1s/1m, CBBO-1s/1m | ``quotes`` only: their price/size/side fields are the interval's *last* trade, not a trade event |
| MBP-10 | ``book_deltas`` (snapshot rule below), ``quotes`` (level 0), ``trades`` (action T) |
| OHLCV-* | ``bars`` |
| definitions | ``definitions`` |
| imbalance, statistics, status | ``imbalance``, ``statistics``, ``status`` (``nodes.marketdata.dbn.schemas``) |

**MBP-10 snapshot rule.** An MBP-10 record carries the whole top 10 of both sides after its event. Each record
becomes a clear (``action`` R, side 0, price ``UNDEF_PRICE``, size 0) followed by one row per defined level
— bids 0…9 then asks 0…9, ``action`` A, ``size`` the level's total — all flagged ``F_SNAPSHOT``. Only the
record's last row keeps the record's ``F_LAST`` bit, so a consumer applies the whole group before reading.
This is exact for the top 10 (levels that leave the top 10 disappear, as they do from the feed) at the cost of
up to 21 rows per record.

**Bars.** Prices are floats (``int / 1e9``, NaN when undefined), volume a float count. DBN stamps a bar with
its open; a bar is known only at its close, so ``ts_event`` = open and ``ts_recv`` = open + interval.

**Sizes** are ``size * SIZE_SCALE``; DBN's undefined size (``UNDEF_ORDER_SIZE``) becomes null. **Prices**
are DBN's int64 1e-9 values as they are, ``UNDEF_PRICE`` included. ``trade_id`` is null (DBN has none).
``definitions.symbol`` is the record's own ``raw_symbol``; every other table resolves ``instrument_id``
through ``SymbolResolver``.
"""

from dataclasses import dataclass

import numpy as np
import polars as pl

from nodes.marketdata.dbn.records import OHLCV_INTERVAL_NS, SCHEMA_INTERVAL_NS
from nodes.marketdata.dbn.schemas import DBN_TABLES
from nodes.marketdata.dbn.symbols import SymbolResolver
from nodes.marketdata.schemas import (
    ACTION_ADD, ACTION_CLEAR, ACTION_TRADE, F_LAST, F_SNAPSHOT, PRICE_SCALE, SIZE_SCALE, UNDEF_PRICE,
)

UNDEF_ORDER_SIZE = 2**32 - 1
UNDEF_TIMESTAMP = 2**64 - 1
UNDEF_STAT_QUANTITY = {8: 2**63 - 1, 4: 2**31 - 1}  # by the width of the field (DBN v3 i64, v1/v2 i32)
_I32_UNDEF = 2**31 - 1
_U32_UNDEF = 2**32 - 1

_SIDE = np.zeros(256, dtype=np.int8)
_SIDE[ord("B")] = 1
_SIDE[ord("A")] = -1
_TRISTATE = {ord("Y"): True, ord("N"): False}

LEVELS = 10


@dataclass
class NormalizeContext:
    """What normalizing needs besides the records: the venue, symbols and the file's schema."""

    venue: str
    resolver: SymbolResolver
    schema: str | None


def _codes(column: np.ndarray) -> np.ndarray:
    """One-byte character fields (``S1``) as their uint8 codes."""
    return np.ascontiguousarray(column).view(np.uint8)


def _sizes(column: np.ndarray, undefined: int | None = UNDEF_ORDER_SIZE) -> tuple[np.ndarray, np.ndarray | None]:
    values = column.astype(np.int64)
    nulls = values == undefined if undefined is not None else None
    return values * SIZE_SCALE, nulls


def _timestamps(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return column.astype(np.int64), column == np.uint64(UNDEF_TIMESTAMP)


def _text(column: np.ndarray) -> list[str]:
    return [value.decode("utf-8", "replace") for value in column.tolist()]


def _constant(name: str, value, dtype: pl.DataType, n: int) -> pl.Series:
    return pl.Series(name, [value], dtype=dtype).new_from_index(0, n)


class _Frame:
    """Build one frame of a table: columns in the table's order and types, nulls where masked."""

    def __init__(self, table: str, n: int, venue: str, symbols: pl.Series):
        self.table = table
        self.n = n
        self.columns: dict[str, pl.Series] = {
            "venue": _constant("venue", venue, pl.String, n),
            "symbol": symbols.alias("symbol"),
        }

    def put(self, name: str, values, nulls: np.ndarray | None = None) -> "_Frame":
        dtype = DBN_TABLES[self.table][name]
        if values is None:
            series = _constant(name, None, dtype, self.n)
        else:
            series = pl.Series(name, values, dtype=dtype)
            if nulls is not None and nulls.any():
                series = series.scatter(np.flatnonzero(nulls), None)
        self.columns[name] = series.alias(name)
        return self

    def build(self) -> pl.DataFrame:
        return pl.DataFrame([self.columns[name] for name in DBN_TABLES[self.table]])


def _event(frame: _Frame, records: np.ndarray, sequence: bool = True) -> _Frame:
    frame.put("ts_event", records["ts_event"].astype(np.int64))
    frame.put("ts_recv", records["ts_recv"].astype(np.int64))
    has_sequence = sequence and "sequence" in records.dtype.names
    return frame.put("sequence", records["sequence"].astype(np.int64) if has_sequence else None)


def _symbols(records: np.ndarray, context: NormalizeContext) -> pl.Series:
    names = records.dtype.names
    when = records["ts_recv"] if "ts_recv" in names else records["ts_event"]
    codes = context.resolver.resolve(records["instrument_id"], when)
    table = pl.Series("symbol", context.resolver.symbols, dtype=pl.String)
    if len(codes) and (codes == codes[0]).all():  # the common case: one instrument in the run
        return table.new_from_index(int(codes[0]), len(codes))
    return table[codes]


def normalize(kind: str, rtype: int, records: np.ndarray, context: NormalizeContext) -> dict[str, pl.DataFrame]:
    """Return the frames that ``records`` (one run of one rtype) feed, by table name."""
    if kind == "symbol_mapping":
        context.resolver.add_mapping_records(records["instrument_id"], _text(records["stype_out_symbol"]))
        return {}
    builder = _BUILDERS.get(kind)
    if builder is None or len(records) == 0:
        return {}
    return builder(rtype, records, context, _symbols(records, context))


def _orders(rtype, records, context, symbols):
    size, size_nulls = _sizes(records["size"])
    frame = _event(_Frame("orders", len(records), context.venue, symbols), records)
    frame.put("order_id", records["order_id"]).put("side", _SIDE[_codes(records["side"])])
    frame.put("price", records["price"].astype(np.int64)).put("size", size, size_nulls)
    frame.put("action", _codes(records["action"])).put("flags", records["flags"])
    return {"orders": frame.build()}


def _trades(records, context, symbols) -> pl.DataFrame:
    size, size_nulls = _sizes(records["size"])
    frame = _event(_Frame("trades", len(records), context.venue, symbols), records)
    frame.put("price", records["price"].astype(np.int64)).put("size", size, size_nulls)
    frame.put("side", _SIDE[_codes(records["side"])]).put("trade_id", None)
    return frame.build()


def _trade_records(rtype, records, context, symbols):
    return {"trades": _trades(records, context, symbols)}


def _quotes(records, context, symbols) -> pl.DataFrame:
    bid_sz, bid_nulls = _sizes(records["bid_sz_00"])
    ask_sz, ask_nulls = _sizes(records["ask_sz_00"])
    frame = _event(_Frame("quotes", len(records), context.venue, symbols), records)
    frame.put("bid_px", records["bid_px_00"].astype(np.int64)).put("ask_px", records["ask_px_00"].astype(np.int64))
    frame.put("bid_sz", bid_sz, bid_nulls).put("ask_sz", ask_sz, ask_nulls)
    return frame.build()


def _with_trades(tables: dict, records, context, symbols) -> dict:
    is_trade = _codes(records["action"]) == ACTION_TRADE
    if is_trade.any():
        rows = np.flatnonzero(is_trade)
        tables["trades"] = _trades(records[rows], context, symbols[rows])
    return tables


def _mbp1(rtype, records, context, symbols):
    return _with_trades({"quotes": _quotes(records, context, symbols)}, records, context, symbols)


def _bbo(rtype, records, context, symbols):
    return {"quotes": _quotes(records, context, symbols)}


def _mbp10(rtype, records, context, symbols):
    tables = {"book_deltas": _book_snapshots(records, context, symbols), "quotes": _quotes(records, context, symbols)}
    return _with_trades(tables, records, context, symbols)


def _book_snapshots(records, context, symbols) -> pl.DataFrame:
    """Expand each MBP-10 record into a clear + its defined levels (see the module's snapshot rule)."""
    n = len(records)
    width = 1 + 2 * LEVELS
    price = np.empty((n, width), dtype=np.int64)
    size = np.zeros((n, width), dtype=np.int64)
    side = np.zeros((n, width), dtype=np.int8)
    price[:, 0] = UNDEF_PRICE
    for level in range(LEVELS):
        for offset, name, code in ((1, "bid", 1), (1 + LEVELS, "ask", -1)):
            price[:, offset + level] = records[f"{name}_px_{level:02d}"]
            size[:, offset + level] = records[f"{name}_sz_{level:02d}"].astype(np.int64) * SIZE_SCALE
            side[:, offset + level] = code
    keep = price != UNDEF_PRICE
    keep[:, 0] = True
    action = np.full((n, width), ACTION_ADD, dtype=np.uint8)
    action[:, 0] = ACTION_CLEAR
    record_flags = records["flags"].astype(np.uint8)
    flags = np.repeat(((record_flags & ~np.uint8(F_LAST)) | F_SNAPSHOT)[:, None], width, axis=1)
    last_kept = width - 1 - np.argmax(keep[:, ::-1], axis=1)
    flags[np.arange(n), last_kept] |= record_flags & np.uint8(F_LAST)
    counts = keep.sum(axis=1)
    rows = np.repeat(np.arange(n), counts)
    flat = keep.ravel()
    frame = _Frame("book_deltas", int(flat.sum()), context.venue, symbols[rows])
    frame.put("ts_event", records["ts_event"].astype(np.int64)[rows])
    frame.put("ts_recv", records["ts_recv"].astype(np.int64)[rows])
    frame.put("sequence", records["sequence"].astype(np.int64)[rows])
    frame.put("side", side.ravel()[flat]).put("price", price.ravel()[flat]).put("size", size.ravel()[flat])
    frame.put("action", action.ravel()[flat]).put("flags", flags.ravel()[flat])
    return frame.build()


def _bars(rtype, records, context, symbols):
    interval = OHLCV_INTERVAL_NS.get(rtype) or SCHEMA_INTERVAL_NS.get(context.schema or "")
    if interval is None:
        raise ValueError(f"cannot tell the bar interval of rtype {rtype:#04x} in a {context.schema} file")
    frame = _Frame("bars", len(records), context.venue, symbols)
    opened = records["ts_event"].astype(np.int64)
    frame.put("ts_event", opened).put("ts_recv", opened + interval).put("sequence", None)
    for name in ("open", "high", "low", "close"):
        raw = records[name]
        frame.put(name, np.where(raw == UNDEF_PRICE, np.nan, raw / PRICE_SCALE))
    frame.put("volume", records["volume"].astype(np.float64))
    return {"bars": frame.build()}


def _first_defined_lot(records) -> tuple[np.ndarray, np.ndarray]:
    """The lot size: round lot, else minimum lot, else minimum trade volume (the first one defined and > 0)."""
    lot = np.zeros(len(records), dtype=np.int64)
    for name, undefined in (("min_lot_size_round_lot", _I32_UNDEF), ("min_lot_size", _I32_UNDEF),
                            ("min_trade_vol", _U32_UNDEF)):
        values = records[name].astype(np.int64)
        usable = (lot == 0) & (values != undefined) & (values > 0)
        lot[usable] = values[usable]
    return lot * SIZE_SCALE, lot == 0


def _definitions(rtype, records, context, symbols):
    raw_symbols = pl.Series("symbol", _text(records["raw_symbol"]), dtype=pl.String)
    frame = _Frame("definitions", len(records), context.venue, raw_symbols)
    frame.put("ts_event", records["ts_event"].astype(np.int64)).put("ts_recv", records["ts_recv"].astype(np.int64))
    frame.put("instrument_id", records["instrument_id"].astype(np.int64))
    frame.put("instrument_class", _text(records["instrument_class"]))
    frame.put("currency", _text(records["currency"]))
    tick = records["min_price_increment"].astype(np.int64)
    frame.put("tick_size", tick, tick == UNDEF_PRICE)
    lot, lot_nulls = _first_defined_lot(records)
    frame.put("lot_size", lot, lot_nulls)
    unit_qty = records["unit_of_measure_qty"].astype(np.int64)
    contract = records["contract_multiplier"].astype(np.int64)
    multiplier = np.where(
        unit_qty != UNDEF_PRICE, unit_qty / PRICE_SCALE,
        np.where(contract != _I32_UNDEF, contract.astype(np.float64), np.nan),
    )
    frame.put("multiplier", multiplier, np.isnan(multiplier))
    expiration, expiration_nulls = _timestamps(records["expiration"])
    frame.put("expiration", expiration, expiration_nulls)
    return {"definitions": frame.build()}


def _imbalance(rtype, records, context, symbols):
    frame = _event(_Frame("imbalance", len(records), context.venue, symbols), records, sequence=False)
    for name in ("ref_price", "cont_book_clr_price", "auct_interest_clr_price", "ssr_filling_price",
                 "ind_match_price", "upper_collar", "lower_collar"):
        frame.put(name, records[name].astype(np.int64))
    auction_time, auction_nulls = _timestamps(records["auction_time"])
    frame.put("auction_time", auction_time, auction_nulls | (auction_time == 0))
    for name in ("paired_qty", "total_imbalance_qty", "market_imbalance_qty", "unpaired_qty"):
        frame.put(name, *_sizes(records[name]))
    frame.put("auction_type", _text(records["auction_type"]))
    frame.put("side", _SIDE[_codes(records["side"])]).put("unpaired_side", _SIDE[_codes(records["unpaired_side"])])
    for name in ("auction_status", "freeze_status", "num_extensions"):
        frame.put(name, records[name])
    frame.put("significant_imbalance", _text(records["significant_imbalance"]))
    return {"imbalance": frame.build()}


def _statistics(rtype, records, context, symbols):
    frame = _event(_Frame("statistics", len(records), context.venue, symbols), records)
    frame.put("stat_type", records["stat_type"]).put("price", records["price"].astype(np.int64))
    quantity = records["quantity"].astype(np.int64)
    undefined = quantity == UNDEF_STAT_QUANTITY[records.dtype["quantity"].itemsize]
    overflow = np.abs(quantity) > np.iinfo(np.int64).max // SIZE_SCALE
    frame.put("quantity", np.where(undefined | overflow, 0, quantity) * SIZE_SCALE, undefined | overflow)
    ts_ref, ts_ref_nulls = _timestamps(records["ts_ref"])
    frame.put("ts_ref", ts_ref, ts_ref_nulls)
    frame.put("update_action", records["update_action"]).put("stat_flags", records["stat_flags"])
    frame.put("channel_id", records["channel_id"])
    return {"statistics": frame.build()}


def _tristate(column: np.ndarray) -> pl.Series:
    return pl.Series([_TRISTATE.get(code) for code in _codes(column).tolist()], dtype=pl.Boolean)


def _status(rtype, records, context, symbols):
    frame = _event(_Frame("status", len(records), context.venue, symbols), records, sequence=False)
    for name in ("action", "reason", "trading_event"):
        frame.put(name, records[name])
    for name in ("is_trading", "is_quoting", "is_short_sell_restricted"):
        frame.put(name, _tristate(records[name]))
    return {"status": frame.build()}


_BUILDERS = {
    "mbo": _orders,
    "trade": _trade_records,
    "mbp1": _mbp1,
    "bbo": _bbo,
    "mbp10": _mbp10,
    "ohlcv": _bars,
    "definition": _definitions,
    "imbalance": _imbalance,
    "statistics": _statistics,
    "status": _status,
}

# Tables each record kind feeds (the decoder reports rows per table; the source op checks its table is fed).
KIND_TABLES = {
    "mbo": ("orders",), "trade": ("trades",), "mbp1": ("quotes", "trades"), "bbo": ("quotes",),
    "mbp10": ("book_deltas", "quotes", "trades"), "ohlcv": ("bars",), "definition": ("definitions",),
    "imbalance": ("imbalance",), "statistics": ("statistics",), "status": ("status",),
}
