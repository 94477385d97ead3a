"""Live feeds: a session's sources polled without waiting, merged in the engine's receive order; its input log.

A replay merges its sources by pulling the next chunk of every stream and releasing what is known to come
first (``nodes.sources.merge``). A live session cannot: a source that stays silent — the operator's control
file, a quiet market — would hold every other source back. Here every source is a **feed** that is polled for
what has already arrived:

- ``poll()`` returns the rows that arrived (a chunk sorted by ``ts_recv``) or None, and never blocks;
- ``ended`` is True once it will never return rows again; ``endless`` (optional) marks a feed that never ends
  (a followed control file), which a session does not wait for;
- ``next_poll_ns()`` (optional) is the ``time.monotonic_ns`` time at which it will have rows without being
  woken (a paced file's next due row, a followed file's next look); None: only when woken;
- ``fileno()`` (optional) is a socket the loop sleeps on too (the websocket reader reads its socket in the
  loop's thread, when polled);
- ``on_arrival`` (optional attribute) is set by the loop to a function a feed's own thread calls when it has
  something for the next poll (the websocket reader's helper: a new connection, a snapshot).

``LiveBatches`` waits until something may be ready (a feed's socket is readable, a feed's thread woke it, the
next due time came, or at most ``idle_s``), takes whatever is ready from every feed and makes it **one batch**,
ordered by ``ts_recv``, then source, then row, as a replay orders it. ``ts_recv`` never goes back across
batches: a row stamped at or before the last released batch's latest time (a websocket read stamped while the
previous batch was being taken, a wall clock stepping back) gets that time + 1 ns (not that time: a tie with
the previous batch would be ordered by source in a replay, which may differ from the live order). So every
batch lies strictly after the one before, and the inputs a session records, merged by ``ts_recv`` as
``shadow_check`` replays them, give exactly the order the session ran them in. ``busy_poll`` never sleeps: it waits for the same things in a tight loop (a
core kept busy and its caches warm: lower and steadier latency, at the price of a core).

The session's write-ahead log of these batches is ``runtime.session.InputLog``.

Example::

    batches = LiveBatches([live_feed(r) for r in readers], run.columns)
    for merged in batches.batches(stop):       # stop: a threading.Event
        log.write(merged)                       # write-ahead (runtime.session.InputLog)
        run.step(merged)
"""

import os
import queue
import select
import threading
import time
from collections.abc import Iterator

import numpy as np

from nodes.sources.merge import MergedBatch, merge_parts

_END = object()


class Wakeup:
    """A wake-up a loop sleeps on (a pipe, so it can sleep on sockets too); ``set`` may be called from any thread."""

    def __init__(self):
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._pending = False
        self._closed = False

    def set(self) -> None:
        if not self._pending and not self._closed:  # one byte wakes the loop; it polls every feed once woken
            self._pending = True
            try:
                os.write(self._write_fd, b"\0")
            except BlockingIOError:
                pass

    def wait(self, timeout_s: float, fds: list[int] = ()) -> None:
        """Sleep until ``set``, one of ``fds`` is readable, or ``timeout_s``; the caller polls its feeds afterwards."""
        if not self._pending:
            try:
                select.select([self._read_fd, *fds], [], [], max(timeout_s, 0.0))
            except (OSError, ValueError):
                pass  # a feed's socket closed meanwhile: its next poll finds out
        # cleared before the feeds are polled: rows that arrive after this either are taken by that poll or set
        # the wake-up again
        self._pending = False
        try:
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass

    def spin(self, until_ns: int, fds: list[int] = ()) -> None:
        """``wait`` without sleeping: check ``fds`` and the wake-up in a tight loop until one is ready or
        ``time.monotonic_ns`` reaches ``until_ns``. A core kept busy starts on an event sooner, and runs it
        faster, than one woken from sleep (benchmarks/live_latency.py --busy-poll: p50 ~110 µs instead of
        ~160 µs here); every check releases the interpreter, so another thread still gets its turn."""
        watched = [self._read_fd, *fds]
        try:
            while not self._pending and not select.select(watched, [], [], 0)[0] and time.monotonic_ns() < until_ns:
                pass
        except (OSError, ValueError):
            pass  # a feed's socket closed meanwhile: its next poll finds out
        self._pending = False
        try:
            os.read(self._read_fd, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self._closed = True
        os.close(self._read_fd)
        os.close(self._write_fd)


class ThreadedFeed:
    """A feed of a reader that only offers blocking ``chunks``: a thread reads them into a queue."""

    def __init__(self, reader, max_rows: int = 65_536):
        self.reader = reader
        self.instruments = reader.instruments
        self.on_arrival = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._ended = False
        self._thread = threading.Thread(target=self._read, args=(max_rows,), name="tickloom-feed", daemon=True)
        self._thread.start()

    def _read(self, max_rows: int) -> None:
        try:
            for chunk in self.reader.chunks(max_rows):
                if len(chunk["ts_recv"]):
                    self._queue.put(chunk)
                    if self.on_arrival is not None:
                        self.on_arrival()
        except BaseException as error:  # handed to the loop
            self._error = error
        finally:
            self._queue.put(_END)
            if self.on_arrival is not None:
                self.on_arrival()

    def poll(self) -> dict[str, np.ndarray] | None:
        parts = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                self._ended = True
                if self._error is not None:
                    raise self._error
                break
            parts.append(item)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    @property
    def ended(self) -> bool:
        return self._ended

    def stop(self) -> None:
        getattr(self.reader, "stop", lambda: None)()


def live_feed(reader):
    """The reader as a feed: itself when it polls (the websocket, paced and control readers), else threaded."""
    return reader if hasattr(reader, "poll") else ThreadedFeed(reader)


class LiveBatches:
    """Batches of whatever the feeds have ready, in receive order (see the module docstring).

    ``columns[i]`` names feed i's columns with their dtypes (``StreamRun.columns``): the (empty) part of a feed
    without rows in a batch. ``idle_s`` bounds a sleep (how soon ``stop`` is seen when nothing arrives);
    ``busy_poll`` never sleeps.
    """

    def __init__(self, feeds: list, columns: list[dict], *, busy_poll: bool = False, idle_s: float = 0.05):
        self.feeds = feeds
        self.busy_poll = busy_poll
        self.idle_s = idle_s
        self.wakeup = Wakeup()
        for feed in feeds:
            if hasattr(feed, "on_arrival"):
                feed.on_arrival = self.wakeup.set
        self._empty = [{c: np.empty(0, dtype=d) for c, d in cols.items()} for cols in columns]
        self._columns = columns
        self._last_ns = np.iinfo(np.int64).min  # the latest ts_recv of the batches released so far
        self.clamped_rows = 0  # rows whose ts_recv was moved past the previous batch's

    @property
    def ended(self) -> bool:
        """True when every feed that can end has ended (a session with only endless feeds never ends)."""
        finite = [f for f in self.feeds if not getattr(f, "endless", False)]
        return bool(finite) and all(f.ended for f in finite)

    def take(self) -> MergedBatch | None:
        """One batch of every row ready now, or None."""
        parts = list(self._empty)
        found = False
        for index, feed in enumerate(self.feeds):
            chunk = feed.poll()
            if chunk is not None and len(chunk["ts_recv"]):
                parts[index] = self._clamped(chunk)
                found = True
        if not found:
            return None
        merged = merge_parts(parts, self._columns)
        self._last_ns = int(merged.ts_recv[-1])
        return merged

    def _clamped(self, chunk: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ts = chunk["ts_recv"]
        if int(ts[0]) > self._last_ns:
            return chunk
        floor = self._last_ns + 1
        self.clamped_rows += int(np.count_nonzero(ts < floor))
        return {**chunk, "ts_recv": np.maximum(ts, floor)}

    def wait(self) -> None:
        """Sleep until a feed may have rows: a feed's socket is readable, a feed's thread woke the loop, a due
        time came, or ``idle_s`` passed. With ``busy_poll`` the same, spinning instead of sleeping."""
        timeout_ns = int(self.idle_s * 1e9)
        now = time.monotonic_ns()
        fds = []
        for feed in self.feeds:
            due = feed.next_poll_ns() if hasattr(feed, "next_poll_ns") else None
            if due is not None:
                timeout_ns = min(timeout_ns, due - now)
            fd = feed.fileno() if hasattr(feed, "fileno") else None
            if fd is not None:
                fds.append(fd)
        if timeout_ns <= 0:
            return
        if self.busy_poll:
            self.wakeup.spin(now + timeout_ns, fds)
        else:
            self.wakeup.wait(timeout_ns / 1e9, fds)

    def batches(self, stop: threading.Event | None = None) -> Iterator[MergedBatch]:
        """Yield batches as they come until every finite feed ended (and was drained) or ``stop`` is set."""
        while stop is None or not stop.is_set():
            merged = self.take()
            if merged is not None:
                yield merged
                continue
            if self.ended:
                return
            self.wait()

    def close(self) -> None:
        """Stop every feed that can be stopped and release the wake-up."""
        for feed in self.feeds:
            if hasattr(feed, "on_arrival"):
                feed.on_arrival = None
            getattr(feed, "stop", lambda: None)()
        self.wakeup.close()
