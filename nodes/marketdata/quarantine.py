"""Bad input records kept aside with where they were and why: the quarantine every text decoder fills.

A decoder never drops a record silently and never crashes on one: it counts it by reason, keeps the first
``max_lines`` of them with their line number and (cut) text, and lets its caller decide against a threshold
(``max_bad_fraction``) whether the file is still usable. ``BadRecord`` is JSON-serialisable as it is.
"""

from dataclasses import asdict, dataclass, field


@dataclass
class BadRecord:
    """One rejected record: its 1-based line (in ``member`` for an archive of several files), reason and text."""

    line: int
    reason: str  # a short category: bad_decimal, field_count, invalid_json, ...
    message: str
    raw: str
    member: str | None = None


@dataclass
class Quarantine:
    """Counts of bad records by reason, and the first ``max_lines`` of them (text cut to ``raw_bytes_cap``)."""

    max_lines: int = 100
    raw_bytes_cap: int = 300
    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    records: list[BadRecord] = field(default_factory=list)
    left_out: int = 0

    def add(self, line: int, reason: str, message: str, raw: str | bytes, member: str | None = None) -> None:
        self.count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.records) >= self.max_lines:
            self.left_out += 1
            return
        if isinstance(raw, bytes):
            raw = raw[: self.raw_bytes_cap].decode("utf-8", errors="replace")
        else:
            raw = raw.encode("utf-8", errors="replace")[: self.raw_bytes_cap].decode("utf-8", errors="ignore")
        self.records.append(BadRecord(line, reason, message, raw, member))

    def first_lines(self, n: int = 5) -> str:
        return ", ".join(str(r.line) for r in self.records[:n])

    def summary(self) -> str:
        """``"3 bad record(s) (bad_decimal 2, field_count 1), first at line(s) 4, 9, 12"`` (empty when none)."""
        if not self.count:
            return ""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.by_reason.items()))
        return f"{self.count} bad record(s) ({reasons}), first at line(s) {self.first_lines()}"

    def to_dict(self) -> dict:
        return {
            "count": self.count, "by_reason": dict(self.by_reason), "left_out": self.left_out,
            "records": [asdict(r) for r in self.records],
        }
