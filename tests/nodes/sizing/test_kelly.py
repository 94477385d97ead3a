"""sizing.kelly: mean/variance, scale and cap, no bet against the edge, lot rounding, NaN rules, parity, example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, run_op

NAME = "sizing.kelly"
nan = np.nan
# powers of two, so every fraction below is exact
MEAN, VAR = 2.0**-10, 2.0**-9  # Kelly fraction 0.5
BIG_MEAN, SMALL_VAR = 2.0**-8, 2.0**-10  # Kelly fraction 4


def _size(params, side, mean, var, price=50.0, equity=10_000.0):
    return run_op(NAME, params, [side], [mean], [var], [price], [equity])[0]


@pytest.mark.parametrize(
    "params, side, mean, var, expected",
    [
        ({}, 1.0, MEAN, VAR, 100.0),  # f = 0.5 → 5000 / 50
        ({"kelly_scale": 0.5}, 1.0, MEAN, VAR, 50.0),  # half Kelly
        ({}, 1.0, BIG_MEAN, SMALL_VAR, 200.0),  # f = 4, capped at max_fraction 1
        ({"max_fraction": 2.5}, 1.0, BIG_MEAN, SMALL_VAR, 500.0),  # capped at 2.5
        ({"max_fraction": 2.5, "kelly_scale": 0.5}, 1.0, BIG_MEAN, SMALL_VAR, 400.0),  # scaled to 2, under the cap
        ({"max_fraction": 2.5}, -1.0, -BIG_MEAN, SMALL_VAR, -500.0),  # a short on a falling mean, capped too
        ({}, -1.0, -MEAN, VAR, -100.0),
    ],
)
def test_fraction_scale_and_cap(params, side, mean, var, expected):
    assert _size(params, side, mean, var) == expected


@pytest.mark.parametrize(
    "side, mean", [(1.0, -MEAN), (-1.0, MEAN), (1.0, 0.0), (-1.0, 0.0)]
)
def test_no_bet_against_the_estimated_edge(side, mean):
    size = _size({}, side, mean, VAR)
    assert size == 0.0 and not np.signbit(size)


@pytest.mark.parametrize(
    "params, side, expected",
    [
        ({}, 1.0, 104.0),  # 5000 / 48 = 104.17 truncated toward zero
        ({}, -1.0, -104.0),
        ({"lot_units": 50}, 1.0, 100.0),
        ({"lot_units": 50}, -1.0, -100.0),
        ({"lot_units": 1_000}, -1.0, 0.0),
    ],
)
def test_whole_lots_toward_zero(params, side, expected):
    size = _size(params, side, side * MEAN, VAR, price=48.0)
    assert size == expected and np.signbit(size) == (expected < 0)


@pytest.mark.parametrize(
    "side, mean, var, price, equity, expected",
    [
        (nan, MEAN, VAR, 50.0, 10_000.0, nan),
        (0.0, nan, nan, nan, nan, 0.0),
        (1.0, nan, VAR, 50.0, 10_000.0, nan),
        (1.0, MEAN, nan, 50.0, 10_000.0, nan),
        (1.0, MEAN, 0.0, 50.0, 10_000.0, nan),
        (1.0, MEAN, VAR, 0.0, 10_000.0, nan),
        (1.0, MEAN, VAR, 50.0, nan, nan),
        (1.0, MEAN, VAR, 50.0, -1.0, 0.0),
        (1.0, np.inf, VAR, 50.0, 10_000.0, 200.0),  # an infinite edge is still capped
        (1.0, np.inf, np.inf, 50.0, 10_000.0, nan),
    ],
)
def test_missing_and_degenerate_inputs(side, mean, var, price, equity, expected):
    np.testing.assert_array_equal(_size({}, side, mean, var, price, equity), expected)


@pytest.mark.parametrize("params", [{"kelly_scale": 0}, {"kelly_scale": 1.5}, {"max_fraction": 0}, {"lot_units": 0},
                                    {"fraction": 0.5}])
def test_bad_params_are_rejected(params):
    from nodes.sizing.kelly import KellyParams

    with pytest.raises(ValidationError):
        KellyParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(10)
    n = 3_000
    side = rng.choice([-1.0, 0.0, 1.0, nan], n)
    mean = rng.normal(0.0, 0.002, n)
    var = np.abs(rng.normal(0.0003, 0.0002, n))
    var[::45] = nan
    price = rng.uniform(1.0, 500.0, n)
    equity = rng.uniform(-1_000.0, 1e6, n)
    for params in ({}, {"kelly_scale": 0.5, "max_fraction": 0.8, "lot_units": 10}):
        out = assert_cpu_numba_identical(NAME, params, side, mean, var, price, equity)
        assert (out > 0).any() and (out < 0).any() and (out == 0).any()
    extreme = assert_cpu_numba_identical(NAME, {"max_fraction": 100}, [1.0, -1.0], [1.0, -1.0], [1e-3, 1e-3],
                                         [1e-9, 1e-9], [1e12, 1e12])
    assert extreme[0] > 9e22 and extreme[1] < -9e22


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, target = check_example(tmp_path, NAME)
    held = ~np.isnan(target)
    prices = run.replay.recorded["bars"]["close"].to_numpy()
    equity = np.concatenate([[10_000.0], run.replay.recorded["sim"]["equity"].to_numpy()[:-1]])
    # the cap: never more than 95 % of equity; and the edge rule: never against the estimated mean
    assert np.all(np.abs(target[held]) * prices[held] <= 0.95 * equity[held])
    mean = run.replay.recorded["returns"]["mean"].to_numpy()
    sized = held & (target != 0.0)
    assert sized.any()
    assert np.all(np.sign(target[sized]) == np.sign(mean[sized]))
