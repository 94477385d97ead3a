"""Normalize a Binance websocket capture into ``book_deltas``, ``trades`` and ``quotes``, streaming.

Scope: captures written one message a line as ``<local receive ts, ns> <raw JSON>`` (the hftbacktest
collector's format; gzip or plain), holding diff depth (``<symbol>@depth``, ``@depth@100ms``, ``@depth@0ms``),
``@trade`` and ``@bookTicker`` streams of spot, USD-M or COIN-M futures (combined-stream envelopes or bare
payloads) and REST depth snapshots (``{"lastUpdateId": ...}`` lines). Non-goals: partial book streams
(``@depth5/10/20``), aggregate trades, klines, mark prices: they are counted as unknown streams. The output
follows ``nodes.marketdata.schemas`` exactly; prices and sizes are int64 in 1e-9 units, parsed from the
decimal strings digit by digit (never through a float).

Per stream (``ts_event`` is the venue's time, ms → ns; ``ts_recv`` the capture's local receive time):

| stream | schema | ts_event | notes |
|---|---|---|---|
| depth diff | book_deltas | ``T`` (futures transaction time), else ``E`` (spot event time) | one row per level; ``sequence`` = ``u`` |
| REST snapshot | book_deltas | ``T`` (futures), none on spot | clear row + levels, ``F_SNAPSHOT``; ``sequence`` = ``lastUpdateId`` |
| trade | trades | ``T`` (trade time) | ``side`` -1 when ``m`` (buyer is maker: the seller hit the bid), else 1 |
| bookTicker | quotes | ``T`` (futures), none on spot | ``sequence`` = ``u``; a quote older than the last (lower ``u``) is dropped; crossed quotes counted |

A message without a venue time gets ``ts_event = ts_recv`` (after the clock policy). ``venue`` is ``BINANCE``
(spot), ``BINANCE_COINM`` (futures symbols ``…USD_PERP``/``…USD_yymmdd``) or ``BINANCE_USDM`` (other futures).

How each concern is handled (details in the named module):

- Reading (``capture``): gzip decompressed incrementally, whole lines per block; a truncated or corrupt stream
  keeps what decompressed and quarantines the cut last line.
- Parsing (``scan``, ``reference``): a compiled scanner for the common case, orjson for the rest; a line
  that is not a normalizable message is quarantined with its line number, reason and text.
- Receive order: lines are in the order the capture received them. A receive time earlier than the previous
  line's (the local clock stepped back) is raised to it (counted, ``F_BAD_TS_RECV`` on book rows), so output
  stays sorted by ``ts_recv`` without moving any message.
- Clock (``clock``): offsets measured per symbol and stream; ``report`` / ``shift`` / ``reject``.
- Repeats (``dedup``): a message identical to one received within ``dedup_window_ns`` is dropped.
- Update ids (``sequence``): Binance's spot and futures rules against the REST snapshots, with buffering
  before a snapshot, bounded reordering and gaps that clear the book.
- Bad input: ``max_bad_fraction`` of bad lines (default 1%) makes the run raise ``DataQualityError`` at the
  end, after the report is complete (the error carries it as ``.report``).

Memory stays flat in file size: a few decompressed pieces, parse arrays for blocks of at most ``chunk_lines``
lines (a small ring of them, reused), the
chunks normalized before the clock is calibrated (the first ``calibration_lines`` lines, held until the shift
is known), the dedup window and the diffs held by the update-id rules (at most ``buffer_max`` per symbol).
Inflating and parsing run in background threads ahead of the normalizing (``threads=True``, the default):
the compiled scanner releases the GIL, so two cores share the work; the rows do not depend on it.

Example::

    from nodes.marketdata.binance import normalize_capture
    run = normalize_capture("spot_btcusdt_20240808.gz", clock_policy="shift")
    for chunk in run:
        chunk.book_deltas, chunk.trades, chunk.quotes     # polars frames in the normalized schemas
    run.report.to_json()                                    # BinanceQualityReport
"""

import inspect
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from nodes.errors import DataQualityError
from nodes.marketdata.binance import reference as R
from nodes.marketdata.binance import scan as S
from nodes.marketdata.binance import sequence as Q
from nodes.marketdata.binance._jit import njit
from nodes.marketdata.binance.capture import CaptureStatus, iter_text_regions, prefetched
from nodes.marketdata.binance.clock import (
    CLOCK_POLICIES,
    DEFAULT_AHEAD_THRESHOLD_NS,
    DEFAULT_LATENCY_FLOOR_NS,
    ClockCheck,
)
from nodes.marketdata.binance.dedup import RepeatFilter
from nodes.marketdata.binance.dedup import _mark as _mark_repeats
from nodes.marketdata.binance.deltas import N_COLUMNS, Q_FLAGS, Q_LEVEL_COUNT, Q_LEVEL_START, count_rows, fill_rows
from nodes.marketdata.binance.report import BinanceQualityReport, QuarantinedLine
from nodes.marketdata.schemas import F_BAD_TS_RECV, SCHEMAS

VenueKind = Literal["auto", "spot", "futures"]
VENUE_SPOT = "BINANCE"
VENUE_USDM = "BINANCE_USDM"
VENUE_COINM = "BINANCE_COINM"
_COINM_SYMBOL = re.compile(r"USD_(PERP|\d{6})$")
_STREAM_NAMES = {S.K_DEPTH: "depth", S.K_TRADE: "trade", S.K_QUOTE: "bookTicker", S.K_SNAPSHOT: "snapshot"}
_MS = 1_000_000
_MAX_SYMBOLS = 4096
_FIRST_LOCATIONS = 20
_POOL = 6  # scratch array sets for parsing (see CaptureNormalization._scratch)


def venue_of(symbol: str, venue_kind: str) -> str:
    """The ``venue`` value of a symbol: BINANCE (spot), BINANCE_COINM (``…USD_PERP``, ``…USD_yymmdd``) or BINANCE_USDM."""
    if venue_kind == "spot":
        return VENUE_SPOT
    return VENUE_COINM if _COINM_SYMBOL.search(symbol) else VENUE_USDM


@dataclass
class NormalizedChunk:
    """The rows produced from input lines ``first_line..last_line``, one frame per schema, each sorted by ts_recv.

    ``lines`` holds, per schema, the input line of each row (a book row: the line of the message it came from;
    a diff replayed after a snapshot keeps its own line but the snapshot's receive time), for consumers that
    merge schemas in capture order.
    """

    book_deltas: pl.DataFrame
    trades: pl.DataFrame
    quotes: pl.DataFrame
    first_line: int
    last_line: int
    lines: dict[str, np.ndarray] = field(default_factory=dict)

    def frames(self) -> dict[str, pl.DataFrame]:
        return {"book_deltas": self.book_deltas, "trades": self.trades, "quotes": self.quotes}


@dataclass
class _RawChunk:
    """A normalized block before the clock policy: per schema, numpy columns (``symbol`` as codes, ``line``)."""

    first_line: int
    last_line: int
    book_deltas: dict | None
    trades: dict | None
    quotes: dict | None


@dataclass
class _Parsed:
    """One block after parsing: messages (``S.M_*`` columns) and their levels; ``good`` marks usable lines."""

    first_line: int
    msgs: np.ndarray
    levels: np.ndarray
    good: np.ndarray

    @property
    def n(self) -> int:
        return len(self.msgs)


def normalize_capture(
    path: str | Path,
    *,
    venue_kind: VenueKind = "auto",
    clock_policy: str = "shift",
    chunk_lines: int = 65_536,
    symbols: list[str] | None = None,
    unlisted_symbols: Literal["drop", "error"] = "drop",
    max_bad_fraction: float = 0.01,
    latency_floor_ns: int = DEFAULT_LATENCY_FLOOR_NS,
    ahead_threshold_ns: int = DEFAULT_AHEAD_THRESHOLD_NS,
    shift_ahead: bool = False,
    calibration_lines: int = 100_000,
    dedup_window_ns: int = 5_000_000_000,
    reorder_window_ns: int = 100_000_000,
    reorder_max: int = 64,
    buffer_max: int = 10_000,
    max_quarantine_lines: int = 100,
    raw_bytes_cap: int = 300,
    threads: bool = True,
) -> "CaptureNormalization":
    """Stream ``path`` into normalized chunks; the returned iterator's ``report`` is complete once exhausted.

    Parameters:
        path: the capture (gzip or plain text).
        venue_kind: ``spot`` or ``futures`` (USD-M and COIN-M share the rules); ``auto`` (default) reads it
            from the first depth diffs of the calibration prefix (``pu`` present → futures).
        clock_policy: ``shift`` (default), ``report`` or ``reject``; see ``nodes.marketdata.binance.clock``.
        chunk_lines: at most this many input lines per chunk (default 65,536; a chunk also ends where a
            decompressed piece does); bounds memory, never changes the rows.
        symbols: keep only these symbols (others are counted in ``filtered_out``); default all.
        unlisted_symbols: with ``symbols``, ``error`` raises on the first line of another symbol instead.
        max_bad_fraction: raise ``DataQualityError`` at the end when more than this share of lines is bad.
        latency_floor_ns: the smallest one-way latency the ``shift`` policy assumes (default 1 ms).
        ahead_threshold_ns: a smallest offset above this means the clock runs ahead (default 1 s).
        shift_ahead: let ``shift`` move receive times earlier for a clock that runs ahead (default off).
        calibration_lines: lines measured before the shift is fixed (default 100,000).
        dedup_window_ns: how far back a repeated message is looked for (default 5 s).
        reorder_window_ns, reorder_max: how long (default 100 ms) and how many diffs (default 64) the
            update-id rules hold out-of-order diffs before declaring a gap; ``reorder_max=0`` declares it at
            the first diff that does not continue the book (a live TCP stream cannot reorder).
        buffer_max: diffs buffered per symbol while waiting for a snapshot (default 10,000).
        max_quarantine_lines, raw_bytes_cap: how many bad lines keep their text, and how much of it.
        threads: inflate and parse in background threads, ahead of normalizing (default on); the rows are
            the same either way.

    Raises:
        ValueError: a parameter out of range (named in the message).
        FileNotFoundError: ``path`` does not exist.
        DataQualityError (while iterating): ``reject`` and a skewed clock; ``unlisted_symbols='error'`` and a
            symbol not listed; more than ``max_bad_fraction`` bad lines (raised after the last chunk).
    """
    return CaptureNormalization(
        Path(path), venue_kind=venue_kind, clock_policy=clock_policy, chunk_lines=chunk_lines, symbols=symbols,
        unlisted_symbols=unlisted_symbols, max_bad_fraction=max_bad_fraction, latency_floor_ns=latency_floor_ns,
        ahead_threshold_ns=ahead_threshold_ns, shift_ahead=shift_ahead, calibration_lines=calibration_lines,
        dedup_window_ns=dedup_window_ns, reorder_window_ns=reorder_window_ns, reorder_max=reorder_max,
        buffer_max=buffer_max, max_quarantine_lines=max_quarantine_lines, raw_bytes_cap=raw_bytes_cap,
        threads=threads,
    )


def list_symbols(path: str | Path, max_lines: int = 20_000, streams: tuple[str, ...] | None = None) -> list[str]:
    """The symbols of the first ``max_lines`` lines of a capture, in order of first appearance (a cheap scan).

    ``streams`` keeps only messages of those streams (``depth``, ``trade``, ``bookTicker``, ``snapshot``).
    Lines the fast scanner refuses are not looked at.
    """
    kinds = {k for k, name in _STREAM_NAMES.items() if streams is None or name in streams}
    table = np.zeros((_MAX_SYMBOLS, S.MAX_SYMBOL_BYTES), np.uint8)
    lengths, count = np.zeros(_MAX_SYMBOLS, np.int64), np.zeros(1, np.int64)
    found: list[int] = []
    left = max_lines
    for region in iter_text_regions(path, CaptureStatus(str(path)), prefetch=False):
        data = np.frombuffer(region.buffer, dtype=np.uint8)
        msgs = np.empty((left, S.N_FIELDS), np.int64)
        starts, stops = np.empty(left, np.int64), np.empty(left, np.int64)
        levels = np.empty(((region.end - region.start) // 9 + 1, S.N_LEVEL_FIELDS), np.int64)
        n, _, _ = S.scan_lines(data, region.start, region.end, left, starts, stops, msgs, levels, table, lengths,
                               count, np.zeros(S.MAX_DEPTH, np.uint8))
        good = (msgs[:n, S.M_STATUS] == S.OK) & np.isin(msgs[:n, S.M_KIND], list(kinds)) & (msgs[:n, S.M_SYMBOL] >= 0)
        for s in msgs[:n][good, S.M_SYMBOL].tolist():
            if s not in found:
                found.append(s)
        left -= n
        if left <= 0:
            break
    return [table[s, : lengths[s]].tobytes().decode() for s in found]


def read_capture(path: str | Path, **options) -> tuple[dict[str, pl.DataFrame], BinanceQualityReport]:
    """Normalize a whole capture into memory: ``({schema: frame}, report)``. Same options as ``normalize_capture``.

    Raises:
        DataQualityError: as ``normalize_capture``.
    """
    run = normalize_capture(path, **options)
    parts: dict[str, list[pl.DataFrame]] = {"book_deltas": [], "trades": [], "quotes": []}
    for chunk in run:
        for name, frame in chunk.frames().items():
            if frame.height:
                parts[name].append(frame)
    frames = {
        name: pl.concat(p, rechunk=True) if p else pl.DataFrame(schema=SCHEMAS[name]) for name, p in parts.items()
    }
    return frames, run.report


class CaptureNormalization:
    """The iterator ``normalize_capture`` returns: ``NormalizedChunk``s, then ``report`` is complete."""

    def __init__(self, path: Path, **options):
        self.path = path
        self.options = options
        _check_options(options)
        self._check_source()
        o = options
        self.report = BinanceQualityReport(path=str(path), max_bad_fraction=o["max_bad_fraction"])
        self.clock = ClockCheck(
            policy=o["clock_policy"], latency_floor_ns=o["latency_floor_ns"],
            ahead_threshold_ns=o["ahead_threshold_ns"], shift_ahead=o["shift_ahead"],
            calibration_lines=o["calibration_lines"],
        )
        self.status = CaptureStatus(str(path))
        self._symbol_filter = None if o["symbols"] is None else set(o["symbols"])
        self._sym_table = np.zeros((_MAX_SYMBOLS, S.MAX_SYMBOL_BYTES), np.uint8)
        self._sym_lengths = np.zeros(_MAX_SYMBOLS, np.int64)
        self._sym_count = np.zeros(1, np.int64)
        self._stack = np.zeros(S.MAX_DEPTH, np.uint8)
        self._names: list[str] = []
        self._venues: list[str] = []
        self._venue_kind = None if o["venue_kind"] == "auto" else o["venue_kind"]
        self._depth_symbols: set[int] = set()
        self._futures_hint = False
        self._ts_max = np.iinfo(np.int64).min
        self._last_ts = 0
        self._last_line = 0
        self._repeats = RepeatFilter(o["dedup_window_ns"])
        self._trade_max = np.full(_MAX_SYMBOLS, -1, np.int64)
        self._quote_max = np.full(_MAX_SYMBOLS, -1, np.int64)
        n_sym = 8
        self._seq_state = self._new_seq_state(n_sym)
        self._seq_counters = np.zeros((n_sym, Q.N_COUNTERS), np.int64)
        self._seq_gaps: list[dict] = []
        self._seq_gap_count = 0
        self._carry = np.empty((0, N_COLUMNS), np.int64)
        self._carry_levels = np.empty((0, S.N_LEVEL_FIELDS), np.int64)
        self._lock = threading.Lock()
        self._pool: list[list[np.ndarray]] = []
        self._pool_next = 0
        self._iterator = self._run()

    def _check_source(self) -> None:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such capture file")

    # -- iteration ---------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[NormalizedChunk]:
        return self

    def __next__(self) -> NormalizedChunk:
        return next(self._iterator)

    def _run(self) -> Iterator[NormalizedChunk]:
        o = self.options
        # parsing (inflate, scan, hash: compiled code that releases the GIL) runs ahead in a thread while
        # this one normalizes: two cores, two stages
        parsed = prefetched(self._parsed_blocks(), depth=2) if o["threads"] else self._parsed_blocks()
        waiting: list[_RawChunk] = []  # normalized before the clock is calibrated, held until it is
        lines = 0
        for block in parsed:
            self._measure(block)
            lines += block.n
            raw = self._normalize(block)
            if self.clock.calibrated_on_lines:
                yield self._finalize(raw)
                continue
            waiting.append(raw)
            if lines >= o["calibration_lines"]:
                self._calibrate(lines)
                while waiting:
                    yield self._finalize(waiting.pop(0))
        if not self.clock.calibrated_on_lines:
            self._calibrate(lines)
            while waiting:
                yield self._finalize(waiting.pop(0))
        last = self._finalize(self._finish())
        self._fill_report()
        yield last
        self._check_bad_fraction()

    # -- parsing -------------------------------------------------------------------------------------------------

    def _parsed_blocks(self) -> Iterator[_Parsed]:
        first_line = 1
        for region in iter_text_regions(self.path, self.status, prefetch=self.options["threads"]):
            data = np.frombuffer(region.buffer, dtype=np.uint8)
            position = region.start
            while position < region.end:
                block, position = self._parse(data, position, region.end, first_line, region.tail_truncated)
                first_line += block.n
                self.status.lines += block.n
                yield block

    def _parse(self, data: np.ndarray, position: int, end: int, first_line: int, tail_truncated: bool):
        """Scan up to ``chunk_lines`` lines from ``data[position:end]``; refused lines go to the reference parser."""
        cap = self.options["chunk_lines"]
        msgs, starts, stops, levels = self._scratch((end - position) // 9 + 1)
        n, position, n_levels = S.scan_lines(data, position, end, cap, starts, stops, msgs, levels, self._sym_table,
                                             self._sym_lengths, self._sym_count, self._stack)
        msgs = msgs[:n]
        good = msgs[:, S.M_STATUS] == S.OK
        cut = tail_truncated and position >= end  # this block holds the damaged stream's cut last line
        refused = np.flatnonzero(~good)
        if cut and n and good[n - 1]:
            refused = np.append(refused, n - 1)
        for k in refused.tolist():
            raw = data[starts[k] : stops[k]].tobytes()
            if cut and k == n - 1:
                good[k] = False
                self._quarantine(first_line + k, R.TRUNCATED, "the capture's compressed stream ends inside this line", raw)
                continue
            try:
                line = R.parse_line(raw)
            except R.BadLine as bad:
                self._quarantine(first_line + k, bad.category, bad.message, raw)
                continue
            n_levels = self._write_reference(line, msgs, k, levels, n_levels)
            if n_levels < 0:
                self._quarantine(first_line + k, R.BAD_FIELD, "more symbols than the normalizer holds", raw)
                n_levels = -n_levels - 1
                continue
            good[k] = True
            self.report.slow_path_lines += 1
        S.message_hashes(msgs, levels)
        self.report.lines_total += n
        return _Parsed(first_line, msgs, levels[:n_levels], good), position

    def _scratch(self, level_rows: int):
        """Output arrays for the next block, from a ring of ``_POOL`` sets reused round-robin.

        Reuse keeps the process's memory flat (fresh arrays per block, allocated in the parsing thread, made
        glibc's per-thread arena grow with the file: 322 → 348 MB from 8 to 24 copies of the futures capture).
        It is safe because nothing outlives a block but copies, and no more than ``_POOL - 1`` blocks are alive
        at once: two queued (``prefetched(depth=2)``), one being parsed, one being normalized.
        """
        cap = self.options["chunk_lines"]
        k = self._pool_next
        self._pool_next = (k + 1) % _POOL
        if k >= len(self._pool):
            self._pool.append([np.empty((cap, S.N_FIELDS), np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64),
                               np.empty((0, S.N_LEVEL_FIELDS), np.int64)])
        entry = self._pool[k]
        if len(entry[3]) < level_rows:
            entry[3] = np.empty((max(level_rows, 2 * len(entry[3])), S.N_LEVEL_FIELDS), np.int64)
        return entry

    def _write_reference(self, line: R.ParsedLine, msgs: np.ndarray, k: int, levels: np.ndarray, n_levels: int) -> int:
        row = msgs[k]
        row[:] = S.MISSING
        row[S.M_STATUS] = S.OK
        row[S.M_KIND] = line.kind
        row[S.M_TS_RECV] = line.ts_recv
        row[S.M_MAKER] = -1
        row[S.M_STREAM] = line.stream
        row[S.M_EVENT] = line.event
        row[S.M_LEVEL_KEYS] = 0
        for column, value in line.fields.items():
            row[column] = value
        row[S.M_SYMBOL] = -1
        if line.symbol is not None:
            encoded = np.frombuffer(line.symbol.encode(), np.uint8)
            sym = S.symbol_id(encoded, 0, len(encoded), self._sym_table, self._sym_lengths, self._sym_count)
            if sym < 0:
                return -n_levels - 1
            row[S.M_SYMBOL] = sym
        count = len(line.levels)
        if n_levels + count > len(levels):  # cannot happen for JSON (9 bytes a level at least); stay safe
            raise ValueError("level buffer too small")
        if count:
            levels[n_levels : n_levels + count] = np.array(line.levels, dtype=np.int64)
        row[S.M_LEVEL_START] = n_levels
        row[S.M_LEVEL_COUNT] = count
        return n_levels + count

    def _quarantine(self, line: int, category: str, message: str, raw: bytes) -> None:
        with self._lock:  # the parsing thread and this one both quarantine
            self._quarantine_locked(line, category, message, raw)

    def _quarantine_locked(self, line: int, category: str, message: str, raw: bytes) -> None:
        r = self.report
        r.lines_bad += 1
        r.bad_reasons[category] = r.bad_reasons.get(category, 0) + 1
        if len(r.quarantine) < self.options["max_quarantine_lines"]:
            cap = self.options["raw_bytes_cap"]
            text = raw[:cap].decode("utf-8", errors="replace") + ("…" if len(raw) > cap else "")
            r.quarantine.append(QuarantinedLine(line, category, message, text))
        else:
            r.quarantine_left_out += 1

    # -- names, venue kind, calibration ---------------------------------------------------------------------------

    def _sync_names(self) -> None:
        for s in range(len(self._names), int(self._sym_count[0])):
            name = self._sym_table[s, : self._sym_lengths[s]].tobytes().decode("utf-8", errors="replace")
            self._names.append(name)
            self._venues.append(venue_of(name, self._venue_kind or "spot"))

    def _measure(self, block: _Parsed) -> None:
        """Measure receive vs venue times and detect the venue kind, on the lines' raw receive times."""
        m = block.msgs
        good = block.good
        kinds = m[:, S.M_KIND]
        if self.report.venue_kind_detected == "unknown":
            depth = np.flatnonzero(good & (kinds == S.K_DEPTH))
            if len(depth):
                futures = bool((m[depth[0], S.M_PREV_ID] != S.MISSING))
                self.report.venue_kind_detected = "futures" if futures else "spot"
                if self._venue_kind is None:  # auto: the first depth diff decides, before any is applied
                    self._venue_kind = self.report.venue_kind_detected
        if self._venue_kind is None and not self._futures_hint:
            quotes = good & (kinds == S.K_QUOTE)
            self._futures_hint = bool((m[quotes, S.M_T] != S.MISSING).any())
        self._sync_names()
        ts_event_ms = _venue_time_ms(m)
        has = good & (ts_event_ms != S.MISSING)
        offsets = m[has, S.M_TS_RECV] - ts_event_ms[has] * _MS
        symbols = m[has, S.M_SYMBOL]
        streams = kinds[has]
        for s in _distinct(symbols):
            for k in _distinct(streams[symbols == s]):
                name = self._names[s] if s >= 0 else "?"
                self.clock.add(name, _STREAM_NAMES[k], offsets[(symbols == s) & (streams == k)])

    def _calibrate(self, lines: int) -> None:
        """Fix the venue kind (when no depth diff decided it) and the clock shift; ``reject`` decides here."""
        r = self.report
        if self._venue_kind is None:
            self._venue_kind = "futures" if self._futures_hint else "spot"
            r.notes.append(f"no depth diff in the first {lines} lines: venue kind taken as {self._venue_kind!r} "
                           "(bookTicker messages " + ("carry" if self._futures_hint else "carry no") + " 'T')")
        r.venue_kind = self._venue_kind
        self._venues = [venue_of(n, self._venue_kind) for n in self._names]
        self.clock.calibrate(lines)
        if self.clock.policy == "reject":
            verdict = self.clock.verdict()
            if verdict in ("behind", "ahead"):
                raise DataQualityError(
                    f"{self.path}: the receive clock runs {verdict} the venue's (min ts_recv - ts_event = "
                    f"{self.clock.overall_min()} ns over the first {lines} lines); clock_policy 'reject' refuses "
                    "the file (use 'shift' to correct it or 'report' to keep the times)"
                )

    # -- normalizing one block -------------------------------------------------------------------------------------

    def _normalize(self, block: _Parsed) -> "_RawChunk":
        """Everything but the clock policy: receive order, repeats, the three schemas as numpy columns.

        Times stay as captured (the shift is added by ``_finalize``); a row without venue time has
        ``ts_event = MISSING`` until then.
        """
        m = block.msgs
        lines = block.first_line + np.arange(block.n, dtype=np.int64)
        kinds = m[:, S.M_KIND]
        good = block.good.copy()
        self._sync_names()
        if self._venue_kind == "futures":
            no_pu = np.flatnonzero(good & (kinds == S.K_DEPTH) & (m[:, S.M_PREV_ID] == S.MISSING))
            for k in no_pu.tolist():
                good[k] = False
                self._quarantine(int(lines[k]), R.MISSING_FIELD, "futures depth diff without 'pu'", b"")
        self._name_snapshots(m, good, kinds, lines)
        rows = np.flatnonzero(good)
        if self._symbol_filter is not None:
            rows = self._apply_filter(m, rows, lines)
        self.report.lines_good += int(good.sum())
        # receive order: raise a time that went backwards to the previous line's
        ts_raw = m[rows, S.M_TS_RECV]
        flags = np.zeros(len(rows), np.int64)
        ts_recv = ts_raw
        if len(rows):
            ts_recv = np.maximum(np.maximum.accumulate(ts_raw), self._ts_max)
            back = ts_raw < np.concatenate([[self._ts_max], ts_recv[:-1]])
            if back.any():
                c = self.clock
                c.ts_recv_backwards += int(back.sum())
                c.max_step_back_ns = max(c.max_step_back_ns, int((ts_recv - ts_raw).max()))
                if c.first_line_backwards is None:
                    c.first_line_backwards = int(lines[rows[back]][0])
                flags[back] = F_BAD_TS_RECV
            self._ts_max = int(ts_recv[-1])
        ts_event_ms = _venue_time_ms(m)[rows]
        has_venue = ts_event_ms != S.MISSING
        ts_event = np.where(has_venue, ts_event_ms * _MS, S.MISSING)
        self.clock.without_venue_time += int((~has_venue).sum())
        # repeats (a constant shift does not change the window, so raw times serve)
        repeat = self._repeats.mark(m[rows, S.M_HASH], ts_recv)
        if repeat.any():
            self._count_repeats(rows[repeat], kinds, lines)
            keep = ~repeat
            rows, ts_recv, ts_event, flags = rows[keep], ts_recv[keep], ts_event[keep], flags[keep]
        if len(rows):
            self._last_ts = max(self._last_ts, int(ts_recv[-1]))
        self._last_line = int(block.first_line + block.n - 1)
        k = kinds[rows]
        for kind in (S.K_DEPTH, S.K_TRADE, S.K_QUOTE, S.K_SNAPSHOT):
            self.report.messages[_STREAM_NAMES[kind]] += int((k == kind).sum())
        is_trade, is_quote = k == S.K_TRADE, k == S.K_QUOTE
        book = (k == S.K_DEPTH) | (k == S.K_SNAPSHOT)
        return _RawChunk(
            first_line=block.first_line, last_line=block.first_line + block.n - 1,
            trades=self._trades(m, rows[is_trade], ts_recv[is_trade], ts_event[is_trade], lines),
            quotes=self._quotes(m, rows[is_quote], ts_recv[is_quote], ts_event[is_quote], lines),
            book_deltas=self._book(block, rows[book], ts_recv[book], ts_event[book], flags[book], lines, eof=False),
        )

    def _name_snapshots(self, m: np.ndarray, good: np.ndarray, kinds: np.ndarray, lines: np.ndarray) -> None:
        """A spot REST snapshot names no symbol: it takes the one symbol of the depth diffs before it, else the
        symbol of the file name (``source.symbol_from_file_name``), else the only one listed in ``symbols``."""
        depth = good & (kinds == S.K_DEPTH)
        unnamed = np.flatnonzero(good & (kinds == S.K_SNAPSHOT) & (m[:, S.M_SYMBOL] < 0))
        seen_upto = 0
        for k in unnamed.tolist():
            self._depth_symbols.update(_distinct(m[seen_upto:k][depth[seen_upto:k], S.M_SYMBOL]))
            seen_upto = k
            if len(self._depth_symbols) == 1:
                m[k, S.M_SYMBOL] = next(iter(self._depth_symbols))
                continue
            fallback = self._fallback_symbol() if not self._depth_symbols else None
            if fallback is not None:
                encoded = np.frombuffer(fallback.encode(), np.uint8)
                m[k, S.M_SYMBOL] = S.symbol_id(encoded, 0, len(encoded), self._sym_table, self._sym_lengths,
                                               self._sym_count)
                self._sync_names()
                continue
            good[k] = False
            found = sorted(self._names[s] for s in self._depth_symbols)
            self._quarantine(int(lines[k]), R.MISSING_FIELD,
                             "snapshot without a symbol, and the depth diffs before it name "
                             + (f"several ({', '.join(found)})" if found else "none")
                             + " (nor does the file name or a single listed symbol)", b"")
        self._depth_symbols.update(_distinct(m[seen_upto:][depth[seen_upto:], S.M_SYMBOL]))

    def _fallback_symbol(self) -> str | None:
        from nodes.marketdata.binance.source import symbol_from_file_name

        named = symbol_from_file_name(str(self.path))
        if named is not None:
            return named
        listed = self.options["symbols"]
        return listed[0] if listed is not None and len(listed) == 1 else None

    def _finalize(self, raw: "_RawChunk") -> NormalizedChunk:
        """Apply the clock policy (shift, venue-less times, early events) and build the polars frames."""
        frames, lines = {}, {}
        for schema, cols in self._clocked(raw).items():
            if cols is None:
                frames[schema] = pl.DataFrame(schema=SCHEMAS[schema])
                lines[schema] = np.empty(0, np.int64)
                continue
            lines[schema] = cols["line"]
            syms = cols.pop("symbol")
            cols["venue"] = _strings(syms, self._venues)
            cols["symbol"] = _strings(syms, self._names)
            frames[schema] = _typed_frame(schema, cols)
        return NormalizedChunk(frames["book_deltas"], frames["trades"], frames["quotes"], raw.first_line, raw.last_line,
                               lines)

    def _clocked(self, raw: "_RawChunk") -> dict[str, dict | None]:
        """Per schema, the numpy columns with the clock policy applied (``symbol`` still codes), None when empty."""
        out: dict[str, dict | None] = {}
        for schema in ("book_deltas", "trades", "quotes"):
            cols = getattr(raw, schema)
            if cols is None or len(cols["ts_recv"]) == 0:
                out[schema] = None
                continue
            ts_recv = cols["ts_recv"] + self.clock.shift_ns
            ts_event = cols["ts_event"]
            missing = ts_event == S.MISSING
            ts_event = np.where(missing, ts_recv, ts_event)
            early = ts_recv < ts_event
            if early.any():
                self._early(early, cols["line"], ts_recv, ts_event, cols.get("flags"))
            cols["ts_recv"], cols["ts_event"] = ts_recv, ts_event
            out[schema] = cols
        return out

    def _apply_filter(self, m: np.ndarray, rows: np.ndarray, lines: np.ndarray) -> np.ndarray:
        names = np.array(self._names + [""], dtype=object)
        syms = m[rows, S.M_SYMBOL]
        listed = np.array([n in self._symbol_filter for n in self._names] + [False], dtype=bool)
        inside = listed[syms]
        if not inside.all():
            outside = rows[~inside]
            if self.options["unlisted_symbols"] == "error":
                first = int(outside[0])
                raise DataQualityError(
                    f"{self.path}: line {int(lines[first])} has symbol {names[m[first, S.M_SYMBOL]]!r}, which is not "
                    f"among the listed symbols {sorted(self._symbol_filter)}"
                )
            for s, count in zip(*np.unique(m[outside, S.M_SYMBOL], return_counts=True)):
                name = str(names[s])
                self.report.filtered_out[name] = self.report.filtered_out.get(name, 0) + int(count)
        return rows[inside]

    def _early(self, early, lines, ts_recv, ts_event, flags) -> None:
        c = self.clock
        first = int(lines[early][0])
        if c.policy == "reject":
            gap = int((ts_event - ts_recv)[early].max())
            raise DataQualityError(
                f"{self.path}: line {first}: received {gap} ns before its venue time ({int(early.sum())} such row(s) "
                "in this chunk); clock_policy 'reject' refuses the file"
            )
        if c.policy == "shift":
            c.ts_event_clamped += int(early.sum())
            if c.first_line_clamped is None:
                c.first_line_clamped = first
            ts_event[early] = ts_recv[early]
            if flags is not None:
                flags[early] |= F_BAD_TS_RECV
        else:
            c.ts_recv_before_ts_event += int(early.sum())
            if c.first_line_recv_before_event is None:
                c.first_line_recv_before_event = first

    def _count_repeats(self, repeated: np.ndarray, kinds: np.ndarray, lines: np.ndarray) -> None:
        d = self.report.duplicates
        d["count"] += len(repeated)
        for kind, count in zip(*np.unique(kinds[repeated], return_counts=True)):
            name = _STREAM_NAMES[int(kind)]
            d["by_stream"][name] = d["by_stream"].get(name, 0) + int(count)
        room = _FIRST_LOCATIONS - len(d["first_lines"])
        d["first_lines"].extend(int(x) for x in lines[repeated][:room])

    # -- trades and quotes -----------------------------------------------------------------------------------------

    def _trades(self, m, rows, ts_recv, ts_event, lines) -> dict | None:
        if len(rows) == 0:
            return None
        ids = m[rows, S.M_TRADE_ID]
        syms = m[rows, S.M_SYMBOL]
        for s in _distinct(syms):
            mine = syms == s
            seen = np.maximum.accumulate(np.concatenate([[self._trade_max[s]], ids[mine]]))
            late = ids[mine] <= seen[:-1]
            if late.any():
                t = self.report.trades
                t["ids_out_of_order"] += int(late.sum())
                if t["first_line"] is None:
                    t["first_line"] = int(lines[rows[mine][late]][0])
            self._trade_max[s] = seen[-1]
        self.report.rows["trades"] += len(rows)
        return {
            "ts_event": ts_event, "ts_recv": ts_recv, "symbol": syms, "line": lines[rows],
            "sequence": pl.Series([None], dtype=pl.Int64).new_from_index(0, len(rows)),
            "price": m[rows, S.M_PRICE], "size": m[rows, S.M_QTY],
            "side": np.where(m[rows, S.M_MAKER] == 1, -1, 1).astype(np.int8),
            "trade_id": ids,
        }

    def _quotes(self, m, rows, ts_recv, ts_event, lines) -> dict | None:
        if len(rows) == 0:
            return None
        ids = m[rows, S.M_LAST_ID]
        syms = m[rows, S.M_SYMBOL]
        keep = None
        for s in _distinct(syms):
            mine = np.flatnonzero(syms == s)
            seen = np.maximum.accumulate(np.concatenate([[self._quote_max[s]], ids[mine]]))
            stale = ids[mine] < seen[:-1]
            if stale.any():
                q = self.report.quotes
                q["stale_dropped"] += int(stale.sum())
                if q["first_line"] is None:
                    q["first_line"] = int(lines[rows[mine[stale]]][0])
                keep = np.ones(len(rows), dtype=bool) if keep is None else keep
                keep[mine[stale]] = False
            self._quote_max[s] = seen[-1]
        if keep is not None:
            rows, ts_recv, ts_event, syms = rows[keep], ts_recv[keep], ts_event[keep], syms[keep]
        crossed = m[rows, S.M_BID_PX] >= m[rows, S.M_ASK_PX]
        if crossed.any():
            q = self.report.quotes
            q["crossed"] += int(crossed.sum())
            if q["first_crossed_line"] is None:
                q["first_crossed_line"] = int(lines[rows[crossed]][0])
        self.report.rows["quotes"] += len(rows)
        return {
            "ts_event": ts_event, "ts_recv": ts_recv, "symbol": syms, "line": lines[rows],
            "sequence": m[rows, S.M_LAST_ID],
            "bid_px": m[rows, S.M_BID_PX], "ask_px": m[rows, S.M_ASK_PX],
            "bid_sz": m[rows, S.M_BID_SZ], "ask_sz": m[rows, S.M_ASK_SZ],
        }

    # -- the book ------------------------------------------------------------------------------------------------

    @staticmethod
    def _new_seq_state(n_sym: int) -> np.ndarray:
        state = np.zeros((n_sym, Q.N_STATE), np.int64)
        state[:, Q.S_STATE] = Q.NO_BOOK
        state[:, Q.S_PENDING_SINCE] = -1
        return state

    def _grow_symbols(self) -> None:
        need = int(self._sym_count[0])
        have = len(self._seq_state)
        if need <= have:
            return
        size = max(need, 2 * have)
        state = self._new_seq_state(size)
        state[:have] = self._seq_state
        counters = np.zeros((size, Q.N_COUNTERS), np.int64)
        counters[:have] = self._seq_counters
        self._seq_state, self._seq_counters = state, counters

    def _book(self, block, rows, ts_recv, ts_event, flags, lines, eof: bool) -> dict | None:
        o = self.options
        self._grow_symbols()
        carry, carry_levels = self._carry, self._carry_levels
        n_new = len(rows)
        table = np.empty((len(carry) + n_new, N_COLUMNS), np.int64)
        table[: len(carry)] = carry
        new = table[len(carry) :]
        if n_new:
            m = block.msgs
            new[:, Q.Q_KIND] = np.where(m[rows, S.M_KIND] == S.K_SNAPSHOT, Q.MSG_SNAPSHOT, Q.MSG_DIFF)
            new[:, Q.Q_SYMBOL] = m[rows, S.M_SYMBOL]
            new[:, Q.Q_TS_RECV] = ts_recv
            new[:, Q.Q_TS_EVENT] = ts_event
            new[:, Q.Q_LINE] = lines[rows]
            new[:, Q.Q_FIRST_ID] = m[rows, S.M_FIRST_ID]
            new[:, Q.Q_LAST_ID] = m[rows, S.M_LAST_ID]
            prev = m[rows, S.M_PREV_ID]
            new[:, Q.Q_PREV_ID] = np.where(prev == S.MISSING, -1, prev)
            new[:, Q.Q_HOLD] = Q.HOLD_NONE
            new[:, Q_LEVEL_START] = m[rows, S.M_LEVEL_START] + len(carry_levels)
            new[:, Q_LEVEL_COUNT] = m[rows, S.M_LEVEL_COUNT]
            new[:, Q_FLAGS] = flags
            levels = np.concatenate([carry_levels, block.levels]) if len(carry_levels) else block.levels
        else:
            levels = carry_levels
        if len(table) == 0 and not eof:
            return None
        n_sym = len(self._seq_state)
        buffered = np.zeros((n_sym, o["buffer_max"]), np.int64)
        pending = np.zeros((n_sym, o["reorder_max"] + 1), np.int64)
        emits = np.zeros((2 * len(table) + n_sym + 1, 7), np.int64)
        gaps = np.zeros((max(len(table), n_sym), Q.N_GAP_FIELDS), np.int64)
        n_emit, n_gaps = Q.apply_rules(
            table, self._seq_state, self._seq_counters, buffered, pending, emits, gaps,
            self._venue_kind == "futures", o["reorder_window_ns"], o["reorder_max"], o["buffer_max"],
            eof, self._last_ts, self._last_line,
        )
        self._record_gaps(gaps[: min(n_gaps, len(gaps))])
        n_rows = count_rows(emits, n_emit, table)
        cols = {name: np.empty(n_rows, np.int64) for name in ("ts_event", "ts_recv", "sequence", "price", "size", "line")}
        cols["symbol"] = np.empty(n_rows, np.uint32)
        cols["side"] = np.empty(n_rows, np.int8)
        cols["action"] = np.empty(n_rows, np.uint8)
        cols["flags"] = np.empty(n_rows, np.uint8)
        fill_rows(emits, n_emit, table, levels, cols["ts_event"], cols["ts_recv"], cols["symbol"], cols["sequence"],
                  cols["side"], cols["price"], cols["size"], cols["action"], cols["flags"], cols["line"])
        self._keep_held(table, levels)
        self.report.rows["book_deltas"] += n_rows
        return cols if n_rows else None

    def _keep_held(self, table: np.ndarray, levels: np.ndarray) -> None:
        held = np.flatnonzero(table[:, Q.Q_HOLD] != Q.HOLD_NONE)
        carry = table[held].copy()
        if len(held):
            counts = carry[:, Q_LEVEL_COUNT]
            starts = carry[:, Q_LEVEL_START]
            index = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            self._carry_levels = levels[index].copy()
            carry[:, Q_LEVEL_START] = np.cumsum(counts) - counts
        else:
            self._carry_levels = np.empty((0, S.N_LEVEL_FIELDS), np.int64)
        self._carry = carry

    def _record_gaps(self, gaps: np.ndarray) -> None:
        self._seq_gap_count += len(gaps)
        for g in gaps[: max(0, _FIRST_LOCATIONS * 5 - len(self._seq_gaps))].tolist():
            self._seq_gaps.append({
                "symbol": self._names[g[Q.G_SYMBOL]], "line": g[Q.G_LINE], "detected_line": g[Q.G_DETECTED_LINE],
                "expected": g[Q.G_EXPECTED], "first_id": g[Q.G_FIRST_ID],
                "prev_id": None if g[Q.G_PREV_ID] < 0 else g[Q.G_PREV_ID], "ts_recv": g[Q.G_TS_RECV],
            })

    # -- the end -------------------------------------------------------------------------------------------------

    def _finish(self) -> "_RawChunk":
        """End of file: held diffs become gaps or unsynced drops (see ``sequence``)."""
        deltas = self._book(None, np.empty(0, np.int64), None, None, None, None, eof=True)
        return _RawChunk(self._last_line + 1, self._last_line, deltas, None, None)

    def _fill_report(self) -> None:
        r = self.report
        self._sync_names()
        r.symbols = list(self._names)
        r.capture = asdict(self.status)
        r.clock = self.clock.summary()
        r.duplicates["window_ns"] = self.options["dedup_window_ns"]
        rule = ("futures: drop u < lastUpdateId; first U <= lastUpdateId <= u; then pu == previous u"
                if self._venue_kind == "futures" else
                "spot: drop u <= book id; apply when U <= book id + 1 (first: U <= lastUpdateId + 1 <= u); "
                "U > book id + 1 is a gap")
        for s, name in enumerate(self._names):
            counters = self._seq_counters[s] if s < len(self._seq_counters) else np.zeros(Q.N_COUNTERS, np.int64)
            if not counters.any():
                continue
            entry = {"rule": rule, **{key: int(counters[i]) for i, key in enumerate(Q.COUNTER_NAMES)}}
            entry["state_at_end"] = Q.STATE_NAMES[int(self._seq_state[s, Q.S_STATE])]
            entry["book_id_at_end"] = int(self._seq_state[s, Q.S_BOOK_ID])
            entry["gap_list"] = [g for g in self._seq_gaps if g["symbol"] == name][:_FIRST_LOCATIONS]
            entry["gap_list_left_out"] = entry["gaps"] - len(entry["gap_list"])
            r.sequence[name] = entry
        if self._venue_kind == "spot" and r.venue_kind_detected == "futures":
            r.notes.append("depth diffs carry 'pu' (a futures capture) but the spot rules were applied")
        if self._venue_kind == "futures" and r.venue_kind_detected == "spot":
            r.notes.append("depth diffs carry no 'pu' (a spot capture) but the futures rules were asked for")

    def _check_bad_fraction(self) -> None:
        r = self.report
        if r.bad_fraction > r.max_bad_fraction:
            first = ", ".join(f"{q.line} ({q.reason})" for q in r.quarantine[:5])
            error = DataQualityError(
                f"{self.path}: {r.lines_bad} of {r.lines_total} lines are bad ({r.bad_fraction:.2%} > max_bad_fraction "
                f"{r.max_bad_fraction:.2%}); first: {first}"
            )
            error.report = r
            raise error


def normalize_lines(name: str, **options) -> "LineNormalization":
    """Normalize capture lines handed over as they arrive (a live feed): see ``LineNormalization``.

    ``name`` stands for the file in messages and in the report (a URL, say). Options are ``normalize_capture``'s;
    ``venue_kind`` must be ``spot`` or ``futures``.

    Raises:
        TypeError: an option ``normalize_capture`` does not have.
        ValueError: as ``normalize_capture``, or ``venue_kind`` is ``auto``.
    """
    defaults = {k: v.default for k, v in inspect.signature(normalize_capture).parameters.items()
                if v.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise TypeError(f"normalize_lines() got unknown option(s): {', '.join(unknown)}")
    return LineNormalization(name, **{**defaults, **options})


class LineNormalization(CaptureNormalization):
    """Normalize capture lines fed as they arrive (``feed``), with the rules ``normalize_capture`` applies to a file.

    A live feed writes each message it receives as a capture line (``<local receive ts, ns> <JSON>\\n``) and
    feeds a batch of whole lines at a time; ``feed`` returns, per schema, the numpy columns of the rows those
    lines release (``symbol`` as codes into ``symbols``, ``line`` the number of the line, counted from 1 over
    everything fed). Fed the lines of a capture, in any batches, it gives the rows ``normalize_capture`` gives
    for the file with the same options (the clock aside: it is calibrated on the first batch, not on
    ``calibration_lines``). ``close`` ends the feed: held diffs become gaps, diffs waiting for a snapshot are
    dropped (counted) and ``report`` is complete.

    Example::

        run = normalize_lines("ws://127.0.0.1:9000/stream", venue_kind="spot", clock_policy="report")
        rows = run.feed(b'1723161254087896568 {"stream":"btcusdt@trade","data":{...}}\\n')
        rows["trades"]["price"]                 # int64, 1e-9 units; rows["book_deltas"] is None: no depth fed
    """

    def __init__(self, name: str, **options):
        super().__init__(name, **options)
        if self._venue_kind is None:
            raise ValueError("venue_kind must be 'spot' or 'futures' when lines are fed as they arrive (the first "
                             "depth diff cannot be waited for)")
        o = options
        self.clock = _BufferedClock(
            policy=o["clock_policy"], latency_floor_ns=o["latency_floor_ns"],
            ahead_threshold_ns=o["ahead_threshold_ns"], shift_ahead=o["shift_ahead"],
            calibration_lines=o["calibration_lines"],
        )
        self._next_line = 1
        # the steady path's scratch (``feed_steady``): one message, its levels, its rows
        self._steady_msgs = np.empty((1, S.N_FIELDS), np.int64)
        self._steady_levels = np.empty((64, S.N_LEVEL_FIELDS), np.int64)
        self._steady_ones = np.zeros((4, 1), np.int64)  # a line's start and stop, its hash and time
        self._steady_duplicate = np.zeros(1, np.bool_)
        self._steady_table = np.zeros((1, N_COLUMNS), np.int64)
        self._steady_emits = np.zeros((4, 7), np.int64)
        self._steady_scratch = np.zeros((1, 1), np.int64)
        self._steady_out = np.zeros((len(STEADY_COLUMNS), 1024), np.int64)  # the quote rows stay 0
        self._steady_offsets: dict[tuple[str, str], list[int]] = {}
        self._listed = np.zeros(0, np.bool_)

    def _check_source(self) -> None:
        pass  # nothing is read: the lines are fed

    @property
    def symbols(self) -> list[str]:
        """The symbols seen so far; ``symbol`` codes index this list."""
        self._sync_names()
        return list(self._names)

    def feed(self, data: bytes) -> dict[str, dict | None]:
        """Normalize whole capture lines (each ends with a newline); return the released rows per schema.

        Raises:
            DataQualityError: as ``normalize_capture`` (``reject`` and a skewed clock, an unlisted symbol with
                ``unlisted_symbols='error'``).
        """
        self._fold_steady_offsets()
        buffer = np.frombuffer(data, dtype=np.uint8)
        parts = []
        position = 0
        while position < len(buffer):
            block, position = self._parse(buffer, position, len(buffer), self._next_line, False)
            self._next_line += block.n
            self.status.lines += block.n
            self._measure(block)
            raw = self._normalize(block)
            if not self.clock.calibrated_on_lines:
                self._calibrate(block.n)
            parts.append(self._clocked(raw))
        if len(parts) == 1:
            return parts[0]
        return {schema: _concat_columns([p[schema] for p in parts]) for schema in ("book_deltas", "trades", "quotes")}

    def close(self) -> dict[str, dict | None]:
        """End the feed: return the rows the end releases (gap clears) and complete ``report``."""
        self._fold_steady_offsets()
        raw = self._finish()
        if not self.clock.calibrated_on_lines:
            self._calibrate(0)
        self._fill_report()
        return self._clocked(raw)

    def book_states(self) -> dict[str, str]:
        """Each depth symbol's update-id state: ``no_book``, ``syncing``, ``live`` or ``invalid`` (after a gap)."""
        self._sync_names()
        return {name: Q.STATE_NAMES[int(self._seq_state[s, Q.S_STATE])]
                for s, name in enumerate(self._names) if s < len(self._seq_state) and self._seq_counters[s].any()}

    @property
    def gaps(self) -> int:
        """Gaps declared so far (every symbol)."""
        return self._seq_gap_count

    # -- one message the common way ------------------------------------------------------------------------------

    def feed_steady(self, line: bytes) -> tuple[int, int]:
        """Normalize one whole capture line the common way, in one compiled call; ``(kind, rows)`` or ``(0, 0)``.

        The common case of a live feed: a depth diff that continues a live book, or a trade, of a listed symbol
        already seen, received no earlier than the line before it, not a repeat, after the clock is calibrated,
        with nothing held for reordering. Its rows (``STEADY_COLUMNS``, the clock policy applied) are written
        into ``steady_out[:, :rows]``; ``kind`` is ``STEADY_DEPTH`` or ``STEADY_TRADE``; the counters and the
        report are updated as ``feed`` updates them, so feeding lines through either gives the same rows and
        report. Anything else returns ``(0, 0)`` having changed nothing (but the name table, where a new symbol
        was read): feed that line with ``feed``. A stale diff is common too: ``(STEADY_DEPTH, 0)``.
        """
        if not self.clock.calibrated_on_lines or len(self._carry) or self.report.venue_kind_detected == "unknown":
            return 0, 0
        if len(line) // 9 + 1 > len(self._steady_levels):
            self._steady_levels = np.empty((len(line) // 9 + 1, S.N_LEVEL_FIELDS), np.int64)
        if len(line) > self._steady_out.shape[1]:  # a level takes 9 bytes at least: room for every row
            self._steady_out = np.zeros((len(STEADY_COLUMNS), len(line)), np.int64)
        self._sync_listed()
        repeats = self._repeats
        kind, rows, late, early, offset_ns = _steady_line(
            np.frombuffer(line, np.uint8), self._steady_msgs, self._steady_levels, self._steady_ones,
            self._steady_duplicate, self._sym_table, self._sym_lengths, self._sym_count, self._stack, self._listed,
            self._ts_max, self._venue_kind == "futures", self.clock.shift_ns, _CLAMP_EARLY[self.clock.policy],
            self._seq_state, self._seq_counters,
            self._steady_table, self._steady_emits, self._steady_scratch, repeats._keys, repeats._times,
            repeats._used, repeats.window_ns, self._trade_max, self._next_line, self._steady_out,
        )
        if kind == 0:
            return 0, 0
        line_no = self._next_line
        self._next_line += 1
        self.status.lines += 1
        report = self.report
        report.lines_total += 1
        report.lines_good += 1
        symbol = int(self._steady_msgs[0, S.M_SYMBOL])
        ts_recv = int(self._steady_msgs[0, S.M_TS_RECV])
        self._ts_max = ts_recv
        self._last_ts = max(self._last_ts, ts_recv)
        self._last_line = line_no
        stream = "depth" if kind == STEADY_DEPTH else "trade"
        report.messages[stream] += 1
        held = self._steady_offsets.setdefault((self._names[symbol], stream), [])
        held.append(offset_ns)
        if len(held) >= 4096:
            self._fold_steady_offsets()
        if early and rows:
            self._count_early(rows, line_no)
        if kind == STEADY_DEPTH:
            self._depth_symbols.add(symbol)
            report.rows["book_deltas"] += rows
        else:
            report.rows["trades"] += 1
            if late:
                report.trades["ids_out_of_order"] += 1
                if report.trades["first_line"] is None:
                    report.trades["first_line"] = line_no
        return kind, rows

    @property
    def steady_out(self) -> np.ndarray:
        """The rows of the last line ``feed_steady`` took: one int64 row per ``STEADY_COLUMNS`` entry."""
        return self._steady_out

    def _count_early(self, rows: int, line_no: int) -> None:
        """Count rows received before their venue time, as ``_early`` does ('report' kept them, 'shift' clamped)."""
        c = self.clock
        if c.policy == "shift":
            c.ts_event_clamped += rows
            if c.first_line_clamped is None:
                c.first_line_clamped = line_no
        else:
            c.ts_recv_before_ts_event += rows
            if c.first_line_recv_before_event is None:
                c.first_line_recv_before_event = line_no

    def _sync_listed(self) -> None:
        """Which known symbols the steady path may take (listed, or no list): one flag per symbol code."""
        if len(self._listed) == int(self._sym_count[0]):
            return
        self._sync_names()
        self._grow_symbols()
        keep = self._symbol_filter
        self._listed = np.array([keep is None or name in keep for name in self._names], np.bool_)

    def _fold_steady_offsets(self) -> None:
        """Hand the steady path's receive-minus-venue offsets to the clock (as ``_measure`` does for ``feed``)."""
        held, self._steady_offsets = self._steady_offsets, {}
        for (symbol, stream), offsets in held.items():
            self.clock.add(symbol, stream, np.array(offsets, np.int64))


@dataclass
class _BufferedClock(ClockCheck):
    """A ``ClockCheck`` that folds offsets into its distributions in bulk, not at every ``add``.

    Fed a message at a time, folding (a sort over the distribution's bins) would cost more than the message's
    normalization, and more as the session's spread of offsets grows; held offsets are folded every
    ``_FOLD_EVERY`` offsets and before anything reads the distributions, so the report is the same.
    """

    def __post_init__(self):
        self._held: dict[tuple[str, str], list[np.ndarray]] = {}
        self._held_count = 0

    def add(self, symbol: str, stream: str, offsets: np.ndarray) -> None:
        self._held.setdefault((symbol, stream), []).append(offsets)
        self._held_count += len(offsets)
        if self._held_count >= _FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        held, self._held, self._held_count = self._held, {}, 0
        for (symbol, stream), parts in held.items():
            super().add(symbol, stream, np.concatenate(parts))

    def overall_min(self) -> int | None:
        self.fold()
        return super().overall_min()

    def summary(self) -> dict:
        self.fold()
        return super().summary()


_FOLD_EVERY = 65_536

# the steady path's rows: one int64 row per column, the normalized schemas' columns a live source needs (the
# first 13 in the order of ``nodes.marketdata.stream_ports``, the quote columns 0: a source copies them as one block)
STEADY_COLUMNS = ("ts_event", "ts_recv", "side", "price", "size", "action", "flags", "sequence", "trade_id", "bid_px",
                  "ask_px", "bid_sz", "ask_sz", "symbol", "line")
STEADY_DEPTH, STEADY_TRADE = 1, 2
_CLAMP_EARLY = {"report": 0, "shift": 1, "reject": -1}
(_O_TS_EVENT, _O_TS_RECV, _O_SIDE, _O_PRICE, _O_SIZE, _O_ACTION, _O_FLAGS, _O_SEQUENCE, _O_TRADE_ID, _O_BID_PX,
 _O_ASK_PX, _O_BID_SZ, _O_ASK_SZ, _O_SYMBOL, _O_LINE) = range(len(STEADY_COLUMNS))


@njit(cache=True)
def _steady_line(data, msgs, levels, ones, duplicate, sym_table, sym_lengths, sym_count, stack, listed, ts_max, futures,
                 shift_ns, clamp_early, seq_state, seq_counters, table, emits, scratch, rep_keys, rep_times, rep_used,
                 window_ns, trade_max, line, out):
    """``LineNormalization.feed_steady``'s compiled part: the kernels ``feed`` runs, for one line.

    Every check comes before the first change (the repeat filter's table, the update-id state, the trade
    ids), so a line refused here is fed whole by ``feed`` as if it had not been seen. ``clamp_early``: the
    clock policy for an event received before its venue time (0 'report': kept and counted, 1 'shift': its
    ts_event clamped, -1 'reject': refused here, ``feed`` raises). Returns (kind, rows, trade id out of order,
    received before its venue time, receive-minus-venue offset in ns).
    """
    refused = (0, 0, False, False, 0)
    n, position, _ = S.scan_lines(data, np.int64(0), data.shape[0], np.int64(1), ones[0], ones[1], msgs, levels,
                                  sym_table, sym_lengths, sym_count, stack)
    if n != 1 or position < data.shape[0] or msgs[0, S.M_STATUS] != S.OK:
        return refused
    kind = msgs[0, S.M_KIND]
    symbol = msgs[0, S.M_SYMBOL]
    if (kind != S.K_DEPTH and kind != S.K_TRADE) or symbol < 0 or symbol >= listed.shape[0] or not listed[symbol]:
        return refused
    ts = msgs[0, S.M_TS_RECV]
    venue_ms = msgs[0, S.M_T] if msgs[0, S.M_T] != S.MISSING else msgs[0, S.M_E]
    if ts < ts_max or venue_ms == S.MISSING:
        return refused  # a receive time going back, or no venue time: ``feed`` repairs them
    ts_event = venue_ms * _MS
    early = ts + shift_ns < ts_event
    if early and clamp_early < 0:
        return refused
    prev_id = msgs[0, S.M_PREV_ID]
    if kind == S.K_DEPTH:
        if seq_state[symbol, Q.S_STATE] != Q.LIVE or (futures and prev_id == S.MISSING):
            return refused
        verdict = Q._classify(futures, Q.LIVE, seq_state[symbol, Q.S_BOOK_ID], msgs[0, S.M_FIRST_ID],
                              msgs[0, S.M_LAST_ID], -1 if prev_id == S.MISSING else prev_id)
        if verdict == Q.GAP:
            return refused  # a hole: gap, clear row, buffering (``feed``)
    S.message_hashes(msgs, levels)
    hashes, times = ones[2], ones[3]
    hashes[0] = msgs[0, S.M_HASH]
    times[0] = ts
    if _mark_repeats(hashes, times, np.int64(0), duplicate, rep_keys, rep_times, rep_used, window_ns) == 0 \
            or duplicate[0]:
        return refused  # a repeat (``feed`` counts it), or the filter's table must be purged first
    # from here on the line is taken
    offset_ns = ts - ts_event
    clamped = early and clamp_early > 0
    if kind == S.K_TRADE:
        trade_id = msgs[0, S.M_TRADE_ID]
        late = trade_id <= trade_max[symbol]
        if trade_id > trade_max[symbol]:
            trade_max[symbol] = trade_id
        out[_O_TS_EVENT, 0] = ts + shift_ns if clamped else ts_event
        out[_O_TS_RECV, 0] = ts + shift_ns
        out[_O_SYMBOL, 0] = symbol
        out[_O_SIDE, 0] = -1 if msgs[0, S.M_MAKER] == 1 else 1
        out[_O_PRICE, 0] = msgs[0, S.M_PRICE]
        out[_O_SIZE, 0] = msgs[0, S.M_QTY]
        out[_O_ACTION, 0] = 0
        out[_O_FLAGS, 0] = 0
        out[_O_SEQUENCE, 0] = 0
        out[_O_TRADE_ID, 0] = trade_id
        out[_O_LINE, 0] = line
        return STEADY_TRADE, 1, late, early, offset_ns
    table[0, Q.Q_KIND] = Q.MSG_DIFF
    table[0, Q.Q_SYMBOL] = symbol
    table[0, Q.Q_TS_RECV] = ts
    table[0, Q.Q_TS_EVENT] = ts_event
    table[0, Q.Q_LINE] = line
    table[0, Q.Q_FIRST_ID] = msgs[0, S.M_FIRST_ID]
    table[0, Q.Q_LAST_ID] = msgs[0, S.M_LAST_ID]
    table[0, Q.Q_PREV_ID] = -1 if prev_id == S.MISSING else prev_id
    table[0, Q.Q_HOLD] = Q.HOLD_NONE
    table[0, Q_LEVEL_START] = msgs[0, S.M_LEVEL_START]
    table[0, Q_LEVEL_COUNT] = msgs[0, S.M_LEVEL_COUNT]
    table[0, Q_FLAGS] = 0
    # a diff that continues a live book (or is stale) is neither buffered nor held for reordering: the rules
    # run with one-slot scratch for those
    zero = np.int64(0)
    n_emit, _ = Q.apply_rules(table, seq_state, seq_counters, scratch, scratch, emits, scratch, futures, zero, zero,
                              np.int64(1), False, zero, zero)
    rows = fill_rows(emits, n_emit, table, levels, out[_O_TS_EVENT], out[_O_TS_RECV], out[_O_SYMBOL],
                     out[_O_SEQUENCE], out[_O_SIDE], out[_O_PRICE], out[_O_SIZE], out[_O_ACTION], out[_O_FLAGS],
                     out[_O_LINE])
    for r in range(rows):
        out[_O_TS_RECV, r] += shift_ns
        out[_O_TRADE_ID, r] = 0
        if clamped:
            out[_O_TS_EVENT, r] = out[_O_TS_RECV, r]
            out[_O_FLAGS, r] |= F_BAD_TS_RECV
    return STEADY_DEPTH, rows, False, early, offset_ns


def _concat_columns(parts: list[dict | None]) -> dict | None:
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return {k: np.concatenate([p[k] for p in present]) for k in present[0] if isinstance(present[0][k], np.ndarray)}


_NUMPY_TYPES = {pl.Int64: np.int64, pl.Int8: np.int8, pl.UInt8: np.uint8}


def _typed_frame(schema: str, columns: dict) -> pl.DataFrame:
    """A frame of ``schema`` from numpy arrays / polars Series, columns in schema order and dtype."""
    data = {}
    for name, dtype in SCHEMAS[schema].items():
        value = columns[name]
        if isinstance(value, np.ndarray):
            value = pl.Series(name, value.astype(_NUMPY_TYPES[dtype], copy=False))
        data[name] = value.alias(name)
    return pl.DataFrame(data)


def _distinct(values: np.ndarray) -> list[int]:
    """The distinct values, cheaply when there is one (the usual single-symbol capture)."""
    if len(values) == 0:
        return []
    low = int(values.min())
    if low == int(values.max()):
        return [low]
    return np.unique(values).tolist()


def _venue_time_ms(m: np.ndarray) -> np.ndarray:
    """The venue time of each message in ms: ``T`` where the message has it (trade, futures), else ``E``."""
    return np.where(m[:, S.M_T] != S.MISSING, m[:, S.M_T], m[:, S.M_E])


def _strings(codes: np.ndarray, names: list[str]) -> pl.Series:
    """The strings ``names[codes]`` as a polars String column, without a Python object per row."""
    if len(codes) == 0:
        return pl.Series([], dtype=pl.String)
    low = int(codes.min())
    if low == int(codes.max()):
        return pl.Series([names[low]], dtype=pl.String).new_from_index(0, len(codes))
    return pl.Series(names, dtype=pl.String).gather(codes.astype(np.uint32, copy=False))


def _check_options(o: dict) -> None:
    if o["clock_policy"] not in CLOCK_POLICIES:
        raise ValueError(f"clock_policy must be one of {', '.join(CLOCK_POLICIES)}, not {o['clock_policy']!r}")
    if o["venue_kind"] not in ("auto", "spot", "futures"):
        raise ValueError(f"venue_kind must be 'auto', 'spot' or 'futures', not {o['venue_kind']!r}")
    if o["unlisted_symbols"] not in ("drop", "error"):
        raise ValueError(f"unlisted_symbols must be 'drop' or 'error', not {o['unlisted_symbols']!r}")
    for name in ("chunk_lines", "calibration_lines", "buffer_max"):
        if int(o[name]) < 1:
            raise ValueError(f"{name} must be >= 1, got {o[name]}")
    for name in ("reorder_max", "latency_floor_ns", "ahead_threshold_ns", "dedup_window_ns", "reorder_window_ns",
                 "max_quarantine_lines", "raw_bytes_cap"):
        if int(o[name]) < 0:
            raise ValueError(f"{name} must be >= 0, got {o[name]}")
    if not 0.0 <= float(o["max_bad_fraction"]) <= 1.0:
        raise ValueError(f"max_bad_fraction must be within [0, 1], got {o['max_bad_fraction']}")
