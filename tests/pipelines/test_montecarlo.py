"""Monte Carlo resampling: known answers, determinism by seed, monotone quantiles, on the sample backtest too."""

import numpy as np
import polars as pl
import pytest

from pipelines.montecarlo import (
    QUANTILES,
    block_bootstrap_returns,
    bootstrap_trades,
    default_block_len,
    path_metrics,
)
from pipelines.run import run_spec
from tests.support import SMA_CROSS


@pytest.fixture(scope="module")
def sample():
    """The shipped SMA crossover's trade returns and period returns."""
    backtest = run_spec(SMA_CROSS, write=False).backtest
    equity = backtest.equity["equity"].to_numpy()
    return backtest.trades["return_pct"].to_numpy() / 100.0, equity[1:] / equity[:-1] - 1.0, equity[0]


def test_path_metrics_known_answers():
    equity = np.array([
        [100.0, 120, 90, 110, 125, 100],  # peak 120 at step 1, trough 90 (-25 %), back above 120 at step 4
        [100.0, 101, 102, 103, 104, 105],  # never down
        [100.0, 75, 90, 95, 99, 99],  # never back
        [100.0, 90, 100, 50, 60, 100],  # the deepest drawdown counts: from the peak at 2, not at 0
    ])
    final, drawdown, recovery = path_metrics(equity)
    assert final.tolist() == [100.0, 105.0, 99.0, 100.0]
    assert drawdown.tolist() == [0.25, 0.0, 0.25, 0.5]
    assert recovery.tolist() == [3.0, 0.0, np.inf, 3.0]


def test_equal_returns_give_one_path_whatever_the_draws():
    returns = np.full(40, 0.01)
    for mc in (bootstrap_trades(returns, 500, seed=3, start_equity=100.0),
               block_bootstrap_returns(returns, 7, 500, seed=3, start_equity=100.0)):
        expected = 100.0 * np.cumprod(np.full(40, 1.01))[-1]
        assert np.all(mc.final_equity == expected)
        assert np.all(mc.max_drawdown == 0.0) and np.all(mc.time_to_recovery == 0.0)
        table = mc.quantiles()
        assert table["Equity Final [$]"].to_list() == [expected] * len(QUANTILES)
        np.testing.assert_array_equal(mc.fan, np.broadcast_to(mc.fan[2], mc.fan.shape))


def test_trade_bootstrap_draws_trades_with_replacement():
    returns = np.array([0.02] * 9 + [-0.1])
    mc = bootstrap_trades(returns, 2000, seed=5)
    # the order of a path's trades does not change its final equity: it tells how many losses were drawn
    losses = np.rint(np.log(mc.final_equity / 1.02 ** 10) / np.log(0.9 / 1.02)).astype(int)
    np.testing.assert_allclose(mc.final_equity, 1.02 ** (10 - losses) * 0.9 ** losses, rtol=1e-12)
    assert 0.9 < losses.mean() < 1.1  # one loss in ten draws on average
    assert losses.max() >= 4  # with replacement: more losses than the sample has
    # a loss is a drawdown of at least 10 %; no loss, no drawdown
    np.testing.assert_array_equal(mc.max_drawdown >= 0.1 - 1e-12, losses > 0)
    np.testing.assert_array_equal(mc.max_drawdown == 0, losses == 0)


def test_the_same_seed_gives_the_same_paths_and_another_seed_others(sample):
    trades, returns, start = sample
    for run in (lambda seed: bootstrap_trades(trades, 300, seed, start_equity=start),
                lambda seed: block_bootstrap_returns(returns, 10, 300, seed, start_equity=start)):
        a, b, c = run(7), run(7), run(8)
        np.testing.assert_array_equal(a.final_equity, b.final_equity)
        np.testing.assert_array_equal(a.time_to_recovery, b.time_to_recovery)
        assert not np.array_equal(a.final_equity, c.final_equity)


def test_quantiles_are_monotone_and_are_values_of_some_path(sample):
    trades, returns, start = sample
    for mc in (bootstrap_trades(trades, 1000, 1, start_equity=start),
               block_bootstrap_returns(returns, default_block_len(len(returns)), 1000, 1, start_equity=start)):
        table = mc.quantiles()
        assert table["quantile"].to_list() == list(QUANTILES)
        for column in table.columns[1:]:
            values = table[column].to_numpy()
            assert np.all(values[1:] >= values[:-1]), column  # inf compares, its difference would not
        assert set(table["Equity Final [$]"].to_list()) <= set(mc.final_equity.tolist())
        assert np.all(np.diff(mc.fan, axis=0) >= 0)  # the fan's bands are nested
        assert mc.fan[:, 0].tolist() == [start] * 5
        assert 0 <= mc.summary()["P(loss) [%]"] <= 100


def test_block_length_one_draws_single_periods_and_the_whole_sample_shuffles_nothing(sample):
    _, returns, start = sample
    whole = block_bootstrap_returns(returns, len(returns), 50, 2, start_equity=start)
    # one block of every period, started anywhere: a rotation, so the product is the backtest's
    np.testing.assert_allclose(whole.final_equity, start * np.prod(1 + returns), rtol=1e-9)
    assert default_block_len(len(returns)) == 9
    with pytest.raises(ValueError, match="block_len"):
        block_bootstrap_returns(returns, 0, 10, 1)


@pytest.mark.parametrize("bad, message", [(np.array([]), "non-empty"), (np.array([0.1, -1.0]), "above -1"),
                                          (np.array([0.1, np.nan]), "finite")])
def test_bad_returns_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_trades(bad, 10, 1)


def test_the_quantile_table_is_a_polars_frame_with_the_step_unit(sample):
    _, returns, _ = sample
    table = block_bootstrap_returns(returns, 5, 20, 0).quantiles((0.5,))
    assert isinstance(table, pl.DataFrame)
    assert table.columns == ["quantile", "Equity Final [$]", "Max. Drawdown [%]", "Time to Recovery [bars]"]


def test_docstring_examples_run():
    import doctest

    import pipelines.montecarlo

    failed, tried = doctest.testmod(pipelines.montecarlo)
    assert tried > 0 and failed == 0
