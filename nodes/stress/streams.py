"""Which market streams a transform can rewrite, and which of their columns are prices and sizes.

Two kinds:

- **bars**: float ``open``, ``high``, ``low``, ``close``, ``volume`` (``nodes.sources.bars``);
- **ticks**: the normalized int64 ports in 1e-9 units (``nodes.marketdata.stream_ports``, DBN's tables):
  ``price``/``size``/``side`` rows — book deltas (``action`` A, C, M set a level, R clears the instrument's
  book) and trades (``action`` T, or a stream without ``action``) — and quotes (``bid_px``, ``ask_px``,
  ``bid_sz``, ``ask_sz``). A port a schema does not fill is 0 and stays 0; ``UNDEF_PRICE`` stays undefined.

L3 (``order_id``) streams are refused by market transforms: an order keeps its price until it is cancelled,
so a price map that changes in time cannot be applied order by order without rebuilding the order book.

**Direction** says which way a price moves when the spread widens: +1 for the ask side (an ask level, a
``ask_px``, a trade whose aggressor bought — it paid the ask — and a bar's high), -1 for the bid side, 0 for
prices on neither side (a bar's open and close, a trade without an aggressor).
"""

import numpy as np

from nodes.errors import SpecError
from nodes.marketdata.schemas import ACTION_ADD, ACTION_CANCEL, ACTION_CLEAR, ACTION_MODIFY, ACTION_TRADE, UNDEF_PRICE

BAR_PRICES = {"open": 0, "high": 1, "low": -1, "close": 0}  # column → direction
QUOTE_PRICES = {"bid_px": -1, "ask_px": 1}
QUOTE_SIZES = ("bid_sz", "ask_sz")
INT64_MIN = np.iinfo(np.int64).min


def stream_kind(chunk: dict[str, np.ndarray], transform: str) -> str:
    """``"bars"`` or ``"ticks"``: the kind of market stream ``chunk`` belongs to.

    Raises:
        SpecError: the stream is L3 or carries no prices a market transform knows.
    """
    if {"open", "high", "low", "close", "volume"} <= chunk.keys():
        return "bars"
    if "order_id" in chunk:
        raise SpecError.at(None, f"{transform} cannot rewrite an L3 (order_id) stream: an order keeps its price until "
                                 "it is cancelled; use a book_deltas, trades or quotes stream")
    if {"price", "side", "size"} <= chunk.keys() or {"bid_px", "ask_px"} <= chunk.keys():
        return "ticks"
    ports = ", ".join(k for k in chunk if k not in ("ts_event", "ts_recv", "instrument"))
    raise SpecError.at(None, f"{transform} rewrites bars (open/high/low/close/volume) or ticks (price/side/size or "
                             f"bid_px/ask_px); this stream's ports are: {ports}")


def book_rows(chunk: dict[str, np.ndarray]) -> np.ndarray:
    """Rows that set an L2 level (A, C, M)."""
    if "action" not in chunk:
        return np.zeros(len(chunk["ts_recv"]), bool)
    action = chunk["action"]
    return (action == ACTION_ADD) | (action == ACTION_CANCEL) | (action == ACTION_MODIFY)


def clear_rows(chunk: dict[str, np.ndarray]) -> np.ndarray:
    if "action" not in chunk:
        return np.zeros(len(chunk["ts_recv"]), bool)
    return chunk["action"] == ACTION_CLEAR


def trade_rows(chunk: dict[str, np.ndarray]) -> np.ndarray:
    """Rows that print a trade: action T, or every priced row of a stream without actions (a trades table)."""
    if "price" not in chunk:
        return np.zeros(len(chunk["ts_recv"]), bool)
    if "action" not in chunk:
        return valid_prices(chunk["price"])
    action = chunk["action"]
    # a normalized trades stream has every port of the venue's sources, with action 0
    return (action == ACTION_TRADE) | ((action == 0) & valid_prices(chunk["price"]))


def price_directions(chunk: dict[str, np.ndarray]) -> np.ndarray:
    """Direction of each row's ``price`` (see the module docstring)."""
    side = chunk["side"].astype(np.int64)
    book = book_rows(chunk)
    trades = trade_rows(chunk)
    return np.where(book, -side, np.where(trades, side, 0)).astype(np.int8)


def valid_prices(price: np.ndarray) -> np.ndarray:
    """Prices that are there: neither 0 (a port the schema does not fill) nor ``UNDEF_PRICE``."""
    return (price > 0) & (price != UNDEF_PRICE)


def rounded_prices(mapped: np.ndarray) -> np.ndarray:
    """Mapped tick prices back to int64 units, to the nearest unit (no tick grid is known here)."""
    return np.rint(mapped).astype(np.int64)


def rounded_sizes(mapped: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Mapped tick sizes to int64 units; a size that was there stays at least 1 unit, so that scaling a level
    down never turns an update into a removal (size 0 removes an L2 level)."""
    sizes = np.rint(mapped).astype(np.int64)
    return np.where(original > 0, np.maximum(sizes, 1), sizes)


def last_per_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys and, for each, its last value in row order.

    Example:
        >>> last_per_key(np.array([1, 0, 1]), np.array([5.0, 6.0, 7.0]))
        (array([0, 1]), array([6., 7.]))
    """
    if len(keys) == 0:
        return keys[:0], values[:0]
    reversed_keys = keys[::-1]
    unique, first_in_reversed = np.unique(reversed_keys, return_index=True)
    return unique, values[::-1][first_in_reversed]


def regime_times(ts_event: np.ndarray, carry: int) -> np.ndarray:
    """Market time of each row: the running maximum of ``ts_event`` (from ``carry``, the previous chunk's last).

    A stream sorted by ``ts_recv`` may carry a venue time a little out of order; a window chosen on the running
    maximum is entered and left once, so a map that changes at its edges changes once.
    """
    return np.maximum(np.maximum.accumulate(ts_event), carry)


def concat_chunks(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def slice_chunk(chunk: dict[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: v[start:stop] for k, v in chunk.items()}


def rows_count(chunk: dict[str, np.ndarray]) -> int:
    return len(chunk["ts_recv"])
