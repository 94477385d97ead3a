"""A price ladder: the levels of a book as sorted arrays that grow at either end, best level last.

Both sides of a book share one int64 array ``levels[field, row, slot]`` of shape ``(fields, 2, 2 × max_levels)``:
fields ``KEY``, ``SIZE`` (and ``COUNT`` in an L3 book), row 0 the bids and row 1 the asks. A level is stored
under its **key** ``price × side`` (side = 1 bid, -1 ask), so on both rows the keys ascend and the best level
(highest bid, lowest ask) is the last one. A side's levels occupy the slots ``[lo, lo + n)`` of its row; the
four numbers ``sides = (lo_bid, n_bid, lo_ask, n_ask)`` are scalar state threaded through the step (kept in
registers) and every helper returns them updated. The window starts in the middle of the row, so
a new level moves the levels on its **shorter** side: one above the touch shifts the few levels above it, and
one below the deepest level (a snapshot arrives best first) shifts none. When the window reaches an end of
the row it is moved back to the middle once (amortized O(1)). Finding a level scans the top few levels from
the touch, checks the deepest level, then binary-searches.

Why sorted arrays and not hftbacktest's price-indexed vector: hftbacktest offers a hash map of levels, a
B-tree and a "region of interest" vector indexed by price tick around the mid. The tick-indexed vector gives
O(1) updates but needs the tick size as a parameter, drops levels outside its window, and must scan for the
next best price when the best level empties. Sorted arrays need no tick size (prices are any int64: spreads
and calendar legs can be negative), keep every level up to the capacity, give the best level, the number of
levels and the top N for free, and on real feeds (most updates within a few levels of the touch, snapshots
built from the top down) cost a handful of loads and stores per update. An update in the middle of a deep
book costs a binary search and a shift of up to half the levels.

Capacity: a side holds at most ``max_levels`` levels. A new level on a full side pushes out the worst level if
the new one is better, or is dropped if it is the worst; either way the caller counts one overflow. Levels
near the top stay exact; the deep end of an overflowed book is incomplete.

All functions are ``step_helper``: plain Python on ``cpu``, compiled into the step on ``numba``. None allocates,
so the book's helpers are compiled without NRT reference counting (``_nrt=False``): numba otherwise increments
and decrements the arrays' reference counts around each helper call, which cost more than the book update
itself (a top-of-book read measured 19 M/s with them, 330 M/s without). For the same reason the whole book
lives in as few arrays as possible: each array in a state tuple costs an incref and a decref per event in a
generated loop. Helpers are not inlined at numba IR level (``inline="always"``): tried on ``apply_mbo``, numba
0.68 produced a wrong book (a partial cancel was lost; the cpu/numba parity test caught it).
"""

import numpy as np

from nodes.contract import step_helper
from nodes.marketdata.schemas import UNDEF_PRICE

BID = 0
ASK = 1
KEY = 0
SIZE = 1
COUNT = 2

_INT64_MIN = -9_223_372_036_854_775_808
# Levels compared one by one from the top before the deepest level and a binary search: most updates on real
# feeds land within a few levels of the touch, where a short scan beats a binary search's branches.
_TOP_SCAN = 8


def new_levels(fields: int, max_levels: int) -> np.ndarray:
    """Empty level storage for both sides: shape ``(fields, 2, 2 × max_levels)``."""
    return np.zeros((fields, 2, 2 * max_levels), np.int64)


@step_helper(_nrt=False)
def empty_sides(max_levels):
    """``(lo_bid, n_bid, lo_ask, n_ask)`` of an empty book: no levels, windows starting mid-row."""
    return (max_levels, 0, max_levels, 0)


@step_helper(_nrt=False)
def row_of(side):
    """The ladder row of a side: 0 for a bid (side 1), 1 for an ask (side -1)."""
    return BID if side == 1 else ASK


@step_helper(_nrt=False)
def sign_of(row):
    """The side (1 bid, -1 ask) of a ladder row: a level's price is its key times this."""
    return 1 if row == BID else -1


@step_helper(_nrt=False)
def valid_price(price):
    """Whether ``price`` can key a level: not ``UNDEF_PRICE`` and not int64's minimum (its key would overflow)."""
    return price != UNDEF_PRICE and price != _INT64_MIN


@step_helper(_nrt=False)
def side_bounds(sides, row):
    """``(lo, n)`` of ``row`` from ``sides = (lo_bid, n_bid, lo_ask, n_ask)``."""
    if row == BID:
        return sides[0], sides[1]
    return sides[2], sides[3]


@step_helper(_nrt=False)
def with_bounds(sides, row, lo, n):
    """``sides`` with ``row``'s bounds replaced by ``(lo, n)``."""
    if row == BID:
        return (lo, n, sides[2], sides[3])
    return (sides[0], sides[1], lo, n)


@step_helper(_nrt=False)
def locate(levels, row, lo, n, key):
    """Return the first p in [0, n] with ``levels[KEY, row, lo + p] >= key``: where ``key`` is or would go."""
    p = n
    stop = n - _TOP_SCAN
    if stop < 0:
        stop = 0
    while p > stop and levels[KEY, row, lo + p - 1] >= key:
        p -= 1
    if p > stop or p == 0:
        return p
    if key <= levels[KEY, row, lo]:
        return 0
    low = 1
    high = stop
    while low < high:
        middle = (low + high) >> 1
        if levels[KEY, row, lo + middle] < key:
            low = middle + 1
        else:
            high = middle
    return low


@step_helper(_nrt=False)
def open_level(levels, row, lo, n, p, capacity):
    """Free a slot for a new level at lower bound p of ``row`` (every field), shifting the shorter side.

    Returns ``(lo, n, slot, evicted, evicted_key)`` after the change: ``slot`` is where the caller writes the
    new level's fields, -1 when the side is full and the new level would be the worst (nothing changed);
    ``evicted`` is 1 when the side was full and its worst level, key ``evicted_key``, was pushed out.
    """
    length = levels.shape[2]
    evicted = 0
    evicted_key = 0
    if n == capacity:
        if p == 0:
            return lo, n, -1, 0, 0
        evicted_key = levels[KEY, row, lo]
        lo += 1
        n -= 1
        p -= 1
        evicted = 1
    down = p < n - p
    to_lo = lo
    if (down and lo == 0) or (not down and lo + n == length):
        to_lo = (length - n) // 2  # the window hit an end of the row: move it back to the middle
    for f in range(levels.shape[0]):
        if to_lo < lo:
            for i in range(n):
                levels[f, row, to_lo + i] = levels[f, row, lo + i]
        elif to_lo > lo:
            for i in range(n - 1, -1, -1):
                levels[f, row, to_lo + i] = levels[f, row, lo + i]
        if down:
            for i in range(to_lo - 1, to_lo - 1 + p):
                levels[f, row, i] = levels[f, row, i + 1]
        else:
            i = to_lo + n
            while i > to_lo + p:
                levels[f, row, i] = levels[f, row, i - 1]
                i -= 1
    new_lo = to_lo - 1 if down else to_lo
    return new_lo, n + 1, new_lo + p, evicted, evicted_key


@step_helper(_nrt=False)
def close_level(levels, row, lo, n, p):
    """Remove level p of ``row`` (every field), shifting the shorter side over it; return the new ``(lo, n)``."""
    down = p < n - 1 - p
    for f in range(levels.shape[0]):
        if down:
            i = lo + p
            while i > lo:
                levels[f, row, i] = levels[f, row, i - 1]
                i -= 1
        else:
            for i in range(lo + p, lo + n - 1):
                levels[f, row, i] = levels[f, row, i + 1]
    if down:
        return lo + 1, n - 1
    return lo, n - 1


@step_helper(_nrt=False)
def best_level(levels, row, lo, n):
    """The best level of a side as ``(price, size)``; ``(UNDEF_PRICE, 0)`` when the side is empty."""
    if n == 0:
        return UNDEF_PRICE, 0
    return levels[KEY, row, lo + n - 1] * sign_of(row), levels[SIZE, row, lo + n - 1]


@step_helper(_nrt=False)
def is_crossed(n_bid, n_ask, best_bid, best_ask):
    """1 when both sides have levels and the best bid is at or above the best ask, else 0."""
    if n_bid > 0 and n_ask > 0 and best_bid >= best_ask:
        return 1
    return 0


def side_levels(levels: np.ndarray, row: int, lo: int, n: int) -> list[dict]:
    """One side's levels, best first, as ``{"price", "size", "orders"}`` dicts of Python ints (orders None
    without a COUNT field). Python only: for replay results and tests."""
    sign = 1 if row == BID else -1
    counted = levels.shape[0] > COUNT
    return [
        {
            "price": int(levels[KEY, row, i]) * sign,
            "size": int(levels[SIZE, row, i]),
            "orders": int(levels[COUNT, row, i]) if counted else None,
        }
        for i in range(lo + n - 1, lo - 1, -1)
    ]
