"""What normalizing one Binance capture found: counts, clock, sequence, bad lines. JSON-serialisable.

``BinanceQualityReport`` is filled while the file streams and complete once the iterator is exhausted
(``to_dict()`` / ``to_json()`` for the catalog's metadata, ``problems()`` for a person). Every count is
exact; lists of locations (bad lines, gaps, duplicates) keep their first entries and say how many were left
out.
"""

import json
from dataclasses import asdict, dataclass, field


@dataclass
class QuarantinedLine:
    """A line that could not be normalized: where, why, and its text (cut to ``raw_bytes_cap`` bytes)."""

    line: int
    reason: str  # a category from ``reference`` (invalid_json, unknown_stream, truncated_line, ...)
    message: str
    raw: str


@dataclass
class BinanceQualityReport:
    """The quality of one normalized capture; see the module docstring of ``normalize`` for every rule."""

    path: str
    venue_kind: str = "unknown"  # spot | futures
    venue_kind_detected: str = "unknown"
    symbols: list[str] = field(default_factory=list)
    lines_total: int = 0
    lines_good: int = 0
    lines_bad: int = 0
    max_bad_fraction: float = 0.0
    slow_path_lines: int = 0  # good lines the fast scanner left to the reference parser
    capture: dict = field(default_factory=dict)  # CaptureStatus: compressed, decompressor, truncated, error, ...
    messages: dict = field(default_factory=lambda: {"depth": 0, "trade": 0, "bookTicker": 0, "snapshot": 0})
    rows: dict = field(default_factory=lambda: {"book_deltas": 0, "trades": 0, "quotes": 0})
    bad_reasons: dict = field(default_factory=dict)  # reason category → lines
    quarantine: list[QuarantinedLine] = field(default_factory=list)
    quarantine_left_out: int = 0
    filtered_out: dict = field(default_factory=dict)  # symbol → messages dropped by the ``symbols`` filter
    duplicates: dict = field(default_factory=lambda: {"count": 0, "by_stream": {}, "first_lines": [], "window_ns": 0})
    clock: dict = field(default_factory=dict)
    sequence: dict = field(default_factory=dict)  # symbol → counters, gaps, final state
    trades: dict = field(default_factory=lambda: {"ids_out_of_order": 0, "first_line": None})
    quotes: dict = field(default_factory=lambda: {"stale_dropped": 0, "first_line": None, "crossed": 0,
                                                  "first_crossed_line": None})
    notes: list[str] = field(default_factory=list)

    @property
    def bad_fraction(self) -> float:
        return self.lines_bad / self.lines_total if self.lines_total else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["bad_fraction"] = self.bad_fraction
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def problems(self) -> list[str]:
        """One line per thing a person should look at (empty when the capture is clean)."""
        found = []
        if self.capture.get("truncated"):
            found.append(f"{self.path}: the gzip stream is truncated (ends before its end marker)")
        if self.capture.get("error"):
            found.append(f"{self.path}: {self.capture['error']}")
        if self.lines_bad:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.bad_reasons.items()))
            first = ", ".join(str(q.line) for q in self.quarantine[:5])
            found.append(f"{self.path}: {self.lines_bad} bad line(s) quarantined ({reasons}); first at line(s) {first}")
        verdict = self.clock.get("verdict")
        if verdict in ("behind", "ahead"):
            found.append(f"{self.path}: clock {verdict} (min ts_recv - ts_event {self.clock.get('min_offset_ns')} ns); "
                         f"{self.clock.get('action')}")
        for symbol, seq in self.sequence.items():
            if seq.get("gaps"):
                lines = ", ".join(str(g["line"]) for g in seq.get("gap_list", [])[:5])
                found.append(f"{self.path}: {symbol}: {seq['gaps']} update-id gap(s), first after line(s) {lines}; "
                             "book cleared until the next snapshot")
            if seq.get("unsynced_dropped"):
                found.append(f"{self.path}: {symbol}: {seq['unsynced_dropped']} depth diff(s) never applied "
                             "(no snapshot to apply them to)")
        if self.quotes["crossed"]:
            found.append(f"{self.path}: {self.quotes['crossed']} crossed bookTicker quote(s) (bid >= ask), first at "
                         f"line {self.quotes['first_crossed_line']}")
        if self.duplicates["count"]:
            found.append(f"{self.path}: {self.duplicates['count']} repeated message(s) dropped")
        return found
