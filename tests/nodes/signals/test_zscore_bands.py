"""signal.zscore_bands: entries beyond ±entry, exits inside ±exit (gradual or by a jump), reversals, parity, example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, run_op

NAME = "signal.zscore_bands"
nan = np.nan
BANDS = {"entry": 2.0, "exit": 0.5, "mode": "state"}


def test_short_above_entry_long_below_minus_entry_flat_inside_exit():
    z = [0.0, 2.0, 2.5, 1.0, 0.5, 0.25, -2.0, -2.25, -1.0, -0.5, -0.25]
    # 2.0 is on the band (no entry), 0.5 on the exit band (no exit), -2.0 no entry, -0.5 no exit
    np.testing.assert_array_equal(run_op(NAME, BANDS, z), [0, 0, -1, -1, -1, 0, 0, 1, 1, 1, 0])


def test_jump_across_the_mean_exits_and_a_jump_past_the_other_band_reverses():
    z = [3.0, -1.0, 3.0, -3.0, 3.0, 0.0]
    # +3 short; -1 has reverted past +exit: flat (|z| < exit alone would hold the short on the wrong side);
    # +3 short again; -3 beyond -entry: long; +3: short; 0: flat
    np.testing.assert_array_equal(run_op(NAME, BANDS, z), [-1, 0, -1, 1, -1, 0])


def test_exit_zero_leaves_at_the_mean_crossing():
    z = [-2.5, -0.25, 0.0, 0.25]
    np.testing.assert_array_equal(run_op(NAME, {**BANDS, "exit": 0.0}, z), [1, 1, 1, 0])


def test_long_only_never_shorts():
    z = [3.0, -3.0, 3.0, 0.0]
    np.testing.assert_array_equal(run_op(NAME, {**BANDS, "short": False}, z), [0, 1, 0, 0])


def test_change_mode_and_nan():
    z = [nan, 0.0, 2.5, nan, 1.0, 0.0, -3.0]
    np.testing.assert_array_equal(run_op(NAME, {"entry": 2.0, "exit": 0.5}, z), [nan, 0, -1, nan, nan, 0, 1])


@pytest.mark.parametrize("params", [{"entry": 1.0, "exit": 1.0}, {"entry": 0.0}, {"entry": 2.0, "exit": -0.5}])
def test_bad_params_are_rejected(params):
    from nodes.signals.zscore_bands import ZscoreBandsParams

    with pytest.raises(ValidationError):
        ZscoreBandsParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(2)
    z = np.cumsum(rng.normal(0.0, 0.4, 2_000)) % 6.0 - 3.0
    z[rng.random(2_000) < 0.05] = nan
    z[::89] = 2.0
    for params in ({"entry": 2.0, "exit": 0.5}, {"entry": 1.5, "exit": 0.0, "mode": "state"},
                   {"entry": 2.0, "exit": 0.5, "short": False}):
        side = assert_cpu_numba_identical(NAME, params, z)
        assert len(np.unique(side[~np.isnan(side)])) >= 2


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, NAME)
    assert set(np.unique(side[~np.isnan(side)])) == {-1.0, 0.0, 1.0}
