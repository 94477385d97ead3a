"""Normalize Tardis.dev CSV files into ``book_deltas``, ``trades`` or ``quotes``, streaming and exact.

Scope: Tardis' downloadable CSV data types ``incremental_book_L2``, ``book_snapshot_N`` (5, 25, any N),
``trades`` and ``quotes`` (``layout`` tells them apart by their header), plain or gzip, one or many symbols a
file. The output follows ``nodes.marketdata.schemas``: ``ts_event`` = ``timestamp`` (exchange time, µs → ns),
``ts_recv`` = ``local_timestamp`` (when Tardis received it); prices and sizes int64 in 1e-9 units, parsed
from the text digit by digit (``nodes.marketdata.decimal_units``, never a float); ``venue`` is the
``exchange`` column upper-cased with ``-`` → ``_`` (``binance-futures`` → ``BINANCE_FUTURES``) unless
``venue`` is given; ``sequence`` is null (Tardis CSV carries none).

Per data type:

- ``incremental_book_L2``: one row per line; ``size`` = ``amount``, the level's new total (0 removes it:
  action ``C``; else ``M``). Lines with the same symbol, ``local_timestamp`` and ``is_snapshot`` are one
  venue message (Tardis' own rule for grouping them): ``F_LAST`` on its last row. Tardis' snapshot rule: when
  a ``is_snapshot=true`` line follows a non-snapshot line of its symbol (or is the symbol's first), the book
  is discarded: a clear row (``R``, side 0, ``UNDEF_PRICE``, size 0, ``F_SNAPSHOT``) comes first, then the
  snapshot's levels (``A``, ``F_SNAPSHOT``). Updates of a symbol before its first snapshot are kept and
  flagged ``F_MAYBE_BAD_BOOK`` (a book built from them is partial) and counted.
- ``book_snapshot_N``: every line is a whole top-N book: a clear row, then the bids best first, then the
  asks best first (``A``), all ``F_SNAPSHOT``, ``F_LAST`` on the last. Empty levels (fewer than N) are left
  out; a crossed snapshot (best bid >= best ask) is counted.
- ``trades``: ``side`` buy → 1, sell → -1, unknown → 0; ``trade_id`` is ``id`` when it is a decimal integer
  that fits int64, else null (BitMEX ids are UUIDs; counted as ``ids_not_integer``).
- ``quotes``: an empty side gives ``UNDEF_PRICE`` and size 0 (counted as ``one_sided``); crossed quotes counted.

Time checks, on every line in file order: a ``local_timestamp`` earlier than the previous line's is raised to
it (counted, ``F_BAD_TS_RECV`` on book rows), so output is sorted by ``ts_recv`` without moving any row. A
line received before its exchange time (``local_timestamp < timestamp``) is handled by ``clock_policy``:
``clamp`` (default) sets ``ts_event = ts_recv`` (and ``F_BAD_TS_RECV`` on book rows), ``report`` keeps it,
``reject`` raises; all three count it in the report.

Bad input: a line that does not parse (wrong number of fields, an empty required field, a bad decimal or
timestamp, an unknown side, a negative size, invalid UTF-8, the line cut by a damaged gzip stream) is
quarantined with its line number, reason and text; every other line goes on. When more than
``max_bad_fraction`` of the data lines are bad, ``DataQualityError`` is raised after the last chunk (the
report is complete then, and attached to the error as ``.report``). A file that cannot be read at all (no
header, a header that is not Tardis') raises at once.

Streaming: gzip is inflated incrementally (``nodes.marketdata.binance.capture``: concatenated members,
truncated and corrupt streams keep what decompressed), each piece of whole lines is cut into at most
``chunk_lines`` lines, split into fields by polars (over the bytes as read: no Python object per line) and
typed column by column (decimals by the compiled kernel of ``decimal_units``): memory holds a few pieces, not
the file. Measured: about 0.7 million incremental_book_L2 lines a second (gzip, one core). An incremental book message that straddles two chunks is held until it is complete, so flags do
not depend on the chunking. Fields are split on every comma: Tardis never quotes.

Example::

    from nodes.marketdata.tardis import normalize_tardis
    run = normalize_tardis("deribit_incremental_book_L2_BTC-PERPETUAL.csv.gz")
    for chunk in run:
        chunk.frame            # a polars frame in run.layout.schema
    run.report.to_dict()       # TardisQualityReport
"""

import gzip
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa

from nodes.errors import DataQualityError
from nodes.marketdata.binance.capture import GZIP_MAGIC, CaptureStatus, iter_text_regions
from nodes.marketdata.decimal_units import units_series
from nodes.marketdata.quarantine import Quarantine
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_MODIFY,
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    SCHEMAS,
    UNDEF_PRICE,
    conform,
)
from nodes.marketdata.tardis.layout import TardisLayout, detect_layout
from nodes.marketdata.tardis.report import TardisQualityReport

ClockPolicy = Literal["clamp", "report", "reject"]
CLOCK_POLICIES = ("clamp", "report", "reject")
_MAX_US = 9_223_372_036_854_775  # the largest µs time whose ns fits int64
_US = 1_000
_TIMESTAMP = r"^[0-9]{1,16}$"
_INT64 = r"^[0-9]{1,19}$"


@dataclass
class TardisChunk:
    """The rows normalized from data lines ``first_line..last_line`` (file lines, the header is line 1)."""

    schema: str
    frame: pl.DataFrame
    first_line: int
    last_line: int


def read_header(path: str | Path) -> list[str]:
    """The column names on the first line of a Tardis CSV (plain or gzip).

    Raises:
        FileNotFoundError: no such file.
        DataQualityError: the file is empty or its first line cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
    try:
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as file:
            first = file.readline(1 << 20)
    except (OSError, EOFError) as error:
        raise DataQualityError(f"{path}: cannot read the header line: {error}") from None
    text = first.decode("utf-8", errors="replace").rstrip("\r\n").removeprefix("\ufeff")
    if not text:
        raise DataQualityError(f"{path}: empty file: no header line")
    return text.split(",")


def normalize_tardis(
    path: str | Path,
    *,
    symbols: list[str] | None = None,
    unlisted_symbols: Literal["drop", "error"] = "drop",
    venue: str | None = None,
    clock_policy: ClockPolicy = "clamp",
    max_bad_fraction: float = 0.0,
    chunk_lines: int = 65_536,
    max_quarantine_lines: int = 100,
    raw_bytes_cap: int = 300,
) -> "TardisNormalization":
    """Stream the Tardis CSV at ``path`` into normalized chunks; ``.report`` is complete once exhausted.

    Parameters:
        path: the file (plain or gzip); its header names its data type.
        symbols: keep only these symbols (others are counted in ``filtered_out``); default all.
        unlisted_symbols: with ``symbols``, ``error`` raises on the first line of another symbol instead.
        venue: the ``venue`` value of every row; default from the ``exchange`` column.
        clock_policy: ``clamp`` (default), ``report`` or ``reject`` lines received before their exchange time.
        max_bad_fraction: raise ``DataQualityError`` at the end when more than this share of data lines is
            bad (default 0: any bad line fails; the catalog passes 1 and applies its own threshold).
        chunk_lines: data lines parsed at a time (default 65,536); bounds memory, never changes the rows.
        max_quarantine_lines, raw_bytes_cap: how many bad lines keep their text, and how much of it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an option out of range (named in the message).
        DataQualityError: a header that is not a decoded Tardis type (at once); while iterating: ``reject``
            and a line received before its exchange time, ``unlisted_symbols='error'`` and another symbol,
            too many bad lines (after the last chunk).
    """
    return TardisNormalization(
        Path(path), symbols=symbols, unlisted_symbols=unlisted_symbols, venue=venue, clock_policy=clock_policy,
        max_bad_fraction=max_bad_fraction, chunk_lines=chunk_lines, max_quarantine_lines=max_quarantine_lines,
        raw_bytes_cap=raw_bytes_cap,
    )


def read_tardis(path: str | Path, **options) -> tuple[pl.DataFrame, TardisQualityReport]:
    """Normalize a whole Tardis CSV into memory: ``(frame, report)``; same options as ``normalize_tardis``."""
    run = normalize_tardis(path, **options)
    parts = [chunk.frame for chunk in run if chunk.frame.height]
    frame = pl.concat(parts, rechunk=True) if parts else pl.DataFrame(schema=SCHEMAS[run.layout.schema])
    return frame, run.report


def list_symbols(path: str | Path, max_lines: int = 20_000) -> list[str]:
    """The symbols of the first ``max_lines`` data lines, in order of first appearance (a cheap scan)."""
    path = Path(path)
    names = read_header(path)
    if "symbol" not in names:
        return []
    column = names.index("symbol")
    found: dict[str, None] = {}
    seen = 0
    for region in iter_text_regions(path, CaptureStatus(str(path)), prefetch=False):
        text = region.buffer[region.start : region.end].decode("utf-8", errors="replace")
        for line in text.splitlines()[1 if seen == 0 else 0 :]:
            fields = line.split(",")
            if len(fields) == len(names) and fields[column]:
                found.setdefault(fields[column])
            seen += 1
            if seen >= max_lines:
                return list(found)
    return list(found)


class TardisNormalization:
    """The iterator ``normalize_tardis`` returns: ``TardisChunk``s, then ``report`` is complete."""

    def __init__(self, path: Path, **options):
        _check_options(options)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such Tardis CSV file")
        self.path = path
        self.options = options
        self.layout: TardisLayout = detect_layout(read_header(path), path)
        self.report = TardisQualityReport(
            path=str(path), data_type=self.layout.data_type, schema=self.layout.schema, depth=self.layout.depth,
            max_bad_fraction=options["max_bad_fraction"],
            quarantine=Quarantine(options["max_quarantine_lines"], options["raw_bytes_cap"]),
        )
        self.report.clock["policy"] = options["clock_policy"]
        self._filter = None if options["symbols"] is None else set(options["symbols"])
        self._ts_max = np.iinfo(np.int64).min
        self._carry: pl.DataFrame | None = None  # an incremental message not known to be complete yet
        self._was_snapshot: dict[str, bool] = {}
        self._seen_snapshot: dict[str, bool] = {}
        self._iterator = self._run()

    def __iter__(self) -> Iterator[TardisChunk]:
        return self

    def __next__(self) -> TardisChunk:
        return next(self._iterator)

    # -- reading -----------------------------------------------------------------------------------------------

    def _run(self) -> Iterator[TardisChunk]:
        status = CaptureStatus(str(self.path))
        next_line = 1  # file line of the next line read (the header is line 1)
        step = self.options["chunk_lines"]
        for region in iter_text_regions(self.path, status):
            lines, bad_utf8 = _split_lines(region.buffer, region.start, region.end)
            numbers = np.arange(next_line, next_line + len(lines), dtype=np.int64)
            next_line += len(lines)
            if numbers[0] == 1:  # the header, already read
                lines, bad_utf8, numbers = lines[1:], bad_utf8[1:], numbers[1:]
            cut = np.zeros(len(lines), bool)
            if region.tail_truncated and len(lines):
                cut[-1] = True
            for start in range(0, len(lines), step):
                end = start + step
                yield from self._chunk(lines[start:end], numbers[start:end], bad_utf8[start:end], cut[start:end])
        self.report.capture = asdict(status)
        yield from self._finish_incremental()
        self._finish()

    def _chunk(self, lines: pl.Series, numbers: np.ndarray, bad_utf8: np.ndarray, cut: np.ndarray):
        if len(lines) == 0:
            return
        self.report.lines_total += len(lines)
        parsed = self._parse(lines, numbers, bad_utf8, cut)
        good = parsed.filter(pl.col("_reason").is_null())
        self.report.lines_good += good.height
        good = self._select_symbols(good)
        if good.height == 0 and self.layout.kind != "incremental":
            return
        good = self._times(good)
        self._note_names(good)
        frame = getattr(self, f"_rows_{self.layout.kind}")(good, eof=False)
        if frame is not None and frame.height:
            self.report.rows += frame.height
            yield TardisChunk(self.layout.schema, conform(frame, self.layout.schema), int(numbers[0]), int(numbers[-1]))

    def _finish_incremental(self) -> Iterator[TardisChunk]:
        if self.layout.kind != "incremental" or self._carry is None or self._carry.height == 0:
            return
        first = int(self._carry["line"][0])
        last = int(self._carry["line"][-1])
        frame = self._rows_incremental(self._carry.clear(), eof=True)
        if frame is not None and frame.height:
            self.report.rows += frame.height
            yield TardisChunk(self.layout.schema, conform(frame, self.layout.schema), first, last)

    def _finish(self) -> None:
        r = self.report
        if r.bad_fraction > self.options["max_bad_fraction"]:
            error = DataQualityError(
                f"{self.path}: {r.lines_bad} of {r.lines_total} data line(s) are bad ({r.bad_fraction:.4%}), above "
                f"max_bad_fraction {self.options['max_bad_fraction']:.4%}: {r.quarantine.summary()}"
            )
            error.report = r
            raise error

    # -- parsing -----------------------------------------------------------------------------------------------

    def _parse(self, lines: pl.Series, numbers: np.ndarray, bad_utf8: np.ndarray, cut: np.ndarray) -> pl.DataFrame:
        """Fields of every line, typed, with ``_reason`` set on the lines that are bad (quarantined here)."""
        names = self.layout.columns
        width = len(names)
        fields = lines.str.split_exact(",", width - 1).struct.rename_fields(list(names)).struct.unnest()
        frame = fields.with_columns(
            line=pl.Series(numbers),
            _raw=lines,
            _n_fields=lines.str.count_matches(",", literal=True) + 1,
            _bad_utf8=pl.Series(bad_utf8),
            _cut=pl.Series(cut),
        )
        typed, decimals, checks = _typing(self.layout)
        parsed = {}
        for column, name in decimals.items():
            parsed[name], parsed[f"{name}_bad"] = units_series(frame[column], name)
        frame = frame.with_columns(**parsed).with_columns(
            _ts_event_us=_timestamp_us(pl.col("timestamp")),
            _ts_recv_us=_timestamp_us(pl.col("local_timestamp")),
            **typed,
        )
        checks = [
            ("truncated_line", pl.col("_cut"), pl.lit("the line was cut by a damaged gzip stream")),
            ("bad_encoding", pl.col("_bad_utf8"), pl.lit("the line is not valid UTF-8")),
            ("empty_line", pl.col("_raw") == "", pl.lit("empty line")),
            ("field_count", pl.col("_n_fields") != width,
             pl.format(f"expected {width} comma-separated fields, found {{}}", pl.col("_n_fields"))),
            ("missing_field", _missing(pl.col("exchange")) | _missing(pl.col("symbol")), pl.lit("exchange or symbol is empty")),
            ("bad_timestamp", pl.col("_ts_event_us").is_null(),
             pl.format("timestamp {} is not µs since the epoch", pl.col("timestamp").fill_null(""))),
            ("bad_timestamp", pl.col("_ts_recv_us").is_null(),
             pl.format("local_timestamp {} is not µs since the epoch", pl.col("local_timestamp").fill_null(""))),
            *checks,
        ]
        reason = pl.lit(None, pl.String)
        for name, failed, _ in reversed(checks):
            reason = pl.when(failed).then(pl.lit(name)).otherwise(reason)
        frame = frame.with_columns(_reason=reason)
        bad = frame.filter(pl.col("_reason").is_not_null())
        if bad.height:
            message = pl.lit(None, pl.String)
            for name, failed, text in reversed(checks):
                message = pl.when(failed).then(text).otherwise(message)
            bad = bad.with_columns(_message=message)
            self.report.lines_bad += bad.height
            for line, why, text, raw in bad.select("line", "_reason", "_message", "_raw").iter_rows():
                self.report.quarantine.add(line, why, text, raw)
        return frame

    def _select_symbols(self, good: pl.DataFrame) -> pl.DataFrame:
        if self._filter is None or good.height == 0:
            return good
        outside = ~pl.col("symbol").is_in(list(self._filter))
        other = good.filter(outside)
        if other.height:
            if self.options["unlisted_symbols"] == "error":
                first = other.row(0, named=True)
                raise DataQualityError(f"{self.path}: line {first['line']}: symbol {first['symbol']!r} is not in the "
                                       f"listed symbols ({', '.join(self.options['symbols'])})")
            for symbol, count in other.group_by("symbol", maintain_order=True).len().iter_rows():
                self.report.filtered_out[symbol] = self.report.filtered_out.get(symbol, 0) + count
        return good.filter(~outside)

    def _times(self, good: pl.DataFrame) -> pl.DataFrame:
        """ts_event/ts_recv in ns with the receive-order repair and the clock policy; ``_xflags`` for book rows."""
        ts_event = good["_ts_event_us"].to_numpy() * _US
        ts_recv = good["_ts_recv_us"].to_numpy() * _US
        running = np.maximum.accumulate(np.concatenate([[self._ts_max], ts_recv]))[1:]
        if len(running):
            self._ts_max = int(running[-1])
        xflags = np.zeros(good.height, np.uint8)
        back = ts_recv < running
        lines = good["line"].to_numpy()
        if back.any():
            entry = self.report.ts_recv_backwards
            entry["count"] += int(back.sum())
            entry["first_line"] = entry["first_line"] or int(lines[back][0])
            xflags[back] |= F_BAD_TS_RECV
            ts_recv = running
        early = ts_event > ts_recv
        if early.any():
            clock = self.report.clock
            clock["ts_event_after_ts_recv"] += int(early.sum())
            clock["first_line"] = clock["first_line"] or int(lines[early][0])
            clock["max_excess_ns"] = max(clock["max_excess_ns"], int((ts_event - ts_recv)[early].max()))
            policy = self.options["clock_policy"]
            if policy == "reject":
                raise DataQualityError(
                    f"{self.path}: line {int(lines[early][0])}: received {int((ts_event - ts_recv)[early][0])} ns "
                    "before its exchange time (local_timestamp < timestamp); clock_policy is reject"
                )
            if policy == "clamp":
                ts_event = np.where(early, ts_recv, ts_event)
                xflags[early] |= F_BAD_TS_RECV
        venue = self.options["venue"]
        return good.with_columns(
            ts_event=pl.Series(ts_event, dtype=pl.Int64),
            ts_recv=pl.Series(ts_recv, dtype=pl.Int64),
            _xflags=pl.Series(xflags, dtype=pl.UInt8),
            venue=pl.lit(venue) if venue else pl.col("exchange").str.to_uppercase().str.replace_all("-", "_"),
            sequence=pl.lit(None, pl.Int64),
        )

    def _note_names(self, good: pl.DataFrame) -> None:
        if good.height == 0:
            return
        for name, column in (("venues", "venue"), ("symbols", "symbol")):
            known = getattr(self.report, name)
            for value in good[column].unique(maintain_order=True).to_list():
                if value not in known:
                    known.append(value)

    # -- rows per data type --------------------------------------------------------------------------------------

    def _rows_incremental(self, good: pl.DataFrame, eof: bool) -> pl.DataFrame | None:
        keep = ["line", "ts_event", "ts_recv", "venue", "symbol", "sequence", "_ts_recv_us", "_xflags",
                "_is_snapshot", "_side", "_price", "_size"]
        frame = good.select(keep) if good.height else None
        if self._carry is not None and self._carry.height:
            frame = self._carry if frame is None else pl.concat([self._carry, frame])
        self._carry = None
        if frame is None or frame.height == 0:
            return None
        key = pl.struct("symbol", "_ts_recv_us", "_is_snapshot")
        starts = frame.select(starts=(key != key.shift(1)).fill_null(True))["starts"]
        if not eof:  # the last message may go on in the next chunk: hold it
            last_start = int(np.flatnonzero(starts.to_numpy())[-1])
            self._carry = frame.slice(last_start)
            frame = frame.slice(0, last_start)
            if frame.height == 0:
                return None
        was = self._was_snapshot
        seen = self._seen_snapshot
        frame = frame.with_columns(
            _prev_snapshot=pl.col("_is_snapshot").shift(1).over("symbol").fill_null(
                pl.col("symbol").replace_strict(was, default=False, return_dtype=pl.Boolean)),
            _seen=pl.col("_is_snapshot").cum_max().over("symbol")
            | pl.col("symbol").replace_strict(seen, default=False, return_dtype=pl.Boolean),
            _last=(key != key.shift(-1)).fill_null(True),
            _order=pl.int_range(pl.len(), dtype=pl.Int64) * 2 + 1,
        ).with_columns(_opens=pl.col("_is_snapshot") & ~pl.col("_prev_snapshot"))
        for symbol, is_snapshot, seen_any, opens, early in frame.group_by("symbol", maintain_order=True).agg(
            pl.col("_is_snapshot").last(), pl.col("_seen").last(), pl.col("_opens").sum(),
            _early=(~pl.col("_seen")).sum(),
        ).iter_rows():
            was[symbol] = is_snapshot
            seen[symbol] = seen_any
            book = self.report.book.setdefault(symbol, {"snapshots": 0, "rows_before_first_snapshot": 0})
            book["snapshots"] += int(opens)
            book["rows_before_first_snapshot"] += int(early)
        levels = frame.select(
            "ts_event", "ts_recv", "venue", "symbol", "sequence", "_order",
            side=pl.col("_side"), price=pl.col("_price"), size=pl.col("_size"),
            action=pl.when(pl.col("_is_snapshot")).then(ACTION_ADD)
            .when(pl.col("_size") == 0).then(ACTION_CANCEL).otherwise(ACTION_MODIFY).cast(pl.UInt8),
            flags=(pl.col("_xflags")
                   | pl.when(pl.col("_is_snapshot")).then(F_SNAPSHOT).otherwise(0)
                   | pl.when(pl.col("_last")).then(F_LAST).otherwise(0)
                   | pl.when(~pl.col("_seen")).then(F_MAYBE_BAD_BOOK).otherwise(0)).cast(pl.UInt8),
        )
        clears = frame.filter(pl.col("_opens")).select(
            "ts_event", "ts_recv", "venue", "symbol", "sequence", _order=pl.col("_order") - 1,
            side=pl.lit(0, pl.Int8), price=pl.lit(UNDEF_PRICE, pl.Int64), size=pl.lit(0, pl.Int64),
            action=pl.lit(ACTION_CLEAR, pl.UInt8), flags=(pl.col("_xflags") | F_SNAPSHOT).cast(pl.UInt8),
        )
        rows = pl.concat([levels, clears], how="vertical_relaxed") if clears.height else levels
        return rows.sort("_order").drop("_order")

    def _rows_snapshot(self, good: pl.DataFrame, eof: bool) -> pl.DataFrame | None:
        depth = self.layout.depth
        base = good.select("ts_event", "ts_recv", "venue", "symbol", "sequence", "_xflags", "line").with_row_index("_row")
        parts = [base.select("_row", _pos=pl.lit(0, pl.Int32), side=pl.lit(0, pl.Int8),
                             price=pl.lit(UNDEF_PRICE, pl.Int64), size=pl.lit(0, pl.Int64))]
        for offset, (side_name, side) in enumerate((("bids", 1), ("asks", -1))):
            for i in range(depth):
                price, size = f"_{side_name}_{i}_price", f"_{side_name}_{i}_size"
                parts.append(good.with_row_index("_row").filter(pl.col(price).is_not_null()).select(
                    "_row", _pos=pl.lit(1 + offset * depth + i, pl.Int32), side=pl.lit(side, pl.Int8),
                    price=pl.col(price), size=pl.col(size)))
        long = pl.concat(parts).sort("_row", "_pos")
        crossed = good.with_row_index("_row").filter(pl.col("_bids_0_price") >= pl.col("_asks_0_price"))
        for symbol, count, line in crossed.group_by("symbol", maintain_order=True).agg(
                pl.len(), pl.col("line").first()).iter_rows():
            book = self.report.book.setdefault(symbol, {"snapshots": 0})
            book["crossed_snapshots"] = book.get("crossed_snapshots", 0) + count
            book.setdefault("first_crossed_line", line)
        for symbol, count in good.group_by("symbol", maintain_order=True).len().iter_rows():
            book = self.report.book.setdefault(symbol, {"snapshots": 0})
            book["snapshots"] += count
        rows = long.join(base, on="_row", how="left", maintain_order="left")
        return rows.select(
            "ts_event", "ts_recv", "venue", "symbol", "sequence", "side", "price", "size",
            action=pl.when(pl.col("_pos") == 0).then(ACTION_CLEAR).otherwise(ACTION_ADD).cast(pl.UInt8),
            flags=(pl.col("_xflags") | F_SNAPSHOT
                   | pl.when(pl.col("_row") != pl.col("_row").shift(-1).fill_null(-1)).then(F_LAST).otherwise(0)
                   ).cast(pl.UInt8),
        )

    def _rows_trades(self, good: pl.DataFrame, eof: bool) -> pl.DataFrame:
        not_integer = good.filter(pl.col("_trade_id").is_null())
        if not_integer.height:
            self.report.trades["ids_not_integer"] += not_integer.height
            self.report.trades["first_line"] = self.report.trades["first_line"] or int(not_integer["line"][0])
        return good.select("ts_event", "ts_recv", "venue", "symbol", "sequence", price=pl.col("_price"),
                           size=pl.col("_size"), side=pl.col("_side"), trade_id=pl.col("_trade_id"))

    def _rows_quotes(self, good: pl.DataFrame, eof: bool) -> pl.DataFrame:
        both = pl.col("_bid_price").is_not_null() & pl.col("_ask_price").is_not_null()
        crossed = good.filter(both & (pl.col("_bid_price") >= pl.col("_ask_price")))
        quotes = self.report.quotes
        if crossed.height:
            quotes["crossed"] += crossed.height
            quotes["first_crossed_line"] = quotes["first_crossed_line"] or int(crossed["line"][0])
        quotes["one_sided"] += good.height - good.filter(both).height
        return good.select(
            "ts_event", "ts_recv", "venue", "symbol", "sequence",
            bid_px=pl.col("_bid_price").fill_null(UNDEF_PRICE), ask_px=pl.col("_ask_price").fill_null(UNDEF_PRICE),
            bid_sz=pl.col("_bid_size").fill_null(0), ask_sz=pl.col("_ask_size").fill_null(0),
        )


# -- helpers ------------------------------------------------------------------------------------------------------


def _check_options(o: dict) -> None:
    if o["clock_policy"] not in CLOCK_POLICIES:
        raise ValueError(f"clock_policy must be one of {', '.join(CLOCK_POLICIES)}, not {o['clock_policy']!r}")
    if o["unlisted_symbols"] not in ("drop", "error"):
        raise ValueError(f"unlisted_symbols must be 'drop' or 'error', not {o['unlisted_symbols']!r}")
    if not 0.0 <= o["max_bad_fraction"] <= 1.0:
        raise ValueError(f"max_bad_fraction must be within [0, 1], got {o['max_bad_fraction']}")
    if o["chunk_lines"] < 1:
        raise ValueError(f"chunk_lines must be >= 1, got {o['chunk_lines']}")
    if o["symbols"] is not None and (not o["symbols"] or len(set(o["symbols"])) != len(o["symbols"])):
        raise ValueError("symbols must be a non-empty list without duplicates")


def _split_lines(buffer: bytes, start: int, end: int) -> tuple[pl.Series, np.ndarray]:
    """The lines of ``buffer[start:end]`` (without line ends) as one string column, and which are not UTF-8.

    The column is built over the bytes themselves (an Arrow string array whose offsets are the line starts):
    no Python object per line. Invalid UTF-8 is checked first; such lines become empty strings, marked.
    """
    view = np.frombuffer(buffer, np.uint8, count=end - start, offset=start)
    stops = np.flatnonzero(view == 10) + 1
    if len(stops) == 0 or stops[-1] != len(view):
        stops = np.append(stops, len(view))
    offsets = np.concatenate([[0], stops]).astype(np.int64)
    data = memoryview(buffer)[start:end]
    bad = np.zeros(len(stops), bool)
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        pieces = []
        for i in range(len(stops)):
            piece = bytes(data[offsets[i] : offsets[i + 1]])
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError:
                bad[i] = True
                piece = b"\n"
            pieces.append(piece)
        data = b"".join(pieces)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    array = pa.LargeStringArray.from_buffers(len(stops), pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series(pl.from_arrow(array)).str.strip_chars_end("\r\n"), bad


def _missing(text: pl.Expr) -> pl.Expr:
    return text.is_null() | (text == "")


def _timestamp_us(text: pl.Expr) -> pl.Expr:
    value = pl.when(text.str.contains(_TIMESTAMP)).then(text.str.to_integer(strict=False))
    return pl.when(value <= _MAX_US).then(value)


def _decimal_checks(column: str, typed: str, nonnegative: bool, required: bool) -> list:
    text = pl.col(column)
    checks = []
    if required:
        checks.append(("missing_field", _missing(text), pl.lit(f"{column} is empty")))
    checks.append(("bad_decimal", pl.col(f"{typed}_bad"),
                   pl.format(f"{column} {{}} is not an exact decimal (at most 9 decimal places, within int64 in 1e-9 units)",
                             text.fill_null(""))))
    if nonnegative:
        checks.append(("negative_size", pl.col(typed) < 0, pl.format(f"{column} {{}} is negative", text)))
    return checks


def _level_checks(price: str, amount: str, typed_price: str, typed_size: str) -> list:
    return [
        ("incomplete_level", _missing(pl.col(price)) != _missing(pl.col(amount)),
         pl.lit(f"{price} and {amount} must both be given or both be empty")),
        *_decimal_checks(price, typed_price, nonnegative=False, required=False),
        *_decimal_checks(amount, typed_size, nonnegative=True, required=False),
    ]


def _typing(layout: TardisLayout) -> tuple[dict[str, pl.Expr], dict[str, str], list]:
    """A data type's typed columns (expressions; decimal columns → their typed names, parsed by the kernel)
    and its checks: (reason, failed expr, message expr), in order."""
    if layout.kind == "incremental":
        flag = pl.col("is_snapshot").str.to_lowercase()
        typed = {
            "_is_snapshot": flag == "true",
            "_side": pl.col("side").replace_strict({"bid": 1, "ask": -1}, default=None, return_dtype=pl.Int8),
        }
        checks = [
            ("bad_field", ~flag.is_in(["true", "false"]).fill_null(False),
             pl.format("is_snapshot {} is not true or false", pl.col("is_snapshot").fill_null(""))),
            ("bad_side", pl.col("_side").is_null(), pl.format("side {} is not bid or ask", pl.col("side").fill_null(""))),
            *_decimal_checks("price", "_price", nonnegative=False, required=True),
            *_decimal_checks("amount", "_size", nonnegative=True, required=True),
        ]
        return typed, {"price": "_price", "amount": "_size"}, checks
    if layout.kind == "trades":
        identifier = pl.col("id")
        typed = {
            "_side": pl.col("side").replace_strict({"buy": 1, "sell": -1, "unknown": 0}, default=None,
                                                   return_dtype=pl.Int8),
            "_trade_id": pl.when(identifier.str.contains(_INT64)).then(identifier.str.to_integer(strict=False)),
        }
        checks = [
            ("bad_side", pl.col("_side").is_null(),
             pl.format("side {} is not buy, sell or unknown", pl.col("side").fill_null(""))),
            *_decimal_checks("price", "_price", nonnegative=False, required=True),
            *_decimal_checks("amount", "_size", nonnegative=True, required=True),
        ]
        return typed, {"price": "_price", "amount": "_size"}, checks
    if layout.kind == "quotes":
        decimals = {"bid_price": "_bid_price", "bid_amount": "_bid_size", "ask_price": "_ask_price",
                    "ask_amount": "_ask_size"}
        checks = [*_level_checks("bid_price", "bid_amount", "_bid_price", "_bid_size"),
                  *_level_checks("ask_price", "ask_amount", "_ask_price", "_ask_size")]
        return {}, decimals, checks
    decimals, checks = {}, []
    for side in ("bids", "asks"):
        for i in range(layout.depth):
            price, amount = layout.level_columns(side, i)
            decimals[price] = f"_{side}_{i}_price"
            decimals[amount] = f"_{side}_{i}_size"
            checks += _level_checks(price, amount, f"_{side}_{i}_price", f"_{side}_{i}_size")
    return {}, decimals, checks
