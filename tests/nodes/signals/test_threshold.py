"""signal.threshold: hysteresis edges, the mirrored short side, NaN as "no change", cpu/numba parity, its example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, run_op

NAME = "signal.threshold"
nan = np.nan


def test_hysteresis_edges_long_only():
    # upper 1.0, lower 0.5: equal to a level changes nothing; strictly above upper enters, strictly below lower exits
    x = [0.5, 1.0, 1.25, 0.75, 0.5, 0.25, 1.0, 0.75, 1.5, -9.0]
    state = run_op(NAME, {"upper": 1.0, "lower": 0.5, "mode": "state"}, x)
    np.testing.assert_array_equal(state, [0, 0, 1, 1, 1, 0, 0, 0, 1, 0])
    change = run_op(NAME, {"upper": 1.0, "lower": 0.5}, x)
    np.testing.assert_array_equal(change, [0, nan, 1, nan, nan, 0, nan, nan, 1, 0])


def test_no_hysteresis_when_levels_meet():
    x = [0.0, 1.0, 2.0, 1.0, 0.5, 1.0, 1.5]
    np.testing.assert_array_equal(run_op(NAME, {"upper": 1.0, "lower": 1.0, "mode": "state"}, x), [0, 0, 1, 1, 0, 0, 1])


def test_short_side_mirrors_around_center():
    # center 50, upper 70, lower 55: short below 30, leave it above 45
    x = [50, 69, 71, 60, 56, 54, 31, 29, 40, 45, 46, 80, 20, 71]
    side = run_op(NAME, {"upper": 70, "lower": 55, "short": True, "center": 50, "mode": "state"}, x)
    np.testing.assert_array_equal(side, [0, 0, 1, 1, 1, 0, 0, -1, -1, -1, 0, 1, -1, 1])
    long_only = run_op(NAME, {"upper": 70, "lower": 55, "center": 50, "mode": "state"}, x)
    np.testing.assert_array_equal(long_only, [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1])


def test_nan_input_changes_nothing():
    x = [nan, nan, 2.0, nan, 0.75, nan, 0.0]
    np.testing.assert_array_equal(run_op(NAME, {"upper": 1.0, "lower": 0.5}, x), [nan, nan, 1, nan, nan, nan, 0])
    np.testing.assert_array_equal(
        run_op(NAME, {"upper": 1.0, "lower": 0.5, "mode": "state"}, x), [nan, nan, 1, nan, 1, nan, 0]
    )


def test_first_valid_value_emits_its_side_even_flat():
    np.testing.assert_array_equal(run_op(NAME, {"upper": 1.0, "lower": 0.5}, [nan, 0.7, 0.8]), [nan, 0, nan])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"upper": 1.0, "lower": 2.0}, "lower"),
        ({"upper": 50, "lower": 40, "short": True, "center": 50}, "center"),
        ({"upper": 1.0}, "lower"),
        ({"upper": 1.0, "lower": 0.0, "mode": "cross"}, "mode"),
    ],
)
def test_bad_params_are_rejected(params, message):
    from nodes.signals.threshold import ThresholdParams

    with pytest.raises(ValidationError, match=message):
        ThresholdParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(1)
    x = rng.normal(50.0, 15.0, 2_000)
    x[rng.random(2_000) < 0.05] = nan
    x[::97] = 70.0  # exactly on a level
    for params in (
        {"upper": 70, "lower": 55},
        {"upper": 70, "lower": 55, "short": True, "center": 50},
        {"upper": 60, "lower": 60, "short": True, "center": 50, "mode": "state"},
    ):
        side = assert_cpu_numba_identical(NAME, params, x)
        assert len(np.unique(side[~np.isnan(side)])) >= 2


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, NAME)
    assert set(np.unique(side[~np.isnan(side)])) == {-1.0, 0.0, 1.0}
    assert run.backtest.stats["# Trades"] >= 5
