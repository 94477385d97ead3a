"""signal.regime_filter: the three conditions, holding sides and regimes through NaN, re-entry, parity, example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, random_sides, run_op

NAME = "signal.regime_filter"
nan = np.nan


def test_direction_allows_longs_above_and_shorts_below_the_level():
    side = [1, 1, 1, -1, -1, -1, 0, 1]
    regime = [0.5, 0.0, -0.5, -0.5, 0.0, 0.5, 0.5, 1.0]
    expected = [1, 0, 0, -1, 0, 0, 0, 1]
    np.testing.assert_array_equal(run_op(NAME, {"mode": "state"}, side, regime), expected)
    np.testing.assert_array_equal(run_op(NAME, {}, side, regime), [1, 0, nan, -1, 0, nan, nan, 1])


def test_direction_with_a_level():
    side = [1, 1, -1, -1]
    regime = [10.0, 30.0, 30.0, 10.0]
    np.testing.assert_array_equal(run_op(NAME, {"level": 20.0, "mode": "state"}, side, regime), [0, 1, 0, -1])


def test_above_and_below_gate_both_sides():
    side = [1, -1, 1, -1, 1]
    regime = [25.0, 25.0, 20.0, 15.0, 15.0]
    above = run_op(NAME, {"condition": "above", "level": 20.0, "mode": "state"}, side, regime)
    np.testing.assert_array_equal(above, [1, -1, 0, 0, 0])
    below = run_op(NAME, {"condition": "below", "level": 20.0, "mode": "state"}, side, regime)
    np.testing.assert_array_equal(below, [0, 0, 0, -1, 1])


def test_held_side_closes_when_the_regime_turns_and_reopens_when_it_returns():
    # one long signal at event 0 (change mode upstream), then only the regime moves
    side = [1, nan, nan, nan, nan, 0, nan]
    regime = [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]
    np.testing.assert_array_equal(run_op(NAME, {}, side, regime), [1, nan, 0, nan, 1, 0, nan])


def test_nan_regime_keeps_the_last_one_and_none_yet_allows_only_flat():
    side = [1, nan, nan, -1, 0]
    regime = [nan, 1.0, nan, nan, nan]
    np.testing.assert_array_equal(run_op(NAME, {"mode": "state"}, side, regime), [0, 1, 1, 0, 0])
    # no side yet: nothing to pass, whatever the regime
    np.testing.assert_array_equal(run_op(NAME, {"mode": "state"}, [nan, nan, 1], [1.0, 1.0, 1.0]), [nan, nan, 1])


def test_sides_are_read_by_their_sign():
    np.testing.assert_array_equal(run_op(NAME, {"mode": "state"}, [0.5, -2.0, -0.0], [1.0, -1.0, 1.0]), [1, -1, 0])


def test_unknown_condition_is_rejected():
    from nodes.signals.regime import RegimeFilterParams

    with pytest.raises(ValidationError, match="condition"):
        RegimeFilterParams.model_validate({"condition": "positive"})


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(3)
    n = 2_000
    side = random_sides(rng, n)
    regime = np.round(rng.normal(0.0, 1.0, n), 1)
    regime[rng.random(n) < 0.1] = nan
    for params in ({}, {"mode": "state"}, {"condition": "above", "level": 0.5}, {"condition": "below", "level": -0.2}):
        out = assert_cpu_numba_identical(NAME, params, side, regime)
        assert len(np.unique(out[~np.isnan(out)])) >= 2


def _held(side: np.ndarray) -> np.ndarray:
    """The side a change-mode series wants at each event: its last non-NaN value (NaN before the first)."""
    index = np.where(np.isnan(side), 0, np.arange(len(side)))
    np.maximum.accumulate(index, out=index)
    return side[index]  # leading NaNs map to side[0], itself NaN


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, NAME)
    assert set(np.unique(side[~np.isnan(side)])) == {-1.0, 0.0, 1.0}
    # mean reversion only with the trend: some of revert's sides were held back
    revert = run.replay.recorded["revert"]["side"].to_numpy()
    trend_gap = run.replay.recorded["trend_gap"]["out"].to_numpy()
    wanted, passed = _held(revert), _held(side)
    blocked = (wanted != 0.0) & ~np.isnan(wanted) & (passed == 0.0)
    assert blocked.any()
    assert np.all(np.sign(wanted[blocked]) != np.sign(trend_gap[blocked]))
