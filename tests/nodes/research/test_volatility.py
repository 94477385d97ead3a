"""research.volatility: each estimator against its paper's formula in numpy, hand cases, Yang–Zhang's k, no look-ahead."""

import math

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from nodes.errors import DataQualityError, GraphError
from nodes.research.volatility import Volatility, VolatilityParams, yang_zhang_k
from tests.nodes.research.support import assert_relative, sample_bars

ESTIMATORS = ["close_to_close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang"]


def run(bars: pl.DataFrame, **params) -> pl.DataFrame:
    return Volatility.run(VolatilityParams(**params), {"bars": bars})["out"]


# -- the reference: each paper's formula, straight numpy over one window of bars ---------------------------------


def reference_variance(estimator: str, o, h, l, c, previous_close) -> float:
    """Per-bar variance of one window of n bars; ``previous_close`` is C' of each bar (NaN for the first bar)."""
    u, d, x = np.log(h / o), np.log(l / o), np.log(c / o)
    n = len(o)
    if estimator == "close_to_close":
        r = np.log(c / previous_close)
        return float(np.sum((r - r.mean()) ** 2) / (n - 1))
    if estimator == "parkinson":  # Parkinson (1980): 1/(4 n ln 2) Σ ln(H/L)²
        return float(np.sum(np.log(h / l) ** 2) / (4.0 * n * math.log(2.0)))
    if estimator == "garman_klass":  # Garman & Klass (1980): 1/n Σ ½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)²
        return float(np.mean(0.5 * np.log(h / l) ** 2 - (2.0 * math.log(2.0) - 1.0) * np.log(c / o) ** 2))
    if estimator == "rogers_satchell":  # Rogers & Satchell (1991): 1/n Σ ln(H/C) ln(H/O) + ln(L/C) ln(L/O)
        return float(np.mean(np.log(h / c) * np.log(h / o) + np.log(l / c) * np.log(l / o)))
    # Yang & Zhang (2000): V_O + k V_C + (1 − k) V_RS, k = 0.34 / (1.34 + (n + 1)/(n − 1))
    jump = np.log(o / previous_close)
    v_open = np.sum((jump - jump.mean()) ** 2) / (n - 1)
    v_close = np.sum((x - x.mean()) ** 2) / (n - 1)
    v_rs = np.mean(u * (u - x) + d * (d - x))
    k = 0.34 / (1.34 + (n + 1) / (n - 1))
    return float(v_open + k * v_close + (1 - k) * v_rs)


def reference(estimator: str, bars: pl.DataFrame, window: int | None) -> np.ndarray:
    o, h, l, c = (bars[name].to_numpy() for name in ("open", "high", "low", "close"))
    previous_close = np.concatenate([[np.nan], c[:-1]])
    first = 1 if estimator in ("close_to_close", "yang_zhang") else 0
    if window is None:
        part = slice(first, None)
        return np.array([reference_variance(estimator, o[part], h[part], l[part], c[part], previous_close[part])])
    out = np.full(len(c), np.nan)
    for end in range(first + window, len(c) + 1):
        part = slice(end - window, end)
        out[end - 1] = reference_variance(estimator, o[part], h[part], l[part], c[part], previous_close[part])
    return out


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("window", [None, 2, 21, 63])
def test_estimator_matches_the_papers_formula_on_aapl(estimator, window):
    bars = sample_bars(["AAPL"])
    out = run(bars, estimator=estimator, window_bars=window, bars_per_year=252)
    expected = reference(estimator, bars, window)
    assert_relative(out["variance"].to_numpy(), expected, 1e-12, f"{estimator} window={window}")
    assert_relative(out["volatility"].to_numpy(), np.sqrt(expected * 252), 1e-12, f"{estimator} annualised")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_instrument_is_estimated_on_its_own_bars(estimator):
    together = run(sample_bars(), estimator=estimator, window_bars=10)
    for name in ("AAPL", "KO"):
        alone = run(sample_bars([name]), estimator=estimator, window_bars=10)
        mine = together.filter(pl.col("instrument") == name)
        assert mine["ts_recv"].to_list() == alone["ts_recv"].to_list()
        assert_relative(mine["variance"].to_numpy(), alone["variance"].to_numpy(), 0.0, f"{estimator} {name}")


# -- hand-computed cases ---------------------------------------------------------------------------------------

HAND = pl.DataFrame({
    "ts_event": [0, 10, 20], "ts_recv": [5, 15, 25], "instrument": ["X"] * 3,
    "open": [100.0, 105.0, 107.0], "high": [110.0, 112.0, 109.0], "low": [95.0, 104.0, 100.0],
    "close": [105.0, 108.0, 101.0],
})


def test_hand_computed_whole_period_values():
    ln = math.log
    ln2 = ln(2.0)
    # Parkinson over the three bars: ln(110/95)², ln(112/104)², ln(109/100)², averaged, / (4 ln 2)
    parkinson = (ln(110 / 95) ** 2 + ln(112 / 104) ** 2 + ln(109 / 100) ** 2) / 3 / (4 * ln2)
    garman_klass = sum(0.5 * ln(h / l) ** 2 - (2 * ln2 - 1) * ln(c / o) ** 2
                       for o, h, l, c in [(100, 110, 95, 105), (105, 112, 104, 108), (107, 109, 100, 101)]) / 3
    rs = [ln(h / c) * ln(h / o) + ln(l / c) * ln(l / o)
          for o, h, l, c in [(100, 110, 95, 105), (105, 112, 104, 108), (107, 109, 100, 101)]]
    # close to close: two returns ln(108/105), ln(101/108); sample variance = (a − b)² / 2
    a, b = ln(108 / 105), ln(101 / 108)
    close_to_close = (a - b) ** 2 / 2
    # Yang–Zhang over bars 2 and 3 (bar 1 has no previous close), n = 2: k = 0.34 / (1.34 + 3)
    jumps = [ln(105 / 105), ln(107 / 108)]
    bodies = [ln(108 / 105), ln(101 / 107)]
    k = 0.34 / (1.34 + 3.0)
    yang_zhang = ((jumps[0] - jumps[1]) ** 2 / 2 + k * (bodies[0] - bodies[1]) ** 2 / 2
                  + (1 - k) * (rs[1] + rs[2]) / 2)
    expected = {"parkinson": parkinson, "garman_klass": garman_klass, "rogers_satchell": sum(rs) / 3,
                "close_to_close": close_to_close, "yang_zhang": yang_zhang}
    for estimator, value in expected.items():
        out = run(HAND, estimator=estimator, bars_per_year=4.0)
        assert out["bars"].item() == (2 if estimator in ("close_to_close", "yang_zhang") else 3)
        assert out["variance"].item() == pytest.approx(value, rel=1e-14), estimator
        assert out["volatility"].item() == pytest.approx(math.sqrt(4.0 * value), rel=1e-14), estimator
        assert (out["ts_event"].item(), out["ts_recv"].item()) == ((10 if out["bars"].item() == 2 else 0), 25)


def test_flat_bars_have_zero_range_volatility():
    flat = HAND.with_columns(pl.lit(50.0).alias(c) for c in ("open", "high", "low", "close"))
    for estimator in ESTIMATORS:
        assert run(flat, estimator=estimator)["variance"].item() == 0.0


def test_rolling_warm_up_is_nan_until_the_window_holds_complete_bars():
    out = run(HAND, estimator="yang_zhang", window_bars=2)
    assert np.isnan(out["variance"][0]) and np.isnan(out["variance"][1]) and np.isfinite(out["variance"][2])
    out = run(HAND, estimator="parkinson", window_bars=2)
    assert np.isnan(out["variance"][0]) and np.isfinite(out["variance"][1])


# -- Yang–Zhang's k ----------------------------------------------------------------------------------------------


def test_yang_zhang_k_constant():
    # k = (α − 1) / (α + (n + 1)/(n − 1)) with α = 1.34 (Yang & Zhang 2000, eq. 10)
    assert yang_zhang_k(21) == pytest.approx(0.34 / (1.34 + 22 / 20), rel=1e-15)
    assert yang_zhang_k(2) == pytest.approx(0.34 / 4.34, rel=1e-15)
    assert yang_zhang_k(10**9) == pytest.approx(0.34 / 2.34, rel=1e-8)  # the large-sample limit
    bars = sample_bars(["MSFT"])
    whole = run(bars, estimator="yang_zhang")
    n = whole["bars"].item()
    assert n == bars.height - 1
    # the op's estimate decomposes with exactly this k
    o, c, previous = bars["open"].to_numpy()[1:], bars["close"].to_numpy()[1:], bars["close"].to_numpy()[:-1]
    v_open, v_close = np.var(np.log(o / previous), ddof=1), np.var(np.log(c / o), ddof=1)
    h, l = bars["high"].to_numpy()[1:], bars["low"].to_numpy()[1:]
    v_rs = np.mean(np.log(h / c) * np.log(h / o) + np.log(l / c) * np.log(l / o))
    k = yang_zhang_k(n)
    assert whole["variance"].item() == pytest.approx(v_open + k * v_close + (1 - k) * v_rs, rel=1e-12)


# -- no look-ahead ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_rolling_values_do_not_change_when_later_bars_change(estimator):
    bars = sample_bars(["AAPL", "IBM"])
    cut = bars["ts_recv"][bars.height // 2]
    later = pl.col("ts_recv") > cut
    changed = bars.with_columns(pl.when(later).then(pl.col(c) * 1.7).otherwise(pl.col(c)) for c in ("open", "high", "low", "close"))
    before = run(bars, estimator=estimator, window_bars=21).filter(~later)
    after = run(changed, estimator=estimator, window_bars=21).filter(~later)
    assert before.equals(after)
    truncated = run(bars.filter(~later), estimator=estimator, window_bars=21)
    assert before.equals(truncated)


# -- errors ---------------------------------------------------------------------------------------------------


def test_missing_columns_and_bad_prices_are_reported():
    with pytest.raises(GraphError, match=r"research.volatility: the input table has no column\(s\) high, low"):
        run(HAND.drop("high", "low"), estimator="parkinson")
    with pytest.raises(DataQualityError, match="1 row\\(s\\) with a non-positive or missing 'low'.*'X' at ts_recv 15"):
        run(HAND.with_columns(pl.when(pl.col("ts_recv") == 15).then(0.0).otherwise(pl.col("low")).alias("low")),
            estimator="parkinson")


def test_params_are_frozen_and_closed():
    with pytest.raises(ValidationError, match="window_bars"):
        VolatilityParams(estimator="parkinson", window_bars=1)
    with pytest.raises(ValidationError, match="estimator"):
        VolatilityParams(estimator="hodges_tompkins")
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        VolatilityParams(estimator="parkinson", window=5)
    params = VolatilityParams(estimator="parkinson")
    with pytest.raises(ValidationError, match="frozen"):
        params.window_bars = 5
