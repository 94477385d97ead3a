"""Session and calendar handling: resample bars to coarser bars in an exchange's time zone, DST-safe, or 24/7."""

import datetime as dt
import re
from typing import Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from nodes.contract import TABLE, OpParams, TableOp
from nodes.errors import DataQualityError, SpecError
from nodes.research._table import by_instrument, instrument_order, require_columns
from nodes.research.intraday_profile import check_zone

_INTRADAY = re.compile(r"^(\d+)(s|m|h)$")
_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
NS_PER_DAY = 86_400_000_000_000


def intraday_ns(every: str) -> int | None:
    """The length of an intraday bar (``30s``, ``5m``, ``1h``) in ns; None for ``1d`` and ``1w``."""
    match = _INTRADAY.match(every)
    return int(match[1]) * _NS[match[2]] if match else None


def _clock_ns(text: str) -> int:
    clock = dt.time.fromisoformat(text)
    return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000_000 + clock.microsecond * 1000


class ResampleParams(OpParams):
    every: str = Field(
        description="the new bar: an intraday length (30s, 5m, 1h: bins from the session open or day start), "
        "1d (one bar per session or day) or 1w (Monday to Friday sessions, or Monday to Monday in 24/7)"
    )
    timezone: str = Field(description="IANA zone of the session hours and day boundaries, e.g. America/New_York")
    hours: Literal["session", "24/7"] = Field(
        "session", description="session: exchange hours session_open..session_close; 24/7: days from day_start"
    )
    session_open: str = Field("09:30", description="local time the session opens (session hours)")
    session_close: str = Field(
        "16:00", description="local time the session closes; at or before session_open: it closes the next day "
        "(CME Globex 17:00 → 16:00) and the session belongs to the day it closes"
    )
    day_start: str = Field("00:00", description="local time a day starts (24/7 hours)")
    outside_session: Literal["drop", "error"] = Field(
        "drop", description="what a bar opening outside the session does: drop (pre/post-market) or error"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str) -> str:
        if value in ("1d", "1w"):
            return value
        ns = intraday_ns(value)
        if ns is None or ns == 0:
            raise ValueError(f"every {value!r} is not 30s, 5m, 1h (any positive count), 1d or 1w")
        if ns > NS_PER_DAY:
            raise ValueError(f"every {value!r} is longer than a day; use 1d or 1w")
        return value

    @field_validator("session_open", "session_close", "day_start")
    @classmethod
    def _clock(cls, value: str) -> str:
        dt.time.fromisoformat(value)
        return value

    @model_validator(mode="after")
    def _hours_match_their_fields(self):
        if self.hours == "24/7":
            stray = {"session_open", "session_close", "outside_session"} & self.model_fields_set
            if stray:
                raise ValueError(f"24/7 hours have no session: drop {', '.join(sorted(stray))} (days start at day_start)")
        elif "day_start" in self.model_fields_set:
            raise ValueError("day_start is for 24/7 hours; a session starts at session_open")
        return self


class Resample(TableOp):
    """Resample bars into coarser bars on an exchange's session hours or a 24/7 day, DST-safe; label each at its close.

    Each input bar goes to the output bin holding its open (``ts_event``) read on the wall clock of
    ``timezone``:

    - ``hours: session``: a session runs from ``session_open`` to ``session_close`` local time of its day. When
      the close is at or before the open the session spans midnight and belongs to the day it closes (CME Globex
      17:00–16:00 Chicago: Sunday 17:00 opens Monday's session). Bars opening outside every session are dropped
      or rejected (``outside_session``).
    - ``hours: 24/7``: a day runs from ``day_start`` local time to the next day's ``day_start`` (crypto; a local
      day with a DST change lasts 23 or 25 hours).

    Bins (``every``): an intraday length cuts each session or day into bins of that elapsed time from its open,
    the last one ending at the close; ``1d`` is the whole session or day; ``1w`` is Monday's session open to
    Friday's session close (in 24/7, Monday's day start to the next Monday's). Open and close instants are local
    wall-clock times converted to UTC on their own date, so 09:30–16:00 New York is 14:30–21:00 UTC before the
    US DST change and 13:30–20:00 UTC after it. A local time that falls twice (the hour DST ends) is taken at its
    first occurrence; one that does not exist (inside the hour DST starts) raises ``SpecError``.

    Output, one bar per instrument and non-empty bin, in ``ts_recv`` order: ``ts_event`` = bin open,
    ``ts_recv`` = bin close (a bar is labelled and known at its close, even when the data stops earlier),
    ``instrument``, ``open`` (first), ``high`` (max), ``low`` (min), ``close`` (last), ``volume`` (sum) and
    ``input_bars`` (how many bars it holds). A bin holds only bars that close by its close, so no output bar
    carries a price from after its ``ts_recv``.

    No holiday calendar is consulted: a session without bars has no output bar, and an early close still labels
    the bar at the regular close (later than the market closed, never earlier).

    Raises:
        GraphError: the input table lacks one of open, high, low, close, volume.
        DataQualityError: an input bar ends after the close of its new bar (the target is not coarser than the
            input, or not aligned to it); a bar opens outside the session with ``outside_session: error``; a
            session-hours week has a bar in a Saturday or Sunday session.
        SpecError: a session open or close (or day start) falls in a DST gap on a day with bars.

    Example::

        weekly:
          op: research.resample
          in: bars
          with: {every: 1w, timezone: America/New_York, session_open: "09:30", session_close: "16:00"}
    """

    name = "research.resample"
    Params = ResampleParams
    inputs = {"bars": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: ResampleParams, tables: dict) -> dict:
        bars = tables["bars"]
        require_columns(cls.name, bars, ["ts_event", "ts_recv", "instrument", "open", "high", "low", "close", "volume"])
        names = instrument_order(bars)
        frame = by_instrument(bars).with_columns(_day_of(params))
        frame = _keep_sessions(frame, params)
        frame = frame.with_columns(_bounds(frame, params)).with_columns(_bins(params))
        _check_inside(frame)
        out = (
            frame.sort("ts_event", maintain_order=True)
            .group_by("instrument", "_bin_open", "_bin_close", maintain_order=True)
            .agg(
                pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
                pl.col("volume").sum(), pl.len().cast(pl.Int64).alias("input_bars"),
            )
            .sort(["_bin_close", pl.col("instrument").cast(pl.Enum(names))], maintain_order=True)
            .select(
                pl.col("_bin_open").alias("ts_event"), pl.col("_bin_close").alias("ts_recv"), "instrument",
                "open", "high", "low", "close", "volume", "input_bars",
            )
        )
        return {"out": out}


def _local(column: str, zone: str) -> pl.Expr:
    """ns UTC → naive local wall-clock datetime in ``zone``."""
    return (
        pl.from_epoch(column, time_unit="ns").dt.replace_time_zone("UTC")
        .dt.convert_time_zone(zone).dt.replace_time_zone(None)
    )


def _day_of(params: ResampleParams) -> list[pl.Expr]:
    """The session (or 24/7 day) each bar opens in: its date ``_day`` and whether it is in one (``_inside``).

    Session days are named by the date they close on; 24/7 days by the date they start on.
    """
    local = _local("ts_event", params.timezone)
    date = local.dt.date()
    time_of_day = (local - local.dt.truncate("1d")).dt.total_nanoseconds()
    one_day = pl.duration(days=1)
    if params.hours == "24/7":
        start = _clock_ns(params.day_start)
        day = pl.when(time_of_day >= start).then(date).otherwise(date - one_day)
        return [day.alias("_day"), pl.lit(True).alias("_inside")]
    opens, closes = _clock_ns(params.session_open), _clock_ns(params.session_close)
    if closes > opens:
        return [date.alias("_day"), ((time_of_day >= opens) & (time_of_day < closes)).alias("_inside")]
    # the session spans midnight: from the open it belongs to tomorrow's session, before the close to today's
    day = pl.when(time_of_day >= opens).then(date + one_day).otherwise(date)
    return [day.alias("_day"), ((time_of_day >= opens) | (time_of_day < closes)).alias("_inside")]


def _keep_sessions(frame: pl.DataFrame, params: ResampleParams) -> pl.DataFrame:
    outside = frame.filter(~pl.col("_inside"))
    if outside.height and params.outside_session == "error":
        first = outside.row(0, named=True)
        raise DataQualityError(
            f"research.resample: {outside.height} bar(s) open outside the session {params.session_open}–"
            f"{params.session_close} {params.timezone}; first: instrument {first['instrument']!r} at ts_event "
            f"{first['ts_event']} (set outside_session: drop to leave them out)"
        )
    return frame.filter(pl.col("_inside"))


def _instant(day: pl.Expr, clock: str, zone: str, day_offset: int = 0) -> pl.Expr:
    """Local wall-clock ``clock`` on ``day`` (+ ``day_offset`` days) in ``zone`` → ns UTC (null if it does not exist)."""
    naive = (day + pl.duration(days=day_offset)).cast(pl.Datetime("ns")) + pl.duration(nanoseconds=_clock_ns(clock))
    aware = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    return aware.dt.convert_time_zone("UTC").dt.timestamp("ns")


def _bounds(frame: pl.DataFrame, params: ResampleParams) -> list[pl.Expr]:
    """Open and close instants (ns UTC) of each bar's session or day, and of its week for ``1w``."""
    zone, day = params.timezone, pl.col("_day")
    if params.hours == "24/7":
        opens, closes = params.day_start, params.day_start
        open_offset, close_offset = 0, 1
    else:
        opens, closes = params.session_open, params.session_close
        overnight = _clock_ns(closes) <= _clock_ns(opens)
        open_offset, close_offset = (-1 if overnight else 0), 0
    if params.every == "1w":
        monday = day - pl.duration(days=day.dt.weekday() - 1)
        if params.hours == "24/7":
            first, last, last_offset = monday, monday, 7
        else:
            weekend = frame.filter(pl.col("_day").dt.weekday() > 5)
            if weekend.height:
                first_row = weekend.row(0, named=True)
                raise DataQualityError(
                    f"research.resample: {weekend.height} bar(s) in Saturday or Sunday sessions, which a Monday–Friday "
                    f"week does not hold; first: instrument {first_row['instrument']!r} at ts_event "
                    f"{first_row['ts_event']} (use hours: 24/7 for markets that trade every day)"
                )
            first, last, last_offset = monday, monday + pl.duration(days=4), close_offset
        return [
            _instant(first, opens, zone, open_offset).alias("_open"),
            _instant(last, closes, zone, last_offset).alias("_close"),
        ]
    return [
        _instant(day, opens, zone, open_offset).alias("_open"),
        _instant(day, closes, zone, close_offset).alias("_close"),
    ]


def _bins(params: ResampleParams) -> list[pl.Expr]:
    length = intraday_ns(params.every)
    if length is None:
        return [pl.col("_open").alias("_bin_open"), pl.col("_close").alias("_bin_close")]
    # elapsed time from the session's own open instant: every bin lasts `every` except the last, cut at the close
    start = pl.col("_open") + (pl.col("ts_event") - pl.col("_open")) // length * length
    return [start.alias("_bin_open"), pl.min_horizontal(start + length, pl.col("_close")).alias("_bin_close")]


def _check_inside(frame: pl.DataFrame) -> None:
    missing = frame.filter(pl.col("_open").is_null() | pl.col("_close").is_null())
    if missing.height:
        first = missing.row(0, named=True)
        raise SpecError.at(
            None,
            f"research.resample: a session open or close falls in a DST gap (a local time that does not exist) on "
            f"{first['_day']}; choose session times outside the hour the clocks skip",
        )
    late = frame.filter(pl.col("ts_recv") > pl.col("_bin_close"))
    if late.height:
        first = late.row(0, named=True)
        raise DataQualityError(
            f"research.resample: {late.height} input bar(s) end after the close of their new bar; first: instrument "
            f"{first['instrument']!r}, bar {first['ts_event']}–{first['ts_recv']} in bin "
            f"{first['_bin_open']}–{first['_bin_close']} (the new bar must be coarser than the input and aligned to it)"
        )
