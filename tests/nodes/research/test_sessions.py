"""research.resample: session bars on the right UTC times across DST changes, overnight sessions, 24/7 days,
no bar holding a price from after its close, and the errors."""

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from nodes.errors import DataQualityError, GraphError, SpecError
from nodes.research.sessions import Resample, ResampleParams
from pipelines.run import run_spec
from tests.nodes.research.support import NS_PER_MINUTE, minute_bars, read_bars, sample_bars, shared_file, utc_ns
from tests.support import write_spec

NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR


def run(bars: pl.DataFrame, **params) -> pl.DataFrame:
    return Resample.run(ResampleParams(**params), {"bars": bars})["out"]


def local_minutes(zone: str, day: str, start: str, end: str) -> list[int]:
    """UTC ns of every minute from ``start`` to ``end`` (local wall clock, end excluded) on ``day`` in ``zone``,
    computed with zoneinfo, independently of the op."""
    tz = ZoneInfo(zone)
    first = dt.datetime.fromisoformat(f"{day}T{start}").replace(tzinfo=tz)
    last = dt.datetime.fromisoformat(f"{day}T{end}").replace(tzinfo=tz)
    if last <= first:
        last += dt.timedelta(days=1)
    count = int((last.timestamp() - first.timestamp()) // 60)
    return [int(first.timestamp()) * 1_000_000_000 + i * NS_PER_MINUTE for i in range(count)]


def utc(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns"))[:16].replace("T", " ")


def spans(out: pl.DataFrame) -> list[tuple[str, str]]:
    return [(utc(a), utc(b)) for a, b in zip(out["ts_event"], out["ts_recv"])]


# -- the US DST change: session bars land on the right UTC times --------------------------------------------------


def us_week_around_dst() -> pl.DataFrame:
    # Friday 8 March 2024 (EST, UTC−5) and Monday 11 March (EDT, UTC−4; clocks moved on Sunday 10 March):
    # minute bars 08:00–17:00 New York, so pre- and post-market bars must be left out of the session
    opens = local_minutes("America/New_York", "2024-03-08", "08:00", "17:00")
    opens += local_minutes("America/New_York", "2024-03-11", "08:00", "17:00")
    return minute_bars("SPY", opens, seed=1)


def test_daily_session_bars_across_the_us_dst_change():
    bars = us_week_around_dst()
    out = run(bars, every="1d", timezone="America/New_York")
    assert spans(out) == [("2024-03-08 14:30", "2024-03-08 21:00"), ("2024-03-11 13:30", "2024-03-11 20:00")]
    assert out["input_bars"].to_list() == [390, 390]
    for row, (start, stop) in zip(out.iter_rows(named=True), [("14:30", "21:00"), ("13:30", "20:00")]):
        day = utc(row["ts_event"])[:10]
        inside = bars.filter(pl.col("ts_event").is_between(utc_ns(f"{day} {start}"), utc_ns(f"{day} {stop}"), closed="left"))
        assert row["open"] == inside["open"][0] and row["close"] == inside["close"][-1]
        assert row["high"] == inside["high"].max() and row["low"] == inside["low"].min()
        assert row["volume"] == inside["volume"].sum()


def test_hourly_bins_start_at_the_open_and_the_last_ends_at_the_close():
    out = run(us_week_around_dst(), every="1h", timezone="America/New_York")
    friday = [(f"2024-03-08 {h:02d}:30", f"2024-03-08 {h + 1:02d}:30") for h in range(14, 20)]
    monday = [(f"2024-03-11 {h:02d}:30", f"2024-03-11 {h + 1:02d}:30") for h in range(13, 19)]
    assert spans(out) == (friday + [("2024-03-08 20:30", "2024-03-08 21:00")]
                          + monday + [("2024-03-11 19:30", "2024-03-11 20:00")])
    assert out["input_bars"].to_list() == [60] * 6 + [30] + [60] * 6 + [30]


def test_weekly_bars_run_from_monday_open_to_friday_close_in_local_time():
    opens = []
    for day in ["2024-03-04", "2024-03-06", "2024-03-08", "2024-03-11", "2024-03-15"]:
        opens += local_minutes("America/New_York", day, "09:30", "16:00")[::30]
    out = run(minute_bars("SPY", opens, minutes=30), every="1w", timezone="America/New_York")
    assert spans(out) == [("2024-03-04 14:30", "2024-03-08 21:00"), ("2024-03-11 13:30", "2024-03-15 20:00")]
    assert out["input_bars"].to_list() == [39, 26]


@pytest.mark.parametrize("zone, days, opens_utc", [
    # Europe moves its clocks on the last Sunday of March (31 March 2024), three weeks after the US
    ("Europe/London", ["2024-03-29", "2024-04-02"], ["08:00", "07:00"]),
    # the US returns to standard time on 3 November 2024
    ("America/New_York", ["2024-11-01", "2024-11-04"], ["13:30", "14:30"]),
])
def test_session_open_in_utc_moves_with_the_local_clock(zone, days, opens_utc):
    clock_open, clock_close = ("08:00", "16:30") if zone == "Europe/London" else ("09:30", "16:00")
    opens = sum((local_minutes(zone, day, "07:00", "18:00") for day in days), [])
    out = run(minute_bars("X", opens), every="1d", timezone=zone, session_open=clock_open, session_close=clock_close)
    assert [utc(t) for t in out["ts_event"]] == [f"{d} {o}" for d, o in zip(days, opens_utc)]
    length = (dt.datetime.strptime(clock_close, "%H:%M") - dt.datetime.strptime(clock_open, "%H:%M")).seconds * 10**9
    assert (out["ts_recv"] - out["ts_event"]).to_list() == [length, length]


def test_an_overnight_session_belongs_to_the_day_it_closes():
    # CME Globex, 17:00–16:00 Chicago: Thursday 7 March 17:00 CST opens Friday's session; Sunday 10 March
    # 17:00 CDT (after the change) opens Monday's. Bars inside the 16:00–17:00 break are left out.
    opens = local_minutes("America/Chicago", "2024-03-07", "15:00", "16:00")  # Thursday's session, last hour
    opens += local_minutes("America/Chicago", "2024-03-07", "16:30", "16:00")  # break, then Friday's session
    opens += local_minutes("America/Chicago", "2024-03-10", "17:00", "16:00")  # Monday's session
    out = run(minute_bars("6E", opens), every="1d", timezone="America/Chicago", session_open="17:00",
              session_close="16:00")
    assert spans(out) == [("2024-03-06 23:00", "2024-03-07 22:00"), ("2024-03-07 23:00", "2024-03-08 22:00"),
                          ("2024-03-10 22:00", "2024-03-11 21:00")]
    assert out["input_bars"].to_list() == [60, 23 * 60, 23 * 60]


def test_24_7_days_last_23_or_25_hours_when_the_local_clock_changes():
    start, stop = utc_ns("2024-11-02 04:00"), utc_ns("2024-11-05 05:00")  # New York midnights, EDT then EST
    bars = minute_bars("BTC", np.arange(start, stop, NS_PER_MINUTE))
    out = run(bars, every="1d", timezone="America/New_York", hours="24/7")
    assert spans(out) == [("2024-11-02 04:00", "2024-11-03 04:00"), ("2024-11-03 04:00", "2024-11-04 05:00"),
                          ("2024-11-04 05:00", "2024-11-05 05:00")]
    assert out["input_bars"].to_list() == [1440, 1500, 1440]
    hourly = run(bars, every="1h", timezone="America/New_York", hours="24/7")
    assert hourly.height == 24 + 25 + 24 and set(hourly["ts_recv"] - hourly["ts_event"]) == {NS_PER_HOUR}
    spring = minute_bars("BTC", np.arange(utc_ns("2024-03-10 05:00"), utc_ns("2024-03-11 04:00"), NS_PER_MINUTE))
    out = run(spring, every="1d", timezone="America/New_York", hours="24/7")
    assert spans(out) == [("2024-03-10 05:00", "2024-03-11 04:00")] and out["input_bars"].item() == 23 * 60


def test_24_7_day_start_and_weeks():
    bars = minute_bars("BTC", np.arange(utc_ns("2024-01-05 00:00"), utc_ns("2024-01-16 00:00"), 15 * NS_PER_MINUTE), minutes=15)
    # an FX-style day from 17:00 New York (22:00 UTC in January)
    out = run(bars, every="1d", timezone="America/New_York", hours="24/7", day_start="17:00")
    assert utc(out["ts_event"][1]) == "2024-01-05 22:00" and utc(out["ts_recv"][1]) == "2024-01-06 22:00"
    weeks = run(bars, every="1w", timezone="UTC", hours="24/7")
    assert spans(weeks) == [("2024-01-01 00:00", "2024-01-08 00:00"), ("2024-01-08 00:00", "2024-01-15 00:00"),
                            ("2024-01-15 00:00", "2024-01-22 00:00")]
    assert weeks["input_bars"].to_list() == [3 * 96, 7 * 96, 96]


# -- no look-ahead ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("every", ["1h", "1d", "1w"])
def test_a_bar_only_holds_input_that_closed_by_its_close(every):
    bars = pl.concat([us_week_around_dst(), minute_bars("QQQ", us_week_around_dst()["ts_event"], seed=2)])
    bars = bars.sort("ts_recv", maintain_order=True)
    out = run(bars, every=every, timezone="America/New_York")
    for cut in (utc_ns("2024-03-08 17:00"), utc_ns("2024-03-11 15:31"), utc_ns("2024-03-11 20:00")):
        known = run(bars.filter(pl.col("ts_recv") <= cut), every=every, timezone="America/New_York")
        assert out.filter(pl.col("ts_recv") <= cut).equals(known.filter(pl.col("ts_recv") <= cut))
    assert out["ts_recv"].is_sorted()


# -- errors and params ----------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    with pytest.raises(DataQualityError, match="754 input bar\\(s\\) end after the close of their new bar"):
        run(sample_bars(["AAPL"]), every="1h", timezone="America/New_York")
    with pytest.raises(DataQualityError, match="150 bar\\(s\\) open outside the session 09:30–16:00"):
        run(us_week_around_dst().filter(pl.col("ts_event") < utc_ns("2024-03-09 00:00")), every="1d",
            timezone="America/New_York", outside_session="error")
    saturday = minute_bars("X", local_minutes("America/New_York", "2024-03-09", "10:00", "10:05"))
    with pytest.raises(DataQualityError, match="Saturday or Sunday sessions"):
        run(saturday, every="1w", timezone="America/New_York")
    gap_day = minute_bars("X", [utc_ns("2024-03-10 12:00")])
    with pytest.raises(SpecError, match="DST gap"):
        run(gap_day, every="1d", timezone="America/New_York", hours="24/7", day_start="02:30")


def test_params_are_checked():
    with pytest.raises(ValidationError, match="24/7 hours have no session: drop session_open"):
        ResampleParams(every="1d", timezone="UTC", hours="24/7", session_open="09:00")
    with pytest.raises(ValidationError, match="day_start is for 24/7 hours"):
        ResampleParams(every="1d", timezone="UTC", day_start="17:00")
    for every in ("2d", "1mo", "0m", "25h", "5"):
        with pytest.raises(ValidationError, match="every"):
            ResampleParams(every=every, timezone="UTC")
    with pytest.raises(ValidationError, match="unknown time zone"):
        ResampleParams(every="1d", timezone="EST5EDT7")


# -- real data from ../shared ---------------------------------------------------------------------------------


def test_24_7_daily_bars_on_btc_match_a_plain_utc_grouping():
    bars = read_bars(shared_file("bars/btc-perp-20211231-20220201_1m.csv"), instrument="BTC", timezone="UTC",
                     bar_duration="1m", timestamp_is="close")
    out = run(bars, every="1d", timezone="UTC", hours="24/7")
    day = bars["ts_event"].to_numpy() // NS_PER_DAY
    days, first = np.unique(day, return_index=True)
    last = np.r_[first[1:], len(day)] - 1
    assert out["ts_event"].to_list() == (days * NS_PER_DAY).tolist()
    assert out["ts_recv"].to_list() == ((days + 1) * NS_PER_DAY).tolist()
    assert out["open"].to_list() == bars["open"].to_numpy()[first].tolist()
    assert out["close"].to_list() == bars["close"].to_numpy()[last].tolist()
    assert out["high"].to_list() == np.maximum.reduceat(bars["high"].to_numpy(), first).tolist()
    assert out["low"].to_list() == np.minimum.reduceat(bars["low"].to_numpy(), first).tolist()
    assert out["volume"].to_numpy() == pytest.approx(np.add.reduceat(bars["volume"].to_numpy(), first), rel=1e-12)
    # every calendar day is there, weekends included: 2022-01-01 was a Saturday
    weekdays = {dt.datetime.fromtimestamp(t // 10**9, dt.timezone.utc).weekday() for t in out["ts_event"]}
    assert weekdays == set(range(7)) and out["input_bars"][1:-1].to_list() == [1440] * (out.height - 2)
    hourly = run(bars, every="1h", timezone="UTC", hours="24/7")
    assert hourly["input_bars"].sum() == bars.height and set(hourly["ts_recv"] - hourly["ts_event"]) == {NS_PER_HOUR}


def test_6e_globex_sessions_open_at_17_and_close_at_16_chicago():
    bars = read_bars(shared_file("bars/6EH4.XCME_1min_bars_20240101_20240131.csv.gz"), instrument="6E",
                     timezone="UTC", bar_duration="1m", timestamp_is="close")
    out = run(bars, every="1d", timezone="America/Chicago", session_open="17:00", session_close="16:00",
              outside_session="error")
    assert all(utc(t).endswith("23:00") for t in out["ts_event"]) and all(utc(t).endswith("22:00") for t in out["ts_recv"])
    assert set(out["ts_recv"] - out["ts_event"]) == {23 * NS_PER_HOUR}
    closes = [dt.datetime.fromtimestamp(t // 10**9, dt.timezone.utc) for t in out["ts_recv"]]
    assert {c.weekday() for c in closes} == set(range(5))  # Monday's session opened on Sunday evening
    assert out["input_bars"].sum() == bars.height and out["volume"].sum() == bars["volume"].sum()
    # the 22 trading days of January 2024 after New Year's Day, and the first hour of 1 February's session
    # (Wednesday 31 January 17:00-18:00 Chicago), labelled at that session's close
    assert out.height == 23 and out["input_bars"][-1] == 59 and utc(out["ts_recv"][-1]) == "2024-02-01 22:00"


# -- chaining table ops -----------------------------------------------------------------------------------------


# pipelines/plan.py records every producer of a table op, table ops included, so replay hands a downstream table
# op the (column-less) recording of an upstream table op instead of its "out" table. Strict: the fix flips it.
def test_resampled_bars_feed_another_table_op(tmp_path):
    from tests.nodes.research.support import SAMPLES

    spec = write_spec(tmp_path, "weekly_vol", {
        "bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                   "timezone": "America/New_York"}},
        "weekly": {"op": "research.resample", "in": "bars", "with": {"every": "1w", "timezone": "America/New_York"}},
        "vol": {"op": "research.volatility", "in": "weekly", "with": {"estimator": "yang_zhang", "bars_per_year": 52}},
    })
    out = run_spec(spec, write=False).replay.tables
    assert out["vol"]["out"]["bars"].item() == out["weekly"]["out"].height - 1
