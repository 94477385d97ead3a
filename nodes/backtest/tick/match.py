"""Matching against the book: taker walks, resting orders the book crosses, and trades through our price.

All three leave liquidity accounted: a taker takes what each level offers (``book.available``) level by level,
best first, each level at its own price, and the level remembers it (``book.consume``); a resting order crossed
by the opposite side takes the
opposite size at or through its price the same way (at its own price: it was there first); a trade printed
through our price fills our order in full at our price (an aggressor cannot reach a worse price while a better
one rests). Our own orders never match each other (no self-trade: our takers see only the data's book).
"""

from nodes.backtest.tick.book import available, consume
from nodes.backtest.tick.codes import MAKER, TAKER
from nodes.backtest.tick.fills import venue_fill
from nodes.backtest.tick.layout import (
    A_FIRST_ORDER,
    A_HI,
    ACC,
    K_LIVE_ASK,
    K_LIVE_BID,
    K_OWN_ASK,
    K_OWN_BID,
    KEY,
    KEY0,
    O_AHEAD,
    O_KEY,
    O_LEAVES,
    O_LSTATE,
    O_PRICE,
    O_SIDE,
    O_XSTATE,

)
from nodes.backtest.tick.orders import most_aggressive_live, refresh_venue_view
from nodes.backtest.tick.codes import L_FREE, X_LIVE
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import ASK, BID, side_bounds, sign_of


@step_helper(_nrt=False)
def crosses(opposite_row, level_price, limit):
    """Whether a level of ``opposite_row`` at ``level_price`` is marketable for an order limited at ``limit``."""
    if opposite_row == ASK:
        return level_price <= limit
    return level_price >= limit


@step_helper(_nrt=False)
def crossing_size(levels, sides, opposite_row, limit, limited, wanted):
    """Size an order on the other side could take now at levels crossing ``limit`` (all
    levels when not ``limited``), best first; counting stops once it reaches ``wanted``."""
    lo, n = side_bounds(sides, opposite_row)
    sign = sign_of(opposite_row)
    total = 0
    i = lo + n - 1
    while i >= lo and total < wanted:
        if limited and not crosses(opposite_row, levels[KEY, opposite_row, i] * sign, limit):
            break
        offered = available(levels, opposite_row, i)
        if offered > 0:
            total += offered
        i -= 1
    return total


@step_helper(_nrt=False)
def take_liquidity(c, ints, floats, responses, log_ints, log_floats, levels, sides, slot, limit, limited, snap,
                   exchange_ns):
    """Fill the order in ``slot`` as a taker, level by level from the best, while levels cross ``limit``.

    Returns the order's leaves afterwards.
    """
    side = ints[slot, O_SIDE]
    opposite_row = ASK if side == 1 else BID
    sign = sign_of(opposite_row)
    lo, n = side_bounds(sides, opposite_row)
    leaves = ints[slot, O_LEAVES]
    walked = 0
    i = lo + n - 1
    while leaves > 0 and i >= lo:
        price = levels[KEY, opposite_row, i] * sign
        if limited and not crosses(opposite_row, price, limit):
            break
        offered = available(levels, opposite_row, i)
        if offered > 0:
            take = offered if offered < leaves else leaves
            consume(levels, opposite_row, i, take)
            walked += 1
            leaves = venue_fill(c, ints, floats, responses, log_ints, log_floats, slot, price, take, TAKER, walked,
                                0, snap, exchange_ns)
        i -= 1
    return leaves


@step_helper(_nrt=False)
def fill_crossed(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, side, snap, exchange_ns):
    """Fill our live orders on ``side`` of instrument ``k`` that the opposite side of the book now crosses.

    Most aggressive first; each takes the opposite size at or through its price and fills at its own price as
    a maker. Stops at the first order nothing crosses any more.
    """
    opposite_row = ASK if side == 1 else BID
    sign = sign_of(opposite_row)
    changed = False
    for _ in range(ints.shape[0]):
        slot = most_aggressive_live(ints, k, side)
        if slot < 0:
            break
        own_price = ints[slot, O_PRICE]
        leaves = ints[slot, O_LEAVES]
        lo, n = side_bounds(sides, opposite_row)
        taken = 0
        i = lo + n - 1
        while i >= lo and taken < leaves:
            if not crosses(opposite_row, levels[KEY, opposite_row, i] * sign, own_price):
                break
            offered = available(levels, opposite_row, i)
            if offered > 0:
                take = offered if offered < leaves - taken else leaves - taken
                consume(levels, opposite_row, i, take)
                taken += take
            i -= 1
        if taken == 0:
            break
        venue_fill(c, ints, floats, responses, log_ints, log_floats, slot, own_price, taken, MAKER, 0,
                   ints[slot, O_AHEAD], snap, exchange_ns)
        changed = True
        if taken < leaves:
            break
    if changed:
        refresh_venue_view(ints, k)


@step_helper(_nrt=False)
def may_cross(ints, k, side, level_price):
    """Whether a level at ``level_price`` on the side opposite ``side`` can cross one of our live orders."""
    row = KEY0 + k
    if side == 1:
        return ints[row, K_LIVE_BID] > 0 and ints[row, K_OWN_BID] >= level_price
    return ints[row, K_LIVE_ASK] > 0 and ints[row, K_OWN_ASK] <= level_price


@step_helper(_nrt=False)
def fill_traded_through(c, ints, floats, responses, log_ints, log_floats, k, trade_price, snap, exchange_ns):
    """Fill in full, at their own price, our live bids above and asks below a trade printed at ``trade_price``."""
    row = KEY0 + k
    through_bids = ints[row, K_LIVE_BID] > 0 and ints[row, K_OWN_BID] > trade_price
    through_asks = ints[row, K_LIVE_ASK] > 0 and ints[row, K_OWN_ASK] < trade_price
    if not (through_bids or through_asks):
        return
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if ints[r, O_LSTATE] == L_FREE or ints[r, O_XSTATE] != X_LIVE or ints[r, O_KEY] != k:
            continue
        price = ints[r, O_PRICE]
        side = ints[r, O_SIDE]
        if (side == 1 and price > trade_price) or (side == -1 and price < trade_price):
            venue_fill(c, ints, floats, responses, log_ints, log_floats, r, price, ints[r, O_LEAVES], MAKER, 0,
                       ints[r, O_AHEAD], snap, exchange_ns)
    refresh_venue_view(ints, k)
