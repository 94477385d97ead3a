"""exit.stop_loss: the stop levels on both sides, flat until the target changes side, NaN rules, parity, and
hand-made bars through the venue with every fill stated (next open, the gap past the stop level)."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.exits.support import backtest_by_hand
from tests.nodes.op_examples import assert_cpu_numba_identical, run_op

NAME = "exit.stop_loss"
nan = np.nan
# 1/8: exact in binary, so the levels below are exact (100 × 0.875 = 87.5, 100 × 1.125 = 112.5)
STOP = {"stop_pct": 0.125}


def _exit(params, target, high, low, position, entry_price):
    return run_op(NAME, params, target, high, low, position, entry_price)


@pytest.mark.parametrize(
    "position, high, low, stopped",
    [
        (10.0, 101.0, 87.5, True),  # long: the low touches entry × (1 − 0.125)
        (10.0, 101.0, 87.0, True),
        (10.0, 101.0, 87.6, False),
        (10.0, 200.0, 90.0, False),  # a high far away is no stop for a long
        (-10.0, 112.5, 99.0, True),  # short: the high touches entry × (1 + 0.125)
        (-10.0, 113.0, 99.0, True),
        (-10.0, 112.4, 99.0, False),
        (-10.0, 101.0, 1.0, False),  # a low far away is no stop for a short
        (0.0, 200.0, 1.0, False),  # flat: nothing to stop
        (nan, 200.0, 1.0, False),  # before the venue's first event
    ],
)
def test_stop_levels(position, high, low, stopped):
    target = 10.0 if position != position or position >= 0 else -10.0
    out = _exit(STOP, [target], [high], [low], [position], [100.0])
    assert out[0] == (0.0 if stopped else target)


def test_flat_until_the_target_changes_side_then_live_again():
    # long 10 entered at 100; the stop is hit on event 1; the strategy keeps asking for 10 (and sometimes says
    # nothing) until it goes flat on event 5; it buys again on event 6, and a new stop is hit on event 8
    target = [10.0, 10.0, 10.0, nan, 12.0, 0.0, 10.0, 10.0, 10.0]
    position = [10.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 10.0, 10.0]
    entry = [100.0, 100.0, 100.0, nan, nan, nan, nan, 96.0, 96.0]
    low = [95.0, 87.0, 80.0, 80.0, 80.0, 80.0, 80.0, 90.0, 84.0]
    out = _exit(STOP, target, [101.0] * 9, low, position, entry)
    # event 2 still shows the position (its exit fills at that bar's open): already flat, no second order
    np.testing.assert_array_equal(out, [10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 0.0])


def test_short_stop_waits_for_a_flat_or_long_target():
    target = [-10.0, -10.0, -5.0, nan, 10.0]
    position = [-10.0, -10.0, 0.0, 0.0, 0.0]
    high = [110.0, 115.0, 120.0, 120.0, 120.0]
    out = _exit(STOP, target, high, [90.0] * 5, position, [100.0, 100.0, nan, nan, nan])
    np.testing.assert_array_equal(out, [-10.0, 0.0, 0.0, 0.0, 10.0])


def test_a_target_already_leaving_the_side_passes_as_it_is():
    # the stop bar's target reverses the long: the strategy leaves anyway, and the op does not block the short
    out = _exit(STOP, [-10.0, -10.0], [101.0, 101.0], [80.0, 80.0], [10.0, 10.0], [100.0, 100.0])
    np.testing.assert_array_equal(out, [-10.0, -10.0])
    out = _exit(STOP, [0.0, 10.0], [101.0, 101.0], [80.0, 80.0], [10.0, 0.0], [100.0, nan])
    np.testing.assert_array_equal(out, [0.0, 10.0])


def test_nan_rules():
    # a NaN target passes as NaN, unless the stop is hit; a NaN low or entry price hits nothing
    out = _exit(STOP, [nan, nan, nan, nan], [101.0] * 4, [95.0, nan, 80.0, 80.0], [10.0, 10.0, 10.0, 10.0],
                [100.0, 100.0, nan, 100.0])
    np.testing.assert_array_equal(out, [nan, nan, nan, 0.0])


@pytest.mark.parametrize("params", [{}, {"stop_pct": 0}, {"stop_pct": 1}, {"stop_pct": -0.1},
                                    {"stop_pct": 0.1, "x": 1}])
def test_bad_params_are_rejected(params):
    from nodes.exits.stop_loss import StopLossParams

    with pytest.raises(ValidationError):
        StopLossParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(11)
    n = 3_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    high, low = close * 1.01, close * 0.99
    target = np.where(rng.random(n) < 0.3, nan, rng.choice([-10.0, 0.0, 10.0], n))
    position = np.roll(np.where(np.isnan(target), 0.0, target), 1)
    entry = np.where(position != 0.0, np.roll(close, 3), nan)
    for params in ({"stop_pct": 0.01}, {"stop_pct": 0.05}):
        out = assert_cpu_numba_identical(NAME, params, target, high, low, position, entry)
        assert ((out == 0.0) & (target != 0.0)).sum() > 50


# --- through the venue, by hand -------------------------------------------------------------------------------

# New York daily bars; the stop level is 100 × 0.95 = 95 for the entry at 100.
BARS = """date,open,high,low,close,volume
2024-01-02,100,101,99,100,1000
2024-01-03,100,102,98,101,1000
2024-01-04,101,103,96,97,1000
2024-01-05,97,98,94,95,1000
2024-01-08,93,96,92,95,1000
2024-01-09,95,97,94,96,1000
2024-01-10,96,98,95,97,1000
2024-01-11,97,99,96,98,1000
2024-01-12,98,100,97,99,1000
"""
# the strategy: long 10 throughout, flat on bar 6 only
TARGETS = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 0.0, 10.0, 10.0]


@pytest.mark.parametrize("place", ["cpu", "numba"])
def test_stop_fills_at_the_next_open_even_past_the_stop_level(tmp_path, place):
    out, sim, trades = backtest_by_hand(tmp_path, BARS, TARGETS, NAME, {"stop_pct": 0.05}, place=place)
    # bar 0: order for 10; bar 1: filled at its open 100 (the op sees the position from bar 2 on);
    # bar 2: low 96 > 95; bar 3: low 94 <= 95, exit order; bar 4: filled at its open 93, below the stop level
    # (a gap: no intrabar fill at 95); bars 4-5: the target still says long, the op keeps it flat; bar 6:
    # the target goes flat, the op is live again; bar 7: long again, filled at bar 8's open 98
    np.testing.assert_array_equal(out, [10, 10, 10, 0, 0, 0, 0, 10, 10])
    np.testing.assert_array_equal(sim["fill_qty"], [0, 10, 0, 0, -10, 0, 0, 0, 10])
    np.testing.assert_array_equal(sim["fill_price"][[1, 4, 8]], [100.0, 93.0, 98.0])
    np.testing.assert_array_equal(sim["entry_price"], [nan, 100, 100, 100, nan, nan, nan, nan, 98])
    assert trades["entry_price"].to_list() == [100.0, 98.0]
    assert trades["exit_price"].to_list() == [93.0, 99.0]  # the second closes at the end, at the last close
    assert trades["pnl"].to_list() == [-70.0, 10.0]


def test_stop_with_fill_on_close(tmp_path):
    out, sim, _ = backtest_by_hand(tmp_path, BARS, TARGETS, NAME, {"stop_pct": 0.05}, fill="close")
    # bought at bar 0's close 100, seen from bar 1; bar 3's low 94 hits 95: sold at bar 3's own close 95
    np.testing.assert_array_equal(out, [10, 10, 10, 0, 0, 0, 0, 10, 10])
    np.testing.assert_array_equal(sim["fill_qty"], [10, 0, 0, -10, 0, 0, 0, 10, 0])
    np.testing.assert_array_equal(sim["fill_price"][[0, 3, 7]], [100.0, 95.0, 98.0])

