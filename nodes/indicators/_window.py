"""Helpers the indicator steps share: TA-Lib's zero test and monotonic deques kept in ring buffers.

Everything here is a ``step_helper``: plain Python on ``cpu``, compiled into the calling step on ``numba``.

A monotonic deque answers "max (or min) of the last ``window`` values" in O(1) amortised per event. It lives
in two arrays of ``window`` slots (values and the event number each was seen at) used as a ring: ``head`` is
the slot of the front (the current extreme), ``size`` how many slots are live. Each event expires at most one
front element (one event enters, so at most one leaves the window) and pops the dominated values from the
back. Ties keep the newest value, as TA-Lib's AROON/MAX scans do (``>=`` for a high, ``<=`` for a low), so
"bars since the extreme" counts from the most recent occurrence.
"""

import numpy as np

from nodes.contract import step_helper

# TA-Lib 0.8's TA_EPSILON: TA_IS_ZERO(v) is -1e-14 < v < 1e-14 and TA_IS_ZERO_OR_NEG(v) is v < 1e-14.
TA_EPSILON = 1e-14


@step_helper
def is_zero(v):
    """TA-Lib's TA_IS_ZERO: ``v`` within 1e-14 of zero."""
    return -TA_EPSILON < v and v < TA_EPSILON


def deque_arrays(window: int) -> tuple[np.ndarray, np.ndarray]:
    """The two ring arrays of a monotonic deque over ``window`` events: values and event numbers."""
    return np.zeros(window), np.zeros(window, dtype=np.int64)


@step_helper
def push_max(values, events, head, size, t, x):
    """Add ``x`` seen at event ``t`` to a max-deque over ``len(values)`` events; return (head, size).

    The front (``values[head]``, ``events[head]``) is then the newest maximum of the window ending at ``t``.
    """
    cap = values.shape[0]
    if size > 0 and events[head] <= t - cap:
        head += 1
        if head == cap:
            head = 0
        size -= 1
    while size > 0:
        back = head + size - 1
        if back >= cap:
            back -= cap
        if values[back] <= x:
            size -= 1
        else:
            break
    slot = head + size
    if slot >= cap:
        slot -= cap
    values[slot] = x
    events[slot] = t
    return head, size + 1


@step_helper
def push_min(values, events, head, size, t, x):
    """Add ``x`` seen at event ``t`` to a min-deque over ``len(values)`` events; return (head, size)."""
    cap = values.shape[0]
    if size > 0 and events[head] <= t - cap:
        head += 1
        if head == cap:
            head = 0
        size -= 1
    while size > 0:
        back = head + size - 1
        if back >= cap:
            back -= cap
        if values[back] >= x:
            size -= 1
        else:
            break
    slot = head + size
    if slot >= cap:
        slot -= cap
    values[slot] = x
    events[slot] = t
    return head, size + 1


@step_helper
def true_range(high, low, prev_close):
    """Wilder's true range in TA-Lib's operation order (TA_TRANGE): the largest of the three spans."""
    greatest = high - low
    span = abs(prev_close - high)
    if span > greatest:
        greatest = span
    span = abs(prev_close - low)
    if span > greatest:
        greatest = span
    return greatest


@step_helper
def push_lagged(count, pos, ring, x):
    """Store ``x`` in a ring of ``window + 1`` values; return (count, pos, the value ``window`` events back).

    The lagged value is NaN until the ring has filled (momentum and rate of change share this).
    """
    size = ring.shape[0]
    ring[pos] = x
    pos += 1
    if pos == size:
        pos = 0
    if count < size - 1:
        return count + 1, pos, np.nan
    return size, pos, ring[pos]
