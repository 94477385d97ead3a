"""Bars from CSV files, one file per instrument, in two layouts.

- ``layout: header`` (default): named columns, case-insensitive: a time column (``date``, ``timestamp``,
  ``timestamp_utc``, ``datetime``, ``time`` or ``time_column``), ``open, high, low, close, volume``, and
  optionally ``adj close`` (Yahoo's ``Date,Open,High,Low,Close,Adj Close,Volume``; also ``adj_close``),
  ``dividend``/``dividends`` and ``split``/``splits``/``stock splits`` (zipline's
  ``date,open,high,low,close,volume,dividend,split``). Other columns are ignored.
- ``layout: binance_klines``: Binance's kline CSV (data.binance.vision), no header (a header line starting
  with ``open_time`` is skipped): ``open_time, open, high, low, close, volume, close_time, quote_volume,
  count, taker_buy_volume, taker_buy_quote_volume, ignore`` with epoch times in ``epoch_unit`` (ms; Binance's
  spot files from 2025 are µs). A bar opens at ``open_time`` and is known at ``close_time`` + 1 unit (the
  next bar's open); ``bar_duration`` is not used.

``adjust`` backward-adjusts prices for splits and dividends (``nodes.sources.bars_adjust``: the formula, and
why it looks ahead); the default ``none`` keeps the prices as the file has them.
"""

import datetime as dt
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from nodes.contract import SourceOp
from nodes.errors import DataQualityError
from nodes.sources.bars import BAR_OUTPUTS, InstrumentFilesParams, check_bars, iter_chunks, merge_instruments
from nodes.sources.bars_adjust import AdjustMode, adjust_bars

TIME_COLUMN_CANDIDATES = ("date", "timestamp", "timestamp_utc", "datetime", "time")
KLINE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
_ALIASES = {  # lower-cased header name → the name used here
    "adj close": "adj_close", "adj_close": "adj_close", "adjclose": "adj_close",
    "dividend": "dividend", "dividends": "dividend",
    "split": "split", "splits": "split", "stock splits": "split", "stock_splits": "split",
}
_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}


class BarsCsvParams(InstrumentFilesParams):
    timezone: str = Field(
        description="IANA zone of naive timestamps and of the session times (e.g. America/New_York, UTC)"
    )
    bar_duration: str = Field("1d", description="length of one bar: 1d, 1h, 5m, 30s, ...")
    timestamp_is: Literal["open", "close"] = Field(
        "open", description="whether an intraday row's timestamp is the bar's open or its close"
    )
    session_open: str = Field("09:30", description="local open time of date-only (daily) bars")
    session_close: str = Field("16:00", description="local close time of date-only bars: when the bar is known")
    time_column: str | None = Field(None, description="name of the time column; found among usual names if unset")
    epoch_unit: Literal["s", "ms", "us", "ns"] = Field("ms", description="unit of numeric epoch timestamps")
    layout: Literal["header", "binance_klines"] = Field(
        "header", description="'header': named columns (date/OHLCV, Yahoo, zipline); 'binance_klines': Binance's "
                              "kline CSV without a header"
    )
    adjust: AdjustMode = Field(
        "none", description="backward adjustment: none, splits, dividends or splits_and_dividends (uses later "
                            "events: research only, see nodes.sources.bars_adjust)"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as 'America/New_York'")
        return value

    @field_validator("bar_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"bar_duration {value!r} is not a duration like 1d, 1h, 5m or 30s")
        return value

    @field_validator("session_open", "session_close")
    @classmethod
    def _clock(cls, value: str) -> str:
        dt.time.fromisoformat(value)
        return value


def duration_ns(text: str) -> int:
    number, unit = _DURATION.match(text).groups()
    return int(number) * _NS[unit]


class BarsCsv(SourceOp):
    """Read OHLCV bars from CSV (plain or gzip), one file per instrument, each bar known at its close.

    Date-only rows (daily bars) open at ``session_open`` and are known at ``session_close``, local time in
    ``timezone`` (DST-safe). Timestamped rows are the bar's open (or close, ``timestamp_is: close``) and last
    ``bar_duration``; naive timestamps are read in ``timezone``, epoch numbers in ``epoch_unit``. Binance
    klines (``layout: binance_klines``) carry their own open and close times. Dividends, splits and Yahoo's
    Adj Close are read only when ``adjust`` asks for them (default ``none``: prices as in the file). A row with
    a missing price, time going backwards or a bar known before it began rejects the file with the line
    numbers.

    Example::

        bars: {op: source.bars_csv, with: {path: "data/{instrument}.csv.gz", instruments: [AAPL, MSFT],
                                          timezone: America/New_York}}
    """

    name = "source.bars_csv"
    Params = BarsCsvParams
    outputs = BAR_OUTPUTS

    @classmethod
    def instruments(cls, params: BarsCsvParams, base_dir: Path) -> list[str]:
        return params.instrument_list()

    @classmethod
    def open(cls, params: BarsCsvParams, base_dir: Path):
        per_instrument = [
            _read_file(path, index, params) for index, (_, path) in enumerate(params.files(base_dir))
        ]
        return _InMemoryReader(params.instrument_list(), merge_instruments(per_instrument))


class _InMemoryReader:
    def __init__(self, instruments: list[str], columns: dict[str, np.ndarray]):
        self.instruments = instruments
        self._columns = columns

    def chunks(self, max_rows: int):
        return iter_chunks(self._columns, max_rows)


def _read_file(path: Path, instrument_index: int, params: BarsCsvParams) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataQualityError(f"{path}: no such file")
    if params.layout == "binance_klines":
        frame, first_line = _read_klines(path)
        ts_event, ts_recv = _kline_times(frame, params, path, first_line)
    else:
        frame, first_line = _read_named(path), 2
        time_column = params.time_column or next((c for c in TIME_COLUMN_CANDIDATES if c in frame.columns), None)
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
        if time_column is None or time_column not in frame.columns or missing:
            hint = ""
            if frame.columns and frame.columns[0].isdigit():
                hint = " (the first line holds numbers: a file without a header? Binance klines need layout: binance_klines)"
            raise DataQualityError(
                f"{path}: expected a time column ({', '.join(TIME_COLUMN_CANDIDATES)}) and open, high, low, close, "
                f"volume; found {', '.join(frame.columns)}{hint}"
            )
        ts_event, ts_recv = _bar_times(frame[time_column], params, path)
    columns = {
        "ts_event": ts_event,
        "ts_recv": ts_recv,
        "instrument": np.full(frame.height, instrument_index, dtype=np.int32),
    }
    for name in BAR_OUTPUTS:
        columns[name] = _floats(frame, name)
    check_bars(columns, path, first_line=first_line)
    if params.adjust != "none":
        events = {name: _floats(frame, name) if name in frame.columns else None for name in ("split", "dividend", "adj_close")}
        dates = None if params.layout == "binance_klines" else frame[time_column].cast(pl.String).to_list()
        columns = adjust_bars(columns, events, params.adjust, path, first_line, dates)
    return columns


def _floats(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy().astype(np.float64)


def _read_named(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_csv(path, infer_schema_length=10_000)
    except pl.exceptions.PolarsError as error:
        raise DataQualityError(f"{path}: cannot parse as CSV: {error}") from error
    names = [c.strip().lower() for c in frame.columns]
    names = [_ALIASES.get(n, n) for n in names]
    if len(set(names)) != len(names):
        raise DataQualityError(f"{path}: columns repeat once case and spelling are ignored: {', '.join(frame.columns)}")
    return frame.rename(dict(zip(frame.columns, names)))


def _read_klines(path: Path) -> tuple[pl.DataFrame, int]:
    """The kline rows and the file line of the first one (2 when a header line is skipped)."""
    try:
        frame = pl.read_csv(path, has_header=False, infer_schema=False)
    except pl.exceptions.PolarsError as error:
        raise DataQualityError(f"{path}: cannot parse as CSV: {error}") from error
    if frame.width != len(KLINE_COLUMNS):
        raise DataQualityError(f"{path}: a Binance kline file has {len(KLINE_COLUMNS)} columns "
                               f"({', '.join(KLINE_COLUMNS)}); this one has {frame.width}")
    frame = frame.rename(dict(zip(frame.columns, KLINE_COLUMNS)))
    first_line = 1
    if frame.height and (frame["open_time"][0] or "").strip().lower() == "open_time":
        frame, first_line = frame.slice(1), 2
    return frame, first_line


def _kline_times(frame: pl.DataFrame, params: BarsCsvParams, path: Path, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """(ts_event, ts_recv) in ns: the open time, and the close time + 1 unit (when the bar is complete)."""
    per_unit = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[params.epoch_unit]
    times = []
    for name in ("open_time", "close_time"):
        raw = frame[name]
        value = raw.str.strip_chars().str.to_integer(strict=False)
        bad = np.flatnonzero(value.is_null().to_numpy())
        if len(bad):
            shown = ", ".join(f"line {first_line + int(r)} ({raw[int(r)]!r})" for r in bad[:5])
            raise DataQualityError(f"{path}: {len(bad)} {name} value(s) are not integer epochs: {shown}")
        times.append(value.to_numpy().astype(np.int64))
    return times[0] * per_unit, (times[1] + 1) * per_unit


def _bar_times(times: pl.Series, params: BarsCsvParams, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (ts_event, ts_recv) in ns UTC: when the bar opened and when it became known (its close)."""
    zone = params.timezone
    if times.dtype == pl.String and times.str.len_chars().max() == 10:
        dates = times.str.to_date("%Y-%m-%d", strict=False)
        _reject_nulls(dates, times, path)
        opened = _local_to_utc_ns(dates, params.session_open, zone)
        closed = _local_to_utc_ns(dates, params.session_close, zone)
        return opened, closed
    if times.dtype.is_numeric():
        stamps = pl.from_epoch(times.cast(pl.Int64), time_unit=params.epoch_unit).dt.replace_time_zone("UTC")
    else:
        stamps = times.str.to_datetime(strict=False, time_unit="ns")
        _reject_nulls(stamps, times, path)
        if stamps.dtype.time_zone is None:
            stamps = stamps.dt.replace_time_zone(zone, ambiguous="raise", non_existent="raise")
    ns = stamps.dt.convert_time_zone("UTC").dt.cast_time_unit("ns").cast(pl.Int64).to_numpy()
    length = duration_ns(params.bar_duration)
    if params.timestamp_is == "open":
        return ns, ns + length
    return ns - length, ns


def _local_to_utc_ns(dates: pl.Series, clock: str, zone: str) -> np.ndarray:
    """Dates at a local wall-clock time in ``zone`` → ns UTC (DST-aware: 16:00 New York is 21:00 or 20:00 UTC)."""
    time_of_day = dt.time.fromisoformat(clock)
    offset_ns = ((time_of_day.hour * 60 + time_of_day.minute) * 60 + time_of_day.second) * 1_000_000_000
    local = (dates.cast(pl.Datetime("ns")).cast(pl.Int64) + offset_ns).cast(pl.Datetime("ns"))
    aware = local.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="raise")
    return aware.dt.convert_time_zone("UTC").dt.cast_time_unit("ns").cast(pl.Int64).to_numpy()


def _reject_nulls(parsed: pl.Series, raw: pl.Series, path: Path) -> None:
    bad = np.flatnonzero(parsed.is_null().to_numpy() & raw.is_not_null().to_numpy() | raw.is_null().to_numpy())
    if len(bad):
        shown = ", ".join(f"line {int(r) + 2} ({raw[int(r)]!r})" for r in bad[:5])
        raise DataQualityError(f"{path}: {len(bad)} unparseable timestamp(s): {shown}")
