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

Nulls (no sequence, a trade id that is not an integer) become 0.
"""

from collections.abc import Iterator

import numpy as np
import polars as pl

from nodes.contract import I64
from nodes.errors import DataQualityError

PORTS = ("side", "price", "size", "action", "flags", "sequence", "trade_id", "bid_px", "ask_px", "bid_sz", "ask_sz")
SCHEMA_PORTS = {
    "book_deltas": ("side", "price", "size", "action", "flags", "sequence"),
    "trades": ("side", "price", "size", "trade_id"),
    "quotes": ("bid_px", "ask_px", "bid_sz", "ask_sz", "sequence"),
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
