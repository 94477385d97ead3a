"""exit.take_profit: the profit levels on both sides, flat until the target changes side, NaN rules, parity,
and hand-made bars through the venue (the exit fills at the next open, which a gap can put below the level)."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.exits.support import backtest_by_hand
from tests.nodes.exits.test_stop_loss import BARS, TARGETS
from tests.nodes.op_examples import assert_cpu_numba_identical, run_op

NAME = "exit.take_profit"
nan = np.nan
TAKE = {"take_pct": 0.125}  # exact in binary: levels 112.5 (long) and 87.5 (short) for an entry at 100


def _exit(params, target, high, low, position, entry_price):
    return run_op(NAME, params, target, high, low, position, entry_price)


@pytest.mark.parametrize(
    "position, high, low, taken",
    [
        (10.0, 112.5, 99.0, True),  # long: the high touches entry × (1 + 0.125)
        (10.0, 112.4, 99.0, False),
        (10.0, 101.0, 1.0, False),  # a low far away is no profit for a long
        (-10.0, 101.0, 87.5, True),  # short: the low touches entry × (1 − 0.125)
        (-10.0, 101.0, 87.6, False),
        (-10.0, 200.0, 99.0, False),
        (0.0, 200.0, 1.0, False),
        (nan, 200.0, 1.0, False),
    ],
)
def test_profit_levels(position, high, low, taken):
    target = 10.0 if position != position or position >= 0 else -10.0
    out = _exit(TAKE, [target], [high], [low], [position], [100.0])
    assert out[0] == (0.0 if taken else target)


def test_a_short_level_below_zero_is_never_reached():
    out = _exit({"take_pct": 1.5}, [-10.0], [101.0], [0.0], [-10.0], [100.0])
    assert out[0] == -10.0


def test_flat_until_the_target_changes_side_then_live_again():
    target = [10.0, 10.0, nan, 10.0, -10.0, -10.0, -10.0]
    position = [10.0, 10.0, 0.0, 0.0, 0.0, -10.0, -10.0]
    entry = [100.0, 100.0, nan, nan, nan, 120.0, 120.0]
    high = [110.0, 113.0, 130.0, 130.0, 130.0, 119.0, 119.0]
    low = [99.0, 99.0, 99.0, 99.0, 99.0, 106.0, 105.0]
    out = _exit(TAKE, target, high, low, position, entry)
    # taken at event 1; long asked again on events 2-3 is held flat; the short on event 4 passes; that short
    # (entry 120, level 105) is taken on event 6 and held flat while the target stays short
    np.testing.assert_array_equal(out, [10.0, 0.0, 0.0, 0.0, -10.0, -10.0, 0.0])


def test_nan_rules():
    out = _exit(TAKE, [nan, nan, nan], [nan, 120.0, 120.0], [99.0] * 3, [10.0] * 3, [100.0, nan, 100.0])
    np.testing.assert_array_equal(out, [nan, nan, 0.0])


@pytest.mark.parametrize("params", [{}, {"take_pct": 0}, {"take_pct": -1}, {"take_pct": 101}])
def test_bad_params_are_rejected(params):
    from nodes.exits.take_profit import TakeProfitParams

    with pytest.raises(ValidationError):
        TakeProfitParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(12)
    n = 3_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    target = np.where(rng.random(n) < 0.3, nan, rng.choice([-10.0, 0.0, 10.0], n))
    position = np.roll(np.where(np.isnan(target), 0.0, target), 1)
    entry = np.where(position != 0.0, np.roll(close, 3), nan)
    for params in ({"take_pct": 0.01}, {"take_pct": 0.05}):
        out = assert_cpu_numba_identical(NAME, params, target, close * 1.01, close * 0.99, position, entry)
        assert ((out == 0.0) & (target != 0.0)).sum() > 50


@pytest.mark.parametrize("place", ["cpu", "numba"])
def test_profit_fills_at_the_next_open_even_below_the_level(tmp_path, place):
    out, sim, trades = backtest_by_hand(tmp_path, BARS, TARGETS, NAME, {"take_pct": 0.02}, place=place)
    # filled long at 100 on bar 1; bar 2's high 103 reaches 102: exit order; filled at bar 3's open 97,
    # under both the level and the entry (a bar close is no promise of the next open); held flat on bars
    # 3-5 while the target still says long; live again after the flat target of bar 6
    np.testing.assert_array_equal(out, [10, 10, 0, 0, 0, 0, 0, 10, 10])
    np.testing.assert_array_equal(sim["fill_qty"], [0, 10, 0, -10, 0, 0, 0, 0, 10])
    np.testing.assert_array_equal(sim["fill_price"][[1, 3, 8]], [100.0, 97.0, 98.0])
    assert trades["pnl"].to_list() == [-30.0, 10.0]
