"""sizing.volatility_target: leverage from volatility, the cap, lot rounding both sides, NaN rules, parity, example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, run_op

NAME = "sizing.volatility_target"
nan = np.nan
# bars_per_year 4 (√4 = 2) and target 0.2 make the target per bar exactly 0.1, so sizes below are exact
EXACT = {"target_vol_annual": 0.2, "bars_per_year": 4, "max_leverage": 3.0}


def _size(params, side, vol, price, equity):
    return run_op(NAME, params, [side], [vol], [price], [equity])[0]


@pytest.mark.parametrize(
    "side, vol, price, equity, expected",
    [
        (1.0, 0.05, 50.0, 10_000.0, 400.0),  # leverage 0.1 / 0.05 = 2 → 2 × 10000 / 50
        (-1.0, 0.05, 50.0, 10_000.0, -400.0),
        (1.0, 0.1, 50.0, 10_000.0, 200.0),  # leverage 1
        (1.0, 0.01, 50.0, 10_000.0, 600.0),  # leverage 10, capped at 3
        (-1.0, 0.01, 50.0, 10_000.0, -600.0),
        (1.0, 0.05, 32.0, 10_000.0, 625.0),  # 20000 / 32 = 625 exactly
        (1.0, 0.05, 48.0, 10_000.0, 416.0),  # 416.67 truncated toward zero
        (-1.0, 0.05, 48.0, 10_000.0, -416.0),  # and a short toward zero too
    ],
)
def test_size_from_volatility(side, vol, price, equity, expected):
    assert _size(EXACT, side, vol, price, equity) == expected


@pytest.mark.parametrize("side, expected", [(1.0, 400.0), (-1.0, -400.0)])
def test_whole_lots_toward_zero(side, expected):
    # 416.67 units in lots of 100 → 4 lots
    assert _size({**EXACT, "lot_units": 100}, side, 0.05, 48.0, 10_000.0) == expected


def test_a_short_smaller_than_one_lot_is_plain_zero():
    size = _size({**EXACT, "lot_units": 1_000}, -1.0, 0.05, 48.0, 10_000.0)
    assert size == 0.0 and not np.signbit(size)


@pytest.mark.parametrize(
    "side, vol, price, equity, expected",
    [
        (nan, 0.05, 50.0, 10_000.0, nan),  # no signal: keep
        (0.0, nan, nan, nan, 0.0),  # flat needs no estimate
        (1.0, nan, 50.0, 10_000.0, nan),  # volatility warming up: keep
        (1.0, 0.0, 50.0, 10_000.0, nan),  # a flat window: no estimate
        (1.0, -0.1, 50.0, 10_000.0, nan),
        (1.0, 0.05, 0.0, 10_000.0, nan),
        (1.0, 0.05, nan, 10_000.0, nan),
        (1.0, 0.05, 50.0, nan, nan),
        (1.0, 0.05, 50.0, -5.0, 0.0),  # nothing left to size
        (1.0, np.inf, 50.0, 10_000.0, 0.0),
    ],
)
def test_missing_and_degenerate_inputs(side, vol, price, equity, expected):
    np.testing.assert_array_equal(_size(EXACT, side, vol, price, equity), expected)


def test_default_annualization_uses_252_bars():
    # 0.16 / √252 per bar against 0.01 per bar: leverage 1.00791…, capped at 1 by default → 200 units
    assert _size({"target_vol_annual": 0.16}, 1.0, 0.01, 50.0, 10_000.0) == 200.0
    expected = np.trunc(0.15 / np.sqrt(252.0) / 0.01 * 10_000.0 / 50.0)
    assert _size({"target_vol_annual": 0.15}, 1.0, 0.01, 50.0, 10_000.0) == expected == 188.0


@pytest.mark.parametrize("params", [{}, {"target_vol_annual": 0}, {"target_vol_annual": 0.1, "lot_units": 0},
                                    {"target_vol_annual": 0.1, "max_leverage": -1}])
def test_bad_params_are_rejected(params):
    from nodes.sizing.volatility_target import VolatilityTargetParams

    with pytest.raises(ValidationError):
        VolatilityTargetParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(8)
    n = 3_000
    side = rng.choice([-1.0, 0.0, 1.0, nan], n)
    vol = np.abs(rng.normal(0.015, 0.01, n))
    vol[::50] = nan
    price = rng.uniform(1.0, 500.0, n)
    equity = rng.uniform(-1_000.0, 1e6, n)
    for params in ({"target_vol_annual": 0.15}, {"target_vol_annual": 0.3, "bars_per_year": 8760, "max_leverage": 4,
                                                  "lot_units": 10}):
        out = assert_cpu_numba_identical(NAME, params, side, vol, price, equity)
        assert (out > 0).any() and (out < 0).any()


def test_sizes_beyond_int64_stay_floats_on_both_targets():
    # the failure mode of math.trunc: a long size past 2**63 must not wrap to a short on numba
    out = assert_cpu_numba_identical(NAME, {"target_vol_annual": 0.15, "max_leverage": 100}, [1.0, -1.0], [1e-9, 1e-9],
                                     [1e-9, 1e-9], [1e12, 1e12])
    assert out[0] > 9e22 and out[1] < -9e22


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, target = check_example(tmp_path, NAME)
    sized = target[~np.isnan(target) & (target != 0.0)]
    assert (sized > 0).any() and (sized < 0).any()
    # sizes vary with volatility and equity, within the default 1× leverage
    assert len(np.unique(np.abs(sized))) > 5
    prices = run.replay.recorded["bars"]["close"].to_numpy()
    equity = np.concatenate([[10_000.0], run.replay.recorded["sim"]["equity"].to_numpy()[:-1]])
    held = ~np.isnan(target)
    assert np.all(np.abs(target[held]) * prices[held] <= equity[held])
