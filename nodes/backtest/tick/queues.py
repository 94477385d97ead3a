"""The two message queues between the strategy and the venue: requests (to the venue) and responses (back).

Each is an int64 array used as a FIFO between a head and a tail kept in ``ints[ACC]``. Both are in time order by
construction: a request arrives no earlier than the one sent before it and a response is seen no earlier than
the one sent before it (one session, as over one TCP connection: a fast cancel never overtakes the order it
cancels). ``reserve_queue`` makes room at a phase boundary: it slides the live rows to the front, or grows the
array (the only allocation), so pushing never allocates.
"""

import numpy as np

from nodes.backtest.tick.layout import (
    A_LAST_ARRIVAL,
    A_LAST_VISIBLE,
    A_RQ_HEAD,
    A_RQ_TAIL,
    A_RS_HEAD,
    A_RS_TAIL,
    ACC,
    Q_ARRIVE,
    Q_ID,
    Q_KIND,
    Q_PRICE,
    Q_QTY,
    Q_SENT,
    Q_SLOT,
    S_COMPLETES,
    S_ID,
    S_KIND,
    S_LEAVES,
    S_LIQ,
    S_PRICE,
    S_QTY,
    S_SLOT,
    S_VISIBLE,
)
from nodes.contract import step_helper


@step_helper
def reserve_queue(queue, ints, head_column, tail_column, rows):
    """The queue with room for ``rows`` more rows after its tail: the same array, compacted, or a larger copy."""
    head = ints[ACC, head_column]
    tail = ints[ACC, tail_column]
    if tail + rows <= queue.shape[0]:
        return queue
    live = tail - head
    target = queue
    if live + rows > queue.shape[0] // 2:
        target = np.zeros((max(2 * queue.shape[0], 2 * (live + rows)), queue.shape[1]), np.int64)
    for r in range(live):  # forward copy: safe when sliding within the same array
        for j in range(queue.shape[1]):
            target[r, j] = queue[head + r, j]
    ints[ACC, head_column] = 0
    ints[ACC, tail_column] = live
    return target


@step_helper(_nrt=False)
def push_request(requests, ints, arrive_ns, kind, slot, order_id, price, qty, sent_ns):
    """Queue a request arriving at ``arrive_ns`` (raised to the last arrival: requests keep their order)."""
    if arrive_ns < ints[ACC, A_LAST_ARRIVAL]:
        arrive_ns = ints[ACC, A_LAST_ARRIVAL]
    ints[ACC, A_LAST_ARRIVAL] = arrive_ns
    r = ints[ACC, A_RQ_TAIL]
    ints[ACC, A_RQ_TAIL] = r + 1
    requests[r, Q_ARRIVE] = arrive_ns
    requests[r, Q_KIND] = kind
    requests[r, Q_SLOT] = slot
    requests[r, Q_ID] = order_id
    requests[r, Q_PRICE] = price
    requests[r, Q_QTY] = qty
    requests[r, Q_SENT] = sent_ns
    return arrive_ns


@step_helper(_nrt=False)
def next_request_due(requests, ints, now_ns):
    """The row of the oldest request that has arrived by ``now_ns``, or -1."""
    head = ints[ACC, A_RQ_HEAD]
    if head < ints[ACC, A_RQ_TAIL] and requests[head, Q_ARRIVE] <= now_ns:
        return head
    return -1


@step_helper(_nrt=False)
def push_response(responses, ints, visible_ns, kind, slot, order_id, price, qty, liquidity, completes, leaves):
    """Queue a response the strategy sees at ``visible_ns`` (a batch of responses shares one time)."""
    r = ints[ACC, A_RS_TAIL]
    ints[ACC, A_RS_TAIL] = r + 1
    responses[r, S_VISIBLE] = visible_ns
    responses[r, S_KIND] = kind
    responses[r, S_SLOT] = slot
    responses[r, S_ID] = order_id
    responses[r, S_PRICE] = price
    responses[r, S_QTY] = qty
    responses[r, S_LIQ] = liquidity
    responses[r, S_COMPLETES] = completes
    responses[r, S_LEAVES] = leaves


@step_helper(_nrt=False)
def next_response_seen(responses, ints, now_ns):
    """The row of the oldest response the strategy has seen by ``now_ns``, or -1."""
    head = ints[ACC, A_RS_HEAD]
    if head < ints[ACC, A_RS_TAIL] and responses[head, S_VISIBLE] <= now_ns:
        return head
    return -1


@step_helper(_nrt=False)
def later_than_last_visible(ints, visible_ns):
    """``visible_ns`` raised to the last response's time (responses keep their order); remembered."""
    if visible_ns < ints[ACC, A_LAST_VISIBLE]:
        visible_ns = ints[ACC, A_LAST_VISIBLE]
    ints[ACC, A_LAST_VISIBLE] = visible_ns
    return visible_ns
