"""Runs on a time window: nothing after the window reaches a node, warm-up warms indicators, the account opens
flat at the window start, and a window without bounds is the plain run."""

import math

import numpy as np
import polars as pl
import pytest

from pipelines.run import run_spec
from pipelines.time_window import TimeWindow, account_nodes, event_times, to_ns
from pipelines.spec import load_spec
from tests.support import SAMPLES, SMA_CROSS, assert_frames_identical, assert_stats_identical, write_spec


@pytest.fixture(scope="module")
def times():
    return event_times(load_spec(SMA_CROSS))


def test_unbounded_window_is_the_plain_run():
    plain = run_spec(SMA_CROSS, write=False)
    windowed = run_spec(SMA_CROSS, write=False, window=TimeWindow())
    assert_frames_identical(plain.backtest.trades, windowed.backtest.trades, "trades")
    assert_frames_identical(plain.backtest.equity, windowed.backtest.equity, "equity")
    assert_stats_identical(plain.backtest.stats, windowed.backtest.stats, "stats")


def test_window_keeps_only_its_events_half_open(times):
    start, end = int(times[300]), int(times[400])
    output = run_spec(SMA_CROSS, write=False, window=TimeWindow(start, end), record=["fast"])
    ts = output.replay.recorded["sim"]["ts_recv"]
    assert output.replay.events == 100 and ts.min() == start and ts.max() == int(times[399])
    assert output.backtest.stats["Start_ns"] == start


def test_warmup_fills_indicators_and_the_account_opens_flat_at_the_window_start(times):
    start, end, warmup = int(times[300]), int(times[400]), int(times[300 - 60])
    full = run_spec(SMA_CROSS, write=False, record=["fast", "slow"])
    warm = run_spec(SMA_CROSS, write=False, record=["fast", "slow"], window=TimeWindow(start, end, warmup))
    cold = run_spec(SMA_CROSS, write=False, record=["fast", "slow"], window=TimeWindow(start, end))
    assert warm.replay.warmup_events == 60 and warm.replay.events == 100

    # indicators: warm from the first event of the window, equal to the uninterrupted run's values there
    in_window = full.replay.recorded["slow"].filter(pl.col("ts_recv") >= start).head(100)
    np.testing.assert_allclose(warm.replay.recorded["slow"]["out"].to_numpy(), in_window["out"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(warm.replay.recorded["fast"]["out"].to_numpy(),
                               full.replay.recorded["fast"].filter(pl.col("ts_recv") >= start).head(100)["out"].to_numpy(),
                               rtol=1e-12)
    # without warm-up the slow average (30 bars) is still empty when the window opens
    assert math.isnan(cold.replay.recorded["slow"]["out"][0]) and not math.isnan(warm.replay.recorded["slow"]["out"][0])

    # the account: starting cash, flat, no trade entered before the window
    first = warm.backtest.equity.row(0, named=True)
    assert first["equity"] == first["cash"] == 10_000.0 and not first["exposed"]
    assert warm.backtest.trades.height > 0
    assert warm.backtest.trades["entry_ts"].min() >= start
    assert warm.backtest.trades["exit_ts"].max() < end


def test_the_sizing_that_reads_the_account_is_reset_with_it():
    spec = load_spec(SMA_CROSS)
    assert account_nodes(spec.graph) == ["target", "sim"]


def test_many_sources_cut_at_chunk_and_window_bounds_match_the_whole_run(tmp_path, times):
    # two sources, tiny chunks: the window's bounds fall inside merged batches and split them
    nodes = {
        "a": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                "timezone": "America/New_York"}},
        "m": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "MSFT.csv.gz"), "instrument": "MSFT",
                                                "timezone": "America/New_York"}},
        "sa": {"op": "indicator.sma", "in": "a.close", "with": {"window": 10}},
        "sm": {"op": "indicator.ema", "in": "m.close", "with": {"window": 10}},
    }
    path = write_spec(tmp_path, "two", nodes, defaults={"chunk_events": 37})
    start, end = int(times[123]), int(times[456])
    whole = run_spec(path, write=False)
    # warm-up from before the first bar: every node has seen the whole history, so values match exactly
    windowed = run_spec(path, write=False, window=TimeWindow(start, end, warmup_start_ns=0))
    for node in ("sa", "sm"):
        expected = whole.replay.recorded[node].filter((pl.col("ts_recv") >= start) & (pl.col("ts_recv") < end))
        assert_frames_identical(windowed.replay.recorded[node], expected, node)
    assert windowed.replay.events == 2 * (456 - 123)


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="end_ns"):
        TimeWindow(10, 10)
    with pytest.raises(ValueError, match="warmup_start_ns"):
        TimeWindow(10, 20, 11)
    with pytest.raises(ValueError, match="needs a start_ns"):
        TimeWindow(None, 20, 5)
    with pytest.raises(ValueError, match="ISO 8601"):
        to_ns("next tuesday")


def test_to_ns_reads_dates_as_utc():
    assert to_ns("1970-01-02") == 86_400 * 10**9
    assert to_ns("1970-01-01T00:00:01Z") == to_ns("1970-01-01T01:00:01+01:00") == 10**9
    assert to_ns(5) == 5
