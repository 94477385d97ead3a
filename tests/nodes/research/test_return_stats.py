"""research.return_stats: moments, quantiles and Jarque–Bera against numpy (and scipy where installed), by hand."""

import importlib.util
import math

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from nodes.research._chi2 import chi2_sf
from nodes.research.returns import ReturnStats, ReturnStatsParams, quantile_column
from tests.nodes.research.support import SAMPLE_INSTRUMENTS, assert_relative, sample_bars

HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def run(table: pl.DataFrame, **params) -> pl.DataFrame:
    return ReturnStats.run(ReturnStatsParams(**params), {"table": table})["out"]


def numpy_stats(r: np.ndarray, quantiles) -> dict:
    """The definitions in the op's docstring, straight numpy."""
    n, mean = len(r), r.mean()
    m2, m3, m4 = (np.mean((r - mean) ** k) for k in (2, 3, 4))
    skew, kurt = m3 / m2**1.5, m4 / m2**2 - 3.0
    jb = n / 6.0 * (skew**2 + kurt**2 / 4.0)
    out = {"count": n, "mean": mean, "std": np.std(r, ddof=1), "skew": skew, "excess_kurtosis": kurt,
           "min": r.min(), "max": r.max(), "jarque_bera": jb, "jarque_bera_p": math.exp(-jb / 2.0)}
    out.update({quantile_column(q): np.quantile(r, q) for q in quantiles})
    return out


@pytest.mark.parametrize("kind", ["log", "simple"])
def test_statistics_match_numpy_on_the_samples(kind):
    quantiles = (0.01, 0.025, 0.5, 0.9, 0.99)
    bars = sample_bars()
    out = run(bars, returns=kind, quantiles=quantiles)
    assert out["instrument"].to_list() == SAMPLE_INSTRUMENTS
    for name in SAMPLE_INSTRUMENTS:
        close = bars.filter(pl.col("instrument") == name)["close"].to_numpy()
        r = np.log(close[1:] / close[:-1]) if kind == "log" else close[1:] / close[:-1] - 1.0
        expected = numpy_stats(r, quantiles)
        row = out.filter(pl.col("instrument") == name).row(0, named=True)
        del expected["jarque_bera_p"]  # exp(−JB/2) would magnify JB's rounding by JB/2 (~400 here; or underflow)
        for key, value in expected.items():
            assert_relative([row[key]], [value], 1e-12, f"{name} {kind} {key}")
        assert row["jarque_bera_p"] == pytest.approx(math.exp(-row["jarque_bera"] / 2), rel=1e-15, abs=0)


@pytest.mark.skipif(not HAS_SCIPY, reason="scipy not installed: the numpy oracle above covers the formulas")
def test_statistics_match_scipy():
    from scipy import stats

    bars = sample_bars(["KO"])
    close = bars["close"].to_numpy()
    r = np.log(close[1:] / close[:-1])
    row = run(bars).row(0, named=True)
    assert row["skew"] == pytest.approx(stats.skew(r, bias=True), rel=1e-12)
    assert row["excess_kurtosis"] == pytest.approx(stats.kurtosis(r, fisher=True, bias=True), rel=1e-12)
    jb = stats.jarque_bera(r)
    assert row["jarque_bera"] == pytest.approx(jb.statistic, rel=1e-12)
    assert row["jarque_bera_p"] == pytest.approx(jb.pvalue, rel=1e-9, abs=1e-300)


def test_hand_computed_case():
    # prices 100 → 110 → 99 → 99: simple returns +10 %, −10 %, 0
    table = pl.DataFrame({"ts_event": [0, 1, 2, 3], "ts_recv": [1, 2, 3, 4], "instrument": ["X"] * 4,
                          "close": [100.0, 110.0, 99.0, 99.0]})
    row = run(table, returns="simple", quantiles=(0.5, 0.25)).row(0, named=True)
    assert row["count"] == 3
    assert row["mean"] == pytest.approx(0.0, abs=1e-16)
    assert row["std"] == pytest.approx(0.1, rel=1e-14)  # √((0.01 + 0.01 + 0) / 2)
    assert row["skew"] == pytest.approx(0.0, abs=1e-12)
    # m2 = 0.02/3, m4 = 2e-4/3: m4/m2² − 3 = 1.5 − 3
    assert row["excess_kurtosis"] == pytest.approx(-1.5, rel=1e-12)
    assert row["jarque_bera"] == pytest.approx(3 / 6 * (1.5**2 / 4), rel=1e-12)
    assert row["jarque_bera_p"] == pytest.approx(math.exp(-0.140625), rel=1e-12)
    assert (row["min"], row["max"], row["q50"]) == pytest.approx((-0.1, 0.1, 0.0), abs=1e-15)
    assert row["q25"] == pytest.approx(-0.05, rel=1e-12)  # halfway between −0.1 and 0
    assert (row["ts_event"], row["ts_recv"]) == (0, 4)


def test_jarque_bera_p_is_the_chi_square_two_tail():
    for statistic in (0.1, 2.0, 5.991464547107979, 40.0):
        assert math.exp(-statistic / 2) == pytest.approx(chi2_sf(statistic, 2), rel=1e-14)


def test_warm_up_nans_are_skipped_and_short_series_give_nan():
    table = pl.DataFrame({"ts_event": list(range(5)), "ts_recv": list(range(1, 6)), "instrument": ["X"] * 4 + ["Y"],
                          "out": [float("nan"), float("nan"), 10.0, 11.0, 5.0]})
    out = run(table, column="out")
    x, y = out.row(0, named=True), out.row(1, named=True)
    assert x["count"] == 1 and x["mean"] == pytest.approx(math.log(1.1), rel=1e-15) and math.isnan(x["std"])
    assert y["count"] == 0 and math.isnan(y["mean"])


def test_quantile_names_and_params():
    assert [quantile_column(q) for q in (0.01, 0.05, 0.5, 0.025, 0.999)] == ["q1", "q5", "q50", "q2_5", "q99_9"]
    with pytest.raises(ValidationError, match="strictly between 0 and 1"):
        ReturnStatsParams(quantiles=(0.5, 1.0))
    with pytest.raises(ValidationError, match="distinct"):
        ReturnStatsParams(quantiles=(0.5, 0.5))
    with pytest.raises(ValidationError, match="returns"):
        ReturnStatsParams(returns="arithmetic")
