"""Turn the entries the update-id rules emitted into ``book_deltas`` rows (one compiled loop, no per-row objects).

Per entry:

- a diff: one row per price level, in the message's order; ``size`` is the level's new total; action ``C``
  when it is 0 (the level goes away), else ``M`` (the normalizer keeps no book, so it cannot tell a new level
  from a changed one; a book treats both as "set"). ``F_LAST`` on the message's last row.
- a snapshot: a clear row (``R``, ``F_SNAPSHOT``), then one ``A`` row per level (``F_SNAPSHOT``), ``F_LAST`` on
  the last row.
- a gap: one clear row (``R``) flagged ``F_LAST | F_MAYBE_BAD_BOOK``: drop the book, wait for a snapshot.

Clear rows have ``side`` 0, ``price`` ``UNDEF_PRICE`` and ``size`` 0. A message's own flags (``F_BAD_TS_RECV``
when its receive time was repaired or its venue time clamped) are added to each of its rows.
"""

from nodes.marketdata.binance import sequence as Q
from nodes.marketdata.binance._jit import njit
from nodes.marketdata.binance.scan import L_PRICE, L_SIDE, L_SIZE
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_MODIFY,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    UNDEF_PRICE,
)

# extra columns of the message table, after the ones the rules read
Q_LEVEL_START = Q.N_Q
Q_LEVEL_COUNT = Q.N_Q + 1
Q_FLAGS = Q.N_Q + 2
N_COLUMNS = Q.N_Q + 3


@njit(cache=True, nogil=True)
def count_rows(emits, n_emit, msgs):
    total = 0
    for e in range(n_emit):
        kind = emits[e, 0]
        if kind == Q.EMIT_DIFF:
            total += msgs[emits[e, 1], Q_LEVEL_COUNT]
        elif kind == Q.EMIT_SNAPSHOT:
            total += msgs[emits[e, 1], Q_LEVEL_COUNT] + 1
        else:
            total += 1
    return total


@njit(cache=True, nogil=True)
def fill_rows(emits, n_emit, msgs, levels, ts_event, ts_recv, symbol, sequence, side, price, size, action, flags,
              line):
    r = 0
    for e in range(n_emit):
        kind = emits[e, 0]
        m = emits[e, 1]
        extra = msgs[m, Q_FLAGS] if m >= 0 else 0
        first = r
        if kind != Q.EMIT_DIFF:  # a clear row opens a snapshot and is the whole of a gap
            side[r] = 0
            price[r] = UNDEF_PRICE
            size[r] = 0
            action[r] = ACTION_CLEAR
            flags[r] = F_SNAPSHOT if kind == Q.EMIT_SNAPSHOT else F_MAYBE_BAD_BOOK
            r += 1
        if kind != Q.EMIT_GAP_CLEAR:
            start = msgs[m, Q_LEVEL_START]
            for k in range(start, start + msgs[m, Q_LEVEL_COUNT]):
                side[r] = levels[k, L_SIDE]
                price[r] = levels[k, L_PRICE]
                size[r] = levels[k, L_SIZE]
                if kind == Q.EMIT_SNAPSHOT:
                    action[r] = ACTION_ADD
                    flags[r] = F_SNAPSHOT
                else:
                    action[r] = ACTION_CANCEL if levels[k, L_SIZE] == 0 else ACTION_MODIFY
                    flags[r] = 0
                r += 1
        for k in range(first, r):
            ts_event[k] = emits[e, 3]
            ts_recv[k] = emits[e, 2]
            symbol[k] = emits[e, 4]
            sequence[k] = emits[e, 6]
            line[k] = emits[e, 5]
            flags[k] |= extra
        if r > first:
            flags[r - 1] |= F_LAST
    return r
