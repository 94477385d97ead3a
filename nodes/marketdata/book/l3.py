"""The L3 (market-by-order) book: every resting order by id, with the price levels they add up to."""

from pydantic import Field

from nodes.contract import I64, OpParams, StreamOp, step_helper
from nodes.marketdata.book.ladder import ASK, BID, COUNT, best_level, empty_sides, is_crossed, new_levels
from nodes.marketdata.book.mbo_rules import apply_mbo
from nodes.marketdata.book.order_table import PRICE, SIZE, TAG, find_row, new_table, tag_priority, tag_row


class BookL3Params(OpParams):
    max_levels: int = Field(
        4096,
        ge=1,
        le=1_000_000,
        description="capacity of each side, in price levels; a level past it is counted in `overflow`",
    )
    max_orders: int = Field(
        65_536,
        ge=1,
        le=1 << 26,
        description="resting orders the book can hold (all prices, both sides); an order past it is counted in "
        "`overflow`. Memory: 64 bytes per order of capacity per instrument",
    )


class BookL3(StreamOp):
    """Keep an order-by-order (L3) book per instrument from DBN MBO ``orders`` and emit its top after every event.

    Inputs follow the normalized ``orders`` schema: ``order_id``, ``side`` (1 bid, -1 ask), ``price`` and
    ``size`` (int64, 1e-9 units), ``action`` (ASCII code) and ``flags``, applied by Databento's MBO rules
    (``nodes.marketdata.book.mbo_rules``: A adds, C cancels all or part, M modifies — a price change or a size
    increase loses queue priority —, R clears, T/F/N change nothing). Read the book at ``F_LAST`` records,
    where a venue event is complete.

    Outputs (all int64): ``best_bid``/``best_ask`` (``UNDEF_PRICE`` when a side is empty), ``bid_size``/
    ``ask_size`` and ``bid_orders``/``ask_orders`` (resting orders) at the top, ``levels_bid``/``levels_ask``,
    ``orders`` (resting orders in the book), ``crossed`` (1 when best bid >= best ask), and the running
    counts ``overflow`` (orders or levels past the capacities, see the params) and ``inconsistent`` (records
    that contradicted the book, see ``mbo_rules``).

    State: the orders in an open-addressing hash table (``order_table``: id → price, size, side and FIFO
    priority; 64 bytes per order of ``max_orders``) and the levels in sorted arrays with size and order count
    per level (``levels``; 96 KiB per 1,000 levels of ``max_levels``), two arrays and scalars in all; no
    allocation per event. The levels are exactly the L2 book the orders add up to; ``book.l3_mbp`` emits the
    L2 deltas. A clear (R) wipes the table: O(``max_orders``), ~0.15 ms at the default.

    Example::

        book: {op: book.l3, in: {order_id: mbo.order_id, side: mbo.side, price: mbo.price, size: mbo.size,
                                  action: mbo.action, flags: mbo.flags}}
    """

    name = "book.l3"
    Params = BookL3Params
    inputs = {"order_id": I64, "side": I64, "price": I64, "size": I64, "action": I64, "flags": I64}
    outputs = {
        "best_bid": I64,
        "best_ask": I64,
        "bid_size": I64,
        "ask_size": I64,
        "bid_orders": I64,
        "ask_orders": I64,
        "levels_bid": I64,
        "levels_ask": I64,
        "orders": I64,
        "crossed": I64,
        "overflow": I64,
        "inconsistent": I64,
    }

    @staticmethod
    def init(c, n_keys):
        return new_l3_state(c[0], c[1])

    @staticmethod
    def step(c, s, order_id, side, price, size, action, flags):
        levels, table = s[8], s[9]
        counters, sides, _, _, _, _, _, _, _ = apply_mbo(
            (levels, table, c[0], c[1]), (s[0], s[1], s[2], s[3]), (s[4], s[5], s[6], s[7]),
            order_id, side, price, size, action, flags,
        )
        n_orders, next_priority, overflow, inconsistent = counters
        lo_bid, n_bid, lo_ask, n_ask = sides
        best_bid, bid_size = best_level(levels, BID, lo_bid, n_bid)
        best_ask, ask_size = best_level(levels, ASK, lo_ask, n_ask)
        bid_orders = levels[COUNT, BID, lo_bid + n_bid - 1] if n_bid > 0 else 0
        ask_orders = levels[COUNT, ASK, lo_ask + n_ask - 1] if n_ask > 0 else 0
        crossed = is_crossed(n_bid, n_ask, best_bid, best_ask)
        state = (n_orders, next_priority, overflow, inconsistent, lo_bid, n_bid, lo_ask, n_ask, levels, table)
        return (
            state, best_bid, best_ask, bid_size, ask_size, bid_orders, ask_orders, n_bid, n_ask, n_orders, crossed,
            overflow, inconsistent,
        )


def new_l3_state(max_levels: int, max_orders: int) -> tuple:
    """An empty L3 book, shared by ``book.l3_mbp``: the counters ``(n_orders, next_priority, overflow,
    inconsistent)``, the ladders' ``(lo_bid, n_bid, lo_ask, n_ask)``, the levels (KEY, SIZE, COUNT; see
    ``ladder``) and the order table (see ``order_table``)."""
    return (0, 1, 0, 0, *empty_sides(max_levels), new_levels(3, max_levels), new_table(max_orders))


@step_helper(_nrt=False)
def queue_ahead(s, order_id):
    """How many orders and how much size rest ahead of ``order_id`` in its level's FIFO queue.

    Returns ``(orders_ahead, size_ahead)``, or ``(-1, -1)`` when the order is not in the book. Scans the order
    table (not for a per-event path).
    """
    table = s[9]
    slot = find_row(table, order_id)
    if slot < 0:
        return -1, -1
    tag = table[slot, TAG]
    row = tag_row(tag)
    price = table[slot, PRICE]
    priority = tag_priority(tag)
    orders_ahead = 0
    size_ahead = 0
    for i in range(table.shape[0]):
        other = table[i, TAG]
        if other != 0 and tag_row(other) == row and table[i, PRICE] == price and tag_priority(other) < priority:
            orders_ahead += 1
            size_ahead += table[i, SIZE]
    return orders_ahead, size_ahead
