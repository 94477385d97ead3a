"""Our orders: fixed slots (rows of ``ints``/``floats``), their lookups and the per-instrument summaries.

An order lives in one row from the moment the strategy sends it until the strategy has seen it end and no
request about it is in flight (``O_PENDING`` 0): only then can the row be reused, so a late cancel or modify
still finds its order. Capacity is ``max_orders`` rows for all instruments; a new order beyond it is rejected
locally with ``R_MAX_ORDERS``. Rows are taken lowest first and ``A_HI`` bounds the used ones, so scans over our
orders cost a few rows for a quoting strategy, never ``max_orders``.

Two summaries per instrument are kept up to date when an order changes (rare next to market events), so the
per-event path reads two numbers instead of scanning: at the venue, how many of our orders are live per side
and the most aggressive live price (``refresh_venue_view``); at the strategy, its best working prices and how
many orders it still considers open (``refresh_local_view``).
"""

from nodes.backtest.tick.codes import L_ACKED, L_FILLED, L_FREE, L_PARTIAL, X_LIVE
from nodes.backtest.tick.layout import (
    A_DONE_POS,
    A_END_ORDERS,
    A_FIRST_ORDER,
    A_HI,
    ACC,
    D_ID,
    D_STATE,
    DONE_RING,
    K_LIVE_ASK,
    K_LIVE_BID,
    K_LW_ASK,
    K_LW_BID,
    K_OPEN_L,
    K_OWN_ASK,
    K_OWN_BID,
    KEY0,
    O_ID,
    O_KEY,
    O_LPRICE,
    O_LSTATE,
    O_PRICE,
    O_PRIO,
    O_SIDE,
    O_XSTATE,
)
from nodes.contract import step_helper
from nodes.marketdata.schemas import UNDEF_PRICE

INT64_MIN = -9_223_372_036_854_775_808


@step_helper(_nrt=False)
def take_slot(ints, floats):
    """A free order row, cleared, or -1 when ``max_orders`` orders are in use."""
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_END_ORDERS]):
        if ints[r, O_LSTATE] == L_FREE:
            for j in range(ints.shape[1]):
                ints[r, j] = 0
            for j in range(floats.shape[1]):
                floats[r, j] = 0.0
            if r + 1 > ints[ACC, A_HI]:
                ints[ACC, A_HI] = r + 1
            return r
    return -1


@step_helper(_nrt=False)
def release_slot(ints, slot):
    """Free the row of an ended order (remembered in the ring of ended orders); lower ``A_HI`` past free rows."""
    ring = ints[ACC, A_END_ORDERS] + ints[ACC, A_DONE_POS] % DONE_RING
    ints[ACC, A_DONE_POS] += 1
    ints[ring, D_ID] = ints[slot, O_ID]
    ints[ring, D_STATE] = ints[slot, O_LSTATE]
    ints[slot, O_LSTATE] = L_FREE
    ints[slot, O_XSTATE] = 0
    hi = ints[ACC, A_HI]
    first = ints[ACC, A_FIRST_ORDER]
    while hi > first and ints[hi - 1, O_LSTATE] == L_FREE:
        hi -= 1
    ints[ACC, A_HI] = hi


@step_helper(_nrt=False)
def find_order(ints, order_id):
    """The row of our order ``order_id`` (still remembered), or -1."""
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if ints[r, O_LSTATE] != L_FREE and ints[r, O_ID] == order_id:
            return r
    return -1


@step_helper(_nrt=False)
def ended_state(ints, order_id):
    """The local state an order that left its slot ended in (filled, cancelled, rejected), 0 if not remembered."""
    end = ints[ACC, A_END_ORDERS]
    for i in range(DONE_RING):
        if ints[end + i, D_STATE] != L_FREE and ints[end + i, D_ID] == order_id:
            return ints[end + i, D_STATE]
    return L_FREE


@step_helper(_nrt=False)
def refresh_venue_view(ints, k):
    """Recount instrument ``k``'s live orders per side at the venue and their most aggressive prices."""
    live_bid = 0
    live_ask = 0
    own_bid = INT64_MIN
    own_ask = UNDEF_PRICE
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if ints[r, O_LSTATE] != L_FREE and ints[r, O_KEY] == k and ints[r, O_XSTATE] == X_LIVE:
            if ints[r, O_SIDE] == 1:
                live_bid += 1
                if ints[r, O_PRICE] > own_bid:
                    own_bid = ints[r, O_PRICE]
            else:
                live_ask += 1
                if ints[r, O_PRICE] < own_ask:
                    own_ask = ints[r, O_PRICE]
    row = KEY0 + k
    ints[row, K_LIVE_BID] = live_bid
    ints[row, K_LIVE_ASK] = live_ask
    ints[row, K_OWN_BID] = own_bid
    ints[row, K_OWN_ASK] = own_ask


@step_helper(_nrt=False)
def refresh_local_view(ints, k):
    """Recompute what the strategy knows of instrument ``k``: best working prices and open orders."""
    best_bid = UNDEF_PRICE
    best_ask = UNDEF_PRICE
    open_orders = 0
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        state = ints[r, O_LSTATE]
        if state == L_FREE or ints[r, O_KEY] != k or state >= L_FILLED:
            continue
        open_orders += 1
        if state == L_ACKED or state == L_PARTIAL:
            price = ints[r, O_LPRICE]
            if ints[r, O_SIDE] == 1:
                if best_bid == UNDEF_PRICE or price > best_bid:
                    best_bid = price
            elif best_ask == UNDEF_PRICE or price < best_ask:
                best_ask = price
    row = KEY0 + k
    ints[row, K_LW_BID] = best_bid
    ints[row, K_LW_ASK] = best_ask
    ints[row, K_OPEN_L] = open_orders


@step_helper(_nrt=False)
def next_live_at(ints, k, side, price, after_priority):
    """Our live order of instrument ``k`` on ``side`` at ``price`` with the smallest own priority above
    ``after_priority`` (first in the level's queue among ours), or -1."""
    found = -1
    best = 0
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if (ints[r, O_LSTATE] != L_FREE and ints[r, O_XSTATE] == X_LIVE and ints[r, O_KEY] == k
                and ints[r, O_SIDE] == side and ints[r, O_PRICE] == price):
            priority = ints[r, O_PRIO]
            if priority > after_priority and (found < 0 or priority < best):
                found = r
                best = priority
    return found


@step_helper(_nrt=False)
def most_aggressive_live(ints, k, side):
    """Our live order of instrument ``k`` on ``side`` with the best price (then the earliest), or -1."""
    found = -1
    best_price = 0
    best_priority = 0
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if (ints[r, O_LSTATE] != L_FREE and ints[r, O_XSTATE] == X_LIVE and ints[r, O_KEY] == k
                and ints[r, O_SIDE] == side):
            price = ints[r, O_PRICE] * side  # larger is more aggressive on both sides
            priority = ints[r, O_PRIO]
            if found < 0 or price > best_price or (price == best_price and priority < best_priority):
                found = r
                best_price = price
                best_priority = priority
    return found
