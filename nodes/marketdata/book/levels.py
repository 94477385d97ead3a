"""The levels of an L3 book: a price ladder (see ``ladder``) whose levels carry a total size and an order count.

Each level's size is the sum of its resting orders' sizes and its count their number, so the L3 book's
levels are exactly the market-by-price (L2) book the orders imply. ``levels`` has the fields KEY, SIZE and
COUNT; ``sides = (lo_bid, n_bid, lo_ask, n_ask)`` goes in and comes back updated.
"""

from nodes.contract import step_helper
from nodes.marketdata.book.ladder import COUNT, KEY, SIZE, close_level, locate, open_level, side_bounds, with_bounds
from nodes.marketdata.schemas import ACTION_ADD, ACTION_CANCEL, ACTION_MODIFY


@step_helper(_nrt=False)
def level_join(levels, sides, row, capacity, key, size):
    """Add one order of ``size`` to the level ``key`` of ``row``, creating the level if needed.

    Returns ``(sides, action, evicted, evicted_key)``: ``action`` is A (new level), M (existing level) or 0
    when the side is full and the level would be the worst (nothing changed; the caller counts an overflow);
    ``evicted`` is 1 when the side was full and its worst level, ``evicted_key``, was pushed out.
    """
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        levels[SIZE, row, lo + p] += size
        levels[COUNT, row, lo + p] += 1
        return sides, ACTION_MODIFY, 0, key
    lo, n, slot, evicted, evicted_key = open_level(levels, row, lo, n, p, capacity)
    if slot < 0:
        return sides, 0, 0, key
    levels[KEY, row, slot] = key
    levels[SIZE, row, slot] = size
    levels[COUNT, row, slot] = 1
    return with_bounds(sides, row, lo, n), ACTION_ADD, evicted, evicted_key


@step_helper(_nrt=False)
def level_take(levels, sides, row, key, size, orders):
    """Take ``size`` (negative adds) and ``orders`` orders off the level ``key``; drop it when no order is left.

    Returns ``(sides, action)``: C when the level is gone, M when it changed, 0 when the book holds no such level.
    """
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p >= n or levels[KEY, row, lo + p] != key:
        return sides, 0
    levels[SIZE, row, lo + p] -= size
    levels[COUNT, row, lo + p] -= orders
    if levels[COUNT, row, lo + p] > 0:
        return sides, ACTION_MODIFY
    lo, n = close_level(levels, row, lo, n, p)
    return with_bounds(sides, row, lo, n), ACTION_CANCEL


@step_helper(_nrt=False)
def level_at(levels, sides, row, key):
    """The level ``key`` of ``row`` as ``(size, count)``; ``(0, 0)`` when the book holds no such level."""
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        return levels[SIZE, row, lo + p], levels[COUNT, row, lo + p]
    return 0, 0
