"""research.autocorrelation: ACF of returns and squared returns against numpy, Ljung–Box against statsmodels or
the formula, the chi-square tail, a hand case."""

import importlib.util
import math

import numpy as np
import polars as pl
import pytest

from nodes.research._chi2 import chi2_sf
from nodes.research.autocorrelation import Autocorrelation, AutocorrelationParams
from tests.nodes.research.support import assert_relative, sample_bars

HAS_STATSMODELS = importlib.util.find_spec("statsmodels") is not None


def run(table: pl.DataFrame, **params) -> pl.DataFrame:
    return Autocorrelation.run(AutocorrelationParams(**params), {"table": table})["out"]


def numpy_acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """ρ_k = Σ_{t>k} (x_t − x̄)(x_{t−k} − x̄) / Σ (x_t − x̄)²."""
    y = x - x.mean()
    return np.array([np.dot(y[k:], y[:-k]) / np.dot(y, y) for k in range(1, max_lag + 1)])


def ljung_box(rho: np.ndarray, n: int) -> np.ndarray:
    """Q(h) = n (n + 2) Σ_{k≤h} ρ_k² / (n − k)."""
    k = np.arange(1, len(rho) + 1)
    return n * (n + 2) * np.cumsum(rho**2 / (n - k))


def aapl_returns() -> tuple[pl.DataFrame, np.ndarray]:
    bars = sample_bars(["AAPL"])
    close = bars["close"].to_numpy()
    return bars, np.log(close[1:] / close[:-1])


def test_acf_and_ljung_box_match_numpy_on_aapl():
    bars, r = aapl_returns()
    out = run(bars, max_lag=20)
    assert out["lag"].to_list() == list(range(1, 21)) and set(out["observations"]) == {len(r)}
    for series, column, q_column in ((r, "acf", "ljung_box"), (r**2, "acf_squared", "ljung_box_squared")):
        rho = numpy_acf(series, 20)
        assert_relative(out[column].to_numpy(), rho, 1e-12, column)
        q = ljung_box(rho, len(r))
        assert_relative(out[q_column].to_numpy(), q, 1e-12, q_column)
        assert_relative(out[q_column + "_p"].to_numpy(), chi2_sf(q, np.arange(1, 21)), 1e-12, q_column + "_p")
    # daily returns barely correlate; their squares cluster (volatility clustering) at some lag
    assert np.all(np.abs(out["acf"].to_numpy()) < 0.15)


@pytest.mark.skipif(not HAS_STATSMODELS, reason="statsmodels not installed: the formula test above covers Ljung–Box")
def test_against_statsmodels():
    from statsmodels.stats.diagnostic import acorr_ljungbox
    from statsmodels.tsa.stattools import acf

    bars, r = aapl_returns()
    out = run(bars, max_lag=15)
    assert_relative(out["acf"].to_numpy(), acf(r, nlags=15, fft=False)[1:], 1e-12, "acf vs statsmodels")
    frame = acorr_ljungbox(r, lags=15)
    assert_relative(out["ljung_box"].to_numpy(), frame["lb_stat"].to_numpy(), 1e-12, "Q vs statsmodels")
    assert_relative(out["ljung_box_p"].to_numpy(), frame["lb_pvalue"].to_numpy(), 1e-10, "p vs statsmodels")
    frame = acorr_ljungbox(r**2, lags=15)
    assert_relative(out["ljung_box_squared"].to_numpy(), frame["lb_stat"].to_numpy(), 1e-12, "Q² vs statsmodels")


def test_hand_computed_alternating_returns():
    # log returns +1 %, −2 %, +1 %, −2 %: deviations ±1.5 % alternate, so ρ1 = −3/4, ρ2 = 2/4, ρ3 = −1/4;
    # the squares 1e-4, 4e-4, ... alternate the same way
    prices = 100.0 * np.exp(np.cumsum([0.0, 0.01, -0.02, 0.01, -0.02]))
    table = pl.DataFrame({"ts_event": range(5), "ts_recv": range(1, 6), "instrument": ["X"] * 5, "close": prices})
    out = run(table, max_lag=5)
    assert_relative(out["acf"].to_numpy(), [-0.75, 0.5, -0.25, np.nan, np.nan], 1e-9, "acf")
    assert_relative(out["acf_squared"].to_numpy(), [-0.75, 0.5, -0.25, np.nan, np.nan], 1e-9, "acf of squares")
    q1, q2 = 4 * 6 * 0.5625 / 3, 4 * 6 * (0.5625 / 3 + 0.25 / 2)  # 4.5 and 7.5
    assert out["ljung_box"][0] == pytest.approx(q1, rel=1e-9) and out["ljung_box"][1] == pytest.approx(q2, rel=1e-9)
    assert out["ljung_box_p"][0] == pytest.approx(math.erfc(math.sqrt(q1 / 2)), rel=1e-8)  # χ²(1)
    assert out["ljung_box_p"][1] == pytest.approx(math.exp(-q2 / 2), rel=1e-8)  # χ²(2)
    assert np.isnan(out["ljung_box"][3]) and np.isnan(out["ljung_box_p"][3])  # lag 4 >= n = 4


def test_chi_square_tail_by_hand():
    # closed forms: χ²(1) tail = erfc(√(x/2)), χ²(2) = e^(−x/2), χ²(3) = erfc(√(x/2)) + √(2x/π) e^(−x/2)
    for x in (0.3, 1.0, 4.0, 17.5):
        assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-14)
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-14)
        assert chi2_sf(x, 3) == pytest.approx(math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2), rel=1e-13)
    # 5 % critical values from the tables (Abramowitz & Stegun 26.8)
    critical = {1: 3.841459, 5: 11.070498, 10: 18.307038, 20: 31.410433, 30: 43.772972, 100: 124.342113}
    for dof, x in critical.items():
        assert chi2_sf(x, dof) == pytest.approx(0.05, rel=2e-6), dof
    assert chi2_sf(0.0, 4) == 1.0 and np.isnan(chi2_sf(np.nan, 4)) and chi2_sf(1e6, 7) == 0.0


def test_each_instrument_on_its_own_rows():
    bars = sample_bars()
    together = run(bars, max_lag=3)
    assert together["instrument"].unique(maintain_order=True).to_list() == ["AAPL", "MSFT", "IBM", "KO"]
    alone = run(sample_bars(["IBM"]), max_lag=3)
    assert together.filter(pl.col("instrument") == "IBM").equals(alone)
