"""The L2 (market-by-price) book: one size per price level, set by ``book_deltas`` events."""

from pydantic import Field

from nodes.contract import I64, OpParams, StreamOp, step_helper
from nodes.marketdata.book.ladder import (
    ASK,
    BID,
    KEY,
    SIZE,
    best_level,
    close_level,
    empty_sides,
    is_crossed,
    locate,
    new_levels,
    open_level,
    row_of,
    side_bounds,
    valid_price,
    with_bounds,
)
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_FILL,
    ACTION_MODIFY,
    ACTION_NONE,
    ACTION_TRADE,
)


class BookL2Params(OpParams):
    max_levels: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="capacity of each side, in price levels; a level past it is counted in `overflow`",
    )


class BookL2(StreamOp):
    """Keep a price-level (L2) book per instrument from ``book_deltas`` and emit its top after every event.

    Inputs follow the normalized ``book_deltas`` schema: ``side`` (1 bid, -1 ask), ``price`` (int64, 1e-9
    units), ``size`` (the level's **new total**, 1e-9 units; 0 removes the level), ``action`` (ASCII code) and
    ``flags``. Actions A, C and M all set the level to ``size``; R clears both sides; T, F and N leave the book
    alone. Removing a level the book does not hold is a no-op (feeds such as Binance's diff stream send them
    routinely). ``flags`` are accepted for the schema's sake: read the book at ``F_LAST`` records, where a
    venue event is complete.

    Outputs (all int64): ``best_bid``/``best_ask`` (``UNDEF_PRICE`` when a side is empty), ``bid_size``/
    ``ask_size`` at the top (0 when empty), ``levels_bid``/``levels_ask`` (levels held), ``crossed`` (1 when
    best bid >= best ask), and two running counts: ``overflow`` — levels that did not fit in ``max_levels``
    (the worst level is pushed out, or the new level dropped if it is the worst; the top stays exact) — and
    ``inconsistent`` — events that could not be applied: a side other than ±1, an undefined price, a negative
    size, an unknown action code.

    State: one array of level keys and sizes per side (see ``nodes.marketdata.book.ladder``), 64 KiB per
    1,000 levels of capacity per instrument, and scalars; no allocation per event.

    Example::

        book: {op: book.l2, in: {side: deltas.side, price: deltas.price, size: deltas.size,
                                  action: deltas.action, flags: deltas.flags}, with: {max_levels: 4096}}
    """

    name = "book.l2"
    Params = BookL2Params
    inputs = {"side": I64, "price": I64, "size": I64, "action": I64, "flags": I64}
    outputs = {
        "best_bid": I64,
        "best_ask": I64,
        "bid_size": I64,
        "ask_size": I64,
        "levels_bid": I64,
        "levels_ask": I64,
        "crossed": I64,
        "overflow": I64,
        "inconsistent": I64,
    }

    @staticmethod
    def init(c, n_keys):
        max_levels = c[0]
        # overflow and inconsistent counts, (lo, n) of the bid and ask windows, then keys and sizes
        return (0, 0, *empty_sides(max_levels), new_levels(2, max_levels))

    @staticmethod
    def step(c, s, side, price, size, action, flags):
        overflow, inconsistent, lo_bid, n_bid, lo_ask, n_ask, levels = s
        sides = (lo_bid, n_bid, lo_ask, n_ask)
        if action == ACTION_CLEAR:
            sides = empty_sides(c[0])
        elif action == ACTION_ADD or action == ACTION_CANCEL or action == ACTION_MODIFY:
            if (side == 1 or side == -1) and valid_price(price) and size >= 0:
                sides, overflowed = set_level(levels, sides, row_of(side), c[0], price * side, size)
                overflow += overflowed
            else:
                inconsistent += 1
        elif action != ACTION_TRADE and action != ACTION_FILL and action != ACTION_NONE:
            inconsistent += 1
        lo_bid, n_bid, lo_ask, n_ask = sides
        best_bid, bid_size = best_level(levels, BID, lo_bid, n_bid)
        best_ask, ask_size = best_level(levels, ASK, lo_ask, n_ask)
        crossed = is_crossed(n_bid, n_ask, best_bid, best_ask)
        state = (overflow, inconsistent, lo_bid, n_bid, lo_ask, n_ask, levels)
        return state, best_bid, best_ask, bid_size, ask_size, n_bid, n_ask, crossed, overflow, inconsistent


@step_helper(_nrt=False)
def set_level(levels, sides, row, capacity, key, size):
    """Set the level ``key`` of ``row`` to ``size`` (0 removes it); return ``(sides, overflowed 0/1)``."""
    lo, n = side_bounds(sides, row)
    p = locate(levels, row, lo, n, key)
    if p < n and levels[KEY, row, lo + p] == key:
        if size == 0:
            lo, n = close_level(levels, row, lo, n, p)
            return with_bounds(sides, row, lo, n), 0
        levels[SIZE, row, lo + p] = size
        return sides, 0
    if size == 0:
        return sides, 0
    lo, n, slot, evicted, _ = open_level(levels, row, lo, n, p, capacity)
    if slot < 0:
        return sides, 1
    levels[KEY, row, slot] = key
    levels[SIZE, row, slot] = size
    return with_bounds(sides, row, lo, n), evicted
