"""Which Tardis.dev CSV data type a file holds, read from its header.

Tardis' downloadable CSV files (comma-separated, LF, no quoting, ``.`` decimals, times in µs since the epoch,
UTC) start with a header naming their columns. Every type has ``exchange, symbol, timestamp,
local_timestamp``; ``timestamp`` is the exchange's time (Tardis falls back to ``local_timestamp`` when an
exchange gives none) and ``local_timestamp`` when Tardis received the message. The types decoded here:

| data type | type columns | schema |
|---|---|---|
| ``incremental_book_L2`` | ``is_snapshot, side, price, amount`` | book_deltas |
| ``book_snapshot_N`` (5, 25, any N) | ``asks[i].price, asks[i].amount, bids[i].price, bids[i].amount`` for i < N | book_deltas |
| ``trades`` | ``id, side, price, amount`` | trades |
| ``quotes`` | ``ask_amount, ask_price, bid_price, bid_amount`` | quotes |

Columns are found by name, so their order does not matter; extra columns are ignored (a file with the
quotes columns, such as ``book_ticker``, decodes as quotes). Non-goals: ``derivative_ticker``,
``liquidations`` and ``options_chain``: refused (liquidations have the trades columns, so a file is refused
as liquidations by its name, as Tardis names its files).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from nodes.errors import DataQualityError

COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
INCREMENTAL = ("is_snapshot", "side", "price", "amount")
TRADES = ("id", "side", "price", "amount")
QUOTES = ("ask_amount", "ask_price", "bid_price", "bid_amount")
_LEVEL = re.compile(r"^(asks|bids)\[(\d+)\]\.(price|amount)$")
_NOT_DECODED = {
    "funding_rate": "derivative_ticker", "open_interest": "derivative_ticker", "mark_price": "derivative_ticker",
    "strike_price": "options_chain", "option_type": "options_chain",
}


@dataclass(frozen=True)
class TardisLayout:
    """A file's data type: its name, how it decodes, the schema it gives and its header."""

    data_type: str  # incremental_book_L2, book_snapshot_25, trades, quotes
    kind: str  # incremental | snapshot | trades | quotes
    schema: str  # book_deltas | trades | quotes
    columns: tuple[str, ...]
    depth: int = 0  # levels per side of a book snapshot

    def level_columns(self, side: str, i: int) -> tuple[str, str]:
        return f"{side}[{i}].price", f"{side}[{i}].amount"


def detect_layout(header: list[str], path: str | Path) -> TardisLayout:
    """The layout of a file whose header is ``header``.

    Raises:
        DataQualityError: the header lacks the common columns, names a type not decoded here, or is not one
            of Tardis' (the message lists what was found).
    """
    names = tuple(h.strip() for h in header)
    found = set(names)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    missing = [c for c in COMMON if c not in found]
    if missing:
        raise DataQualityError(f"{path}: line 1: not a Tardis CSV header: missing {', '.join(missing)} (found {shown})")
    if len(found) != len(names):
        raise DataQualityError(f"{path}: line 1: a column is named twice ({shown})")
    if set(INCREMENTAL) <= found:
        return TardisLayout("incremental_book_L2", "incremental", "book_deltas", names)
    if set(TRADES) <= found:
        if "liquidations" in Path(path).name:  # same columns as trades; only the name tells them apart
            raise DataQualityError(f"{path}: Tardis liquidations files are not decoded (their rows are not trades)")
        return TardisLayout("trades", "trades", "trades", names)
    if set(QUOTES) <= found:
        return TardisLayout("quotes", "quotes", "quotes", names)
    levels = [m.groups() for m in map(_LEVEL.match, names) if m]
    if levels:
        depth = 1 + max(int(i) for _, i, _ in levels)
        expected = {f"{side}[{i}].{what}" for side in ("asks", "bids") for i in range(depth) for what in ("price", "amount")}
        if expected - found:
            absent = sorted(expected - found)[:4]
            raise DataQualityError(f"{path}: line 1: a book snapshot header without {', '.join(absent)} (depth {depth})")
        return TardisLayout(f"book_snapshot_{depth}", "snapshot", "book_deltas", names, depth)
    other = next((_NOT_DECODED[c] for c in names if c in _NOT_DECODED), None)
    what = f"Tardis {other} files are not decoded" if other else "not a Tardis data type decoded here"
    raise DataQualityError(
        f"{path}: line 1: {what}; decoded: incremental_book_L2, book_snapshot_N, trades, quotes (found {shown})"
    )
