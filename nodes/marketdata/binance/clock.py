"""Measure the receive clock against the venue's and decide what to do about it: report, shift or reject.

The measure: ``offset = ts_recv - ts_event`` for every message that carries a venue time, per symbol and
stream. It is one-way latency plus the error of the local clock. Its distribution (exact min and max; p1, p50,
p99 within ``BIN_NS``) goes into the quality report. On the bundled captures every offset is about -1.27 s:
the local clock ran about 1.27 s **behind** Binance's, so taken as they are, events would be received before
they happened.

Verdict: ``behind`` when any offset is negative; ``ahead`` when even the smallest offset exceeds
``ahead_threshold_ns`` (no websocket path is that slow: the local clock runs ahead, or the capture
buffered); else ``consistent``.

Policies (``ClockPolicy``):

- ``report``: keep the times as captured and say so. Events with ``ts_recv < ts_event`` stay, and the report
  counts them (``ts_recv_before_ts_event``) and names the first line.
- ``shift``: add one constant to every ``ts_recv`` of the file. **Estimator**: over the calibration prefix
  (the first ``calibration_lines`` lines, all of a file shorter than that), ``shift = latency_floor_ns -
  min(offset)`` when ``min(offset) < 0`` (clock behind), else 0: the fastest message is then received
  ``latency_floor_ns`` after its venue time and every other one later. The minimum and not a percentile
  because the minimum is the only statistic for which no event of the prefix comes out received before it
  happened; the floor (default 1 ms) stands for the shortest one-way latency we are willing to assume.
  A clock that runs ahead is not shifted back unless ``shift_ahead`` is set: moving receive times earlier
  would let a backtest act on data sooner than it did, the optimistic error. Events after the prefix whose
  venue time is still after their shifted receive time (the clock drifted, or a faster message came later)
  get ``ts_event = ts_recv`` (and ``F_BAD_TS_RECV`` on book rows) and are counted as ``ts_event_clamped``.
- ``reject``: raise ``DataQualityError`` when the verdict is not ``consistent`` (decided on the calibration
  prefix before any row is produced, and again if a later line breaks it).

Messages without a venue time (spot ``bookTicker`` and the spot REST snapshot carry none) get
``ts_event = ts_recv`` after the policy: the receive time is all that is known.
"""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ClockPolicy = Literal["report", "shift", "reject"]
CLOCK_POLICIES = ("report", "shift", "reject")
BIN_NS = 10_000  # quantile resolution: 10 µs (venue times are whole milliseconds)
DEFAULT_LATENCY_FLOOR_NS = 1_000_000
DEFAULT_AHEAD_THRESHOLD_NS = 1_000_000_000


class OffsetDistribution:
    """Counts of offsets in ``BIN_NS`` bins (sparse: memory grows with the spread, not the count); exact min/max."""

    def __init__(self):
        self.count = 0
        self.min = None
        self.max = None
        self._bins = np.empty(0, np.int64)
        self._counts = np.empty(0, np.int64)

    def add(self, offsets: np.ndarray) -> None:
        if len(offsets) == 0:
            return
        low, high = int(offsets.min()), int(offsets.max())
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        self.count += len(offsets)
        binned = np.floor_divide(offsets, BIN_NS)
        low_bin, high_bin = int(binned.min()), int(binned.max())
        if high_bin - low_bin < 4 * len(binned) + 65_536:  # the usual case: offsets cluster, count densely
            dense = np.bincount(binned - low_bin)
            bins = np.flatnonzero(dense) + low_bin
            counts = dense[dense > 0]
        else:
            bins, counts = np.unique(binned, return_counts=True)
        if len(self._bins) == 0:
            self._bins, self._counts = bins, counts.astype(np.int64)
            return
        merged = np.concatenate([self._bins, bins])
        weights = np.concatenate([self._counts, counts])
        self._bins, inverse = np.unique(merged, return_inverse=True)
        self._counts = np.bincount(inverse, weights=weights, minlength=len(self._bins)).astype(np.int64)

    def quantile(self, q: float) -> int | None:
        """The q-quantile (0..1) in ns: the middle of its bin, kept within [min, max]."""
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        index = int(np.searchsorted(np.cumsum(self._counts), rank, side="right"))
        value = int(self._bins[min(index, len(self._bins) - 1)]) * BIN_NS + BIN_NS // 2
        return max(self.min, min(self.max, value))

    def summary(self) -> dict:
        return {
            "count": self.count,
            "min_ns": self.min,
            "p1_ns": self.quantile(0.01),
            "p50_ns": self.quantile(0.5),
            "p99_ns": self.quantile(0.99),
            "max_ns": self.max,
        }


@dataclass
class ClockCheck:
    """The clock measure of a file and the decision taken on it."""

    policy: str
    latency_floor_ns: int
    ahead_threshold_ns: int
    shift_ahead: bool
    calibration_lines: int
    distributions: dict[tuple[str, str], OffsetDistribution] = field(default_factory=dict)
    calibrated_on_lines: int = 0
    calibration_min_offset_ns: int | None = None
    shift_ns: int = 0
    ts_recv_before_ts_event: int = 0  # in the output
    first_line_recv_before_event: int | None = None
    ts_event_clamped: int = 0
    first_line_clamped: int | None = None
    ts_recv_backwards: int = 0
    max_step_back_ns: int = 0
    first_line_backwards: int | None = None
    without_venue_time: int = 0

    def add(self, symbol: str, stream: str, offsets: np.ndarray) -> None:
        self.distributions.setdefault((symbol, stream), OffsetDistribution()).add(offsets)

    def overall_min(self) -> int | None:
        mins = [d.min for d in self.distributions.values() if d.min is not None]
        return min(mins) if mins else None

    def verdict(self, min_offset: int | None = None) -> str:
        low = self.overall_min() if min_offset is None else min_offset
        if low is None:
            return "unknown"
        if low < 0:
            return "behind"
        if low > self.ahead_threshold_ns:
            return "ahead"
        return "consistent"

    def calibrate(self, lines: int) -> None:
        """Fix the shift from what has been measured so far (the calibration prefix)."""
        self.calibrated_on_lines = lines
        low = self.overall_min()
        self.calibration_min_offset_ns = low
        if self.policy != "shift" or low is None:
            self.shift_ns = 0
        elif low < 0 or (self.shift_ahead and low > self.latency_floor_ns):
            self.shift_ns = self.latency_floor_ns - low
        else:
            self.shift_ns = 0

    def summary(self) -> dict:
        per_symbol: dict[str, dict] = {}
        for (symbol, stream), dist in sorted(self.distributions.items()):
            per_symbol.setdefault(symbol, {})[stream] = dist.summary()
        verdict = self.verdict()
        notes = {
            "behind": "the local receive clock runs behind the venue's: raw ts_recv < ts_event",
            "ahead": f"the smallest ts_recv - ts_event exceeds {self.ahead_threshold_ns} ns: the local clock runs "
            "ahead of the venue's (or the capture buffered)",
            "consistent": "receive times follow venue times",
            "unknown": "no message carries a venue time",
        }
        if self.policy == "report" and self.ts_recv_before_ts_event:
            action = (f"times kept as captured (policy 'report'): {self.ts_recv_before_ts_event} output events have "
                      f"ts_recv < ts_event, first at line {self.first_line_recv_before_event}")
        elif self.policy == "shift":
            action = (f"every ts_recv shifted by {self.shift_ns} ns = latency floor {self.latency_floor_ns} ns - "
                      f"min offset {self.calibration_min_offset_ns} ns over the first {self.calibrated_on_lines} lines"
                      if self.shift_ns else "no shift needed")
        else:
            action = "times kept as captured"
        return {
            "policy": self.policy,
            "verdict": verdict,
            "note": notes[verdict],
            "action": action,
            "offset_is": "ts_recv - ts_event as captured (before any shift), ns",
            "offsets": per_symbol,
            "min_offset_ns": self.overall_min(),
            "shift_ns": self.shift_ns,
            "estimator": "shift = latency_floor_ns - min(offset) over the calibration prefix, when min(offset) < 0",
            "latency_floor_ns": self.latency_floor_ns,
            "calibration_lines": self.calibrated_on_lines,
            "ts_recv_before_ts_event": self.ts_recv_before_ts_event,
            "first_line_recv_before_event": self.first_line_recv_before_event,
            "ts_event_clamped": self.ts_event_clamped,
            "first_line_clamped": self.first_line_clamped,
            "ts_recv_backwards": self.ts_recv_backwards,
            "max_step_back_ns": self.max_step_back_ns,
            "first_line_backwards": self.first_line_backwards,
            "events_without_venue_time": self.without_venue_time,
        }
