"""What normalizing one Bybit order-book file found: counts, bad lines, update-id rules, clock.

``BybitQualityReport`` is filled while the file streams and complete once the iterator is exhausted;
``to_dict()`` is JSON-serialisable, ``problems()`` gives one line per thing a person should look at.
"""

import json
from dataclasses import asdict, dataclass, field

from nodes.marketdata.quarantine import Quarantine

COUNTERS = (
    "snapshots", "deltas_applied", "stale_dropped", "unsynced_dropped", "gaps", "dropped_after_gap",
    "snapshot_resets", "empty_deltas", "seq_not_increasing",
)


def new_symbol_entry() -> dict:
    return {**{name: 0 for name in COUNTERS}, "gap_list": [], "first_seq_not_increasing_line": None,
            "last_u": None, "last_seq": None, "state": "no_book"}


@dataclass
class BybitQualityReport:
    """The quality of one normalized Bybit order-book file; see ``nodes.marketdata.bybit.normalize``."""

    path: str
    venue: str = "BYBIT"
    depth: int | None = None  # from the topic, orderbook.<depth>.<symbol>
    symbols: list[str] = field(default_factory=list)
    lines_total: int = 0
    lines_good: int = 0
    lines_bad: int = 0
    max_bad_fraction: float = 0.0
    rows: int = 0
    capture: dict = field(default_factory=dict)  # container (zip, gzip, none), members, truncated, error
    quarantine: Quarantine = field(default_factory=Quarantine)
    filtered_out: dict = field(default_factory=dict)
    sequence: dict = field(default_factory=dict)  # symbol → counters (COUNTERS), gap_list, last ids, state
    ts_recv_backwards: dict = field(default_factory=lambda: {"count": 0, "first_line": None})
    clock: dict = field(default_factory=lambda: {"policy": "clamp", "ts_event_after_ts_recv": 0, "first_line": None,
                                                 "max_excess_ns": 0, "assumed_latency_ns": 0})
    notes: list[str] = field(default_factory=list)

    @property
    def bad_fraction(self) -> float:
        return self.lines_bad / self.lines_total if self.lines_total else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["quarantine"] = self.quarantine.to_dict()
        out["bad_fraction"] = self.bad_fraction
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def problems(self) -> list[str]:
        """One line per thing a person should look at (empty when the file is clean)."""
        found = []
        if self.capture.get("truncated") or self.capture.get("error"):
            found.append(f"{self.path}: {self.capture.get('error') or 'the compressed stream is truncated'}")
        if self.lines_bad:
            found.append(f"{self.path}: {self.quarantine.summary()}")
        for symbol, seq in self.sequence.items():
            if seq["gaps"]:
                lines = ", ".join(str(g["line"]) for g in seq["gap_list"][:5])
                found.append(f"{self.path}: {symbol}: {seq['gaps']} update-id gap(s) at line(s) {lines}; book cleared "
                             f"(F_MAYBE_BAD_BOOK) until the next snapshot, {seq['dropped_after_gap']} delta(s) dropped")
            if seq["unsynced_dropped"]:
                found.append(f"{self.path}: {symbol}: {seq['unsynced_dropped']} delta(s) before the first snapshot dropped")
            if seq["stale_dropped"]:
                found.append(f"{self.path}: {symbol}: {seq['stale_dropped']} stale delta(s) (u not above the book's) dropped")
            if seq["seq_not_increasing"]:
                found.append(f"{self.path}: {symbol}: seq did not increase {seq['seq_not_increasing']} time(s), first at "
                             f"line {seq['first_seq_not_increasing_line']}")
        if self.ts_recv_backwards["count"]:
            found.append(f"{self.path}: ts goes back on {self.ts_recv_backwards['count']} line(s), first at line "
                         f"{self.ts_recv_backwards['first_line']}; raised to the previous one")
        c = self.clock
        if c["ts_event_after_ts_recv"]:
            found.append(f"{self.path}: {c['ts_event_after_ts_recv']} message(s) with cts after ts, first at line "
                         f"{c['first_line']}; policy {c['policy']}")
        return found
