"""signal.vote: weighted scores against the threshold, abstentions, held inputs, params, parity, its example."""

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, random_sides, run_op

NAME = "signal.vote"
nan = np.nan
SIDES = (-1.0, 0.0, 1.0)
TRIPLES = list(itertools.product(SIDES, SIDES, SIDES))


def _votes(params: dict) -> dict:
    a, b, c = zip(*TRIPLES)
    return dict(zip(TRIPLES, run_op(NAME, {**params, "mode": "state"}, a, b, c)))


@pytest.mark.parametrize(
    "params, rule",
    [
        # equal weights, threshold 0: the net direction
        ({}, lambda a, b, c: np.sign(a + b + c)),
        # equal weights, threshold 1: a net margin of two
        ({"threshold": 1.0}, lambda a, b, c: np.sign(a + b + c) if abs(a + b + c) >= 2 else 0.0),
        # threshold 2: unanimous
        ({"threshold": 2.0}, lambda a, b, c: a if a == b == c else 0.0),
        # a counts double, threshold 1: a alone is enough, b and c together too, one of them against a flattens
        ({"weights": [2, 1, 1], "threshold": 1.0},
         lambda a, b, c: np.sign(2 * a + b + c) if abs(2 * a + b + c) > 1 else 0.0),
    ],
)
def test_weighted_score_against_threshold(params, rule):
    votes = _votes(params)
    for triple, got in votes.items():
        assert got == rule(*triple), f"{params} {triple}: {got}"


def test_documented_cases_of_weights_2_1_1():
    votes = _votes({"weights": [2, 1, 1], "threshold": 1.0})
    assert votes[(1.0, 0.0, 0.0)] == 1.0  # a alone
    assert votes[(0.0, 1.0, 1.0)] == 1.0  # b and c together
    assert votes[(0.0, 1.0, 0.0)] == 0.0  # one of them alone
    assert votes[(1.0, -1.0, 0.0)] == 0.0  # one of them against a
    assert votes[(1.0, -1.0, -1.0)] == 0.0
    assert votes[(-1.0, 0.0, 0.0)] == -1.0


def test_fractional_weights_score_exactly():
    # 0.5 + 0.25 = 0.75 > 0.7 long; 0.5 - 0.25 = 0.25 < 0.7 flat; weights are exact binary fractions
    params = {"weights": [0.5, 0.25, 0.0], "threshold": 0.7, "mode": "state"}
    out = run_op(NAME, params, [1, 1, -1], [1, -1, -1], [-1, -1, 1])
    np.testing.assert_array_equal(out, [1, 0, -1])


def test_held_inputs_silent_inputs_abstain_and_change_mode():
    a = [nan, 1, nan, nan, nan, nan]
    b = [nan, nan, 1, nan, -1, nan]
    c = [nan, nan, nan, nan, nan, -1]
    params = {"threshold": 1.0}
    np.testing.assert_array_equal(run_op(NAME, {**params, "mode": "state"}, a, b, c), [nan, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(run_op(NAME, params, a, b, c), [nan, 0, 1, nan, 0, nan])


@pytest.mark.parametrize("params", [{"weights": [0, 0, 0]}, {"weights": [1, -1, 1]}, {"weights": [1, 1]},
                                    {"threshold": -1}])
def test_bad_params_are_rejected(params):
    from nodes.signals.vote import VoteParams

    with pytest.raises(ValidationError):
        VoteParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(6)
    a, b, c = (random_sides(rng, 3_000) for _ in range(3))
    for params in ({}, {"weights": [2, 1, 1], "threshold": 1.0}, {"weights": [0.3, 0.3, 0.4], "threshold": 0.3,
                                                                   "mode": "state"}):
        out = assert_cpu_numba_identical(NAME, params, a, b, c)
        assert set(np.unique(out[~np.isnan(out)])) == {-1.0, 0.0, 1.0}


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, NAME)
    assert set(np.unique(side[~np.isnan(side)])) == {-1.0, 0.0, 1.0}
