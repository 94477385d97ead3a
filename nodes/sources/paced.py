"""Replay a recorded source at the pace it was received: ``paced(reader, speed)`` turns a file into a live feed.

``paced`` wraps any source reader (a capture, a catalog source, bars) and yields its rows re-cut into small
chunks, each released when the wall clock reaches the row's ``ts_recv`` mapped onto it: the first row at once,
a row ``d`` ns of recorded time later ``d / speed`` ns later (``speed`` 1 real time, 10 ten times faster,
``math.inf`` as fast as possible). Rows with one ``ts_recv`` leave together; the rows and their order are the
source's (chunks are cut, never reordered). Times in the rows stay as recorded unless ``restamp``: then
``ts_recv`` becomes the wall time of release (``time.time_ns``), as a live feed would stamp it, and
``ts_event`` moves with it (each row keeps its recorded ``ts_recv − ts_event``), so a venue's exchange clock
and the local clock stay as consistent as they were in the recording.

Several sources paced together must share one ``PaceClock``: it is anchored by the first row any of them
releases, so their rows keep their recorded relative timing.

An event loop that serves several sources uses ``poll()`` instead of ``chunks``: it takes the rows whose time
has come, without waiting, and ``next_poll_ns()`` says when the next row is due (the loop sleeps until then,
or until another source wakes it); ``ended`` says when the source is exhausted.

Timing accuracy (measured here, 2 shared cores, Python 3.11): a row is never released before its time; it
is released late by the time ``time.sleep`` overshoots (typically 50-100 µs on Linux) plus the consumer's
own processing (the wrapper cannot release while the consumer holds the previous chunk). ``spin_us`` > 0
sleeps until that close to the due time and then spins, which brings the overshoot to a few µs at the cost
of a busy core. ``stats`` (``PacingStats``) measures the lateness of every release. Non-goals: catching up
by skipping rows (a consumer slower than the feed simply falls behind, and ``stats`` shows it).

Example::

    from nodes.sources.paced import paced
    reader = paced(BinanceCapture.open(params, base_dir), speed=10.0)
    for chunk in reader.chunks(256):     # released at 10x the recorded pace
        ...
    reader.stats.late_ns_max
"""

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from nodes.contract import SourceReader


@dataclass
class PacingStats:
    """How late the releases were: each chunk's first row (the most overdue of the chunk)."""

    releases: int = 0
    rows: int = 0
    late_ns_total: int = 0
    late_ns_max: int = 0
    late_over_1ms: int = 0  # releases more than 1 ms after their time

    @property
    def late_ns_mean(self) -> float:
        return self.late_ns_total / self.releases if self.releases else 0.0

    def add(self, late_ns: int, rows: int) -> None:
        self.releases += 1
        self.rows += rows
        self.late_ns_total += late_ns
        self.late_ns_max = max(self.late_ns_max, late_ns)
        self.late_over_1ms += late_ns > 1_000_000


class PaceClock:
    """Map recorded ``ts_recv`` onto the wall clock at ``speed``; anchored at the first ``due_ns`` call.

    ``monotonic_ns`` (default ``time.monotonic_ns``) is the clock paced against: immune to wall-clock steps.

    Raises:
        ValueError: ``speed`` is not > 0.
    """

    def __init__(self, speed: float = 1.0, monotonic_ns: Callable[[], int] = time.monotonic_ns):
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf: as fast as possible), got {speed}")
        self.speed = float(speed)
        self.now_ns = monotonic_ns
        self.origin_wall_ns: int | None = None
        self.origin_ts_ns: int | None = None

    def due_ns(self, ts_recv: np.ndarray) -> np.ndarray:
        """The monotonic time at which each recorded ``ts_recv`` is due (int64 ns)."""
        if self.origin_wall_ns is None:
            self.origin_wall_ns = self.now_ns()
            self.origin_ts_ns = int(ts_recv[0])
        if math.isinf(self.speed):
            return np.full(len(ts_recv), self.origin_wall_ns, np.int64)
        offset = (ts_recv - self.origin_ts_ns).astype(np.float64) / self.speed
        return self.origin_wall_ns + np.maximum(offset, 0.0).astype(np.int64)


class PacedReader:
    """A source reader whose chunks are released at the pace of their ``ts_recv`` (see the module docstring)."""

    def __init__(self, reader: SourceReader, clock: PaceClock, *, restamp: bool = False, spin_us: float = 0.0,
                 read_rows: int = 65_536):
        if spin_us < 0:
            raise ValueError(f"spin_us must be >= 0, got {spin_us}")
        if read_rows < 1:
            raise ValueError(f"read_rows must be >= 1, got {read_rows}")
        self.reader = reader
        self.instruments = reader.instruments
        self.clock = clock
        self.restamp = restamp
        self.spin_ns = int(spin_us * 1000)
        self.read_rows = read_rows
        self.stats = PacingStats()
        # poll: the wrapped reader's chunk being released, its due times, the first row not released yet
        self._source: Iterator[dict[str, np.ndarray]] | None = None
        self._chunk: dict[str, np.ndarray] | None = None
        self._due = np.empty(0, np.int64)
        self._start = 0
        self._exhausted = False

    @property
    def report(self):
        """The wrapped reader's report (None when it has none)."""
        return getattr(self.reader, "report", None)

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield the wrapped reader's rows, at most ``max_rows`` a chunk, each chunk once its first row is due."""
        now_ns = self.clock.now_ns
        for chunk in self.reader.chunks(self.read_rows):
            n = len(chunk["ts_recv"])
            if n == 0:
                continue
            due = self.clock.due_ns(chunk["ts_recv"])
            start = 0
            while start < n:
                now = now_ns()
                ready = int(np.searchsorted(due, now, side="right"))
                if ready <= start:
                    self._sleep_until(int(due[start]))
                    continue
                stop = min(ready, start + max_rows)
                part = {k: v[start:stop] for k, v in chunk.items()}
                if self.restamp:
                    stamped = np.full(stop - start, time.time_ns(), np.int64)
                    # the venue's clock moves with it: each row keeps its recorded feed delay ts_recv - ts_event
                    part["ts_event"] = part["ts_event"] + (stamped - part["ts_recv"])
                    part["ts_recv"] = stamped
                self.stats.add(now - int(due[start]), stop - start)
                yield part
                start = stop

    def poll(self) -> dict[str, np.ndarray] | None:
        """Take every row whose time has come (restamped when asked), without waiting; None: none is due yet.

        Rows with one ``ts_recv`` leave together, also across the wrapped reader's chunks.
        """
        if not self._load():  # (the first load anchors the clock: read it after)
            return None
        now = self.clock.now_ns()
        parts = []
        while self._load():
            ready = int(np.searchsorted(self._due, now, side="right"))
            if ready <= self._start:
                break
            parts.append({k: v[self._start:ready] for k, v in self._chunk.items()})
            self.stats.add(now - int(self._due[self._start]), ready - self._start)
            self._start = ready
            if ready < len(self._due):
                break
            self._chunk = None
        if not parts:
            return None
        part = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if self.restamp:
            stamped = np.full(len(part["ts_recv"]), time.time_ns(), np.int64)
            part["ts_event"] = part["ts_event"] + (stamped - part["ts_recv"])
            part["ts_recv"] = stamped
        return part

    def next_poll_ns(self) -> int | None:
        """When the next row is due (``clock.now_ns`` time); None once the source is exhausted."""
        return int(self._due[self._start]) if self._load() else None

    @property
    def ended(self) -> bool:
        """True once every row was taken by ``poll``."""
        return not self._load()

    def _load(self) -> bool:
        """Have a chunk with rows left to release (reading the next one when needed); False when exhausted."""
        if self._chunk is not None:
            return True
        if self._exhausted:
            return False
        if self._source is None:
            self._source = self.reader.chunks(self.read_rows)
        for chunk in self._source:
            if len(chunk["ts_recv"]):
                self._chunk, self._due, self._start = chunk, self.clock.due_ns(chunk["ts_recv"]), 0
                return True
        self._exhausted = True
        return False

    def _sleep_until(self, due_ns: int) -> None:
        now_ns = self.clock.now_ns
        left = due_ns - now_ns()
        if left > self.spin_ns:
            time.sleep((left - self.spin_ns) / 1e9)
        while now_ns() < due_ns:
            pass  # spin the last spin_ns (0: at most one pass: sleep returned at or after the due time)


def paced(reader: SourceReader, speed: float = 1.0, *, clock: PaceClock | None = None, restamp: bool = False,
          spin_us: float = 0.0) -> PacedReader:
    """Wrap ``reader`` so its rows are released at wall-clock times matching their ``ts_recv`` × 1/``speed``.

    Parameters:
        reader: any source reader (``chunks(max_rows)`` sorted by ``ts_recv``).
        speed: 1.0 real time, N for N× faster, ``math.inf`` as fast as possible; ignored when ``clock`` is given.
        clock: a ``PaceClock`` shared with the other sources paced alongside (default: a new one).
        restamp: set ``ts_recv`` to the wall time of release (``time.time_ns``) instead of the recorded time.
        spin_us: spin this long before each due time instead of sleeping (precision for a busy core).

    Raises:
        ValueError: ``speed`` not > 0 or ``spin_us`` < 0.
    """
    return PacedReader(reader, clock if clock is not None else PaceClock(speed), restamp=restamp, spin_us=spin_us)
