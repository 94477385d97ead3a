"""The venue's view of each instrument's book: the data's levels less what our takers took from them.

A ladder (``nodes.marketdata.book.ladder``) per instrument. L2: the fields KEY and SIZE, exactly ``book.l2``'s
(a level update costs what it costs there: the ladder shifts every field of the levels it moves, so every
field more would cost a shift more). L3: KEY, SIZE, COUNT (``mbo_rules`` keeps them the exact sum of the
resting orders) and CONSUMED.

Liquidity our takers take is remembered per level until the data next touches the level, so two of our orders
can never take the same displayed size: on L2 it is taken off SIZE (the data's next update of the level sets
SIZE again, which forgets it); on L3 it is counted in CONSUMED (SIZE must stay the orders' sum), reset when a
record changes the level. ``available`` is what a level offers now either way.
"""

from nodes.backtest.tick.layout import CONSUMED, K_LO_ASK, K_LO_BID, K_N_ASK, K_N_BID, KEY, KEY0, SIZE
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import (
    ASK,
    BID,
    best_level,
    locate,
    open_level,
    side_bounds,
    with_bounds,
)


@step_helper(_nrt=False)
def load_sides(ints, k):
    """``(lo_bid, n_bid, lo_ask, n_ask)`` of instrument ``k``'s ladder."""
    r = KEY0 + k
    return ints[r, K_LO_BID], ints[r, K_N_BID], ints[r, K_LO_ASK], ints[r, K_N_ASK]


@step_helper(_nrt=False)
def store_sides(ints, k, sides):
    r = KEY0 + k
    ints[r, K_LO_BID] = sides[0]
    ints[r, K_N_BID] = sides[1]
    ints[r, K_LO_ASK] = sides[2]
    ints[r, K_N_ASK] = sides[3]


@step_helper(_nrt=False)
def available(levels, row, i):
    """What the level in slot ``i`` of ``row`` offers a taker now."""
    if levels.shape[0] > CONSUMED:
        return levels[SIZE, row, i] - levels[CONSUMED, row, i]
    return levels[SIZE, row, i]


@step_helper(_nrt=False)
def consume(levels, row, i, qty):
    """Our taker took ``qty`` from the level in slot ``i`` of ``row``: it is gone until the data says otherwise."""
    if levels.shape[0] > CONSUMED:
        levels[CONSUMED, row, i] += qty
    else:
        levels[SIZE, row, i] -= qty


@step_helper(_nrt=False)
def level_slot(levels, sides, row, price):
    """The slot of the level at ``price`` on ``row`` (0 bid, 1 ask), or -1 when the book has none."""
    lo, n = side_bounds(sides, row)
    key = price if row == BID else -price
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        return lo + p
    return -1


@step_helper(_nrt=False)
def snapshot(levels, sides):
    """``(best_bid, best_ask, bid_size, ask_size)`` of the venue's book (UNDEF_PRICE / 0 when a side is empty)."""
    best_bid, bid_size = best_level(levels, BID, sides[0], sides[1])
    best_ask, ask_size = best_level(levels, ASK, sides[2], sides[3])
    return best_bid, best_ask, bid_size, ask_size


@step_helper(_nrt=False)
def set_level_l2(levels, sides, row, capacity, key, size):
    """Set an L2 level to the data's new total ``size`` (0 empties it).

    An emptied level below the best one stays in the ladder with size 0 (a tombstone) instead of being removed:
    a price that empties and fills again, as prices near the touch do all day, then costs a store instead of
    two shifts of every level on the shorter side. The best level of a side is never a tombstone the data
    left (emptying it removes it and any tombstones under it), so the top of the book reads as if empty levels
    were removed; a side full of levels pushes out its worst level, tombstones first as they are the deepest
    rarely. Returns ``(sides, overflowed, old_size)``: ``overflowed`` 1 when a level with size was lost.
    """
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        old_size = levels[SIZE, row, lo + p]
        levels[SIZE, row, lo + p] = size
        if size == 0 and p == n - 1:
            while n > 0 and levels[SIZE, row, lo + n - 1] == 0:
                n -= 1  # the best level and the tombstones under it leave the top: nothing moves
            return with_bounds(sides, row, lo, n), 0, old_size
        return sides, 0, old_size
    if size == 0:
        return sides, 0, 0
    lost = 1 if n == capacity and p > 0 and levels[SIZE, row, lo] > 0 else 0
    lo, n, slot, evicted, _ = open_level(levels, row, lo, n, p, capacity)
    if slot < 0:
        return sides, 1, 0
    levels[KEY, row, slot] = key
    levels[SIZE, row, slot] = size
    return with_bounds(sides, row, lo, n), lost, 0


@step_helper(_nrt=False)
def forget_consumed(levels, sides, row, key):
    """An L3 record touched the level ``key`` of ``row``: what our takers consumed there is forgotten."""
    if row < 0:
        return
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        levels[CONSUMED, row, lo + p] = 0


@step_helper(_nrt=False)
def queue_at_arrival(levels, sides, row, price):
    """The size ahead of an order joining ``price`` on ``row`` now: the level's size (L3: exactly the orders
    resting there)."""
    slot = level_slot(levels, sides, row, price)
    if slot < 0:
        return 0
    return levels[SIZE, row, slot]


@step_helper(_nrt=False)
def mid_of(levels, sides):
    """The mid in price units (float), or NaN when a side is empty."""
    if sides[1] == 0 or sides[3] == 0:
        return float("nan")
    best_bid, _ = best_level(levels, BID, sides[0], sides[1])
    best_ask, _ = best_level(levels, ASK, sides[2], sides[3])
    return best_bid / 2e9 + best_ask / 2e9  # halves first: the sum of two int64 prices could overflow
