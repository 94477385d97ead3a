"""Quality of one DBN file: what was decoded, what looks wrong, what was quarantined.

Counted while decoding (so a report costs no second pass), each with its first locations as
``{"record": index among the file's records, "byte": offset in the decompressed DBN stream}``:

- ``ts_recv_backwards``: a record whose ``ts_recv`` is before the previous record's (file order).
- ``ts_recv_before_event``: ``ts_recv < ts_event`` (a receive clock behind the venue's), any record kind.
- ``recv_minus_event_ns``: the distribution of ``ts_recv - ts_event`` where it is a feed latency — MBO, MBP,
  trades, imbalance, statistics, status records that are not snapshot records (a snapshot's ``ts_event`` is
  the order's own time, a BBO's ``ts_recv`` the interval's end, a definition's ``ts_event`` its last change):
  exact min and max, p50/p99 from a log-linear histogram (64 buckets per power of two: within 1.6 %).
- ``crossed_quotes``: a top of book with ``bid_px >= ask_px``, both defined (MBP-1/10, TBBO, BBO, CBBO, CMBP-1).
- ``sequence_backwards`` and ``sequence_gaps``, per instrument, over the records that carry a venue sequence
  (MBO, MBP-1/10, TBBO, trades, BBO, statistics), snapshot records (``F_SNAPSHOT``) left out: a snapshot is
  replayed in book order, not sequence order. **No DBN schema promises consecutive sequences per
  instrument**: on GLBX.MDP3 the sequence is the channel's packet number, shared by every instrument of the
  channel and by every record of one packet (measured on ``futures_mbp-1``: 1,648 steps of 1, 101 of 0 and
  538 larger steps in a clean file). So ``sequence_gaps`` (a step > 1) is a statistic to compare files, not a
  loss signal; ``sequence_backwards`` is the anomaly.
- ``bad_ts_recv_flag``: records the venue flagged ``F_BAD_TS_RECV``.
- ``quarantined``: undecodable byte ranges (see ``nodes.marketdata.dbn.stream``).
"""

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from nodes.marketdata.dbn.stream import Quarantine, RecordRun
from nodes.marketdata.schemas import F_BAD_TS_RECV, F_SNAPSHOT, UNDEF_PRICE

FIRST_LOCATIONS = 5
_SUB_BUCKETS = 64
_SUB_BITS = 6
_SEQUENCED_KINDS = ("mbo", "mbp1", "mbp10", "trade", "bbo", "statistics")
_QUOTE_KINDS = ("mbp1", "mbp10", "bbo")
# kinds whose ts_recv - ts_event is a feed latency (not an interval end, a definition's age or a snapshot's)
_LATENCY_KINDS = ("mbo", "mbp1", "mbp10", "trade", "imbalance", "statistics", "status")
_UNDEF_TS = np.uint64(2**64 - 1)


@dataclass
class Finding:
    """How many records broke one rule, and where the first ones are."""

    count: int = 0
    first: list[dict] = field(default_factory=list)

    def add(self, rows: np.ndarray, run: RecordRun, extra: dict[str, np.ndarray] | None = None) -> None:
        if len(rows) == 0:
            return
        self.count += int(len(rows))
        room = FIRST_LOCATIONS - len(self.first)
        size = run.layout.size
        for k, row in enumerate(rows[:room].tolist()):
            location = {"record": run.first_record + row, "byte": run.first_byte + row * size}
            for name, values in (extra or {}).items():
                location[name] = int(values[k])
            self.first.append(location)


class _Histogram:
    """Counts of signed int64 values in log-linear buckets; exact min/max; approximate quantiles."""

    def __init__(self):
        self.counts = np.zeros(2 * 64 * _SUB_BUCKETS, dtype=np.int64)
        self.n = 0
        self.min: int | None = None
        self.max: int | None = None

    @staticmethod
    def _bucket(magnitude: np.ndarray) -> np.ndarray:
        """Exact below 128; above, 64 buckets per power of two (bucket = shift * 64 + top 7 bits)."""
        magnitude = magnitude.astype(np.uint64)
        bit_length = np.frexp(magnitude.astype(np.float64))[1].astype(np.int64)
        # float rounding can round a value just below a power of two up to it: correct to the exact length
        too_long = (bit_length > 0) & ((magnitude >> np.maximum(bit_length - 1, 0).astype(np.uint64)) == 0)
        bit_length[too_long] -= 1
        shift = np.maximum(bit_length - (_SUB_BITS + 1), 0).astype(np.uint64)
        return shift.astype(np.int64) * _SUB_BUCKETS + (magnitude >> shift).astype(np.int64)

    @staticmethod
    def _lower(bucket: int) -> int:
        """The smallest magnitude that falls in ``bucket``."""
        if bucket < 2 * _SUB_BUCKETS:
            return bucket
        shift = bucket // _SUB_BUCKETS - 1
        return (bucket - shift * _SUB_BUCKETS) << shift

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        self.n += len(values)
        low, high = int(values.min()), int(values.max())
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        negative = values < 0
        magnitude = np.abs(values)
        buckets = self._bucket(magnitude) * 2 + negative
        self.counts += np.bincount(buckets, minlength=len(self.counts))[: len(self.counts)]

    def quantile(self, q: float) -> int | None:
        if self.n == 0:
            return None
        half = len(self.counts) // 2
        negative = self.counts[1::2][:half][::-1]  # most negative first
        positive = self.counts[0::2][:half]
        ordered = np.concatenate([negative, positive])
        target = q * (self.n - 1)
        index = int(np.searchsorted(np.cumsum(ordered), target, side="right"))
        if index < half:
            value = -self._lower(half - 1 - index)
        else:
            value = self._lower(index - half)
        return int(min(max(value, self.min), self.max))

    def summary(self) -> dict:
        return {"count": self.n, "min": self.min, "p50": self.quantile(0.5), "p99": self.quantile(0.99),
                "max": self.max}


@dataclass
class DbnQualityReport:
    """What decoding one DBN file found. ``to_dict()`` is JSON-serialisable; ``complete`` means nothing was lost."""

    file: str
    dataset: str
    schema: str | None
    dbn_version: int
    compressed: bool
    records: int = 0
    records_by_rtype: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    unknown_records: dict[str, int] = field(default_factory=dict)
    ts_recv_backwards: Finding = field(default_factory=Finding)
    ts_recv_before_event: Finding = field(default_factory=Finding)
    recv_minus_event_ns: dict = field(default_factory=dict)
    crossed_quotes: Finding = field(default_factory=Finding)
    sequence_backwards: Finding = field(default_factory=Finding)
    sequence_gaps: Finding = field(default_factory=Finding)
    bad_ts_recv_flag: int = 0
    venue_errors: list[str] = field(default_factory=list)  # texts of the first ErrorMsg records
    notes: list[str] = field(default_factory=list)  # what the decoder had to work around
    quarantined: list[Quarantine] = field(default_factory=list)

    @property
    def quarantined_bytes(self) -> int:
        return sum(q.byte_end - q.byte_start for q in self.quarantined)

    @property
    def complete(self) -> bool:
        """True when every byte decoded into a known record."""
        return not self.quarantined and not self.unknown_records

    def to_dict(self) -> dict:
        data = asdict(self)
        data["quarantined"] = [q.to_dict() for q in self.quarantined]
        data["quarantined_bytes"] = self.quarantined_bytes
        data["complete"] = self.complete
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


class QualityTracker:
    """Update a ``DbnQualityReport`` run by run, carrying what crosses run and chunk boundaries."""

    def __init__(self, report: DbnQualityReport):
        self.report = report
        self._last_ts_recv: int | None = None
        self._last_sequence: dict[int, int] = {}
        self._latency = _Histogram()

    def observe(self, run: RecordRun) -> None:
        report = self.report
        report.records += run.count
        if run.layout is None:
            key = f"{run.rtype:#04x}"
            report.unknown_records[key] = report.unknown_records.get(key, 0) + run.count
            return
        name = run.layout.name
        report.records_by_rtype[name] = report.records_by_rtype.get(name, 0) + run.count
        records, kind = run.records, run.layout.kind
        names = records.dtype.names
        if kind == "error":
            for text in records["err"].tolist()[: FIRST_LOCATIONS - len(report.venue_errors)]:
                report.venue_errors.append(text.decode("utf-8", "replace"))
        if "ts_recv" in names and kind not in ("error", "system", "symbol_mapping"):
            self._times(run, records, kind)
        if "flags" in names:
            report.bad_ts_recv_flag += int(np.count_nonzero(records["flags"] & F_BAD_TS_RECV))
        if kind in _QUOTE_KINDS:
            bid, ask = records["bid_px_00"], records["ask_px_00"]
            crossed = (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE) & (bid >= ask)
            report.crossed_quotes.add(np.flatnonzero(crossed), run)
        if kind in _SEQUENCED_KINDS and "sequence" in names:
            self._sequences(run, records)

    def _times(self, run: RecordRun, records: np.ndarray, kind: str) -> None:
        report = self.report
        recv = records["ts_recv"]
        defined = recv != _UNDEF_TS
        recv = recv.astype(np.int64)
        event = records["ts_event"].astype(np.int64)
        previous = np.empty(len(recv), dtype=np.int64)
        previous[1:] = recv[:-1]
        previous[0] = self._last_ts_recv if self._last_ts_recv is not None else recv[0]
        report.ts_recv_backwards.add(np.flatnonzero(defined & (recv < previous)), run)
        self._last_ts_recv = int(recv[-1])
        if kind in _LATENCY_KINDS:
            live = defined
            if "flags" in records.dtype.names:
                live = live & ((records["flags"] & F_SNAPSHOT) == 0)
            self._latency.add((recv - event)[live])
        report.ts_recv_before_event.add(np.flatnonzero(defined & (recv < event)), run)
        report.recv_minus_event_ns = self._latency.summary()

    def _sequences(self, run: RecordRun, records: np.ndarray) -> None:
        rows = np.arange(len(records))
        if "flags" in records.dtype.names:
            rows = rows[(records["flags"] & F_SNAPSHOT) == 0]
        if len(rows) == 0:
            return
        instruments = records["instrument_id"][rows]
        sequences = records["sequence"][rows].astype(np.int64)
        order = np.argsort(instruments, kind="stable")
        instruments, sequences, rows = instruments[order], sequences[order], rows[order]
        previous = np.empty(len(rows), dtype=np.int64)
        previous[1:] = sequences[:-1]
        starts = np.flatnonzero(np.r_[True, instruments[1:] != instruments[:-1]])
        ends = np.r_[starts[1:], len(rows)]
        has_previous = np.ones(len(rows), dtype=bool)
        for start, end in zip(starts.tolist(), ends.tolist()):
            instrument = int(instruments[start])
            last = self._last_sequence.get(instrument)
            if last is None:
                has_previous[start] = False
                previous[start] = 0
            else:
                previous[start] = last
            self._last_sequence[instrument] = int(sequences[end - 1])
        step = sequences - previous
        for finding, mask in ((self.report.sequence_backwards, has_previous & (step < 0)),
                              (self.report.sequence_gaps, has_previous & (step > 1))):
            hits = np.flatnonzero(mask)
            hits = hits[np.argsort(rows[hits], kind="stable")]
            finding.add(rows[hits], run, {
                "instrument_id": instruments[hits], "previous": previous[hits], "sequence": sequences[hits],
            })

    def count_rows(self, tables: dict) -> None:
        for table, frame in tables.items():
            self.report.rows[table] = self.report.rows.get(table, 0) + frame.height
