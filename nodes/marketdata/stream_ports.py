"""The ports every normalized market-data source op shares, and normalized frames cut into port chunks.

A source op has one fixed set of ports (the op contract fixes them per op), whatever ``schema`` it is asked
for; the ports that do not belong to the chosen schema are 0. ``source.tardis`` and
``source.bybit_orderbook`` use these; ``source.binance_capture`` declares the same set (a test keeps them
equal), so a spec can swap one venue's source for another's without rewiring.

| schema | ports filled |
|---|---|
| book_deltas | side, price, size, action, flags, sequence |
| trades | side, price, size, trade_id |
| quotes | bid_px, ask_px, bid_sz, ask_sz, sequence |
| book_and_trades | side, price, size, action, flags, sequence, trade_id |

``book_and_trades`` is one stream of book deltas and trades in receive order (``merge_book_and_trades``), the
way a venue simulator needs them: the book rows as in ``book_deltas`` (``trade_id`` 0), each trade a row with
``action`` T (``ACTION_TRADE``), ``side`` the aggressor (1 buyer, -1 seller), ``price``, ``size`` the traded
quantity, ``trade_id``, ``flags`` ``F_LAST`` (a trade is a whole venue event) and ``sequence`` 0. Book
consumers (``book.l2``) leave T rows alone.

Nulls (no sequence, a trade id that is not an integer) become 0.
"""

from collections.abc import Iterator

import numpy as np
import polars as pl

from nodes.contract import I64
from nodes.errors import DataQualityError
from nodes.marketdata.schemas import ACTION_TRADE, F_LAST

PORTS = ("side", "price", "size", "action", "flags", "sequence", "trade_id", "bid_px", "ask_px", "bid_sz", "ask_sz")
SCHEMA_PORTS = {
    "book_deltas": ("side", "price", "size", "action", "flags", "sequence"),
    "trades": ("side", "price", "size", "trade_id"),
    "quotes": ("bid_px", "ask_px", "bid_sz", "ask_sz", "sequence"),
    "book_and_trades": ("side", "price", "size", "action", "flags", "sequence", "trade_id"),
}
OUTPUTS = {port: I64 for port in PORTS}


def port_chunks(frame: pl.DataFrame, schema: str, index: dict[str, int], max_rows: int,
                where: str = "") -> Iterator[dict[str, np.ndarray]]:
    """Cut one normalized ``frame`` of ``schema`` into source chunks of at most ``max_rows`` rows.

    ``index`` maps symbol → instrument index; a symbol not in it is an error (the plan sized its state for
    the announced instruments).

    Raises:
        DataQualityError: a row's symbol is not in ``index`` (``where`` names the file in the message).
    """
    n = frame.height
    if n == 0:
        return
    unknown = frame.filter(~pl.col("symbol").is_in(list(index)))["symbol"].unique(maintain_order=True)
    if len(unknown):
        raise DataQualityError(
            f"{where}: symbol {unknown[0]!r} was not announced (instruments: {', '.join(index)}); "
            "list every instrument in 'symbols'"
        )
    codes = frame["symbol"].replace_strict(index, return_dtype=pl.Int32).to_numpy()
    columns = {"ts_event": frame["ts_event"].to_numpy(), "ts_recv": frame["ts_recv"].to_numpy(), "instrument": codes}
    filled = SCHEMA_PORTS[schema]
    for port in PORTS:
        if port in filled:
            columns[port] = frame[port].fill_null(0).to_numpy().astype(np.int64, copy=False)
        else:
            columns[port] = np.zeros(n, np.int64)
    for start in range(0, n, max_rows):
        yield {k: v[start : start + max_rows] for k, v in columns.items()}


_MERGED_COLUMNS = ("ts_event", "ts_recv", "symbol", *SCHEMA_PORTS["book_and_trades"])


def merge_book_and_trades(book: pl.DataFrame, trades: pl.DataFrame, book_order: np.ndarray,
                          trade_order: np.ndarray) -> pl.DataFrame:
    """Merge a ``book_deltas`` and a ``trades`` frame into one ``book_and_trades`` frame sorted by ``ts_recv``.

    Ties on ``ts_recv`` break by the order keys (e.g. the capture line that made each row known); rows equal on
    both keep their frame's order, book rows first. Each frame must already be in its own order. Trades become
    rows with ``action`` T, ``flags`` ``F_LAST`` and ``sequence`` 0; book rows get ``trade_id`` 0.
    """
    n_book, n_trades = book.height, trades.height
    book_rows = book.select(
        "ts_event", "ts_recv", "symbol", "side", "price", "size", "action", "flags",
        pl.col("sequence").fill_null(0), trade_id=pl.lit(0, pl.Int64),
    )
    trade_rows = trades.select(
        "ts_event", "ts_recv", "symbol", "side", "price", "size",
        action=pl.lit(ACTION_TRADE, pl.UInt8), flags=pl.lit(F_LAST, pl.UInt8),
        sequence=pl.lit(0, pl.Int64), trade_id="trade_id",
    )
    merged = pl.concat([book_rows.select(_MERGED_COLUMNS), trade_rows.select(_MERGED_COLUMNS)], how="vertical")
    if n_book == 0 or n_trades == 0:
        return merged
    order = np.concatenate([np.asarray(book_order, np.int64), np.asarray(trade_order, np.int64)])
    position = np.arange(merged.height)  # rows equal on both keys keep the concatenation order (book first)
    rows = np.lexsort((position, order, merged["ts_recv"].to_numpy()))
    return merged.select(pl.all().gather(rows))
