"""The L2 levels of a tick stream as its original rows set them, and the rows that re-publish them.

Why: an L2 delta names its level by price. When a transform maps prices with a map that changes in time (a
shock that decays, a spread that widens for an hour), a level added under one map and removed under another
would be removed at a price where nothing rests, and the book the venue rebuilds would keep a ghost level.
So a market transform keeps its map constant between *epochs* and, when the epoch changes, re-publishes the
book: per instrument one clear row (R) and one add row (A) per level under the new map, flagged as a snapshot
(``F_SNAPSHOT``, ``F_LAST`` on each instrument's last row) — what a venue sends after a gap.

The levels are updated a whole segment at a time with numpy (the last size per level wins; size 0 removes
it; R clears the row's instrument), never row by row in Python.
"""

import numpy as np

from nodes.marketdata.schemas import ACTION_ADD, ACTION_CLEAR, F_LAST, F_SNAPSHOT, UNDEF_PRICE
from nodes.stress.streams import book_rows, clear_rows, valid_prices


class LevelBook:
    """Price levels of every instrument of one stream: parallel arrays sorted by (instrument, side, price)."""

    def __init__(self):
        self.instrument = np.empty(0, np.int64)
        self.side = np.empty(0, np.int64)
        self.price = np.empty(0, np.int64)
        self.size = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.price)

    def apply(self, rows: dict[str, np.ndarray]) -> None:
        """Apply the book rows (A, C, M set a level's size; R clears an instrument) of ``rows``, in order."""
        if "action" not in rows:
            return
        setting = book_rows(rows) & valid_prices(rows["price"]) & (np.abs(rows["side"]) == 1)
        clears = np.flatnonzero(clear_rows(rows))
        start = 0
        for clear in clears:
            self._set(rows, setting, start, clear)
            self._clear(int(rows["instrument"][clear]))
            start = clear + 1
        self._set(rows, setting, start, len(setting))

    def mid(self, instrument: int) -> float:
        """The instrument's mid price (NaN unless both sides have a level)."""
        mine = self.instrument == instrument
        bids = self.price[mine & (self.side == 1)]
        asks = self.price[mine & (self.side == -1)]
        if len(bids) == 0 or len(asks) == 0:
            return float("nan")
        return (float(bids.max()) + float(asks.min())) / 2.0

    def _set(self, rows: dict[str, np.ndarray], setting: np.ndarray, start: int, stop: int) -> None:
        chosen = np.flatnonzero(setting[start:stop]) + start
        if len(chosen) == 0:
            return
        instrument = np.concatenate([self.instrument, rows["instrument"][chosen].astype(np.int64)])
        side = np.concatenate([self.side, rows["side"][chosen].astype(np.int64)])
        price = np.concatenate([self.price, rows["price"][chosen].astype(np.int64)])
        size = np.concatenate([self.size, rows["size"][chosen].astype(np.int64)])
        order = np.lexsort((np.arange(len(price)), price, side, instrument))  # stable: later rows last
        instrument, side, price, size = instrument[order], side[order], price[order], size[order]
        last = np.ones(len(price), bool)
        last[:-1] = (instrument[1:] != instrument[:-1]) | (side[1:] != side[:-1]) | (price[1:] != price[:-1])
        keep = last & (size > 0)
        self.instrument, self.side, self.price, self.size = instrument[keep], side[keep], price[keep], size[keep]

    def _clear(self, instrument: int) -> None:
        keep = self.instrument != instrument
        self.instrument, self.side, self.price, self.size = (
            self.instrument[keep], self.side[keep], self.price[keep], self.size[keep])


def republish_rows(book: LevelBook, prices: np.ndarray, sizes: np.ndarray, ts_event: int, ts_recv: int,
                   template: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows that clear each instrument holding levels and add its levels back at ``prices``/``sizes`` (the
    book's levels under the new map, in the book's order), all stamped ``ts_event``/``ts_recv``; every column
    of ``template`` with its dtype, ports these rows do not use at 0."""
    instruments, first = np.unique(book.instrument, return_index=True)
    n = len(instruments) + len(book)
    # each instrument's block: its clear row, then its levels
    block_start = first + np.arange(len(instruments))
    is_clear = np.zeros(n, bool)
    is_clear[block_start] = True
    level_rows = np.flatnonzero(~is_clear)
    columns = {k: np.zeros(n, dtype=v.dtype) for k, v in template.items()}
    columns["ts_event"][:] = ts_event
    columns["ts_recv"][:] = ts_recv
    columns["instrument"][block_start] = instruments
    columns["instrument"][level_rows] = book.instrument
    columns["side"][level_rows] = book.side
    columns["price"][block_start] = UNDEF_PRICE
    columns["price"][level_rows] = prices
    columns["size"][level_rows] = sizes
    columns["action"][:] = ACTION_ADD
    columns["action"][block_start] = ACTION_CLEAR
    if "flags" in columns:
        columns["flags"][:] = F_SNAPSHOT
        block_end = np.append(block_start[1:], n) - 1
        columns["flags"][block_end] |= F_LAST
    return columns
