"""Drop exact repeats of a message seen within a time window (a reconnect replaying, a capture writing twice).

Two messages are repeats when every field the normalizer reads is equal (``scan.message_hashes``: kind,
symbol, times, ids, prices, sizes, levels) and the repeat was received at most ``window_ns`` after the first
one. The window keeps memory bounded: a table of the hashes of the last ``window_ns`` of messages (open
addressing; expired entries are purged when it fills up, and it doubles when the live entries need it).
Repeats older than the window are still caught for depth diffs by the update-id rules (stale), and for
trades counted as out-of-order trade ids.
"""

import numpy as np

from nodes.marketdata.binance._jit import njit

_INITIAL_SLOTS = 1 << 12


@njit(cache=True, nogil=True)
def _mark(hashes, ts_recv, start, duplicate, keys, times, used, window_ns):
    """Mark repeats from ``start`` on; stop early (return the next index) when the table is half full."""
    mask = keys.shape[0] - 1
    limit = keys.shape[0] // 2
    for i in range(start, hashes.shape[0]):
        if used[0] >= limit:
            return i
        h = hashes[i]
        slot = h & mask
        while True:
            k = keys[slot]
            if k == 0:
                keys[slot] = h
                times[slot] = ts_recv[i]
                used[0] += 1
                duplicate[i] = False
                break
            if k == h:
                if ts_recv[i] - times[slot] <= window_ns:
                    duplicate[i] = True
                else:
                    times[slot] = ts_recv[i]
                    duplicate[i] = False
                break
            slot = (slot + 1) & mask
    return hashes.shape[0]


@njit(cache=True, nogil=True)
def _live(keys, times, now, window_ns):
    n = 0
    for slot in range(keys.shape[0]):
        if keys[slot] != 0 and now - times[slot] <= window_ns:
            n += 1
    return n


@njit(cache=True, nogil=True)
def _rehash(keys, times, new_keys, new_times, now, window_ns):
    mask = new_keys.shape[0] - 1
    used = 0
    for slot in range(keys.shape[0]):
        h = keys[slot]
        if h == 0 or now - times[slot] > window_ns:
            continue
        j = h & mask
        while new_keys[j] != 0:
            j = (j + 1) & mask
        new_keys[j] = h
        new_times[j] = times[slot]
        used += 1
    return used


class RepeatFilter:
    """Remember the messages of the last ``window_ns`` and flag repeats, in receive order, across blocks."""

    def __init__(self, window_ns: int):
        if window_ns < 0:
            raise ValueError(f"dedup window must be >= 0 ns, got {window_ns}")
        self.window_ns = int(window_ns)
        self._keys = np.zeros(_INITIAL_SLOTS, np.int64)
        self._times = np.zeros(_INITIAL_SLOTS, np.int64)
        self._used = np.zeros(1, np.int64)

    def mark(self, hashes: np.ndarray, ts_recv: np.ndarray) -> np.ndarray:
        """Return a bool mask of the rows that repeat an earlier message (hashes must be non-zero)."""
        duplicate = np.zeros(len(hashes), dtype=np.bool_)
        start = 0
        while start < len(hashes):
            start = _mark(hashes, ts_recv, start, duplicate, self._keys, self._times, self._used, self.window_ns)
            if start < len(hashes):
                self._purge(int(ts_recv[start]))
        return duplicate

    def _purge(self, now: int) -> None:
        live = _live(self._keys, self._times, now, self.window_ns)
        size = len(self._keys)
        while live >= size // 4:
            size *= 2
        keys = np.zeros(size, np.int64)
        times = np.zeros(size, np.int64)
        self._used[0] = _rehash(self._keys, self._times, keys, times, now, self.window_ns)
        self._keys, self._times = keys, times
