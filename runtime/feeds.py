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

``InputLog`` records each batch's rows before the batch runs (write-ahead): the files
``runtime.session.InputRecorder`` writes (``inputs/<source>.<segment>.arrows``, an Arrow IPC stream per source
and segment, one record batch per batch that had rows of it), built from the batch's arrays behind a message
header pyarrow makes once per batch size (each checked to be pyarrow's own message for that batch), in one
``os.write`` per source: a few µs a batch instead of ~50 µs through pyarrow's writer. A kill leaves whole
messages and at most one torn one at the end (which ``recorded_inputs`` leaves out).

Example::

    batches = LiveBatches([live_feed(r) for r in readers], run.columns)
    for merged in batches.batches(stop):       # stop: a threading.Event
        log.write(merged)                       # write-ahead
        run.step(merged)
"""

import os
import queue
import select
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from nodes.errors import InvariantError
from nodes.sources.merge import MergedBatch, merge_parts
from runtime.session import next_segment

_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the end of an Arrow IPC stream
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


class InputLog:
    """Write every batch's rows, per source, before the batch runs (see the module docstring).

    Like ``InputRecorder``: each log starts a new segment per source (a killed writer's file may end in a torn
    batch, and an Arrow stream cannot be appended after one); ``fsync`` syncs every write.
    """

    def __init__(self, folder: Path, sources: list[str], fsync: bool = False):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sources = sources
        self.fsync = fsync
        self.segment = next_segment(self.folder)
        self._fds: dict[int, int] = {}
        self._names: dict[int, list[str]] = {}
        self._dtypes: dict[int, list[np.dtype]] = {}
        self._headers: dict[tuple[int, int], bytes] = {}  # (source, rows) → the record batch message's header
        self._scratch: dict[int, tuple[list[np.ndarray], pa.RecordBatch]] = {}  # what headers are made from

    def write(self, merged: MergedBatch) -> None:
        for index, part in enumerate(merged.parts):
            n = len(part["ts_recv"])
            if n:
                fd = self._fds[index] if index in self._fds else self._open(index, part)
                os.write(fd, self._message(index, part, n))
                if self.fsync:
                    os.fsync(fd)

    def _open(self, index: int, part: dict[str, np.ndarray]) -> int:
        self._names[index] = list(part)
        self._dtypes[index] = [np.asarray(v).dtype for v in part.values()]
        schema = pa.schema([(name, pa.from_numpy_dtype(d)) for name, d in zip(part, self._dtypes[index])])
        path = self.folder / f"{self.sources[index]}.{self.segment}.arrows"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, schema.serialize().to_pybytes())
        self._fds[index] = fd
        return fd

    def _message(self, index: int, part: dict[str, np.ndarray], n: int) -> bytes:
        pieces = [self._headers.get((index, n)) or self._header(index, part, n)]
        for name, dtype in zip(self._names[index], self._dtypes[index]):
            values = part[name]
            if values.dtype != dtype or not values.flags.c_contiguous:
                values = np.ascontiguousarray(values, dtype=dtype)
            pieces.append(values.data)
            if values.nbytes % 8:
                pieces.append(b"\0" * (8 - values.nbytes % 8))  # Arrow pads every buffer to 8 bytes
        return b"".join(pieces)

    def _header(self, index: int, part: dict[str, np.ndarray], n: int) -> bytes:
        """The record batch message of ``n`` rows up to its body, made by pyarrow once per size (from a record
        batch over scratch arrays, sliced: ~10 µs) and checked against pyarrow's whole message, so the bytes
        written are pyarrow's."""
        scratch = self._scratch.get(index)
        if scratch is None or len(scratch[0][0]) < n:
            arrays = [np.zeros(max(n, 1024), dtype) for dtype in self._dtypes[index]]
            scratch = self._scratch[index] = (arrays, pa.record_batch([pa.array(a) for a in arrays],
                                                                     names=self._names[index]))
        arrays, batch = scratch
        for array, name in zip(arrays, self._names[index]):
            array[:n] = part[name]
        message = batch.slice(0, n).serialize().to_pybytes()
        header = message[:8 + int.from_bytes(message[4:8], "little")]
        self._headers[(index, n)] = header
        if self._message(index, part, n) != message:
            raise InvariantError(f"the input log's message for {n} rows is not pyarrow's (an Arrow version "
                                 "change?): record the inputs with runtime.session.InputRecorder instead")
        return header

    def close(self) -> None:
        for fd in self._fds.values():
            os.write(fd, _EOS)
            os.close(fd)
        self._fds = {}
