"""The normalized market-data schemas: one table layout per kind of event, shared by every decoder.

Tick-path prices and sizes are exact integers: int64 in units of 1e-9 (``PRICE_SCALE``/``SIZE_SCALE``), the
way DBN stores prices, so 0.1 + 0.2 never drifts and a book's level sizes add up exactly. ``UNDEF_PRICE``
(int64 max, as DBN) marks a missing price. Bars are analytics and stay float64.

Every event row has ``ts_event`` (venue time) and ``ts_recv`` (when we got it), int64 ns UTC, and ``venue``
and ``symbol``. ``sequence`` is the venue's sequence or update id where it has one (null otherwise).

Codes:
- ``side``: 1 = bid / buyer-initiated, -1 = ask / seller-initiated, 0 = none or unknown.
- ``action`` (orders, book_deltas): the ASCII code of DBN's action letters — A add, C cancel, M modify,
  R clear book, T trade, F fill, N none.
- ``flags``: bit values below; ``F_LAST`` marks the last record of one venue event (apply the book, then read
  it), ``F_SNAPSHOT`` a record that belongs to a snapshot rather than an incremental update.
"""

import polars as pl

PRICE_SCALE = 1_000_000_000
SIZE_SCALE = 1_000_000_000
UNDEF_PRICE = 9_223_372_036_854_775_807

F_LAST = 1 << 7
F_TOB = 1 << 6
F_SNAPSHOT = 1 << 5
F_MBP = 1 << 4
F_BAD_TS_RECV = 1 << 3
F_MAYBE_BAD_BOOK = 1 << 2

ACTION_ADD, ACTION_CANCEL, ACTION_MODIFY, ACTION_CLEAR, ACTION_TRADE, ACTION_FILL, ACTION_NONE = (
    ord(c) for c in "ACMRTFN"
)

_EVENT = {
    "ts_event": pl.Int64,
    "ts_recv": pl.Int64,
    "venue": pl.String,
    "symbol": pl.String,
    "sequence": pl.Int64,
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "trades": {**_EVENT, "price": pl.Int64, "size": pl.Int64, "side": pl.Int8, "trade_id": pl.Int64},
    "quotes": {**_EVENT, "bid_px": pl.Int64, "ask_px": pl.Int64, "bid_sz": pl.Int64, "ask_sz": pl.Int64},
    # L2 by price level: ``size`` is the level's new total (0 removes the level)
    "book_deltas": {**_EVENT, "side": pl.Int8, "price": pl.Int64, "size": pl.Int64, "action": pl.UInt8, "flags": pl.UInt8},
    # L3 by order id: DBN MBO semantics
    "orders": {
        **_EVENT, "order_id": pl.UInt64, "side": pl.Int8, "price": pl.Int64, "size": pl.Int64,
        "action": pl.UInt8, "flags": pl.UInt8,
    },
    "bars": {**_EVENT, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64},
    "definitions": {
        "ts_event": pl.Int64, "ts_recv": pl.Int64, "venue": pl.String, "symbol": pl.String,
        "instrument_id": pl.Int64, "instrument_class": pl.String, "currency": pl.String,
        "tick_size": pl.Int64, "lot_size": pl.Int64, "multiplier": pl.Float64, "expiration": pl.Int64,
    },
    # Databento's auction imbalance, venue statistics and trading status records; codes as DBN defines them
    # (side coded like every side; stat_type/update_action/status codes are databento_dbn's enums).
    "imbalance": {
        **_EVENT,
        "ref_price": pl.Int64, "auction_time": pl.Int64, "cont_book_clr_price": pl.Int64,
        "auct_interest_clr_price": pl.Int64, "ssr_filling_price": pl.Int64, "ind_match_price": pl.Int64,
        "upper_collar": pl.Int64, "lower_collar": pl.Int64,
        "paired_qty": pl.Int64, "total_imbalance_qty": pl.Int64, "market_imbalance_qty": pl.Int64,
        "unpaired_qty": pl.Int64,
        "auction_type": pl.String, "side": pl.Int8, "auction_status": pl.UInt8, "freeze_status": pl.UInt8,
        "num_extensions": pl.UInt8, "unpaired_side": pl.Int8, "significant_imbalance": pl.String,
    },
    "statistics": {
        **_EVENT,
        "stat_type": pl.UInt16, "price": pl.Int64, "quantity": pl.Int64, "ts_ref": pl.Int64,
        "update_action": pl.UInt8, "stat_flags": pl.UInt8, "channel_id": pl.UInt16,
    },
    "status": {
        **_EVENT,
        "action": pl.UInt16, "reason": pl.UInt16, "trading_event": pl.UInt16,
        "is_trading": pl.Boolean, "is_quoting": pl.Boolean, "is_short_sell_restricted": pl.Boolean,
    },
}


def empty(schema: str) -> pl.DataFrame:
    """An empty frame of a normalized schema."""
    return pl.DataFrame(schema=SCHEMAS[schema])


def conform(frame: pl.DataFrame, schema: str) -> pl.DataFrame:
    """Cast ``frame`` to the schema's columns and order; extra columns are an error (they would be lost)."""
    expected = SCHEMAS[schema]
    extra = [c for c in frame.columns if c not in expected]
    missing = [c for c in expected if c not in frame.columns]
    if extra or missing:
        raise ValueError(f"{schema}: columns do not match the schema (missing {missing}, extra {extra})")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in expected.items()])
