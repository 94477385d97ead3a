"""The venue's side of a request: accept, match, rest, cancel, modify or reject it when it arrives.

A request is processed at its arrival time against the book as the last market event left it. Every request
gets exactly one **completing** response (ack or reject for a new order, cancelled or cancel-rejected for a
cancel, modified or modify-rejected for a modify), which is what the strategy's one-request-in-flight rule
waits for; fills and the cancel of an IOC/FOK/market remainder follow an order's ack in the same batch.

New orders (``codes`` for the types): a market order walks the book and the rest is cancelled (rejected in a
book with nothing to take); IOC walks up to its limit and the rest is cancelled; FOK walks only if its whole
quantity is there, else it is cancelled; a post-only order that would take liquidity is rejected; a limit
order takes what crosses and rests the rest. A resting order's queue starts at the level's size
(``book.queue_at_arrival``).

Cancels and modifies of an order that is no longer live (filled, cancelled, rejected while the request was on
its way) are rejected with ``R_NOT_LIVE``: the race a real venue has. A modify sets a new price and total
quantity: a smaller quantity at the same price keeps the order's queue place; a larger quantity or a new price
puts it at the back (a new price may also make it take liquidity, or be rejected if it is post-only); a total
at or below what is already filled cancels the order.
"""

from nodes.backtest.tick.book import load_sides, queue_at_arrival, snapshot
from nodes.backtest.tick.clocks import rejected_by_window, response_visible_ns, start_batch
from nodes.backtest.tick.codes import (
    EV_ACKED,
    EV_CANCEL_REJECTED,
    EV_CANCELLED,
    EV_MODIFIED,
    EV_MODIFY_REJECTED,
    EV_REJECTED,
    FOK,
    IOC,
    MARKET,
    POST_ONLY,
    Q_ARRIVAL,
    Q_REQUEUE,
    R_BELOW_FILLED,
    R_FOK_UNFILLABLE,
    R_IOC_REMAINDER,
    R_MARKET_REMAINDER,
    R_NO_LIQUIDITY,
    R_NONE,
    R_NOT_LIVE,
    R_POST_ONLY_CROSS,
    R_REJECT_WINDOW,
    R_REQUESTED,
    R_UNKNOWN_ORDER,
    REQ_CANCEL,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECTED,
    RESP_CANCELLED,
    RESP_MODIFIED,
    RESP_MODIFY_REJECTED,
    RESP_REJECTED,
    X_DONE,
    X_LIVE,
)
from nodes.backtest.tick.layout import (
    A_PRIO_SEQ,
    A_RQ_HEAD,
    ACC,
    C_LOG_QUEUE,
    K_NEXT_PRIO,
    KEY0,
    O_AHEAD,
    O_FILLED,
    O_ID,
    O_KEY,
    O_LEAVES,
    O_MARK,
    O_PRICE,
    O_PRIO,
    O_QTY,
    O_SIDE,
    O_TRADED,
    O_TYPE,
    O_XSTATE,
    Q_ARRIVE,
    Q_ID,
    Q_KIND,
    Q_PRICE,
    Q_QTY,
    Q_SLOT,
)
from nodes.backtest.tick.logs import log_order, log_queue
from nodes.backtest.tick.match import crossing_size, take_liquidity
from nodes.backtest.tick.orders import refresh_venue_view
from nodes.backtest.tick.queues import push_response
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import ASK, BID, row_of


@step_helper(_nrt=False)
def _respond(c, ints, floats, responses, log_ints, log_floats, slot, kind, event, price, qty, completes, reason,
             exchange_ns):
    """Send a non-fill response about the order in ``slot`` and log its order event."""
    visible_ns = response_visible_ns(ints, exchange_ns)
    leaves = ints[slot, O_LEAVES]
    push_response(responses, ints, visible_ns, kind, slot, ints[slot, O_ID], price, qty, 0, completes, leaves)
    log_order(log_ints, log_floats, ints, exchange_ns, visible_ns, ints[slot, O_KEY], ints[slot, O_ID], event,
              ints[slot, O_SIDE], ints[slot, O_TYPE], price, qty, leaves, ints[slot, O_AHEAD], reason)


@step_helper(_nrt=False)
def _end(c, ints, floats, responses, log_ints, log_floats, slot, kind, event, completes, reason, exchange_ns):
    """The order in ``slot`` ends at the venue (cancelled or rejected): nothing is left of it."""
    ints[slot, O_LEAVES] = 0
    was_live = ints[slot, O_XSTATE] == X_LIVE
    ints[slot, O_XSTATE] = X_DONE
    _respond(c, ints, floats, responses, log_ints, log_floats, slot, kind, event, ints[slot, O_PRICE],
             ints[slot, O_QTY], completes, reason, exchange_ns)
    if was_live:
        refresh_venue_view(ints, ints[slot, O_KEY])


@step_helper(_nrt=False)
def _join_queue(c, ints, log_ints, log_floats, levels, sides, slot, cause, exchange_ns):
    """Rest the order in ``slot`` at the back of its level (a new place: arrival, or a modify that lost it)."""
    k = ints[slot, O_KEY]
    side = ints[slot, O_SIDE]
    ahead = queue_at_arrival(levels, sides, row_of(side), ints[slot, O_PRICE])
    ints[slot, O_TRADED] = 0
    ints[slot, O_AHEAD] = ahead
    ints[slot, O_PRIO] = ints[ACC, A_PRIO_SEQ]
    ints[ACC, A_PRIO_SEQ] += 1
    ints[slot, O_MARK] = ints[KEY0 + k, K_NEXT_PRIO]
    ints[slot, O_XSTATE] = X_LIVE
    refresh_venue_view(ints, k)
    if c[C_LOG_QUEUE]:
        log_queue(log_ints, log_floats, ints, exchange_ns, k, ints[slot, O_ID], side, ints[slot, O_PRICE], ahead,
                  ints[slot, O_LEAVES], cause)


@step_helper(_nrt=False)
def _match_new(c, ints, floats, responses, log_ints, log_floats, levels, slot, exchange_ns):
    """Match a just-accepted order: take what it may, then rest the rest or cancel it by its type."""
    sides = load_sides(ints, ints[slot, O_KEY])
    order_type = ints[slot, O_TYPE]
    limited = order_type != MARKET
    snap = snapshot(levels, sides)
    leaves = take_liquidity(c, ints, floats, responses, log_ints, log_floats, levels, sides, slot,
                            ints[slot, O_PRICE], limited, snap, exchange_ns)
    if leaves == 0:
        ints[slot, O_XSTATE] = X_DONE
        return
    if order_type == MARKET or order_type == IOC or order_type == FOK:
        reason = R_MARKET_REMAINDER if order_type == MARKET else R_IOC_REMAINDER
        _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCELLED, EV_CANCELLED, 0, reason,
             exchange_ns)
        return
    _join_queue(c, ints, log_ints, log_floats, levels, sides, slot, Q_ARRIVAL, exchange_ns)


@step_helper(_nrt=False)
def venue_new(c, ints, floats, responses, log_ints, log_floats, levels, slot, exchange_ns):
    """A new order arrives: reject it, or accept it (ack) and match it."""
    sides = load_sides(ints, ints[slot, O_KEY])
    side = ints[slot, O_SIDE]
    order_type = ints[slot, O_TYPE]
    qty = ints[slot, O_QTY]
    opposite_row = ASK if side == 1 else BID
    available = crossing_size(levels, sides, opposite_row, ints[slot, O_PRICE], order_type != MARKET, qty)
    reason = R_NONE
    if order_type == MARKET and available == 0:
        reason = R_NO_LIQUIDITY
    elif order_type == POST_ONLY and available > 0:
        reason = R_POST_ONLY_CROSS
    if reason != R_NONE:
        _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_REJECTED, EV_REJECTED, 1, reason,
             exchange_ns)
        return
    ints[slot, O_XSTATE] = X_LIVE
    _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_ACK, EV_ACKED, ints[slot, O_PRICE], qty, 1,
             R_NONE, exchange_ns)
    if order_type == FOK and available < qty:
        _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCELLED, EV_CANCELLED, 0,
             R_FOK_UNFILLABLE, exchange_ns)
        return
    _match_new(c, ints, floats, responses, log_ints, log_floats, levels, slot, exchange_ns)


@step_helper(_nrt=False)
def venue_cancel(c, ints, floats, responses, log_ints, log_floats, slot, exchange_ns):
    """A cancel arrives: the order ends if it is still live, else the cancel is rejected (too late)."""
    if ints[slot, O_XSTATE] != X_LIVE:
        _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCEL_REJECTED, EV_CANCEL_REJECTED,
                 ints[slot, O_PRICE], ints[slot, O_QTY], 1, R_NOT_LIVE, exchange_ns)
        return
    _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCELLED, EV_CANCELLED, 1, R_REQUESTED,
         exchange_ns)


@step_helper(_nrt=False)
def venue_modify(c, ints, floats, responses, log_ints, log_floats, levels, slot, price, qty, exchange_ns):
    """A modify arrives: a new price and/or total quantity for a live order (see the module docstring)."""
    if ints[slot, O_XSTATE] != X_LIVE:
        _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_MODIFY_REJECTED, EV_MODIFY_REJECTED,
                 price, qty, 1, R_NOT_LIVE, exchange_ns)
        return
    filled = ints[slot, O_FILLED]
    if qty <= filled:
        _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCELLED, EV_CANCELLED, 1,
             R_BELOW_FILLED, exchange_ns)
        return
    sides = load_sides(ints, ints[slot, O_KEY])
    side = ints[slot, O_SIDE]
    same_price = price == ints[slot, O_PRICE]
    if not same_price and ints[slot, O_TYPE] == POST_ONLY:
        opposite_row = ASK if side == 1 else BID
        if crossing_size(levels, sides, opposite_row, price, True, 1) > 0:
            _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_MODIFY_REJECTED,
                     EV_MODIFY_REJECTED, price, qty, 1, R_POST_ONLY_CROSS, exchange_ns)
            return
    keeps_place = same_price and qty <= ints[slot, O_QTY]
    ints[slot, O_PRICE] = price
    ints[slot, O_QTY] = qty
    ints[slot, O_LEAVES] = qty - filled
    _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_MODIFIED, EV_MODIFIED, price, qty, 1,
             R_NONE, exchange_ns)
    if keeps_place:
        return
    if same_price:
        _join_queue(c, ints, log_ints, log_floats, levels, sides, slot, Q_REQUEUE, exchange_ns)
        return
    ints[slot, O_XSTATE] = X_LIVE
    refresh_venue_view(ints, ints[slot, O_KEY])
    snap = snapshot(levels, sides)
    leaves = take_liquidity(c, ints, floats, responses, log_ints, log_floats, levels, sides, slot, price, True, snap,
                            exchange_ns)
    if leaves > 0:
        _join_queue(c, ints, log_ints, log_floats, levels, sides, slot, Q_REQUEUE, exchange_ns)
    else:
        refresh_venue_view(ints, ints[slot, O_KEY])


@step_helper
def venue_request(c, tables, book, ints, floats, requests, responses, log_ints, log_floats, head):
    """Process the request in row ``head`` of the request queue (it has arrived): one exchange batch."""
    ints[ACC, A_RQ_HEAD] = head + 1
    arrive_ns = requests[head, Q_ARRIVE]
    kind = requests[head, Q_KIND]
    slot = requests[head, Q_SLOT]
    start_batch(c, tables, ints, floats, arrive_ns, True)
    if ints[slot, O_ID] != requests[head, Q_ID]:
        # cannot happen while rows are reused only once nothing is in flight about them; reject, never guess
        _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_REJECTED, EV_REJECTED,
                 requests[head, Q_PRICE], requests[head, Q_QTY], 1, R_UNKNOWN_ORDER, arrive_ns)
        return
    if rejected_by_window(c, tables, ints, arrive_ns):
        if kind == REQ_NEW:
            _end(c, ints, floats, responses, log_ints, log_floats, slot, RESP_REJECTED, EV_REJECTED, 1,
                 R_REJECT_WINDOW, arrive_ns)
        elif kind == REQ_CANCEL:
            _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_CANCEL_REJECTED,
                     EV_CANCEL_REJECTED, ints[slot, O_PRICE], ints[slot, O_QTY], 1, R_REJECT_WINDOW, arrive_ns)
        else:
            _respond(c, ints, floats, responses, log_ints, log_floats, slot, RESP_MODIFY_REJECTED,
                     EV_MODIFY_REJECTED, requests[head, Q_PRICE], requests[head, Q_QTY], 1, R_REJECT_WINDOW,
                     arrive_ns)
        return
    levels = book[ints[slot, O_KEY]]
    if kind == REQ_NEW:
        venue_new(c, ints, floats, responses, log_ints, log_floats, levels, slot, arrive_ns)
    elif kind == REQ_CANCEL:
        venue_cancel(c, ints, floats, responses, log_ints, log_floats, slot, arrive_ns)
    else:
        venue_modify(c, ints, floats, responses, log_ints, log_floats, levels, slot, requests[head, Q_PRICE],
                     requests[head, Q_QTY], arrive_ns)
