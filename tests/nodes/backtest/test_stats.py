"""Backtest statistics: a hand-checked case, edge cases, and parity with backtesting.py 0.6 on real bars."""

import doctest
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nodes.backtest import stats as stats_module
from nodes.backtest.stats import DAY_NS, DURATION_KEYS, compute_stats, format_stats_table
from nodes.errors import DataQualityError

HOUR_NS = 3_600 * 10**9
MONDAY_2024_01_01_NS = 1_704_067_200 * 10**9
SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"
NO_TRADES = pl.DataFrame(schema={"entry_ts": pl.Int64, "exit_ts": pl.Int64, "pnl": pl.Float64,
                                 "return_pct": pl.Float64, "commission": pl.Float64})
NO_MARKS = pl.DataFrame(schema={"ts": pl.Int64, "instrument": pl.String, "mark_price": pl.Float64})


def _equity(ts: list[int] | np.ndarray, values: list[float] | np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"ts": np.asarray(ts, dtype=np.int64), "equity": np.asarray(values, dtype=np.float64)})


def _hand_case() -> dict:
    """Five weekdays, Mon 2024-01-01 .. Fri 2024-01-05, two trades, two instruments."""
    day = [MONDAY_2024_01_01_NS + k * DAY_NS for k in range(5)]
    equity = _equity(day, [100.0, 110.0, 99.0, 99.0, 121.0])
    trades = pl.DataFrame({
        "entry_ts": [day[1], day[2] + 6 * HOUR_NS],
        "exit_ts": [day[3], day[3] + 18 * HOUR_NS],  # 2 days and 1.5 days
        "pnl": [15.0, -5.0],
        "return_pct": [10.0, -5.0],
        "commission": [1.5, 0.5],
    })
    marks = pl.DataFrame({
        "ts": [day[0], day[0], day[4], day[4]],
        "instrument": ["A", "B", "A", "B"],
        "mark_price": [10.0, 50.0, 12.0, 45.0],  # +20 % and −10 %
    })
    return compute_stats(equity, trades, marks)


def test_hand_checked_case():
    s = _hand_case()
    # Daily returns 0.1, −0.1, 0, 2/9 multiply to 1.21, so g = sqrt(1.1) − 1; no weekends, so N = 252.
    r = np.array([0.1, -0.1, 0.0, 22 / 99])
    g = math.sqrt(1.1) - 1
    annualized = 1.1**126 - 1
    variance = ((r - r.mean()) ** 2).sum() / 3
    volatility = math.sqrt((variance + (1 + g) ** 2) ** 252 - (1 + g) ** 504)
    expected = {
        "Start": "2024-01-01T00:00:00Z",
        "Start_ns": MONDAY_2024_01_01_NS,
        "End": "2024-01-05T00:00:00Z",
        "End_ns": MONDAY_2024_01_01_NS + 4 * DAY_NS,
        "Duration": "4 days 00:00:00",
        "Duration_ns": 4 * DAY_NS,
        "Exposure Time [%]": 60.0,  # rows 1..3 lie inside a trade
        "Equity Final [$]": 121.0,
        "Equity Peak [$]": 121.0,
        "Commissions [$]": 2.0,
        "Return [%]": 21.0,
        "Buy & Hold Return [%]": 5.0,
        "Return (Ann.) [%]": annualized * 100,
        "Volatility (Ann.) [%]": volatility * 100,
        "CAGR [%]": (1.21 ** (365.25 / 4) - 1) * 100,
        "Sharpe Ratio": annualized / volatility,
        "Sortino Ratio": annualized / (0.05 * math.sqrt(252)),  # sqrt(mean([0, 0.01, 0, 0])) = 0.05
        "Calmar Ratio": annualized / 0.1,
        "Max. Drawdown [%]": -10.0,
        "Avg. Drawdown [%]": -10.0,
        "Max. Drawdown Duration": "3 days 00:00:00",  # the peak on Tuesday, recovered on Friday
        "Max. Drawdown Duration_ns": 3 * DAY_NS,
        "Avg. Drawdown Duration": "3 days 00:00:00",
        "Avg. Drawdown Duration_ns": 3 * DAY_NS,
        "# Trades": 2,
        "Win Rate [%]": 50.0,
        "Best Trade [%]": 10.0,
        "Worst Trade [%]": -5.0,
        "Avg. Trade [%]": (math.sqrt(1.1 * 0.95) - 1) * 100,
        "Max. Trade Duration": "2 days 00:00:00",
        "Max. Trade Duration_ns": 2 * DAY_NS,
        "Avg. Trade Duration": "2 days 00:00:00",  # 1.75 days, rounded up to the 1-day bar period
        "Avg. Trade Duration_ns": 2 * DAY_NS,
        "Profit Factor": 2.0,
        "Expectancy [%]": 2.5,
        "SQN": 0.5,  # sqrt(2) × 5 / (10 sqrt(2))
        "Kelly Criterion": 1 / 3,  # 0.5 − 0.5 / (15 / 5)
    }
    assert list(s) == list(expected)
    for key, value in expected.items():
        if isinstance(value, float):
            assert s[key] == pytest.approx(value, rel=1e-12), key
        else:
            assert s[key] == value, key
    assert isinstance(s["# Trades"], int) and isinstance(s["Duration_ns"], int)


def test_no_trades_and_flat_equity_give_nan_and_undefined_durations():
    ts = [MONDAY_2024_01_01_NS + k * DAY_NS for k in range(3)]
    s = compute_stats(_equity(ts, [100.0] * 3), NO_TRADES, NO_MARKS)
    assert s["# Trades"] == 0 and s["Commissions [$]"] == 0.0 and s["Exposure Time [%]"] == 0.0
    assert s["Return [%]"] == 0.0 and s["Return (Ann.) [%]"] == 0.0 and s["Max. Drawdown [%]"] == 0.0
    for key in ("Buy & Hold Return [%]", "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio", "Avg. Drawdown [%]",
                "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]", "Avg. Trade [%]", "Profit Factor",
                "Expectancy [%]", "SQN", "Kelly Criterion"):
        assert math.isnan(s[key]), key
    for key in DURATION_KEYS[1:]:
        assert s[key] is None and math.isnan(s[f"{key}_ns"]), key
    json.dumps(s)  # serialisable as it is


def test_weekends_annualise_with_365_days():
    ts = [MONDAY_2024_01_01_NS + k * DAY_NS for k in range(15)]
    s = compute_stats(_equity(ts, 100 * 1.001 ** np.arange(15)), NO_TRADES, NO_MARKS)
    assert s["Return (Ann.) [%]"] == pytest.approx((1.001**365 - 1) * 100, rel=1e-9)


def test_weekly_bars_annualise_with_52_weeks():
    ts = [MONDAY_2024_01_01_NS + 4 * DAY_NS + k * 7 * DAY_NS for k in range(10)]  # Fridays
    s = compute_stats(_equity(ts, 100 * 1.01 ** np.arange(10)), NO_TRADES, NO_MARKS)
    assert s["Return (Ann.) [%]"] == pytest.approx((1.01**52 - 1) * 100, rel=1e-9)


def test_intraday_bars_resample_to_the_last_value_of_each_utc_day():
    # Hourly bars over three days: each day's last hour closes 10 % above the previous day's.
    ts = np.arange(72) * HOUR_NS + MONDAY_2024_01_01_NS
    values = np.repeat([100.0, 110.0, 121.0], 24)
    values[::24] = 50.0  # intraday noise that the daily resample must ignore
    s = compute_stats(_equity(ts, values), NO_TRADES, NO_MARKS)
    assert s["Return (Ann.) [%]"] == pytest.approx((1.1**252 - 1) * 100, rel=1e-9)
    assert s["Max. Drawdown Duration"] == "0 days 02:00:00"  # last peak hour 23 to recovery at hour 25


def test_drawdown_on_the_last_row_alone_is_no_episode():
    ts = [MONDAY_2024_01_01_NS + k * DAY_NS for k in range(3)]
    s = compute_stats(_equity(ts, [100.0, 110.0, 104.5]), NO_TRADES, NO_MARKS)
    assert s["Max. Drawdown [%]"] == pytest.approx(-5.0, rel=1e-12)
    assert s["Avg. Drawdown [%]"] == pytest.approx(-5.0, rel=1e-12)
    assert s["Max. Drawdown Duration"] is None


def test_single_row():
    s = compute_stats(_equity([MONDAY_2024_01_01_NS], [100.0]), NO_TRADES, NO_MARKS)
    assert s["Duration"] == "0 days 00:00:00" and math.isnan(s["CAGR [%]"]) and math.isnan(s["Return (Ann.) [%]"])


def test_sub_second_times_print_like_pandas():
    ts = [MONDAY_2024_01_01_NS + 1_500, MONDAY_2024_01_01_NS + 2_500_000_000]
    s = compute_stats(_equity(ts, [1.0, 1.0]), NO_TRADES, NO_MARKS)
    assert s["Start"] == "2024-01-01T00:00:00.0000015Z"
    assert s["Duration"] == "0 days 00:00:02.499998500"


@pytest.mark.parametrize(
    ("equity", "message"),
    [
        (_equity([2, 1], [1.0, 1.0]), "row 1"),
        (_equity([1, 2], [1.0, math.nan]), "non-finite"),
        (_equity([], []), "no rows"),
        (pl.DataFrame({"ts": [1]}), "equity"),
    ],
)
def test_bad_equity_is_a_data_error(equity, message):
    with pytest.raises(DataQualityError, match=message):
        compute_stats(equity, NO_TRADES, NO_MARKS)


def test_risk_free_rate_out_of_range():
    with pytest.raises(ValueError, match="risk_free_rate"):
        compute_stats(_equity([1], [1.0]), NO_TRADES, NO_MARKS, risk_free_rate=5.0)


def test_format_stats_table_aligns_and_hides_ns_twins():
    s = _hand_case()
    lines = format_stats_table(s).splitlines()
    shown = [key for key in s if not key.endswith("_ns")]
    assert [line[: len(key)] for line, key in zip(lines, shown, strict=True)] == shown
    assert len({len(line) for line in lines}) == 1
    assert lines[shown.index("Duration")].endswith(" 4 days 00:00:00")
    assert lines[shown.index("Return [%]")].endswith(" 21")


def test_docstring_examples_run():
    assert doctest.testmod(stats_module, raise_on_error=True).failed == 0


# --- parity with backtesting.py 0.6: same equity and trades in, same statistics out ---

COMMISSION = 0.002
SMA_BARS = {"daily": (10, 30), "weekly": (4, 10), "hourly": (10, 30)}  # (fast, slow)


def _aapl_bars(pd):
    bars = pd.read_csv(SAMPLES / "AAPL.csv.gz", parse_dates=["date"], index_col="date")
    bars = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    return bars


def _variant(pd, name: str):
    bars = _aapl_bars(pd)
    if name == "weekly":
        agg = {"Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum"}
        bars = bars.resample("W-FRI").agg(agg).dropna()
    elif name == "hourly":  # the same prices as hourly bars around the clock: weekends, daily resample, 'h'
        bars = bars.set_axis(pd.date_range("2024-01-01", periods=len(bars), freq="h"))
    return bars


def _run_backtesting(bars, *, n_fast: int, n_slow: int, trade_on_close: bool):
    backtesting = pytest.importorskip("backtesting")
    from backtesting.lib import crossover

    def sma(values, n):
        out = np.full(len(values), np.nan)
        running = np.cumsum(np.r_[0.0, values])
        out[n - 1 :] = (running[n:] - running[:-n]) / n
        return out

    class SmaCross(backtesting.Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, n_fast)
            self.slow = self.I(sma, self.data.Close, n_slow)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.sell()

    run = backtesting.Backtest(
        bars, SmaCross, cash=100_000, commission=COMMISSION, trade_on_close=trade_on_close,
        exclusive_orders=True, finalize_trades=True,
    )
    return run.run()


def _ns(pd, values) -> np.ndarray:
    return pd.DatetimeIndex(values).as_unit("ns").asi8


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")
@pytest.mark.parametrize(
    ("variant", "trade_on_close"), [("daily", False), ("daily", True), ("weekly", False), ("hourly", False)]
)
def test_matches_backtesting_py(variant, trade_on_close):
    pd = pytest.importorskip("pandas")
    bars = _variant(pd, variant)
    n_fast, n_slow = SMA_BARS[variant]
    theirs = _run_backtesting(bars, n_fast=n_fast, n_slow=n_slow, trade_on_close=trade_on_close)
    curve, their_trades = theirs["_equity_curve"], theirs["_trades"]
    assert len(their_trades) >= 3, "the strategy should trade for the comparison to mean something"

    equity = _equity(_ns(pd, curve.index), curve["Equity"].to_numpy())
    trades = pl.DataFrame({
        "entry_ts": _ns(pd, their_trades["EntryTime"]),
        "exit_ts": _ns(pd, their_trades["ExitTime"]),
        "pnl": their_trades["PnL"].to_numpy(dtype=np.float64),
        "return_pct": their_trades["ReturnPct"].to_numpy(dtype=np.float64) * 100,
        "commission": their_trades["Commission"].to_numpy(dtype=np.float64),
    })
    # backtesting.py's Buy & Hold starts after the indicator warm-up (the slow SMA's first value)
    warmup = n_slow - 1
    marks = pl.DataFrame({
        "ts": _ns(pd, bars.index[warmup:]),
        "instrument": "AAPL",
        "mark_price": bars["Close"].to_numpy()[warmup:],
    })
    ours = compute_stats(equity, trades, marks)

    compared = [key for key in theirs.index if not key.startswith("_") and key not in ("Alpha [%]", "Beta")]
    assert [key for key in ours if not key.endswith("_ns")] == compared
    for key in compared:
        want, got = theirs[key], ours[key]
        if isinstance(want, pd.Timestamp):
            assert ours[f"{key}_ns"] == want.as_unit("ns").value, key
            assert got == want.strftime("%Y-%m-%dT%H:%M:%SZ"), key
        elif isinstance(want, pd.Timedelta):
            assert ours[f"{key}_ns"] == want.as_unit("ns").value, key
            assert got == str(want), key
        elif isinstance(want, (int, np.integer)) and not isinstance(want, bool):
            assert got == want, key
        elif math.isnan(want):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(float(want), rel=1e-9, abs=0), key
