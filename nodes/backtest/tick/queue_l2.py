"""Queue position on an L2 book: how much rests ahead of each of our orders, and what the data does to it.

An order joining a level has the level's displayed size ahead of it. Then:

- a trade at the order's price reduces the queue ahead by its size; what passes zero fills the order (several
  of our orders at one level share the print in their queue order, so one print never fills more than its
  size). The order counts what traded at its price since the data last set the level (``O_TRADED``, as
  hftbacktest's ``cum_trade_qty``): the data's next update of the level already shows those trades;
- a decrease of the level not explained by those trades is split between ahead and behind by the **queue
  model**, ``advance(front, back, decrease) -> new front`` in units of quantity (``back`` is the market size
  behind the order: the level's old size less what traded and less the front);
- the queue ahead never exceeds the level's size (an order cannot have more ahead than the whole level).

Models (hftbacktest's ``RiskAdverseQueueModel`` and ``ProbQueueModel`` family):

- ``conservative``: a decrease never advances us (only trades do);
- ``prob_power`` (n) and ``prob_log``: the share of a decrease that was **behind** us is
  ``p = f(back) / (f(back) + f(front))`` with ``f(x) = x^n`` or ``log(1 + x)``; the front becomes
  ``front - (1 - p) × decrease + min(back - p × decrease, 0)`` (a decrease larger than the back eats the front);
- a user model: any numba-compilable ``advance(front_qty, back_qty, decrease_qty)``. Its result is kept within
  ``[front - decrease, front]`` (a decrease can neither advance us more than itself nor push us back).

``make_level_update(advance)`` builds the level-update helper around the model: built-ins use
``builtin_advance``; a user model gets its own helper (and kernel), see ``nodes.backtest.tick.kernel``.
"""

import math

from nodes.backtest.tick.codes import MAKER, Q_CLAMP, Q_DEPTH, Q_TRADE, QM_CONSERVATIVE, QM_PROB_POWER
from nodes.backtest.tick.fees import UNIT
from nodes.backtest.tick.fills import venue_fill
from nodes.backtest.tick.layout import C_LOG_QUEUE, C_QUEUE, C_QUEUE_N, O_AHEAD, O_ID, O_LEAVES, O_PRIO, O_TRADED
from nodes.backtest.tick.logs import log_queue
from nodes.backtest.tick.orders import next_live_at, refresh_venue_view
from nodes.contract import step_helper


@step_helper(_nrt=False)
def builtin_advance(model, n, front, back, decrease):
    """The front after a decrease, by a built-in model (``codes.QM_*``); quantities in units."""
    if model == QM_CONSERVATIVE or front <= 0.0:
        return front
    if model == QM_PROB_POWER:
        f_back = math.pow(back, n)
        f_front = math.pow(front, n)
    else:
        f_back = math.log(1.0 + back)
        f_front = math.log(1.0 + front)
    total = f_back + f_front
    behind = f_back / total if total > 0.0 else 1.0
    if not math.isfinite(behind):
        behind = 1.0
    return front - (1.0 - behind) * decrease + min(back - behind * decrease, 0.0)


@step_helper(_nrt=False)
def queue_units_to_ahead(estimate, ahead, decrease):
    """A model's front (units) as int64 size ahead, kept within ``[ahead - decrease, ahead]`` (NaN: unchanged)."""
    if not estimate == estimate or estimate >= ahead / UNIT:
        return ahead
    low = ahead - decrease
    if low < 0:
        low = 0
    if estimate <= low / UNIT:
        return low
    value = int(estimate * UNIT + 0.5)
    if value < low:
        return low
    if value > ahead:
        return ahead
    return value


def make_level_update(advance):
    """The helper that moves our orders' queues at an L2 level the data just set, around queue model
    ``advance(model, n, front, back, decrease)`` (``builtin_advance`` or a wrapped user function)."""

    @step_helper(_nrt=False)
    def update_queues_at_level(c, ints, log_ints, log_floats, k, side, price, old_size, new_size, exchange_ns):
        priority = -1
        while True:
            slot = next_live_at(ints, k, side, price, priority)
            if slot < 0:
                break
            priority = ints[slot, O_PRIO]
            traded = ints[slot, O_TRADED]
            ints[slot, O_TRADED] = 0
            decrease = old_size - new_size - traded
            ahead = ints[slot, O_AHEAD]
            moved = ahead
            cause = Q_DEPTH
            if decrease > 0 and ahead > 0:
                back = old_size - traded - ahead
                if back < 0:
                    back = 0
                estimate = advance(c[C_QUEUE], c[C_QUEUE_N], ahead / UNIT, back / UNIT, decrease / UNIT)
                moved = queue_units_to_ahead(estimate, ahead, decrease)
            if moved > new_size:
                moved = new_size
                cause = Q_CLAMP
            if moved != ahead:
                ints[slot, O_AHEAD] = moved
                if c[C_LOG_QUEUE]:
                    log_queue(log_ints, log_floats, ints, exchange_ns, k, ints[slot, O_ID], side, price, moved,
                              ints[slot, O_LEAVES], cause)

    return update_queues_at_level


@step_helper(_nrt=False)
def trade_at_level(c, ints, floats, responses, log_ints, log_floats, k, side, price, qty, snap, exchange_ns):
    """A trade of ``qty`` at ``price`` against our resting orders on ``side``: each one's queue ahead shrinks by
    the part of the print that reached it, and what passes its queue fills it (as a maker, at ``price``).

    Our orders share the print in their queue order: the print reaches an order after the leaves of our
    orders ahead of it at the level, so the fills of one print never add up to more than its size.
    """
    ours_ahead = 0
    priority = -1
    filled = False
    while True:
        slot = next_live_at(ints, k, side, price, priority)
        if slot < 0:
            break
        priority = ints[slot, O_PRIO]
        ints[slot, O_TRADED] += qty
        ahead = ints[slot, O_AHEAD]
        leaves = ints[slot, O_LEAVES]
        reach = qty - ours_ahead
        ours_ahead += leaves
        if reach <= 0:
            continue
        fill = reach - ahead
        if fill > leaves:
            fill = leaves
        moved = ahead - reach if reach < ahead else 0
        if moved != ahead:
            ints[slot, O_AHEAD] = moved
            if c[C_LOG_QUEUE]:
                log_queue(log_ints, log_floats, ints, exchange_ns, k, ints[slot, O_ID], side, price, moved, leaves,
                          Q_TRADE)
        if fill > 0:
            venue_fill(c, ints, floats, responses, log_ints, log_floats, slot, price, fill, MAKER, 0, ahead, snap,
                       exchange_ns)
            filled = True
    if filled:
        refresh_venue_view(ints, k)
