"""signal.cooldown: counting events, deferred vs dropped changes, the first side, parity, its example."""

import numpy as np
import pytest
from pydantic import ValidationError

from tests.nodes.op_examples import assert_cpu_numba_identical, check_example, random_sides, run_op

NAME = "signal.cooldown"
nan = np.nan


def test_a_change_holds_for_events_then_the_next_may_change():
    # input wants a new side on every event; events: 2 lets the output change on events 0, 3, 6, 9
    asked = [1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1]
    out = run_op(NAME, {"events": 2, "mode": "state"}, asked)
    np.testing.assert_array_equal(out, [1, 1, 1, -1, -1, -1, 1, 1, 1, -1, -1])
    changes = run_op(NAME, {"events": 2}, asked)
    assert np.flatnonzero(~np.isnan(changes)).tolist() == [0, 3, 6, 9]


def test_deferred_change_is_applied_when_the_cooldown_ends():
    # change-mode input: each side said once
    asked = [1, nan, -1, nan, nan, nan, 1, -1, nan, nan, nan]
    out = run_op(NAME, {"events": 2}, asked)
    # -1 at event 2 is inside the cooldown of event 0 (events 1, 2): taken at event 3, although the input
    # says nothing there; -1 at event 7 is inside the cooldown of event 6: taken at event 9
    np.testing.assert_array_equal(out, [1, nan, nan, -1, nan, nan, 1, nan, nan, -1, nan])


def test_dropped_change_is_forgotten():
    asked = [1, nan, -1, nan, nan, nan, 1, -1, nan, nan, nan]
    out = run_op(NAME, {"events": 2, "during_cooldown": "drop"}, asked)
    # -1 at event 2 is dropped, so the output is still long when 1 comes at event 6 (no change, no cooldown);
    # -1 at event 7 comes after the cooldown of event 0 and is taken
    np.testing.assert_array_equal(out, [1, nan, nan, nan, nan, nan, nan, -1, nan, nan, nan])


def test_a_request_withdrawn_during_the_cooldown_is_no_change():
    asked = [1, -1, 1, nan, nan]
    np.testing.assert_array_equal(run_op(NAME, {"events": 2}, asked), [1, nan, nan, nan, nan])


def test_nan_events_count():
    asked = [1, nan, nan, nan, -1]
    np.testing.assert_array_equal(run_op(NAME, {"events": 3}, asked), [1, nan, nan, nan, -1])
    np.testing.assert_array_equal(run_op(NAME, {"events": 4}, asked), [1, nan, nan, nan, nan])


def test_zero_events_passes_every_change():
    asked = [1, -1, 0, nan, 1, 1, -1]
    np.testing.assert_array_equal(run_op(NAME, {"events": 0}, asked), [1, -1, 0, nan, 1, nan, -1])


def test_a_first_flat_side_starts_no_cooldown_but_a_first_long_does():
    np.testing.assert_array_equal(run_op(NAME, {"events": 3}, [nan, 0, 1, -1]), [nan, 0, 1, nan])
    np.testing.assert_array_equal(run_op(NAME, {"events": 3, "mode": "state"}, [nan, 1, 0, nan, nan, nan]),
                                  [nan, 1, 1, 1, 1, 0])


def test_sides_are_read_by_their_sign():
    np.testing.assert_array_equal(run_op(NAME, {"events": 0, "mode": "state"}, [0.5, -2.0, -0.0]), [1, -1, 0])


@pytest.mark.parametrize("params", [{}, {"events": -1}, {"events": 1.5}, {"events": 2, "during_cooldown": "skip"}])
def test_bad_params_are_rejected(params):
    from nodes.signals.cooldown import CooldownParams

    with pytest.raises(ValidationError):
        CooldownParams.model_validate(params)


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(7)
    side = random_sides(rng, 3_000)
    every_event = np.where(np.isnan(side), 1.0, side)
    for params in ({"events": 0}, {"events": 3}, {"events": 5, "during_cooldown": "drop"},
                   {"events": 2, "mode": "state"}):
        for asked in (side, every_event):
            out = assert_cpu_numba_identical(NAME, params, asked)
            assert set(np.unique(out[~np.isnan(out)])) == {-1.0, 0.0, 1.0}


def test_docstring_example_composes_into_a_strategy(tmp_path):
    run, side = check_example(tmp_path, NAME)
    changes = np.flatnonzero(~np.isnan(side))
    # events: 10 → at least 11 events between two changes (a first flat side starts no cooldown)
    timed = changes[1:] if side[changes[0]] == 0.0 else changes
    assert len(timed) >= 3
    assert np.all(np.diff(timed) >= 11)
    # and the cooldown did bind: the threshold signal it reads changes more often
    trend = run.replay.recorded["trend"]["side"].to_numpy()
    assert np.count_nonzero(~np.isnan(trend)) > len(changes)
