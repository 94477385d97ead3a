"""What decoding one FIX log found: counts, versions, bad messages with where and why, sequence, clock. JSON-able.

``FixQualityReport`` fills while the log streams and is complete once the decoding iterator is exhausted
(``to_dict()``/``to_json()`` for the catalog's ``quality_reports``, ``problems()`` for a person). Counts are
exact; lists of locations keep their first entries (``max_quarantine``) and say how many were left out.

``records`` is every message the log holds, good or bad, plus each stretch of garbage between messages (a
stretch counts once: how many messages it held cannot be known); ``bad_records`` is the rejected ones and the
garbage. Those two are what the catalog's bad-record threshold reads.
"""

import json
from dataclasses import asdict, dataclass, field


@dataclass
class QuarantinedMessage:
    """A message (or stretch of bytes) that was not used: where, why, and its first bytes.

    ``byte`` and ``line`` locate its start in the decompressed log; ``field_byte`` the offending field when
    one field is at fault (``tag``). ``stage`` is ``framing`` (BeginString/BodyLength/CheckSum, garbage),
    ``validation`` (the dictionary) or ``normalization`` (valid FIX that cannot become rows).
    """

    byte: int
    line: int
    stage: str
    reason: str
    detail: str
    msg_type: str | None = None
    tag: int | None = None
    field_byte: int | None = None
    raw: str = ""


@dataclass
class FixQualityReport:
    """The quality of one decoded FIX log; see ``nodes.marketdata.fix.decode`` for every rule."""

    path: str
    format: str = "fix"
    stream: dict = field(default_factory=dict)  # StreamStatus: compression, bytes, truncated, error
    messages_total: int = 0
    messages_good: int = 0
    messages_bad: int = 0
    max_bad_fraction: float = 0.0
    by_msg_type: dict = field(default_factory=dict)  # MsgType → good messages
    protocols: dict = field(default_factory=dict)  # "FIX.4.4", "FIXT.1.1/FIX.5.0SP2" → good messages
    delimiters: dict = field(default_factory=dict)  # "soh" / "pipe" → framed messages
    rows: dict = field(default_factory=lambda: {"book_deltas": 0, "trades": 0, "quotes": 0})
    symbols: list = field(default_factory=list)
    bad_reasons: dict = field(default_factory=dict)  # reason → count
    quarantine: list = field(default_factory=list)  # QuarantinedMessage, the first max_quarantine
    quarantine_left_out: int = 0
    entries_skipped: dict = field(default_factory=dict)  # MDEntryType → entries that give no row (stats, ...)
    snapshot_trades_skipped: int = 0  # trade entries of 35=W: the last trade's state, not a new trade
    trade_corrections_skipped: int = 0  # 35=X trade entries with MDUpdateAction change/delete
    ignored_tags: dict = field(default_factory=dict)  # unknown_tags="ignore": tag → fields dropped
    sequence: dict = field(default_factory=dict)  # "sender->target" → messages, gaps, duplicates, resets
    clock: dict = field(default_factory=dict)
    book: dict = field(default_factory=lambda: {"losses": 0, "tainted_rows": 0})
    notes: list = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.messages_total

    @property
    def bad_records(self) -> int:
        return self.messages_bad

    @property
    def bad_fraction(self) -> float:
        return self.messages_bad / self.messages_total if self.messages_total else 0.0

    def add_bad(self, entry: QuarantinedMessage, max_quarantine: int) -> None:
        """Count a bad message (or garbage stretch) and keep its location while the list has room."""
        self.messages_total += 1
        self.messages_bad += 1
        self.bad_reasons[entry.reason] = self.bad_reasons.get(entry.reason, 0) + 1
        if len(self.quarantine) < max_quarantine:
            self.quarantine.append(entry)
        else:
            self.quarantine_left_out += 1

    def to_dict(self) -> dict:
        out = asdict(self)
        out["records"] = self.records
        out["bad_records"] = self.bad_records
        out["bad_fraction"] = self.bad_fraction
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def problems(self) -> list[str]:
        """One line per thing a person should look at (empty when the log is clean)."""
        found = []
        if self.stream.get("truncated"):
            found.append(f"{self.path}: the {self.stream.get('compression')} stream is truncated (ends before its end marker)")
        if self.stream.get("error"):
            found.append(f"{self.path}: {self.stream['error']}")
        if self.messages_bad:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.bad_reasons.items()))
            first = ", ".join(f"byte {q.byte} (line {q.line})" for q in self.quarantine[:3])
            found.append(f"{self.path}: {self.messages_bad} bad message(s) quarantined ({reasons}); first at {first}")
        for session, seq in self.sequence.items():
            if seq.get("gaps"):
                first = seq["gap_list"][0] if seq.get("gap_list") else {}
                found.append(f"{self.path}: {session}: {seq['gaps']} MsgSeqNum gap(s), {seq['missing']} message(s) "
                             f"missing; first expected {first.get('expected')} got {first.get('got')} at byte "
                             f"{first.get('byte')}")
        if self.book.get("losses"):
            found.append(f"{self.path}: {self.book['losses']} lost market-data message(s) or gap(s): "
                         f"{self.book['tainted_rows']} book row(s) flagged F_MAYBE_BAD_BOOK until the next snapshot")
        clock = self.clock
        if clock.get("ts_event_clamped"):
            found.append(f"{self.path}: {clock['ts_event_clamped']} row(s) had ts_event after ts_recv; clamped "
                         f"(first at byte {clock.get('first_clamped_byte')})")
        if clock.get("ts_recv_before_ts_event"):
            found.append(f"{self.path}: {clock['ts_recv_before_ts_event']} row(s) are received before their event "
                         f"time (kept: clock_policy report); first at byte {clock.get('first_clamped_byte')}")
        if clock.get("ts_recv_repaired"):
            found.append(f"{self.path}: {clock['ts_recv_repaired']} message(s) received before the previous one "
                         "(receive clock stepped back); raised to it and flagged F_BAD_TS_RECV")
        return found
