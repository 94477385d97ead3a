"""exit.time_stop: counting bars in position, restarts on a new side, flat until the target changes side,
parity, and hand-made bars through the venue with the exact hold."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.exits.support import backtest_by_hand
from tests.nodes.exits.test_stop_loss import BARS, TARGETS
from tests.nodes.op_examples import assert_cpu_numba_identical, run_op

NAME = "exit.time_stop"
nan = np.nan


def _exit(params, target, position):
    return run_op(NAME, params, target, position)


def test_exit_on_the_bars_th_bar_in_position():
    position = [0.0, 10.0, 10.0, 10.0, 10.0]
    np.testing.assert_array_equal(_exit({"bars": 3}, [10.0] * 5, position), [10.0, 10.0, 10.0, 0.0, 0.0])
    np.testing.assert_array_equal(_exit({"bars": 1}, [10.0] * 5, position), [10.0, 0.0, 0.0, 0.0, 0.0])


def test_count_restarts_on_a_reversal_keeps_on_adding_and_drops_when_flat():
    target = [10.0, 20.0, -10.0, -10.0, -10.0, 0.0, 10.0, 10.0, 10.0]
    position = [10.0, 10.0, 20.0, -10.0, -10.0, -10.0, 0.0, 10.0, 10.0]
    out = _exit({"bars": 3}, target, position)
    # long: events 0, 1, 2 (adding on 1 keeps the count): exit on event 2, but its target -10 already leaves
    # the side and passes; short from event 3: 1, 2, and event 5's target 0 leaves too; long again from 7
    np.testing.assert_array_equal(out, [10.0, 20.0, -10.0, -10.0, -10.0, 0.0, 10.0, 10.0, 10.0])
    out = _exit({"bars": 2}, [10.0, 10.0, 10.0, nan, 0.0, 10.0, 10.0, 10.0],
                [10.0, 10.0, 10.0, 0.0, 0.0, 0.0, 10.0, 10.0])
    np.testing.assert_array_equal(out, [10.0, 0.0, 0.0, 0.0, 0.0, 10.0, 10.0, 0.0])


def test_nan_position_is_flat():
    np.testing.assert_array_equal(_exit({"bars": 1}, [10.0, nan], [nan, nan]), [10.0, nan])


@pytest.mark.parametrize("params", [{}, {"bars": 0}, {"bars": 1.5}, {"bars": -2}])
def test_bad_params_are_rejected(params):
    from nodes.exits.time_stop import TimeStopParams

    with pytest.raises(ValidationError):
        TimeStopParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(14)
    n = 3_000
    target = np.where(rng.random(n) < 0.5, nan, rng.choice([-10.0, 10.0, 10.0, 0.0], n))
    position = np.roll(np.where(np.isnan(target), 0.0, target), 1)
    for params in ({"bars": 1}, {"bars": 3}):
        out = assert_cpu_numba_identical(NAME, params, target, position)
        assert ((out == 0.0) & (target != 0.0)).sum() > 50


@pytest.mark.parametrize("place", ["cpu", "numba"])
def test_time_stop_through_the_venue(tmp_path, place):
    out, sim, _ = backtest_by_hand(tmp_path, BARS, TARGETS, NAME, {"bars": 3}, place=place)
    # bought at bar 1's open; seen on bars 2, 3, 4: exit order at bar 4's close, filled at bar 5's open 95;
    # held through bars 1-4; flat while the target says long, live again after bar 6's flat target
    np.testing.assert_array_equal(out, [10, 10, 10, 10, 0, 0, 0, 10, 10])
    np.testing.assert_array_equal(sim["fill_qty"], [0, 10, 0, 0, 0, -10, 0, 0, 10])
    np.testing.assert_array_equal(sim["fill_price"][[1, 5, 8]], [100.0, 95.0, 98.0])


def test_time_stop_with_fill_on_close(tmp_path):
    out, sim, _ = backtest_by_hand(tmp_path, BARS, TARGETS, NAME, {"bars": 3}, fill="close")
    # bought at bar 0's close; seen on bars 1, 2, 3: sold at bar 3's close 95
    np.testing.assert_array_equal(out, [10, 10, 10, 0, 0, 0, 0, 10, 10])
    np.testing.assert_array_equal(sim["fill_qty"], [10, 0, 0, -10, 0, 0, 0, 10, 0])
    np.testing.assert_array_equal(sim["fill_price"][[0, 3, 7]], [100.0, 95.0, 98.0])
