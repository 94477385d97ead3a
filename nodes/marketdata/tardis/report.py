"""What normalizing one Tardis CSV file found: counts, bad rows, receive order, clock, book and quote checks.

``TardisQualityReport`` is filled while the file streams and complete once the iterator is exhausted;
``to_dict()`` is JSON-serialisable (the catalog stores it), ``problems()`` says in one line each what a person
should look at. Counts are exact; lists of locations keep their first entries.
"""

import json
from dataclasses import asdict, dataclass, field

from nodes.marketdata.quarantine import Quarantine


@dataclass
class TardisQualityReport:
    """The quality of one normalized Tardis file; see ``nodes.marketdata.tardis.normalize`` for every rule."""

    path: str
    data_type: str = "unknown"
    schema: str = "unknown"
    depth: int = 0
    venues: list[str] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    lines_total: int = 0  # data lines (the header is not counted)
    lines_good: int = 0
    lines_bad: int = 0
    max_bad_fraction: float = 0.0
    rows: int = 0  # normalized rows written (a book snapshot line gives several)
    capture: dict = field(default_factory=dict)  # compressed, truncated, error, ...
    quarantine: Quarantine = field(default_factory=Quarantine)
    filtered_out: dict = field(default_factory=dict)  # symbol → lines left out by the ``symbols`` filter
    ts_recv_backwards: dict = field(default_factory=lambda: {"count": 0, "first_line": None})
    clock: dict = field(default_factory=lambda: {"policy": "clamp", "ts_event_after_ts_recv": 0, "first_line": None,
                                                 "max_excess_ns": 0})
    book: dict = field(default_factory=dict)  # symbol → {snapshots, rows_before_first_snapshot, ...}
    trades: dict = field(default_factory=lambda: {"ids_not_integer": 0, "first_line": None})
    quotes: dict = field(default_factory=lambda: {"crossed": 0, "first_crossed_line": None, "one_sided": 0})
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
        if self.capture.get("truncated"):
            found.append(f"{self.path}: the gzip stream is truncated (ends before its end marker)")
        if self.capture.get("error"):
            found.append(f"{self.path}: {self.capture['error']}")
        if self.lines_bad:
            found.append(f"{self.path}: {self.quarantine.summary()}")
        if self.ts_recv_backwards["count"]:
            found.append(f"{self.path}: local_timestamp goes back on {self.ts_recv_backwards['count']} line(s), first at "
                         f"line {self.ts_recv_backwards['first_line']}; raised to the previous one")
        c = self.clock
        if c["ts_event_after_ts_recv"]:
            found.append(f"{self.path}: {c['ts_event_after_ts_recv']} line(s) received before their exchange time (by up "
                         f"to {c['max_excess_ns']} ns), first at line {c['first_line']}; policy {c['policy']}")
        for symbol, book in self.book.items():
            if book.get("rows_before_first_snapshot"):
                found.append(f"{self.path}: {symbol}: {book['rows_before_first_snapshot']} book update(s) before the "
                             "first snapshot (flagged F_MAYBE_BAD_BOOK)")
            if book.get("crossed_snapshots"):
                found.append(f"{self.path}: {symbol}: {book['crossed_snapshots']} crossed snapshot(s), first at line "
                             f"{book['first_crossed_line']}")
        if self.quotes["crossed"]:
            found.append(f"{self.path}: {self.quotes['crossed']} crossed quote(s) (bid >= ask), first at line "
                         f"{self.quotes['first_crossed_line']}")
        return found
