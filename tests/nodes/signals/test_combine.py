"""signal.and / signal.or: truth tables, held inputs, silent inputs, chaining (and is associative, or is not)."""

import itertools

import numpy as np

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, random_sides, run_op

nan = np.nan
SIDES = (-1.0, 0.0, 1.0)
PAIRS = list(itertools.product(SIDES, SIDES))


def _table(name: str) -> dict:
    a, b = zip(*PAIRS)
    return dict(zip(PAIRS, run_op(name, {"mode": "state"}, a, b)))


def test_and_truth_table():
    assert _table("signal.and") == {
        (-1.0, -1.0): -1.0, (-1.0, 0.0): 0.0, (-1.0, 1.0): 0.0,
        (0.0, -1.0): 0.0, (0.0, 0.0): 0.0, (0.0, 1.0): 0.0,
        (1.0, -1.0): 0.0, (1.0, 0.0): 0.0, (1.0, 1.0): 1.0,
    }


def test_or_truth_table():
    assert _table("signal.or") == {
        (-1.0, -1.0): -1.0, (-1.0, 0.0): -1.0, (-1.0, 1.0): 0.0,
        (0.0, -1.0): -1.0, (0.0, 0.0): 0.0, (0.0, 1.0): 1.0,
        (1.0, -1.0): 0.0, (1.0, 0.0): 1.0, (1.0, 1.0): 1.0,
    }


def test_inputs_are_held_between_their_sides():
    # a speaks once (change mode), b later: the combination still sees a's long
    a = [1, nan, nan, nan, -1, nan]
    b = [nan, nan, 1, nan, nan, 0]
    np.testing.assert_array_equal(run_op("signal.and", {}, a, b), [0, nan, 1, nan, 0, nan])
    np.testing.assert_array_equal(run_op("signal.or", {}, a, b), [1, nan, nan, nan, 0, -1])
    np.testing.assert_array_equal(run_op("signal.and", {"mode": "state"}, a, b), [0, 0, 1, 1, 0, 0])


def test_nan_until_an_input_speaks_and_a_silent_input_counts_as_flat():
    a = [nan, nan, 1, nan]
    b = [nan, nan, nan, nan]
    np.testing.assert_array_equal(run_op("signal.and", {"mode": "state"}, a, b), [nan, nan, 0, 0])
    np.testing.assert_array_equal(run_op("signal.or", {"mode": "state"}, a, b), [nan, nan, 1, 1])


def test_sides_are_read_by_their_sign():
    np.testing.assert_array_equal(run_op("signal.and", {"mode": "state"}, [0.5, -3.0], [2.0, -0.1]), [1, -1])


def _chain(name: str, a, b, c, mode="state"):
    return run_op(name, {"mode": mode}, run_op(name, {"mode": mode}, a, b), c)


def test_and_chains_into_all_agree():
    # and(and(a, b), c) is "all three agree" = a vote of three with equal weights that needs all three
    rng = np.random.default_rng(4)
    a, b, c = (random_sides(rng, 3_000) for _ in range(3))
    for mode in ("state", "change"):
        chained = _chain("signal.and", a, b, c, mode)
        unanimous = run_op("signal.vote", {"threshold": 2.0, "mode": mode}, a, b, c)
        np.testing.assert_array_equal(chained, unanimous, err_msg=mode)
    # and is associative: the grouping does not matter
    np.testing.assert_array_equal(_chain("signal.and", a, b, c), _chain("signal.and", b, c, a))


def test_or_chain_forgets_a_conflict():
    # the documented limit: or(or(+1, -1), +1) is +1, where a three-way "any without conflict" would be flat
    assert _chain("signal.or", [1.0], [-1.0], [1.0])[0] == 1.0
    assert run_op("signal.vote", {"mode": "state"}, [1.0], [-1.0], [1.0])[0] == 1.0
    assert run_op("signal.vote", {"threshold": 1.0, "mode": "state"}, [1.0], [-1.0], [1.0])[0] == 0.0


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(5)
    a, b = random_sides(rng, 3_000), random_sides(rng, 3_000)
    for name in ("signal.and", "signal.or"):
        for mode in ("change", "state"):
            out = assert_cpu_numba_identical(name, {"mode": mode}, a, b)
            assert set(np.unique(out[~np.isnan(out)])) == {-1.0, 0.0, 1.0}


def test_and_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, "signal.and")
    assert 1.0 in side


def test_or_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, "signal.or")
    assert set(np.unique(side[~np.isnan(side)])) == {-1.0, 0.0, 1.0}
