"""The strategy's side: what it knows (responses seen after their latency) and the requests it sends.

Responses are applied in the order the venue sent them when the local clock reaches their time: acks make an
order working, fills move the local position and cash (the same fee arithmetic as the venue's, so both
accounts agree once the strategy has seen every fill), cancels and rejects end it. The order's local state
machine is new (sent) → acknowledged → partially filled → filled / cancelled / rejected; events that do not
fit (a late cancel's reject, a modify of an order that ended) are logged by the venue with their reason and
change nothing here.

Requests leave at the event's decision time (local time + compute latency) and arrive after the entry latency
(cancels: the cancel latency), never before an earlier request (one session). By mode:

- ``quotes``: a changed desired quote becomes requests, one side at a time, never two in flight per side:
  a new price = cancel + new (the back of the queue), a smaller quantity at the same price = modify (keeps
  the place), a larger one = cancel + new, quantity 0 (or an undefined price) = cancel; a replaced quote whose
  cancel was refused while it still rests is cancelled again;
- ``target``: the difference between the target and the position (plus orders still open) is sent as one
  taker order (market, or IOC/FOK limited ``taker_limit_bps`` beyond the best opposite price), one at a time;
- ``commands``: each new ``cmd_id`` is one command (new, cancel, modify); a repeated id is the held value of
  the last command (ignored), a smaller one a duplicate (rejected locally and logged); cancels and modifies
  name the order by the ``cmd_id`` of the command that created it (``cmd_ref``).

Requests the venue would never accept (quantity 0, no price, an unknown or ended order, no free slot) are
rejected locally and logged with ``ts_exchange`` 0.
"""

from nodes.backtest.tick.account import book_fill
from nodes.backtest.tick.clocks import decision_ns, draw_latency_ns
from nodes.backtest.tick.codes import (
    CMD_CANCEL,
    CMD_MODIFY,
    CMD_NEW,
    EV_CANCEL_SENT,
    EV_MODIFY_SENT,
    EV_REJECTED,
    EV_SENT,
    FOK,
    IOC,
    L_ACKED,
    L_CANCELLED,
    L_FILLED,
    L_PARTIAL,
    L_REJECTED,
    L_SENT,
    MARKET,
    POST_ONLY,
    R_ALREADY_CANCELLED,
    R_ALREADY_FILLED,
    R_ALREADY_REJECTED,
    R_DUPLICATE_CMD,
    R_INVALID_PRICE,
    R_INVALID_QTY,
    R_INVALID_SIDE,
    R_INVALID_TYPE,
    R_MAX_ORDERS,
    R_NONE,
    R_UNKNOWN_CMD,
    R_UNKNOWN_ORDER,
    REQ_CANCEL,
    REQ_MODIFY,
    REQ_NEW,
    RESP_ACK,
    RESP_CANCEL_REJECTED,
    RESP_CANCELLED,
    RESP_FILL,
    RESP_MODIFIED,
    RESP_REJECTED,
)
from nodes.backtest.tick.layout import (
    A_FILLS_L,
    A_LAST_CMD,
    A_MAX_CMD,
    A_ORDER_SEQ,
    A_RS_HEAD,
    ACC,
    C_DECIDE_LAST,
    C_LAT_CANCEL,
    C_LAT_ENTRY,
    C_MODE,
    C_QUOTE_TYPE,
    C_TAKER_LIMIT,
    C_TAKER_TYPE,
    K_FLIGHT_ASK,
    K_FLIGHT_BID,
    K_POS_L,
    K_QUOTE_ASK,
    K_QUOTE_BID,
    K_STRAYS,
    KEY0,
    LAT_CANCEL,
    LAT_ENTRY,
    MODE_COMMANDS,
    MODE_QUOTES,
    O_ID,
    O_KEY,
    O_LEAVES,
    O_LFILLED,
    O_LLEAVES,
    O_LPRICE,
    O_LQTY,
    O_LSTATE,
    O_PENDING,
    O_PRICE,
    O_QTY,
    O_SENT_TS,
    O_SIDE,
    O_TYPE,
    S_COMPLETES,
    S_KIND,
    S_LEAVES,
    S_LIQ,
    S_PRICE,
    S_QTY,
    S_SLOT,
    A_FIRST_ORDER,
    A_HI,
)
from nodes.backtest.tick.book import snapshot
from nodes.backtest.tick.logs import log_order
from nodes.backtest.tick.orders import ended_state, find_order, refresh_local_view, release_slot, take_slot
from nodes.backtest.tick.queues import next_response_seen, push_request
from nodes.backtest.tick.codes import L_FREE
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import valid_price
from nodes.marketdata.schemas import F_LAST, UNDEF_PRICE


@step_helper(_nrt=False)
def _flight_column(side):
    return K_FLIGHT_BID if side == 1 else K_FLIGHT_ASK


@step_helper(_nrt=False)
def _apply_response(c, ints, floats, responses, r):
    """Apply one response the strategy has now seen; return its side's bit (1 bid, 2 ask) when it was a fill or
    ended the order, else 0."""
    slot = responses[r, S_SLOT]
    kind = responses[r, S_KIND]
    k = ints[slot, O_KEY]
    side = ints[slot, O_SIDE]
    state = ints[slot, O_LSTATE]
    if kind == RESP_ACK:
        if state == L_SENT:
            ints[slot, O_LSTATE] = L_ACKED
        ints[slot, O_LPRICE] = responses[r, S_PRICE]
        ints[slot, O_LLEAVES] = responses[r, S_LEAVES]
    elif kind == RESP_FILL:
        qty = responses[r, S_QTY]
        book_fill(c, ints, floats, k, side, responses[r, S_PRICE], qty, responses[r, S_LIQ], 1)
        ints[ACC, A_FILLS_L] += 1
        ints[slot, O_LFILLED] += qty
        ints[slot, O_LLEAVES] = responses[r, S_LEAVES]
        ints[slot, O_LSTATE] = L_FILLED if responses[r, S_LEAVES] == 0 else L_PARTIAL
    elif kind == RESP_CANCELLED:
        ints[slot, O_LSTATE] = L_CANCELLED
        ints[slot, O_LLEAVES] = 0
    elif kind == RESP_REJECTED:
        ints[slot, O_LSTATE] = L_REJECTED
        ints[slot, O_LLEAVES] = 0
    elif kind == RESP_MODIFIED:
        ints[slot, O_LPRICE] = responses[r, S_PRICE]
        ints[slot, O_LQTY] = responses[r, S_QTY]
        ints[slot, O_LLEAVES] = responses[r, S_LEAVES]
    elif kind == RESP_CANCEL_REJECTED and state < L_FILLED:
        row = KEY0 + k
        if ints[row, K_QUOTE_BID] != slot and ints[row, K_QUOTE_ASK] != slot:
            ints[row, K_STRAYS] = 1  # a replaced quote still rests (its cancel was refused): cancel it again
    if responses[r, S_COMPLETES] != 0:
        ints[slot, O_PENDING] -= 1
        ints[KEY0 + k, _flight_column(side)] -= 1
    if ints[slot, O_LSTATE] >= L_FILLED:
        row = KEY0 + k
        if ints[row, K_QUOTE_BID] == slot:
            ints[row, K_QUOTE_BID] = -1
        if ints[row, K_QUOTE_ASK] == slot:
            ints[row, K_QUOTE_ASK] = -1
        if ints[slot, O_PENDING] == 0:
            release_slot(ints, slot)
    refresh_local_view(ints, k)
    if kind == RESP_FILL or ints[slot, O_LSTATE] >= L_FILLED:
        return 1 if side == 1 else 2
    return 0


@step_helper(_nrt=False)
def apply_responses(c, ints, floats, responses, local_ns):
    """Apply every response the strategy has seen by ``local_ns``, in the order the venue sent them; return the
    sides (bits: 1 bid, 2 ask) that learned of a fill or of an order's end."""
    heard = 0
    while True:
        r = next_response_seen(responses, ints, local_ns)
        if r < 0:
            return heard
        ints[ACC, A_RS_HEAD] = r + 1
        heard |= _apply_response(c, ints, floats, responses, r)


@step_helper(_nrt=False)
def _reject_locally(log_ints, log_floats, ints, local_ns, k, order_id, side, order_type, price, qty, reason):
    log_order(log_ints, log_floats, ints, 0, local_ns, k, order_id, EV_REJECTED, side, order_type, price, qty, 0, 0,
              reason)


@step_helper(_nrt=False)
def _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, kind, price, qty, local_ns):
    """Send a request about the order in ``slot`` now; it arrives after its latency, after earlier ones."""
    sent_ns = decision_ns(c, tables, ints, floats, local_ns)
    if kind == REQ_CANCEL:
        latency_ns = draw_latency_ns(c[C_LAT_CANCEL], tables, ints, floats, LAT_CANCEL, sent_ns)
        event = EV_CANCEL_SENT
    else:
        latency_ns = draw_latency_ns(c[C_LAT_ENTRY], tables, ints, floats, LAT_ENTRY, sent_ns)
        event = EV_SENT if kind == REQ_NEW else EV_MODIFY_SENT
    arrive_ns = push_request(requests, ints, sent_ns + latency_ns, kind, slot, ints[slot, O_ID], price, qty, sent_ns)
    ints[slot, O_PENDING] += 1
    k = ints[slot, O_KEY]
    side = ints[slot, O_SIDE]
    ints[KEY0 + k, _flight_column(side)] += 1
    log_order(log_ints, log_floats, ints, arrive_ns, sent_ns, k, ints[slot, O_ID], event, side, ints[slot, O_TYPE],
              price, qty, ints[slot, O_LLEAVES], 0, R_NONE)


@step_helper(_nrt=False)
def new_order(c, tables, ints, floats, requests, log_ints, log_floats, k, side, order_type, price, qty, order_id,
              local_ns):
    """Check and send a new order; return its row, or -1 when it was rejected locally."""
    reason = R_NONE
    if side != 1 and side != -1:
        reason = R_INVALID_SIDE
    elif order_type < 0 or order_type > POST_ONLY:
        reason = R_INVALID_TYPE
    elif qty <= 0:
        reason = R_INVALID_QTY
    elif order_type != MARKET and not valid_price(price):
        reason = R_INVALID_PRICE
    if order_id <= 0:
        order_id = ints[ACC, A_ORDER_SEQ]
        ints[ACC, A_ORDER_SEQ] += 1
    slot = -1
    if reason == R_NONE:
        slot = take_slot(ints, floats)
        if slot < 0:
            reason = R_MAX_ORDERS
    if reason != R_NONE:
        _reject_locally(log_ints, log_floats, ints, local_ns, k, order_id, side, order_type, price, qty, reason)
        return -1
    if order_type == MARKET:
        price = 0  # no limit: the price is not used
    ints[slot, O_ID] = order_id
    ints[slot, O_KEY] = k
    ints[slot, O_SIDE] = side
    ints[slot, O_TYPE] = order_type
    ints[slot, O_PRICE] = price
    ints[slot, O_QTY] = qty
    ints[slot, O_LEAVES] = qty
    ints[slot, O_LSTATE] = L_SENT
    ints[slot, O_LPRICE] = price
    ints[slot, O_LQTY] = qty
    ints[slot, O_LLEAVES] = qty
    ints[slot, O_SENT_TS] = local_ns
    _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, REQ_NEW, price, qty, local_ns)
    refresh_local_view(ints, k)
    return slot


QUOTE_KEEP = 0
QUOTE_NEW = 1
QUOTE_CANCEL = 2
QUOTE_MODIFY = 3
QUOTE_REPLACE = 4  # cancel + new


@step_helper(_nrt=False)
def quote_action(ints, k, side, price, qty):
    """What one side's desired quote asks for now (``QUOTE_*``); keep while a request of that side is in flight."""
    row = KEY0 + k
    if ints[row, _flight_column(side)] > 0:
        return QUOTE_KEEP
    slot = ints[row, K_QUOTE_BID if side == 1 else K_QUOTE_ASK]
    wanted = qty > 0 and valid_price(price)
    if slot < 0:
        return QUOTE_NEW if wanted else QUOTE_KEEP
    if not wanted:
        return QUOTE_CANCEL
    working_price = ints[slot, O_LPRICE]
    working_qty = ints[slot, O_LQTY]
    if price == working_price and qty == working_qty:
        return QUOTE_KEEP
    if price == working_price and ints[slot, O_LFILLED] < qty < working_qty:
        return QUOTE_MODIFY
    return QUOTE_REPLACE


@step_helper(_nrt=False)
def _quote_side(c, tables, ints, floats, requests, log_ints, log_floats, k, side, price, qty, local_ns):
    """Turn one side's desired quote into requests (see the module docstring)."""
    action = quote_action(ints, k, side, price, qty)
    if action == QUOTE_KEEP:
        return
    row = KEY0 + k
    quote_column = K_QUOTE_BID if side == 1 else K_QUOTE_ASK
    slot = ints[row, quote_column]
    if action == QUOTE_MODIFY:
        _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, REQ_MODIFY, price, qty, local_ns)
        return
    if action == QUOTE_CANCEL or action == QUOTE_REPLACE:
        _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, REQ_CANCEL, ints[slot, O_LPRICE],
              ints[slot, O_LQTY], local_ns)
    if action == QUOTE_NEW or action == QUOTE_REPLACE:
        ints[row, quote_column] = new_order(c, tables, ints, floats, requests, log_ints, log_floats, k, side,
                                            c[C_QUOTE_TYPE], price, qty, 0, local_ns)


@step_helper(_nrt=False)
def _cancel_strays(c, tables, ints, floats, requests, log_ints, log_floats, k, local_ns):
    """Cancel again the replaced quotes of instrument ``k`` that still rest (one request per side in flight)."""
    row = KEY0 + k
    left = 0
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        state = ints[r, O_LSTATE]
        if (state == L_FREE or state >= L_FILLED or ints[r, O_KEY] != k or r == ints[row, K_QUOTE_BID]
                or r == ints[row, K_QUOTE_ASK]):
            continue
        if ints[r, O_PENDING] == 0 and ints[row, _flight_column(ints[r, O_SIDE])] == 0:
            _send(c, tables, ints, floats, requests, log_ints, log_floats, r, REQ_CANCEL, ints[r, O_LPRICE],
                  ints[r, O_LQTY], local_ns)
        else:
            left += 1
    ints[row, K_STRAYS] = 1 if left > 0 else 0


@step_helper(_nrt=False)
def _open_qty(ints, k):
    """Σ side × leaves of instrument ``k``'s orders the strategy still considers open."""
    total = 0
    for r in range(ints[ACC, A_FIRST_ORDER], ints[ACC, A_HI]):
        state = ints[r, O_LSTATE]
        if state != L_FREE and state < L_FILLED and ints[r, O_KEY] == k:
            total += ints[r, O_SIDE] * ints[r, O_LLEAVES]
    return total


@step_helper(_nrt=False)
def _protected_limit(c, levels, sides, side):
    """An IOC/FOK limit: the best opposite price moved ``taker_limit_bps`` against us; UNDEF when empty."""
    best_bid, best_ask, _, _ = snapshot(levels, sides)
    reference = best_ask if side == 1 else best_bid
    if reference == UNDEF_PRICE:
        return UNDEF_PRICE
    slack = int(abs(reference) * c[C_TAKER_LIMIT])
    return reference + slack if side == 1 else reference - slack


@step_helper(_nrt=False)
def _chase_target(c, tables, ints, floats, requests, log_ints, log_floats, levels, sides, k, target, local_ns):
    row = KEY0 + k
    if ints[row, K_FLIGHT_BID] + ints[row, K_FLIGHT_ASK] > 0:
        return
    difference = target - ints[row, K_POS_L] - _open_qty(ints, k)
    if difference == 0:
        return
    side = 1 if difference > 0 else -1
    order_type = c[C_TAKER_TYPE]
    price = 0
    if order_type == IOC or order_type == FOK:
        price = _protected_limit(c, levels, sides, side)
        if price == UNDEF_PRICE:
            return  # nothing to protect the order with: wait for the book
    new_order(c, tables, ints, floats, requests, log_ints, log_floats, k, side, order_type, price, abs(difference), 0,
              local_ns)


@step_helper(_nrt=False)
def _ended_reason(state):
    """Why a cancel or modify of an order in local ``state`` is refused (unknown when it never existed)."""
    if state == L_FILLED:
        return R_ALREADY_FILLED
    if state == L_CANCELLED:
        return R_ALREADY_CANCELLED
    if state == L_REJECTED:
        return R_ALREADY_REJECTED
    return R_UNKNOWN_ORDER


@step_helper(_nrt=False)
def _command(c, tables, ints, floats, requests, log_ints, log_floats, k, cmd, cmd_id, side, order_type, price, qty, ref,
             local_ns):
    if cmd_id == 0 or cmd_id == ints[ACC, A_LAST_CMD]:
        return  # no command yet, or the held value of the last one
    ints[ACC, A_LAST_CMD] = cmd_id
    if cmd_id <= ints[ACC, A_MAX_CMD]:
        _reject_locally(log_ints, log_floats, ints, local_ns, k, cmd_id, side, order_type, price, qty,
                        R_DUPLICATE_CMD)
        return
    ints[ACC, A_MAX_CMD] = cmd_id
    if cmd == CMD_NEW:
        new_order(c, tables, ints, floats, requests, log_ints, log_floats, k, side, order_type, price, qty, cmd_id,
                  local_ns)
        return
    if cmd != CMD_CANCEL and cmd != CMD_MODIFY:
        _reject_locally(log_ints, log_floats, ints, local_ns, k, cmd_id, side, order_type, price, qty, R_UNKNOWN_CMD)
        return
    slot = find_order(ints, ref)
    reason = R_NONE
    if slot < 0:
        reason = _ended_reason(ended_state(ints, ref))
    elif ints[slot, O_LSTATE] >= L_FILLED:
        reason = _ended_reason(ints[slot, O_LSTATE])
    elif cmd == CMD_MODIFY and qty <= 0:
        reason = R_INVALID_QTY
    elif cmd == CMD_MODIFY and (not valid_price(price) or ints[slot, O_TYPE] == MARKET):
        reason = R_INVALID_PRICE
    if reason != R_NONE:
        _reject_locally(log_ints, log_floats, ints, local_ns, k, ref, side, order_type, price, qty, reason)
        return
    if cmd == CMD_CANCEL:
        _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, REQ_CANCEL, ints[slot, O_LPRICE],
              ints[slot, O_LQTY], local_ns)
    else:
        _send(c, tables, ints, floats, requests, log_ints, log_floats, slot, REQ_MODIFY, price, qty, local_ns)


@step_helper(_nrt=False)
def decide(c, tables, ints, floats, requests, log_ints, log_floats, levels, sides, k, local_ns, flags, heard, a0,
           a1, a2, a3, a4, a5, a6):
    """Turn the strategy's inputs of this event (``a0..a6`` in the mode's input order) into requests.

    ``heard``: the sides (bits: 1 bid, 2 ask) that learned of a fill or of an order's end on this event. In quotes
    mode such a side sends nothing now: the strategy decided this event's quote before it knew (it reads the
    position one event back), so re-sending it would quote past a position limit; it acts on the next event.
    """
    mode = c[C_MODE]
    if mode == MODE_COMMANDS:
        _command(c, tables, ints, floats, requests, log_ints, log_floats, k, a0, a1, a2, a3, a4, a5, a6, local_ns)
        return
    if c[C_DECIDE_LAST] != 0 and (flags & F_LAST) == 0:
        return
    if mode == MODE_QUOTES:
        if ints[KEY0 + k, K_STRAYS] != 0:
            _cancel_strays(c, tables, ints, floats, requests, log_ints, log_floats, k, local_ns)
        if heard & 1 == 0:
            _quote_side(c, tables, ints, floats, requests, log_ints, log_floats, k, 1, a0, a1, local_ns)
        if heard & 2 == 0:
            _quote_side(c, tables, ints, floats, requests, log_ints, log_floats, k, -1, a2, a3, local_ns)
    else:
        _chase_target(c, tables, ints, floats, requests, log_ints, log_floats, levels, sides, k, a0, local_ns)
