"""Apply Binance's update-id rules to depth diffs and REST snapshots, per symbol, as a local book would.

The rules, as Binance documents them ("How to manage a local order book correctly"):

Spot (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams, section "How to manage a
local order book correctly"; the 2024 revision is binance/binance-spot-api-docs PR #383):
  buffer the diffs, get a snapshot, discard buffered diffs with ``u <= lastUpdateId``; the first diff applied
  must have ``lastUpdateId`` within ``[U; u]`` (i.e. ``U <= lastUpdateId + 1 <= u``); then for every diff:
  ignore it if ``u <=`` the book's update id; if ``U >`` the book's update id ``+ 1``, something was missed:
  discard the book and restart from a new snapshot; else apply it and set the book's id to ``u``. (The
  earlier wording — "each new event's U should be equal to the previous event's u + 1" — is the same rule
  when diffs do not overlap; an overlapping diff, ``U <= id < u``, is applied and counted as ``overlaps``.)

USD-M and COIN-M futures
(https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly,
https://developers.binance.com/docs/derivatives/coin-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly):
  drop diffs with ``u < lastUpdateId``; the first diff applied must have ``U <= lastUpdateId <= u``; then each
  diff's ``pu`` must equal the previous diff's ``u``, otherwise re-initialise from a new snapshot. (After the
  first diff, a diff with ``u <=`` the book's id is an old repeat and is dropped as stale.)

What the normalizer does with them, per symbol (states: no book → syncing → live, and invalid after a gap):

- Diffs that arrive before any snapshot (or while the book is invalid) are **buffered** (at most
  ``buffer_max`` per symbol; the oldest is dropped and counted beyond that). When a snapshot arrives its
  levels are emitted (a clear row, then the levels, flagged ``F_SNAPSHOT``), the buffered diffs are replayed
  in update-id order — stale ones dropped, the rest applied — and stamped with the snapshot's ``ts_recv``:
  that is when a live book could first use them, so nothing is seen before its time.
- A diff that does not continue the book is held for **bounded reordering**: if the missing diffs arrive
  while fewer than ``reorder_max`` diffs are held and no more than ``reorder_window_ns`` of receive time has
  passed since the first held one, the held diffs are applied in update-id order at the receive time of the
  diff that completed the chain (counted as ``reordered``).
- Otherwise it is a **gap**: recorded with the line of the first diff after the hole, the id expected and the
  ids found. A clear row (``ACTION_CLEAR``, ``F_LAST | F_MAYBE_BAD_BOOK``) tells a book consumer to drop its
  book, and no diff is emitted until the next snapshot (diffs are buffered for it as above), so a consumer
  rebuilds instead of silently continuing on a book with a hole. Held diffs still pending at the end of the
  file are a gap too; diffs still buffered then were never applied (``unsynced_dropped``).
- A snapshot older than a live book (``lastUpdateId <=`` the book's id) would move the book backwards: it is
  skipped and counted.

``apply_rules`` runs this as one compiled loop over a block's depth messages in receive order; state (and
diffs held across blocks) carries over between calls, so the output does not depend on how the file was cut
into blocks.
"""

from nodes.marketdata.binance._jit import njit

NO_BOOK, SYNCING, LIVE, INVALID = 0, 1, 2, 3
STATE_NAMES = ("no_book", "syncing", "live", "invalid")

# kinds of the messages and of the emitted entries
MSG_DIFF = 1
MSG_SNAPSHOT = 4
EMIT_DIFF = 1
EMIT_SNAPSHOT = 2
EMIT_GAP_CLEAR = 3

HOLD_NONE, HOLD_BUFFERED, HOLD_PENDING = 0, 1, 2

# per-symbol counters: counters[symbol, C_*]
C_DIFFS_APPLIED = 0
C_STALE = 1
C_REPLAYED = 2
C_REORDERED = 3
C_OVERLAPS = 4
C_GAPS = 5
C_UNSYNCED_DROPPED = 6
C_SNAPSHOTS_APPLIED = 7
C_SNAPSHOTS_SKIPPED = 8
C_BUFFERED = 9
N_COUNTERS = 10
COUNTER_NAMES = (
    "diffs_applied", "stale_dropped", "replayed_after_snapshot", "reordered", "overlaps", "gaps",
    "unsynced_dropped", "snapshots_applied", "snapshots_skipped", "buffered_before_sync",
)

# per-symbol state: state[symbol, S_*]
S_STATE = 0
S_BOOK_ID = 1
S_PENDING_SINCE = 2
S_N_BUFFERED = 3
S_N_PENDING = 4
S_LAST_ID_SEEN = 5
N_STATE = 6

# gap records: gaps[k, G_*]
G_SYMBOL = 0
G_LINE = 1  # line of the first diff after the hole
G_DETECTED_LINE = 2  # line of the message at which the gap was declared
G_EXPECTED = 3  # spot: the U expected (book id + 1); futures: the pu expected (book id)
G_FIRST_ID = 4  # U of the first diff after the hole
G_PREV_ID = 5  # its pu (futures) or -1
G_TS_RECV = 6  # receive time at which the gap was declared
N_GAP_FIELDS = 7

# message table columns the kernel reads: msgs[k, Q_*]
Q_KIND = 0
Q_SYMBOL = 1
Q_TS_RECV = 2
Q_TS_EVENT = 3
Q_LINE = 4
Q_FIRST_ID = 5  # U
Q_LAST_ID = 6  # u, or lastUpdateId for a snapshot
Q_PREV_ID = 7  # pu, or -1
Q_HOLD = 8  # in: HOLD_* of a message carried from an earlier block; out: HOLD_* at the end of this call
N_Q = 9

STALE, APPLY, GAP = 0, 1, 2


@njit(cache=True, nogil=True)
def _classify(futures, state, book_id, first_id, last_id, prev_id):
    """STALE, APPLY or GAP for a diff against a book at ``book_id`` (syncing: the snapshot's lastUpdateId)."""
    if futures:
        if state == SYNCING:
            if last_id < book_id:
                return STALE
            if first_id <= book_id:
                return APPLY
            return GAP
        if last_id <= book_id:
            return STALE
        if prev_id == book_id:
            return APPLY
        return GAP
    if last_id <= book_id:
        return STALE
    if first_id > book_id + 1:
        return GAP
    return APPLY


@njit(cache=True, nogil=True)
def _emit(emits, n_emit, kind, msg, ts_recv, ts_event, symbol, line, sequence):
    emits[n_emit, 0] = kind
    emits[n_emit, 1] = msg
    emits[n_emit, 2] = ts_recv
    emits[n_emit, 3] = ts_event
    emits[n_emit, 4] = symbol
    emits[n_emit, 5] = line
    emits[n_emit, 6] = sequence
    return n_emit + 1


@njit(cache=True, nogil=True)
def _buffer_push(s, m, state, buffered, counters, buffer_max):
    n = state[s, S_N_BUFFERED]
    if n >= buffer_max:
        for k in range(1, n):  # drop the oldest: it can no longer be replayed
            buffered[s, k - 1] = buffered[s, k]
        n -= 1
        counters[s, C_UNSYNCED_DROPPED] += 1
    buffered[s, n] = m
    state[s, S_N_BUFFERED] = n + 1


@njit(cache=True, nogil=True)
def _sort_by_first_id(buffered, s, n, msgs):
    """Insertion sort of ``buffered[s, :n]`` by U (buffers arrive almost sorted: near linear)."""
    for k in range(1, n):
        item = buffered[s, k]
        key = msgs[item, Q_FIRST_ID]
        j = k - 1
        while j >= 0 and msgs[buffered[s, j], Q_FIRST_ID] > key:
            buffered[s, j + 1] = buffered[s, j]
            j -= 1
        buffered[s, j + 1] = item


@njit(cache=True, nogil=True)
def _apply(m, s, ts, msgs, state, emits, n_emit, counters, futures):
    book_id = state[s, S_BOOK_ID]
    if not futures and state[s, S_STATE] == LIVE and msgs[m, Q_FIRST_ID] < book_id + 1:
        counters[s, C_OVERLAPS] += 1
    state[s, S_BOOK_ID] = msgs[m, Q_LAST_ID]
    state[s, S_STATE] = LIVE
    counters[s, C_DIFFS_APPLIED] += 1
    return _emit(emits, n_emit, EMIT_DIFF, m, ts, msgs[m, Q_TS_EVENT], s, msgs[m, Q_LINE], msgs[m, Q_LAST_ID])


@njit(cache=True, nogil=True)
def _drain_pending(s, ts, msgs, state, pending, emits, n_emit, counters, futures, count_as):
    """Apply held diffs that now continue the book, lowest update id first; drop stale ones."""
    while state[s, S_N_PENDING] > 0:
        best = -1
        k = 0
        while k < state[s, S_N_PENDING]:
            p = pending[s, k]
            verdict = _classify(futures, state[s, S_STATE], state[s, S_BOOK_ID], msgs[p, Q_FIRST_ID], msgs[p, Q_LAST_ID], msgs[p, Q_PREV_ID])
            if verdict == STALE:
                counters[s, C_STALE] += 1
                state[s, S_N_PENDING] -= 1
                pending[s, k] = pending[s, state[s, S_N_PENDING]]
                continue
            if verdict == APPLY and (best < 0 or msgs[p, Q_FIRST_ID] < msgs[pending[s, best], Q_FIRST_ID]):
                best = k
            k += 1
        if best < 0:
            break
        p = pending[s, best]
        state[s, S_N_PENDING] -= 1
        pending[s, best] = pending[s, state[s, S_N_PENDING]]
        counters[s, count_as] += 1
        n_emit = _apply(p, s, ts, msgs, state, emits, n_emit, counters, futures)
    if state[s, S_N_PENDING] == 0:
        state[s, S_PENDING_SINCE] = -1
    return n_emit


@njit(cache=True, nogil=True)
def _declare_gap(s, ts, line, msgs, state, pending, buffered, emits, n_emit, gaps, n_gaps, counters, futures, buffer_max):
    """The held diffs cannot be completed: record the gap, clear the book, keep the diffs for the next snapshot."""
    first = pending[s, 0]
    for k in range(1, state[s, S_N_PENDING]):
        if msgs[pending[s, k], Q_FIRST_ID] < msgs[first, Q_FIRST_ID]:
            first = pending[s, k]
    book_id = state[s, S_BOOK_ID]
    if n_gaps < gaps.shape[0]:
        gaps[n_gaps, G_SYMBOL] = s
        gaps[n_gaps, G_LINE] = msgs[first, Q_LINE]
        gaps[n_gaps, G_DETECTED_LINE] = line
        gaps[n_gaps, G_EXPECTED] = book_id if futures else book_id + 1
        gaps[n_gaps, G_FIRST_ID] = msgs[first, Q_FIRST_ID]
        gaps[n_gaps, G_PREV_ID] = msgs[first, Q_PREV_ID]
        gaps[n_gaps, G_TS_RECV] = ts
    n_gaps += 1
    counters[s, C_GAPS] += 1
    n_emit = _emit(emits, n_emit, EMIT_GAP_CLEAR, -1, ts, msgs[first, Q_TS_EVENT], s, line, book_id)
    state[s, S_STATE] = INVALID
    # in update-id order, so a later snapshot replays them in order
    while state[s, S_N_PENDING] > 0:
        low = 0
        for k in range(1, state[s, S_N_PENDING]):
            if msgs[pending[s, k], Q_FIRST_ID] < msgs[pending[s, low], Q_FIRST_ID]:
                low = k
        _buffer_push(s, pending[s, low], state, buffered, counters, buffer_max)
        state[s, S_N_PENDING] -= 1
        pending[s, low] = pending[s, state[s, S_N_PENDING]]
    state[s, S_PENDING_SINCE] = -1
    return n_emit, n_gaps


@njit(cache=True, nogil=True)
def _check_pending(s, ts, line, msgs, state, pending, buffered, emits, n_emit, gaps, n_gaps, counters, futures,
                   buffer_max, reorder_window_ns, reorder_max):
    n_pending = state[s, S_N_PENDING]
    if n_pending == 0:
        return n_emit, n_gaps
    if n_pending > reorder_max or ts - state[s, S_PENDING_SINCE] > reorder_window_ns:
        return _declare_gap(s, ts, line, msgs, state, pending, buffered, emits, n_emit, gaps, n_gaps, counters,
                            futures, buffer_max)
    return n_emit, n_gaps


@njit(cache=True, nogil=True)
def apply_rules(msgs, state, counters, buffered, pending, emits, gaps, futures, reorder_window_ns, reorder_max,
                buffer_max, eof, eof_ts_recv, eof_line):
    """Run the rules over ``msgs`` (depth diffs and snapshots in receive order; carried ones first).

    ``state``, ``counters``, ``buffered`` (symbols × buffer_max) and ``pending`` (symbols × reorder_max + 1) are
    per-symbol and carried between calls; ``buffered``/``pending`` hold row indices of ``msgs`` and are rebuilt
    from ``Q_HOLD`` of carried rows. Writes ``emits`` (rows: kind, msg, ts_recv, ts_event, symbol, line,
    sequence) and ``gaps``; on return ``Q_HOLD`` tells which rows are still held. With ``eof``, pending diffs
    become gaps and buffered ones are dropped (counted).

    Returns (entries emitted, gaps found).
    """
    n_emit = 0
    n_gaps = 0
    for s in range(state.shape[0]):
        state[s, S_N_BUFFERED] = 0
        state[s, S_N_PENDING] = 0
    for m in range(msgs.shape[0]):
        s = msgs[m, Q_SYMBOL]
        hold = msgs[m, Q_HOLD]
        msgs[m, Q_HOLD] = HOLD_NONE
        if hold == HOLD_BUFFERED:
            _buffer_push(s, m, state, buffered, counters, buffer_max)
            continue
        if hold == HOLD_PENDING:
            pending[s, state[s, S_N_PENDING]] = m
            state[s, S_N_PENDING] += 1
            continue
        ts = msgs[m, Q_TS_RECV]
        line = msgs[m, Q_LINE]
        st = state[s, S_STATE]
        if msgs[m, Q_KIND] == MSG_SNAPSHOT:
            snapshot_id = msgs[m, Q_LAST_ID]
            if (st == LIVE or st == SYNCING) and snapshot_id <= state[s, S_BOOK_ID]:
                counters[s, C_SNAPSHOTS_SKIPPED] += 1
                continue
            counters[s, C_SNAPSHOTS_APPLIED] += 1
            n_emit = _emit(emits, n_emit, EMIT_SNAPSHOT, m, ts, msgs[m, Q_TS_EVENT], s, line, snapshot_id)
            # diffs held for reordering join the buffer: all are replayed against the new snapshot
            while state[s, S_N_PENDING] > 0:
                state[s, S_N_PENDING] -= 1
                _buffer_push(s, pending[s, state[s, S_N_PENDING]], state, buffered, counters, buffer_max)
            state[s, S_STATE] = SYNCING
            state[s, S_BOOK_ID] = snapshot_id
            state[s, S_PENDING_SINCE] = -1
            n_buffered = state[s, S_N_BUFFERED]
            _sort_by_first_id(buffered, s, n_buffered, msgs)
            state[s, S_N_BUFFERED] = 0
            # replay in update-id order: stale ones drop, a hole is held like any other. Re-buffering (when the
            # held diffs overflow) writes at an index <= k, behind the read position: no scratch needed.
            for k in range(n_buffered):
                r = buffered[s, k]
                verdict = _classify(futures, state[s, S_STATE], state[s, S_BOOK_ID], msgs[r, Q_FIRST_ID],
                                    msgs[r, Q_LAST_ID], msgs[r, Q_PREV_ID])
                if state[s, S_N_PENDING] == 0 and verdict == APPLY:
                    counters[s, C_REPLAYED] += 1
                    n_emit = _apply(r, s, ts, msgs, state, emits, n_emit, counters, futures)
                elif verdict == STALE:
                    counters[s, C_STALE] += 1
                elif state[s, S_N_PENDING] < pending.shape[1]:
                    if state[s, S_N_PENDING] == 0:
                        state[s, S_PENDING_SINCE] = ts
                    pending[s, state[s, S_N_PENDING]] = r
                    state[s, S_N_PENDING] += 1
                    n_emit = _drain_pending(s, ts, msgs, state, pending, emits, n_emit, counters, futures, C_REPLAYED)
                else:
                    _buffer_push(s, r, state, buffered, counters, buffer_max)
            n_emit, n_gaps = _check_pending(s, ts, line, msgs, state, pending, buffered, emits, n_emit, gaps, n_gaps,
                                            counters, futures, buffer_max, reorder_window_ns, reorder_max)
            continue
        if st == NO_BOOK or st == INVALID:
            counters[s, C_BUFFERED] += 1
            _buffer_push(s, m, state, buffered, counters, buffer_max)
            continue
        verdict = _classify(futures, st, state[s, S_BOOK_ID], msgs[m, Q_FIRST_ID], msgs[m, Q_LAST_ID], msgs[m, Q_PREV_ID])
        if verdict == STALE:
            counters[s, C_STALE] += 1
        elif verdict == APPLY:
            n_emit = _apply(m, s, ts, msgs, state, emits, n_emit, counters, futures)
            if state[s, S_N_PENDING] > 0:  # the missing diff arrived: the held ones follow it
                n_emit = _drain_pending(s, ts, msgs, state, pending, emits, n_emit, counters, futures, C_REORDERED)
        else:
            if state[s, S_N_PENDING] == 0:
                state[s, S_PENDING_SINCE] = ts
            pending[s, state[s, S_N_PENDING]] = m
            state[s, S_N_PENDING] += 1
        n_emit, n_gaps = _check_pending(s, ts, line, msgs, state, pending, buffered, emits, n_emit, gaps, n_gaps,
                                        counters, futures, buffer_max, reorder_window_ns, reorder_max)
    if eof:
        for s in range(state.shape[0]):
            if state[s, S_N_PENDING] > 0:
                n_emit, n_gaps = _declare_gap(s, eof_ts_recv, eof_line, msgs, state, pending, buffered, emits, n_emit,
                                              gaps, n_gaps, counters, futures, buffer_max)
            counters[s, C_UNSYNCED_DROPPED] += state[s, S_N_BUFFERED]
            state[s, S_N_BUFFERED] = 0
    else:
        for s in range(state.shape[0]):
            for k in range(state[s, S_N_BUFFERED]):
                msgs[buffered[s, k], Q_HOLD] = HOLD_BUFFERED
            for k in range(state[s, S_N_PENDING]):
                msgs[pending[s, k], Q_HOLD] = HOLD_PENDING
    return n_emit, n_gaps
