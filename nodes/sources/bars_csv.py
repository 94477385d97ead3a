"""Bars from CSV files (date or timestamp, open, high, low, close, volume), one file per instrument."""

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

TIME_COLUMN_CANDIDATES = ("date", "timestamp", "timestamp_utc", "datetime", "time")
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
    ``bar_duration``; naive timestamps are read in ``timezone``, epoch numbers in ``epoch_unit``. Extra columns
    (dividends, splits) are ignored here. A row with a missing price, time going backwards or a bar known
    before it began rejects the file with the line numbers.

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
    try:
        frame = pl.read_csv(path, infer_schema_length=10_000)
    except pl.exceptions.PolarsError as error:
        raise DataQualityError(f"{path}: cannot parse as CSV: {error}") from error
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    time_column = params.time_column or next((c for c in TIME_COLUMN_CANDIDATES if c in frame.columns), None)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
    if time_column is None or time_column not in frame.columns or missing:
        raise DataQualityError(
            f"{path}: expected a time column ({', '.join(TIME_COLUMN_CANDIDATES)}) and open, high, low, close, "
            f"volume; found {', '.join(frame.columns)}"
        )
    ts_event, ts_recv = _bar_times(frame[time_column], params, path)
    columns = {
        "ts_event": ts_event,
        "ts_recv": ts_recv,
        "instrument": np.full(frame.height, instrument_index, dtype=np.int32),
    }
    for name in BAR_OUTPUTS:
        columns[name] = frame[name].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy().astype(np.float64)
    check_bars(columns, path, first_line=2)
    return columns


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
