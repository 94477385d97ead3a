"""A fill at the venue: the order, the venue's account, the fill and order logs and the response, in one place.

Every fill of the venue goes through ``venue_fill`` whatever caused it (a taker walk, a trade at or through a
resting order's price, the opposite side crossing it), so the accounting identities hold by construction:
the venue's cash moves by ``-(side × notional + fee)`` and its position by ``side × qty`` on every fill row.
"""

from nodes.backtest.tick.account import book_fill
from nodes.backtest.tick.clocks import response_visible_ns
from nodes.backtest.tick.codes import EV_FILLED, EV_PARTIALLY_FILLED, RESP_FILL, X_DONE
from nodes.backtest.tick.fees import UNIT
from nodes.backtest.tick.layout import (
    A_FILLS_X,
    ACC,
    AF_CASH_X,
    K_POS_X,
    KEY0,
    O_FILLED,
    O_ID,
    O_KEY,
    O_LEAVES,
    O_SIDE,
    O_TYPE,
    O_XSTATE,
    OF_FEES,
    OF_NOTIONAL,
)
from nodes.backtest.tick.logs import log_fill, log_order
from nodes.backtest.tick.queues import push_response
from nodes.contract import step_helper


@step_helper(_nrt=False)
def venue_fill(c, ints, floats, responses, log_ints, log_floats, slot, price, qty, liquidity, levels, ahead_before,
               snap, exchange_ns):
    """Fill ``qty`` of the order in ``slot`` at ``price`` at the venue; return the order's leaves after it.

    ``levels`` is the number of levels a taker has walked so far (0 for a maker fill), ``ahead_before`` the
    queue ahead of a resting order before the fill, ``snap`` the book that justified the fill
    (``book.snapshot``). The order is marked done at the venue when nothing is left; the caller refreshes
    the instrument's venue view then.
    """
    k = ints[slot, O_KEY]
    side = ints[slot, O_SIDE]
    leaves = ints[slot, O_LEAVES] - qty
    ints[slot, O_LEAVES] = leaves
    ints[slot, O_FILLED] += qty
    fee, notional = book_fill(c, ints, floats, k, side, price, qty, liquidity, 0)
    floats[slot, OF_NOTIONAL] += notional
    floats[slot, OF_FEES] += fee
    ints[ACC, A_FILLS_X] += 1
    visible_ns = response_visible_ns(ints, exchange_ns)
    order_id = ints[slot, O_ID]
    push_response(responses, ints, visible_ns, RESP_FILL, slot, order_id, price, qty, liquidity, 0, leaves)
    average = floats[slot, OF_NOTIONAL] / (ints[slot, O_FILLED] / UNIT)
    log_fill(
        log_ints, log_floats, ints,
        (exchange_ns, visible_ns, k, order_id, side, price, qty, liquidity, levels, ahead_before, leaves),
        snap,
        (fee, notional, average, ints[KEY0 + k, K_POS_X], floats[ACC, AF_CASH_X]),
    )
    event = EV_FILLED if leaves == 0 else EV_PARTIALLY_FILLED
    log_order(log_ints, log_floats, ints, exchange_ns, visible_ns, k, order_id, event, side, ints[slot, O_TYPE],
              price, qty, leaves, 0, 0)
    if leaves == 0:
        ints[slot, O_XSTATE] = X_DONE
    return leaves
