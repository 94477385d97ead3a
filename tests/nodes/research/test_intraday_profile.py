"""research.intraday_profile: buckets on the local wall clock (DST-safe), statistics by hand, 6E futures and
USD/JPY quotes from ../shared."""

import math

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from nodes.errors import GraphError
from nodes.research.intraday_profile import IntradayProfile, IntradayProfileParams
from tests.nodes.research.support import NS_PER_MINUTE, read_bars, shared_file, utc_ns


def run(table: pl.DataFrame, **params) -> pl.DataFrame:
    return IntradayProfile.run(IntradayProfileParams(**params), {"table": table})["out"]


def bars_at(opens: list[str], closes: list[float], volumes: list[float]) -> pl.DataFrame:
    ts = [utc_ns(t) for t in opens]
    return pl.DataFrame({"ts_event": ts, "ts_recv": [t + NS_PER_MINUTE for t in ts], "instrument": ["X"] * len(ts),
                         "close": closes, "volume": volumes})


def test_buckets_follow_the_local_clock_across_dst():
    # 09:35 New York is 14:35 UTC in January (EST) and 13:35 UTC in July (EDT): one bucket, "09:30"
    table = bars_at(["2024-01-10 14:35", "2024-01-10 14:36", "2024-07-10 13:35", "2024-07-10 13:36", "2024-07-10 19:59"],
                    [100.0, 101.0, 200.0, 204.0, 210.0], [10.0, 20.0, 30.0, 40.0, 50.0])
    out = run(table, timezone="America/New_York", bucket_minutes=30)
    assert out["bucket"].to_list() == ["09:30", "15:30"] and out["bucket_minute"].to_list() == [570, 930]
    first = out.row(0, named=True)
    assert (first["observations"], first["days"]) == (4, 2)
    assert first["volume_mean"] == 25.0 and first["volume_per_day"] == 50.0 and first["volume_share"] == 100 / 150
    # returns: 100 → 101 and 200 → 204 (one minute apart); 101 → 200 spans six months, left out
    r1, r2 = math.log(1.01), math.log(1.02)
    assert first["return_std"] == pytest.approx(abs(r1 - r2) / math.sqrt(2), rel=1e-12)
    # one return a day: realized variances r1² and r2², averaged over the two days
    assert first["realized_vol"] == pytest.approx(math.sqrt((r1**2 + r2**2) / 2), rel=1e-14)
    # 204 at 13:36 → 210 at 19:59 is more than max_gap_minutes apart: no return in the 15:30 bucket
    last = out.row(1, named=True)
    assert math.isnan(last["return_std"]) and math.isnan(last["realized_vol"])
    assert last["spread_mean"] is None and last["spread_bps_mean"] is None  # no bid/ask columns


def test_spread_and_mid_price_by_hand():
    ts = [utc_ns("2024-01-10 14:00") + i * 1_000_000_000 for i in range(4)]
    quotes = pl.DataFrame({"ts_event": ts, "ts_recv": ts, "instrument": ["Q"] * 4,
                           "bid": [99.0, 99.5, 0.0, 100.0], "ask": [101.0, 100.5, 101.0, 100.2]})
    out = run(quotes, timezone="UTC", bucket_minutes=60, price_column="mid")
    row = out.row(0, named=True)
    # the third quote has no bid (0): left out of the spread, and its mid (50.5) is a price like any other
    assert row["spread_mean"] == pytest.approx((2.0 + 1.0 + 0.2) / 3, rel=1e-14)
    assert row["spread_bps_mean"] == pytest.approx(1e4 * (2 / 100 + 1 / 100 + 0.2 / 100.1) / 3, rel=1e-14)
    assert row["volume_mean"] is None and row["volume_share"] is None  # no volume column
    with pytest.raises(GraphError, match="no column\\(s\\) close.*for a quote table use price_column: mid"):
        run(quotes, timezone="UTC")


def test_params_are_checked():
    with pytest.raises(ValidationError, match="does not divide a day"):
        IntradayProfileParams(timezone="UTC", bucket_minutes=7)
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        IntradayProfileParams(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="must differ"):
        IntradayProfileParams(timezone="UTC", bid_column="px", ask_column="px")


# -- real data from ../shared -----------------------------------------------------------------------------------


def six_e() -> pl.DataFrame:
    # the file stamps each one-minute bar with its close (the first bar of a session is 23:01 UTC = 17:01 Chicago)
    return read_bars(shared_file("bars/6EH4.XCME_1min_bars_20240101_20240131.csv.gz"), instrument="6E",
                     timezone="UTC", bar_duration="1m", timestamp_is="close")


def test_6e_volume_and_volatility_peak_in_european_and_us_hours():
    out = run(six_e(), timezone="UTC", bucket_minutes=60)
    by_hour = {row["bucket_minute"] // 60: row for row in out.iter_rows(named=True)}
    # CME's daily maintenance break, 16:00-17:00 Chicago = 22:00-23:00 UTC in January: no bars at all
    assert 22 not in by_hour and len(by_hour) == 23
    peak = max(by_hour, key=lambda h: by_hour[h]["volume_mean"])
    assert 13 <= peak <= 16, f"volume peaks at {peak}:00 UTC, outside the US/EU overlap"
    asia = np.mean([by_hour[h]["volume_mean"] for h in range(0, 6)])
    europe = np.mean([by_hour[h]["volume_mean"] for h in range(7, 12)])
    overlap = np.mean([by_hour[h]["volume_mean"] for h in range(13, 17)])
    assert overlap > 2 * europe > 4 * asia
    assert by_hour[8]["volume_mean"] > 3 * by_hour[5]["volume_mean"]  # the London open
    vol_peak = max(by_hour, key=lambda h: by_hour[h]["realized_vol"])
    assert 13 <= vol_peak <= 16
    assert sum(row["volume_share"] for row in by_hour.values()) == pytest.approx(1.0, rel=1e-12)


def test_6e_profile_in_chicago_time_has_the_break_at_16():
    out = run(six_e(), timezone="America/Chicago", bucket_minutes=30)
    assert "16:00" not in out["bucket"].to_list() and "16:30" not in out["bucket"].to_list()
    busiest = out.sort("volume_mean", descending=True)["bucket"][0]
    assert "07:00" <= busiest <= "10:00", busiest  # the US morning (08:30 Chicago data releases)


def test_usdjpy_spread_profile_matches_numpy():
    raw = pl.read_csv(shared_file("ticks/usdjpy-ticks.csv"))
    ts = raw["timestamp"].str.to_datetime(time_unit="ns").dt.convert_time_zone("UTC").dt.timestamp("ns")
    quotes = raw.with_columns(ts_event=ts, ts_recv=ts, instrument=pl.lit("USDJPY")).select(
        "ts_event", "ts_recv", "instrument", "bid", "ask")
    out = run(quotes, timezone="UTC", bucket_minutes=5, price_column="mid")
    assert out["observations"].sum() == quotes.height == 1000
    bid, ask = quotes["bid"].to_numpy(), quotes["ask"].to_numpy()
    minute = (ts.to_numpy() // NS_PER_MINUTE) % 1440 // 5 * 5
    for row in out.iter_rows(named=True):
        mine = minute == row["bucket_minute"]
        assert row["spread_mean"] == pytest.approx(np.mean(ask[mine] - bid[mine]), rel=1e-12)
        mid = (ask[mine] + bid[mine]) / 2
        assert row["spread_bps_mean"] == pytest.approx(np.mean(1e4 * (ask[mine] - bid[mine]) / mid), rel=1e-12)
    # quoted USD/JPY spreads of a retail feed: a few pips, ~1-10 bp
    assert 0.5 < out["spread_bps_mean"].mean() < 20
