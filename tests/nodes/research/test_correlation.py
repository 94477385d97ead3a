"""research.correlation: Pearson and Spearman against numpy / scipy, as-of alignment by hand, and no look-ahead."""

import importlib.util

import numpy as np
import polars as pl
import pytest

from nodes.errors import SpecError
from nodes.research.correlation import Correlation, CorrelationParams
from tests.nodes.research.support import SAMPLE_INSTRUMENTS, assert_relative, sample_bars

HAS_SCIPY = importlib.util.find_spec("scipy") is not None


def run(table: pl.DataFrame, **params) -> dict[str, pl.DataFrame]:
    return Correlation.run(CorrelationParams(**params), {"table": table})


def matrix(out: pl.DataFrame, method: str, names: list[str]) -> np.ndarray:
    return out.filter(pl.col("method") == method).select(names).to_numpy()


def sample_returns() -> np.ndarray:
    bars = sample_bars()
    closes = np.array([bars.filter(pl.col("instrument") == n)["close"].to_numpy() for n in SAMPLE_INSTRUMENTS])
    return np.log(closes[:, 1:] / closes[:, :-1])


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def test_pearson_and_spearman_match_numpy_on_the_samples():
    out = run(sample_bars())["out"]
    r = sample_returns()
    assert out["instrument"].to_list() == SAMPLE_INSTRUMENTS * 2
    assert set(out["observations"]) == {r.shape[1]}
    assert_relative(matrix(out, "pearson", SAMPLE_INSTRUMENTS), np.corrcoef(r), 1e-12, "pearson")
    ranks = np.array([average_ranks(row) for row in r])
    assert_relative(matrix(out, "spearman", SAMPLE_INSTRUMENTS), np.corrcoef(ranks), 1e-12, "spearman by hand")
    for method in ("pearson", "spearman"):
        m = matrix(out, method, SAMPLE_INSTRUMENTS)
        assert np.array_equal(m, m.T) and np.all(np.diag(m) == 1.0)


@pytest.mark.skipif(not HAS_SCIPY, reason="scipy not installed: ranks are compared by hand above")
def test_spearman_matches_scipy():
    from scipy import stats

    out = run(sample_bars())["out"]
    expected = stats.spearmanr(sample_returns(), axis=1).statistic
    assert_relative(matrix(out, "spearman", SAMPLE_INSTRUMENTS), expected, 1e-12, "spearman vs scipy")


def test_spearman_averages_tied_ranks():
    # B's returns +100 %, +100 %, +100 %, −50 %: the three tied share rank (2 + 3 + 4)/3 = 3
    table = pl.DataFrame({
        "ts_event": [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], "ts_recv": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
        "instrument": ["A", "B"] * 5,
        "close": [1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 3.3, 8.0, 3.0, 4.0],
    })
    out = run(table, returns="simple")["out"]
    a, b = np.array([1.0, 0.5, 0.1, 3.0 / 3.3 - 1]), np.array([1.0, 1.0, 1.0, -0.5])
    expected = np.corrcoef(average_ranks(a), average_ranks(b))[0, 1]
    assert average_ranks(b).tolist() == [3.0, 3.0, 3.0, 1.0]
    assert matrix(out, "spearman", ["A", "B"])[0, 1] == pytest.approx(expected, rel=1e-12)


# -- alignment --------------------------------------------------------------------------------------------------

STAGGERED = pl.DataFrame({
    # A closes at 10, 20, 30, 40; B at 15, 20, 35 (and twice at 35: the last row wins)
    "ts_event": [0, 5, 10, 10, 20, 25, 25, 30],
    "ts_recv": [10, 15, 20, 20, 30, 35, 35, 40],
    "instrument": ["A", "B", "A", "B", "A", "B", "B", "A"],
    "close": [100.0, 50.0, 110.0, 55.0, 121.0, 60.0, 66.0, 133.1],
})


def test_union_clock_takes_each_price_as_of_the_tick():
    aligned = run(STAGGERED, returns="simple")["aligned"]
    assert aligned["ts_recv"].to_list() == [10, 15, 20, 30, 35, 40]
    # prices as of each tick: A 100,100,110,121,121,133.1; B none,50,55,55,66,66
    assert aligned["A"][0] is None
    assert aligned["A"].to_list()[1:] == pytest.approx([0.0, 0.1, 0.1, 0.0, 0.1])
    assert aligned["B"].to_list()[:2] == [None, None]
    assert aligned["B"].to_list()[2:] == pytest.approx([0.1, 0.0, 0.2, 0.0])


def test_intersection_and_instrument_clocks():
    aligned = run(STAGGERED, returns="simple", clock="intersection")["aligned"]
    assert aligned["ts_recv"].to_list() == [20]
    aligned = run(STAGGERED, returns="simple", clock="B")["aligned"]
    assert aligned["ts_recv"].to_list() == [15, 20, 35]
    assert aligned["A"].to_list()[1:] == pytest.approx([0.1, 0.1])  # 100 → 110 → 121
    assert aligned["B"].to_list()[1:] == pytest.approx([0.1, 0.2])  # 50 → 55 → 66
    with pytest.raises(SpecError, match="clock 'C' is neither union nor intersection nor an instrument of the table"):
        run(STAGGERED, clock="C")


def test_aligned_rows_do_not_change_when_later_rows_of_one_instrument_change():
    bars = sample_bars(["AAPL", "MSFT", "KO"])
    cut = bars["ts_recv"][bars.height * 2 // 3]
    later_msft = (pl.col("instrument") == "MSFT") & (pl.col("ts_recv") > cut)
    perturbed = bars.with_columns(pl.when(later_msft).then(pl.col("close") * 3.0).otherwise(pl.col("close")).alias("close"))
    # and MSFT gets extra rows in between later bars: a denser clock after the cut must not touch earlier rows
    extra = bars.filter(later_msft).with_columns(pl.col("ts_recv") - 1, pl.col("ts_event") - 1, pl.col("close") * 0.5)
    perturbed = pl.concat([perturbed, extra]).sort("ts_recv", maintain_order=True)
    for clock in ("union", "intersection", "AAPL", "MSFT"):
        before = run(bars, clock=clock)["aligned"].filter(pl.col("ts_recv") <= cut)
        after = run(perturbed, clock=clock)["aligned"].filter(pl.col("ts_recv") <= cut)
        assert before.height > 400 and before.equals(after), clock
    # the perturbation does reach the matrix, so the test would notice a leak the other way round
    assert not run(bars)["out"].equals(run(perturbed)["out"])


def test_a_later_price_never_fills_an_earlier_tick():
    # B's first price arrives at 15: at tick 10 B has no price (no backward fill from the future)
    aligned = run(STAGGERED.filter(pl.col("ts_recv") <= 20), returns="log")["aligned"]
    assert aligned.filter(pl.col("ts_recv") == 10)["B"].item() is None
    assert aligned.filter(pl.col("ts_recv") == 15)["B"].item() is None  # one price, no return yet
