"""The DBN market-by-order rules: how one MBO record changes an L3 book.

Source: Databento's MBO documentation and its reference books ("Order tracking" and "Limit order book
construction" examples, databento.com/docs/examples/order-book/…):

- **A** add: a new resting order (``order_id``, ``side``, ``price``, ``size``) joins the back of its level.
- **C** cancel: takes ``size`` off the resting order (a partial cancel reduces it, a full cancel removes it).
  The order's own side and price locate it; the record's are not needed.
- **M** modify: the order's new ``price`` and ``size``. A price change **loses queue priority** (the order
  moves to the back of its new level); at the same price a size **increase** loses priority and a
  **decrease** keeps it. A modify of an order the book does not hold is treated as an add (the order rested
  before the data began).
- **R** clear: remove every resting order (e.g. before a snapshot, whose records carry ``F_SNAPSHOT``).
- **T** trade, **F** fill, **N** none: **do not change the book**. In DBN a fill of a resting order is always
  followed by the C (full fill) or M (partial fill, smaller size, same priority) that updates it — visible in
  the GLBX samples, e.g. F 1 lot then M 10 → 9 on the same order id. Reducing the order on F as well would
  take the size off twice.
- Records with ``F_TOB`` (top-of-book-only venues, where an add replaces a whole side) are not orders: this
  book counts them as inconsistent and leaves the book alone.

Where a record contradicts the book, the book stays valid and the record is counted as ``inconsistent``:
a cancel of an unknown order (e.g. one that rested before the data began) is ignored; a cancel larger than
the order removes the order; an add of an order id already resting replaces that order; a modify that
changes the side, or sets the size to 0, removes the order first (and, with a side change, adds it anew);
an invalid side (not ±1), an undefined price or a negative size on A/M is ignored; so is an unknown action.

Overflow (counted, never silent): an order that finds ``max_orders`` orders resting, or whose new level would
be the worst on a full side, is dropped; a new level better than the worst on a full side pushes the worst
level out together with its orders. Later records of dropped orders then count as inconsistent.
"""

from nodes.contract import step_helper
from nodes.marketdata.book.ladder import empty_sides, row_of, sign_of, valid_price
from nodes.marketdata.book.levels import level_join, level_take
from nodes.marketdata.book.order_table import (
    PRICE,
    SIZE,
    TAG,
    clear_table,
    delete_row,
    find_row,
    make_tag,
    purge_level,
    store,
    tag_row,
)
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_FILL,
    ACTION_MODIFY,
    ACTION_NONE,
    ACTION_TRADE,
    F_TOB,
)


@step_helper(_nrt=False)
def apply_mbo(book, counters, sides, order_id, side, price, size, action, flags):
    """Apply one MBO record to an L3 book; return the new scalars and the levels it changed.

    ``book`` is ``(levels, table, max_levels, max_orders)`` (arrays updated in place, see ``levels`` and
    ``order_table``); ``counters`` is ``(n_orders, next_priority, overflow, inconsistent)`` and ``sides``
    ``(lo_bid, n_bid, lo_ask, n_ask)``.

    Returns ``(counters, sides, cleared, row_a, key_a, action_a, row_b, key_b, action_b)``: ``cleared`` is 1 after R;
    a and b are the levels the record changed, in order (``row`` -1 when unused; ``action`` A new level,
    M changed, C removed). A price-changing modify fills both (its old level, then its new one).
    """
    levels, table, max_levels, max_orders = book
    n_orders, next_priority, overflow, inconsistent = counters
    cleared = 0
    row_a = -1
    key_a = 0
    action_a = 0
    row_b = -1
    key_b = 0
    action_b = 0
    if action == ACTION_CLEAR:
        sides = empty_sides(max_levels)
        if n_orders > 0:
            clear_table(table)
        n_orders = 0
        cleared = 1
    elif action != ACTION_ADD and action != ACTION_CANCEL and action != ACTION_MODIFY:
        if action != ACTION_TRADE and action != ACTION_FILL and action != ACTION_NONE:
            inconsistent += 1
    elif flags & F_TOB:
        inconsistent += 1
    elif action == ACTION_CANCEL:
        slot = find_row(table, order_id)
        if slot < 0 or size <= 0:
            inconsistent += 1
        else:
            resting = table[slot, SIZE]
            row_a = tag_row(table[slot, TAG])
            key_a = table[slot, PRICE] * sign_of(row_a)
            taken = size
            if taken > resting:
                inconsistent += 1
                taken = resting
            if taken == resting:
                sides, action_a = level_take(levels, sides, row_a, key_a, taken, 1)
                delete_row(table, slot)
                n_orders -= 1
            else:
                sides, action_a = level_take(levels, sides, row_a, key_a, taken, 0)
                table[slot, SIZE] = resting - taken
    elif not ((side == 1 or side == -1) and valid_price(price) and size >= 0):
        inconsistent += 1
    else:
        row = row_of(side)
        key = price * side
        slot = find_row(table, order_id)
        join = size > 0
        free_row = -1 - slot  # where a new order goes, while no row moves (a deletion or purge moves rows)
        if slot >= 0:
            old_price = table[slot, PRICE]
            old_size = table[slot, SIZE]
            old_row = tag_row(table[slot, TAG])
            if action == ACTION_ADD or old_row != row or size == 0:
                # a duplicate add, a side change or a modify to nothing: the old order goes first
                inconsistent += 1
                row_a = old_row
                key_a = old_price * sign_of(old_row)
                sides, action_a = level_take(levels, sides, row_a, key_a, old_size, 1)
                delete_row(table, slot)
                n_orders -= 1
            elif old_price != price:
                # a new price: leave the old level, join the back of the new one (priority lost)
                join = False
                row_a = row
                key_a = old_price * side
                sides, action_a = level_take(levels, sides, row, key_a, old_size, 1)
                sides, action_b, evicted, evicted_key = level_join(levels, sides, row, max_levels, key, size)
                if action_b == 0:
                    overflow += 1
                    delete_row(table, slot)
                    n_orders -= 1
                else:
                    row_b = row
                    key_b = key
                    table[slot, PRICE] = price
                    table[slot, SIZE] = size
                    table[slot, TAG] = make_tag(next_priority, row)
                    next_priority += 1
                    if evicted:
                        overflow += 1
                        n_orders -= purge_level(table, row, evicted_key * side)
            else:
                # same price: the size changes in place; only an increase loses priority
                join = False
                if size != old_size:
                    row_a = row
                    key_a = key
                    sides, action_a = level_take(levels, sides, row, key, old_size - size, 0)
                    table[slot, SIZE] = size
                    if size > old_size:
                        table[slot, TAG] = make_tag(next_priority, row)
                        next_priority += 1
        elif size == 0:
            inconsistent += 1
        if join:
            if n_orders >= max_orders:
                overflow += 1
            else:
                sides, action_b, evicted, evicted_key = level_join(levels, sides, row, max_levels, key, size)
                if action_b == 0:
                    overflow += 1
                else:
                    row_b = row
                    key_b = key
                    if evicted:
                        overflow += 1
                        n_orders -= purge_level(table, row, evicted_key * side)
                        free_row = -1
                    if free_row < 0:
                        free_row = -1 - find_row(table, order_id)
                    store(table, free_row, order_id, price, size, make_tag(next_priority, row))
                    next_priority += 1
                    n_orders += 1
    counters = (n_orders, next_priority, overflow, inconsistent)
    return counters, sides, cleared, row_a, key_a, action_a, row_b, key_b, action_b
