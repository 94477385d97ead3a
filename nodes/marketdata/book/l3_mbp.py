"""MBO → MBP: the price-level (L2) deltas that each market-by-order (L3) record implies."""

from nodes.contract import I64, StreamOp, step_helper
from nodes.marketdata.book.l3 import BookL3Params, new_l3_state
from nodes.marketdata.book.ladder import sign_of
from nodes.marketdata.book.levels import level_at
from nodes.marketdata.book.mbo_rules import apply_mbo
from nodes.marketdata.schemas import UNDEF_PRICE


class BookL3Mbp(StreamOp):
    """Keep an L3 book per instrument like ``book.l3`` and emit the L2 level changes each MBO record causes.

    A record changes at most two levels (a modify that moves an order to a new price: its old level, then its
    new one), so the outputs hold up to two deltas: ``levels_changed`` (0, 1 or 2), then for k = 1, 2
    ``side_k`` (1 bid, -1 ask), ``price_k``, ``size_k`` (the level's new total; 0 = the level is gone),
    ``orders_k`` (orders resting at the level) and ``action_k`` (A a new level, M a changed one, C a removed
    one); unused deltas are side 0, price ``UNDEF_PRICE``, size 0, orders 0, action 0. ``cleared`` is 1 when
    the record cleared the book (R): an L2 book clears too. T, F and N records change no level.

    Feeding these deltas, in order, to ``book.l2`` with the same ``max_levels`` reproduces this book's levels
    exactly (an L2 book evicts the same worst level on overflow by itself). As rows of the ``book_deltas``
    schema: one row per delta (``side_k``, ``price_k``, ``size_k``, ``action_k``), or ``action`` R for
    ``cleared``; ``mbo_to_mbp`` in ``nodes.marketdata.book.replay`` does that for a whole table.

    Example::

        mbp: {op: book.l3_mbp, in: {order_id: mbo.order_id, side: mbo.side, price: mbo.price, size: mbo.size,
                                     action: mbo.action, flags: mbo.flags}}
    """

    name = "book.l3_mbp"
    Params = BookL3Params
    inputs = {"order_id": I64, "side": I64, "price": I64, "size": I64, "action": I64, "flags": I64}
    outputs = {
        "cleared": I64,
        "levels_changed": I64,
        "side_1": I64,
        "price_1": I64,
        "size_1": I64,
        "orders_1": I64,
        "action_1": I64,
        "side_2": I64,
        "price_2": I64,
        "size_2": I64,
        "orders_2": I64,
        "action_2": I64,
    }

    @staticmethod
    def init(c, n_keys):
        return new_l3_state(c[0], c[1])

    @staticmethod
    def step(c, s, order_id, side, price, size, action, flags):
        levels, table = s[8], s[9]
        counters, sides, cleared, row_a, key_a, action_a, row_b, key_b, action_b = apply_mbo(
            (levels, table, c[0], c[1]), (s[0], s[1], s[2], s[3]), (s[4], s[5], s[6], s[7]),
            order_id, side, price, size, action, flags,
        )
        if row_a >= 0 and row_a == row_b and key_a == key_b:
            row_a = -1  # both halves touched one level: report it once, as it is now
        if row_a < 0:
            row_a, key_a, action_a = row_b, key_b, action_b
            row_b = -1
        changed = (1 if row_a >= 0 else 0) + (1 if row_b >= 0 else 0)
        side_1, price_1, size_1, orders_1, action_1 = _delta(levels, sides, row_a, key_a, action_a)
        side_2, price_2, size_2, orders_2, action_2 = _delta(levels, sides, row_b, key_b, action_b)
        state = (counters[0], counters[1], counters[2], counters[3], sides[0], sides[1], sides[2], sides[3],
                 levels, table)
        return (
            state, cleared, changed, side_1, price_1, size_1, orders_1, action_1, side_2, price_2, size_2,
            orders_2, action_2,
        )


@step_helper(_nrt=False)
def _delta(levels, sides, row, key, action):
    """One changed level as ``(side, price, size, orders, action)``, read after the record was applied."""
    if row < 0:
        return 0, UNDEF_PRICE, 0, 0, 0
    size, orders = level_at(levels, sides, row, key)
    sign = sign_of(row)
    return sign, key * sign, size, orders, action
