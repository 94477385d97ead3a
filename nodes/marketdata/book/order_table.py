"""The resting orders of an L3 book: an open-addressing hash map from order id to the order, in one array.

The table is an int64 array of shape ``(slots, 4)``; one row (32 bytes, two to a cache line) holds an order:
``[order_id, price, size, tag]``. ``tag`` packs the order's side and its FIFO priority:
``tag = priority << 2 | (1 for a bid, 2 for an ask)``, and 0 marks an empty row, so a lookup touches one cache
line per probe and needs no sentinel order id (any int64 is a valid id). ``priority`` is the book's running
sequence number when the order last took a place in its queue (an add, a price change or a size increase);
orders at one level ahead of an order are exactly those with a smaller priority.

Collisions are resolved by linear probing; deletion shifts the following rows of the cluster back (no
tombstones), so lookups stay short however long a session runs. The table has twice as many rows as
``max_orders`` (rounded up to a power of two), so it is at most half full.

All functions are ``step_helper``: plain Python on ``cpu``, compiled into the step on ``numba``. The hash uses
only shifts, masks and a multiply that cannot overflow int64, so Python and numba compute the same slots.
"""

import numpy as np

from nodes.contract import step_helper

ORDER_ID = 0
PRICE = 1
SIZE = 2
TAG = 3
FIELDS = 4


def table_rows(max_orders: int) -> int:
    """Rows of the table for ``max_orders`` resting orders: a power of two at least twice as large."""
    rows = 2
    while rows < 2 * max_orders:
        rows *= 2
    return rows


def new_table(max_orders: int) -> np.ndarray:
    """An empty table for up to ``max_orders`` resting orders."""
    return np.zeros((table_rows(max_orders), FIELDS), np.int64)


@step_helper(_nrt=False)
def home_row(order_id, mask):
    """The first row probed for ``order_id``: its bits folded, then a multiplicative hash (no overflow)."""
    folded = (order_id ^ (order_id >> 31)) & 0x7FFFFFFF
    return ((folded * 2654435761) >> 29) & mask


@step_helper(_nrt=False)
def find_row(table, order_id):
    """Return the row holding ``order_id``, or ``-1 - row`` of the empty row where it would go."""
    mask = table.shape[0] - 1
    i = home_row(order_id, mask)
    while table[i, TAG] != 0:
        if table[i, ORDER_ID] == order_id:
            return i
        i = (i + 1) & mask
    return -1 - i


@step_helper(_nrt=False)
def store(table, row, order_id, price, size, tag):
    """Write an order into an empty ``row`` found by ``find_row``."""
    table[row, ORDER_ID] = order_id
    table[row, PRICE] = price
    table[row, SIZE] = size
    table[row, TAG] = tag


@step_helper(_nrt=False)
def delete_row(table, row):
    """Remove the order in ``row``, shifting later rows of its probe cluster back so none becomes unreachable."""
    mask = table.shape[0] - 1
    hole = row
    j = row
    while True:
        j = (j + 1) & mask
        if table[j, TAG] == 0:
            break
        home = home_row(table[j, ORDER_ID], mask)
        # the row at j may fill the hole only if its home is not cyclically within (hole, j]
        if hole <= j:
            stays = hole < home <= j
        else:
            stays = home > hole or home <= j
        if not stays:
            for f in range(FIELDS):
                table[hole, f] = table[j, f]
            hole = j
    table[hole, TAG] = 0


@step_helper(_nrt=False)
def clear_table(table):
    """Remove every order."""
    table[:, :] = 0


@step_helper(_nrt=False)
def make_tag(priority, row):
    """The tag of an order with FIFO ``priority`` on ladder ``row`` (0 bid, 1 ask); never 0."""
    return (priority << 2) | (row + 1)


@step_helper(_nrt=False)
def tag_row(tag):
    """The ladder row (0 bid, 1 ask) of a tag."""
    return (tag & 3) - 1


@step_helper(_nrt=False)
def tag_priority(tag):
    """The FIFO priority of a tag: smaller is earlier in the queue of its level."""
    return tag >> 2


@step_helper(_nrt=False)
def purge_level(table, row, price):
    """Remove every order resting on ladder ``row`` at ``price`` (a level pushed out of a full ladder).

    Scans the whole table: only called on overflow. Returns how many orders it removed.
    """
    removed = 0
    i = 0
    while i < table.shape[0]:
        tag = table[i, TAG]
        if tag != 0 and tag_row(tag) == row and table[i, PRICE] == price:
            delete_row(table, i)
            removed += 1
            # a later row of the cluster may have moved into i: look at i again
        else:
            i += 1
    return removed
