"""exit.trailing_stop: the level trails the best price since entry (set by the bars before), restarts on a new
side, NaN rules, parity, and hand-made bars through the venue."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.exits.support import backtest_by_hand
from tests.nodes.op_examples import assert_cpu_numba_identical, run_op

NAME = "exit.trailing_stop"
nan = np.nan
TRAIL = {"trail_pct": 0.125}  # exact in binary: level = best × 0.875 (long), best × 1.125 (short)


def _exit(params, target, high, low, position, entry_price):
    return run_op(NAME, params, target, high, low, position, entry_price)


def test_long_level_trails_the_highest_high_of_the_bars_before():
    n = 5
    high = [104.0, 112.0, 120.0, 116.0, 110.0]
    low = [95.0, 98.0, 100.0, 105.0, 104.5]
    out = _exit(TRAIL, [10.0] * n, high, low, [10.0] * n, [100.0] * n)
    # levels: 100 × 0.875 = 87.5 (only the entry so far), then 104 → 91, 112 → 98, 120 → 105, 120 → 105;
    # bar 2 (high 120, low 100) is checked against 98 from the bars before it, not against 120 × 0.875 = 105
    np.testing.assert_array_equal(out, [10.0, 10.0, 10.0, 0.0, 0.0])


def test_short_level_trails_the_lowest_low():
    n = 4
    high = [101.0, 90.0, 91.0, 90.0]
    low = [96.0, 80.0, 84.0, 85.0]
    out = _exit(TRAIL, [-10.0] * n, high, low, [-10.0] * n, [100.0] * n)
    # levels: 112.5, 108, 90 (= 80 × 1.125), 90: bar 2's high 91 hits it
    np.testing.assert_array_equal(out, [-10.0, -10.0, 0.0, 0.0])


def test_tracking_restarts_at_each_new_entry_and_after_a_reversal():
    # a long runs up to a high of 160 and ends flat (the strategy's choice); a new long entered at 100 must
    # trail from 100, not from 160; then a reversal to short trails from its own entry
    target = [10.0, 10.0, 0.0, 10.0, 10.0, -10.0, -10.0, -10.0]
    position = [10.0, 10.0, 10.0, 0.0, 10.0, 10.0, -10.0, -10.0]
    entry = [100.0, 100.0, 100.0, nan, 100.0, 100.0, 95.0, 95.0]
    high = [160.0, 150.0, 150.0, 101.0, 101.0, 101.0, 100.0, 106.0]
    low = [99.0, 141.0, 141.0, 99.0, 99.0, 99.0, 94.0, 94.0]
    out = _exit(TRAIL, target, high, low, position, entry)
    # event 6: the short entered at 95 trails from 95 (level 106.875), its low 94 becomes the best; event 7:
    # level 94 × 1.125 = 105.75, hit by the high 106
    np.testing.assert_array_equal(out, [10.0, 10.0, 0.0, 10.0, 10.0, -10.0, -10.0, 0.0])


def test_adding_to_the_position_keeps_the_best_price():
    # entry 100, best 120; adding moves the average entry to 110, the level stays 120 × 0.875 = 105
    out = _exit(TRAIL, [10.0, 20.0, 20.0], [120.0, 110.0, 110.0], [101.0, 106.0, 105.0], [10.0, 10.0, 20.0],
                [100.0, 100.0, 110.0])
    np.testing.assert_array_equal(out, [10.0, 20.0, 0.0])


def test_flat_until_the_target_changes_side():
    target = [10.0, 10.0, 10.0, nan, 0.0, 10.0]
    position = [10.0, 10.0, 0.0, 0.0, 0.0, 0.0]
    out = _exit(TRAIL, target, [100.0] * 6, [99.0, 80.0, 80.0, 80.0, 80.0, 80.0], position,
                [100.0, 100.0, nan, nan, nan, nan])
    np.testing.assert_array_equal(out, [10.0, 0.0, 0.0, 0.0, 0.0, 10.0])


def test_nan_rules():
    # a NaN high moves nothing, a NaN low hits nothing, a NaN entry price is no position to trail
    out = _exit(TRAIL, [nan] * 4, [nan, 120.0, 120.0, 100.0], [99.0, nan, 100.0, 87.0], [10.0] * 4,
                [100.0] * 4)
    # levels: 87.5, 87.5 (NaN high), then 120 → 105: bar 2's low 100 hits it
    np.testing.assert_array_equal(out, [nan, nan, 0.0, 0.0])
    out = _exit(TRAIL, [10.0, 10.0], [120.0, 120.0], [1.0, 1.0], [10.0, 10.0], [nan, nan])
    np.testing.assert_array_equal(out, [10.0, 10.0])


@pytest.mark.parametrize("params", [{}, {"trail_pct": 0}, {"trail_pct": 1}])
def test_bad_params_are_rejected(params):
    from nodes.exits.trailing_stop import TrailingStopParams

    with pytest.raises(ValidationError):
        TrailingStopParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(13)
    n = 3_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    target = np.where(rng.random(n) < 0.2, nan, rng.choice([-10.0, 10.0, 10.0, 0.0], n))
    position = np.roll(np.where(np.isnan(target), 0.0, target), 1)
    entry = np.where(position != 0.0, np.roll(close, 3), nan)
    for params in ({"trail_pct": 0.01}, {"trail_pct": 0.05}):
        out = assert_cpu_numba_identical(NAME, params, target, close * 1.01, close * 0.99, position, entry)
        assert ((out == 0.0) & (target != 0.0)).sum() > 50


BARS = """date,open,high,low,close,volume
2024-01-02,100,101,99,100,1000
2024-01-03,100,104,99,103,1000
2024-01-04,103,110,102,109,1000
2024-01-05,109,112,100,101,1000
2024-01-08,101,103,97,98,1000
2024-01-09,96,99,95,97,1000
2024-01-10,97,98,96,97,1000
"""


@pytest.mark.parametrize("place", ["cpu", "numba"])
def test_trailing_stop_through_the_venue(tmp_path, place):
    out, sim, trades = backtest_by_hand(tmp_path, BARS, [10.0] * 7, NAME, TRAIL, place=place)
    # bought at bar 1's open 100 (the op sees it from bar 2: bar 1's high 104 is not tracked); levels:
    # bar 2: 87.5 (entry), bar 3: 110 → 96.25, bar 4: 112 → 98, hit by its low 97; sold at bar 5's open 96
    np.testing.assert_array_equal(out, [10, 10, 10, 10, 0, 0, 0])
    np.testing.assert_array_equal(sim["fill_qty"], [0, 10, 0, 0, 0, -10, 0])
    np.testing.assert_array_equal(sim["fill_price"][[1, 5]], [100.0, 96.0])
    assert trades["pnl"].to_list() == [-40.0]
