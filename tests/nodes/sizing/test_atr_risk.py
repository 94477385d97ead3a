"""sizing.atr_risk: percent-risk units, the leverage cap, lot rounding on both sides, NaN rules, parity, example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, run_op

NAME = "sizing.atr_risk"
nan = np.nan
# risk 1/64 and 2 ATRs: exact binary fractions, so the sizes below are exact
EXACT = {"risk_fraction": 0.015625, "atr_multiple": 2.0, "max_leverage": 2.0}


def _size(params, side, atr, price, equity):
    return run_op(NAME, params, [side], [atr], [price], [equity])[0]


@pytest.mark.parametrize(
    "side, atr, price, equity, expected",
    [
        (1.0, 0.5, 50.0, 10_240.0, 160.0),  # 160 × 2 × 0.5 = 160 = 10240 / 64 at risk
        (-1.0, 0.5, 50.0, 10_240.0, -160.0),
        (1.0, 2.0, 50.0, 10_240.0, 40.0),  # a wider ATR, a smaller position
        (1.0, 0.75, 50.0, 10_240.0, 106.0),  # 106.67 truncated toward zero
        (-1.0, 0.75, 50.0, 10_240.0, -106.0),
        (1.0, 0.125, 50.0, 10_240.0, 409.0),  # 640 units would be 3.1× equity: capped at 2 × 10240 / 50 = 409.6
        (-1.0, 0.125, 50.0, 10_240.0, -409.0),
    ],
)
def test_units_risk_a_fraction_of_equity(side, atr, price, equity, expected):
    assert _size(EXACT, side, atr, price, equity) == expected


@pytest.mark.parametrize("side, expected", [(1.0, 100.0), (-1.0, -100.0)])
def test_whole_lots_toward_zero(side, expected):
    # 160 units: 1 lot of 100, or 6 lots of 25
    assert _size({**EXACT, "lot_units": 100}, side, 0.5, 50.0, 10_240.0) == expected
    assert _size({**EXACT, "lot_units": 25}, side, 0.5, 50.0, 10_240.0) == 150.0 * side


def test_a_short_smaller_than_one_lot_is_plain_zero():
    size = _size({**EXACT, "lot_units": 1_000}, -1.0, 0.5, 50.0, 10_240.0)
    assert size == 0.0 and not np.signbit(size)


@pytest.mark.parametrize(
    "side, atr, price, equity, expected",
    [
        (nan, 0.5, 50.0, 10_240.0, nan),
        (0.0, nan, nan, nan, 0.0),
        (1.0, nan, 50.0, 10_240.0, nan),
        (1.0, 0.0, 50.0, 10_240.0, nan),
        (1.0, 0.5, -1.0, 10_240.0, nan),
        (1.0, 0.5, 50.0, nan, nan),
        (-1.0, 0.5, 50.0, 0.0, 0.0),
    ],
)
def test_missing_and_degenerate_inputs(side, atr, price, equity, expected):
    np.testing.assert_array_equal(_size(EXACT, side, atr, price, equity), expected)


def test_defaults_one_percent_over_two_atrs_at_most_all_in():
    # 0.01 × 10000 / (2 × 1.25) = 40 units; 0.01 × 10000 / (2 × 0.1) = 500 units, capped at 10000 / 50 = 200
    assert _size({}, 1.0, 1.25, 50.0, 10_000.0) == 40.0
    assert _size({}, 1.0, 0.1, 50.0, 10_000.0) == 200.0


@pytest.mark.parametrize("params", [{"risk_fraction": 0}, {"risk_fraction": 1.5}, {"atr_multiple": 0},
                                    {"lot_units": -1}, {"stop": 2}])
def test_bad_params_are_rejected(params):
    from nodes.sizing.atr_risk import AtrRiskParams

    with pytest.raises(ValidationError):
        AtrRiskParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(9)
    n = 3_000
    side = rng.choice([-1.0, 0.0, 1.0, nan], n)
    price = rng.uniform(1.0, 500.0, n)
    atr = price * np.abs(rng.normal(0.02, 0.01, n))
    atr[::40] = nan
    equity = rng.uniform(-1_000.0, 1e6, n)
    for params in ({}, {"risk_fraction": 0.02, "atr_multiple": 3, "max_leverage": 0.5, "lot_units": 10}):
        out = assert_cpu_numba_identical(NAME, params, side, atr, price, equity)
        assert (out > 0).any() and (out < 0).any()
    extreme = assert_cpu_numba_identical(NAME, {"max_leverage": 100}, [1.0, -1.0], [1e-12, 1e-12], [1e-9, 1e-9],
                                         [1e12, 1e12])
    assert extreme[0] > 1e21 and extreme[1] < -1e21  # 5e21: past int64, and still long / short


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, target = check_example(tmp_path, NAME)
    sized = target[~np.isnan(target) & (target != 0.0)]
    assert (sized > 0).any() and (sized < 0).any()
    # where the cap does not bind, the loss at the stop is at most 1 % of the equity the size was computed from
    atr = run.replay.recorded["atr"]["out"].to_numpy()
    equity = np.concatenate([[10_000.0], run.replay.recorded["sim"]["equity"].to_numpy()[:-1]])
    at_stop = np.abs(target) * 2.0 * atr
    held = ~np.isnan(target)
    assert np.all(at_stop[held] <= 0.01 * equity[held] * (1 + 1e-12))
