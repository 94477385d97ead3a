"""Queue position on an L3 (MBO) book: exact FIFO by order id.

When our order takes its place at a level it remembers the book's priority counter (``O_MARK``): the market
orders resting there then (priority below the mark) are ahead of it, everything that joins later is behind,
and its queue ahead is exactly their size. Each MBO record is applied by ``mbo_rules`` to the venue's book;
before that, the order it refers to is looked up, so that:

- a cancel (C) of an order ahead of ours advances ours by exactly the size cancelled;
- a modify (M) of an order ahead: a size-down advances ours by the decrease; a price change or a size-up sends
  it behind ours (it lost its priority), so ours advances by its whole size;
- a fill (F) of an order **behind** ours at our price means the aggressor reached past us: ours fills first,
  up to the fill's size (at our price, as a maker). Fills of orders ahead are followed in DBN by their C/M,
  which advance us; fills and trades (T) through our price fill us in full;
- the opposite side adding or raising a level at or through our price crosses us (``match.fill_crossed``).

A clear (R, e.g. before a snapshot) loses the book's priorities: our orders re-take their places at the next
record flagged ``F_LAST`` (the snapshot complete) with everything then resting at their level ahead of them.
T records give trade-throughs only: at our own price the F records of the resting orders say exactly who
was filled (DBN's GLBX MBO feeds carry both).
"""

from nodes.backtest.tick.book import forget_consumed, load_sides, queue_at_arrival, snapshot, store_sides
from nodes.backtest.tick.codes import MAKER, Q_L3_AHEAD, Q_RESYNC
from nodes.backtest.tick.fills import venue_fill
from nodes.backtest.tick.layout import (
    A_FIRST_ORDER,
    A_HI,
    ACC,
    C_LOG_QUEUE,
    C_MAX_BOOK_ORDERS,
    C_MAX_LEVELS,
    K_INCONSISTENT,
    K_LIVE_ASK,
    K_LIVE_BID,
    K_NEXT_PRIO,
    K_NORDERS,
    K_OVERFLOW,
    K_RESYNC,
    KEY0,
    O_AHEAD,
    O_ID,
    O_KEY,
    O_LEAVES,
    O_LSTATE,
    O_MARK,
    O_PRICE,
    O_PRIO,
    O_SIDE,
    O_XSTATE,
)
from nodes.backtest.tick.logs import log_queue
from nodes.backtest.tick.match import fill_crossed, fill_traded_through, may_cross
from nodes.backtest.tick.orders import next_live_at, refresh_venue_view
from nodes.backtest.tick.codes import L_FREE, X_LIVE
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import BID, row_of, valid_price
from nodes.marketdata.book.mbo_rules import apply_mbo
from nodes.marketdata.book.order_table import PRICE, SIZE, TAG, find_row, tag_priority, tag_row
from nodes.marketdata.schemas import ACTION_ADD, ACTION_CANCEL, ACTION_FILL, ACTION_MODIFY, ACTION_TRADE, F_LAST


@step_helper(_nrt=False)
def _book_order(table, order_id):
    """``(row, price, size, priority)`` of a resting market order, row -1 when the book does not hold it."""
    t = find_row(table, order_id)
    if t < 0:
        return -1, 0, 0, 0
    tag = table[t, TAG]
    return tag_row(tag), table[t, PRICE], table[t, SIZE], tag_priority(tag)


@step_helper(_nrt=False)
def _ahead_left(c, ints, log_ints, log_floats, k, side, price, priority, size, exchange_ns):
    """A market order of ``priority`` at our level lost ``size`` of its place: ours that it was ahead of
    advance by exactly that."""
    after = -1
    while True:
        slot = next_live_at(ints, k, side, price, after)
        if slot < 0:
            break
        after = ints[slot, O_PRIO]
        if ints[slot, O_MARK] <= priority:
            continue  # the market order joined after ours: it was behind
        ahead = ints[slot, O_AHEAD]
        moved = ahead - size if ahead > size else 0
        if moved != ahead:
            ints[slot, O_AHEAD] = moved
            if c[C_LOG_QUEUE]:
                log_queue(log_ints, log_floats, ints, exchange_ns, k, ints[slot, O_ID], side, price, moved,
                          ints[slot, O_LEAVES], Q_L3_AHEAD)


@step_helper(_nrt=False)
def _filled_behind(c, ints, floats, responses, log_ints, log_floats, k, side, price, priority, qty, snap,
                   exchange_ns):
    """A market order of ``priority`` at our level was filled ``qty``: ours that were ahead of it fill first."""
    after = -1
    left = qty
    filled = False
    while left > 0:
        slot = next_live_at(ints, k, side, price, after)
        if slot < 0:
            break
        after = ints[slot, O_PRIO]
        if ints[slot, O_MARK] > priority:
            continue  # that market order was ahead of ours: its own C/M record advances us
        leaves = ints[slot, O_LEAVES]
        take = leaves if leaves < left else left
        ahead = ints[slot, O_AHEAD]
        ints[slot, O_AHEAD] = 0
        venue_fill(c, ints, floats, responses, log_ints, log_floats, slot, price, take, MAKER, 0, ahead, snap,
                   exchange_ns)
        left -= take
        filled = True
    if filled:
        refresh_venue_view(ints, k)


@step_helper(_nrt=False)
def _resync(c, ints, log_ints, log_floats, levels, sides, k, exchange_ns):
    """After a clear and the snapshot that follows it: our orders queue behind everything now resting."""
    row_k = KEY0 + k
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        if ints[r, O_LSTATE] == L_FREE or ints[r, O_XSTATE] != X_LIVE or ints[r, O_KEY] != k:
            continue
        side = ints[r, O_SIDE]
        ahead = queue_at_arrival(levels, sides, row_of(side), ints[r, O_PRICE])
        ints[r, O_MARK] = ints[row_k, K_NEXT_PRIO]
        ints[r, O_AHEAD] = ahead
        if c[C_LOG_QUEUE]:
            log_queue(log_ints, log_floats, ints, exchange_ns, k, ints[r, O_ID], side, ints[r, O_PRICE], ahead,
                      ints[r, O_LEAVES], Q_RESYNC)
    ints[row_k, K_RESYNC] = 0


@step_helper(_nrt=False)
def l3_event(c, ints, floats, responses, log_ints, log_floats, levels, table, k, exchange_ns, order_id, side, price,
             size, action, flags):
    """Apply one MBO record to instrument ``k``'s book and move, fill or cross our resting orders."""
    row_k = KEY0 + k
    live = ints[row_k, K_LIVE_BID] + ints[row_k, K_LIVE_ASK]
    b_row, b_price, b_size, b_priority = -1, 0, 0, 0
    if live > 0 and (action == ACTION_CANCEL or action == ACTION_MODIFY or action == ACTION_FILL):
        b_row, b_price, b_size, b_priority = _book_order(table, order_id)
    counters = (ints[row_k, K_NORDERS], ints[row_k, K_NEXT_PRIO], ints[row_k, K_OVERFLOW],
                ints[row_k, K_INCONSISTENT])
    counters, sides, cleared, row_a, key_a, _, row_b, key_b, _ = apply_mbo(
        (levels, table, c[C_MAX_LEVELS], c[C_MAX_BOOK_ORDERS]), counters, load_sides(ints, k),
        order_id, side, price, size, action, flags,
    )
    ints[row_k, K_NORDERS], ints[row_k, K_NEXT_PRIO], ints[row_k, K_OVERFLOW], ints[row_k, K_INCONSISTENT] = counters
    store_sides(ints, k, sides)
    forget_consumed(levels, sides, row_a, key_a)
    forget_consumed(levels, sides, row_b, key_b)
    if live > 0:
        if cleared:
            ints[row_k, K_RESYNC] = 1
        _follow_record(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, exchange_ns,
                       (b_row, b_price, b_size, b_priority), side, price, size, action)
    if ints[row_k, K_RESYNC] != 0 and (flags & F_LAST) != 0:
        _resync(c, ints, log_ints, log_floats, levels, sides, k, exchange_ns)


@step_helper(_nrt=False)
def _follow_record(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, exchange_ns, before, side,
                   price, size, action):
    """What one applied MBO record does to our live orders; ``before`` is the market order it referred to."""
    b_row, b_price, b_size, b_priority = before
    b_side = 1 if b_row == BID else -1
    snap = snapshot(levels, sides)
    if b_row >= 0 and action == ACTION_CANCEL and size > 0:
        _ahead_left(c, ints, log_ints, log_floats, k, b_side, b_price, b_priority, min(size, b_size), exchange_ns)
    elif b_row >= 0 and action == ACTION_MODIFY:
        gone = 0
        if price != b_price or size > b_size or side != b_side or size <= 0:
            gone = b_size  # lost its priority (or left the level): now behind ours
        elif size < b_size:
            gone = b_size - size
        if gone > 0:
            _ahead_left(c, ints, log_ints, log_floats, k, b_side, b_price, b_priority, gone, exchange_ns)
    elif b_row >= 0 and action == ACTION_FILL and size > 0:
        _filled_behind(c, ints, floats, responses, log_ints, log_floats, k, b_side, b_price, b_priority, size, snap,
                       exchange_ns)
        fill_traded_through(c, ints, floats, responses, log_ints, log_floats, k, b_price, snap, exchange_ns)
    elif action == ACTION_TRADE and size > 0 and valid_price(price):
        fill_traded_through(c, ints, floats, responses, log_ints, log_floats, k, price, snap, exchange_ns)
    if ((action == ACTION_ADD or action == ACTION_MODIFY) and size > 0 and (side == 1 or side == -1)
            and valid_price(price) and may_cross(ints, k, -side, price)):
        fill_crossed(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, -side, snap, exchange_ns)
