"""sizing.rebalance: the schedule per instrument, the drift rule and its scale, NaN rules, parity, and its
example as a strategy (fewer orders than the target it rebalances, every one at a rebalance point)."""

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.contract import default_registry
from pipelines.run import run_spec
from tests.nodes.exits.support import columns, example_spec
from tests.nodes.op_examples import assert_cpu_numba_identical, docstring_example, replayed_inputs, run_op
from tests.support import SAMPLES, assert_bit_identical, drive, write_spec

NAME = "sizing.rebalance"
nan = np.nan
NO_DRIFT = float("inf")


def test_schedule_passes_the_first_event_and_every_every_bars_th():
    target = np.arange(1.0, 11.0)
    out = run_op(NAME, {"every_bars": 3, "drift_fraction": NO_DRIFT}, target, np.full(10, 5.0))
    np.testing.assert_array_equal(out, [1, nan, nan, 4, nan, nan, 7, nan, nan, 10])
    out = run_op(NAME, {"every_bars": 1, "drift_fraction": NO_DRIFT}, target, np.full(10, 5.0))
    np.testing.assert_array_equal(out, target)


def test_a_nan_target_on_a_scheduled_event_is_nan_and_the_schedule_keeps_counting():
    out = run_op(NAME, {"every_bars": 2, "drift_fraction": NO_DRIFT}, [nan, 2.0, 3.0, 4.0, 5.0], [0.0] * 5)
    np.testing.assert_array_equal(out, [nan, nan, 3.0, nan, 5.0])


@pytest.mark.parametrize(
    "target, position, passes",
    [
        (130.0, 100.0, True),  # |130 − 100| / 100 = 0.3 > 0.25
        (125.0, 100.0, False),  # 0.25 does not exceed 0.25
        (80.0, 100.0, False),  # 0.2
        (70.0, 100.0, True),  # 0.3
        (0.0, 100.0, True),  # an exit: drift 1
        (-100.0, 100.0, True),  # a reversal: drift 2
        (1.0, 0.0, True),  # an entry from flat: 1 / max(0, lot 1) = 1
        (1.0, nan, True),  # before the venue's first event: flat
        (0.0, 0.0, False),
    ],
)
def test_drift_passes_a_target_far_enough_from_the_position(target, position, passes):
    # every_bars large: only the first event is scheduled, so a second event tests the drift alone
    out = run_op(NAME, {"every_bars": 1_000_000_000, "drift_fraction": 0.25}, [nan, target], [position, position])
    np.testing.assert_array_equal(out, [nan, target if passes else nan])


def test_right_after_a_pass_the_drift_is_measured_from_the_target_passed():
    # event 1 passes an entry of 100 (drift from flat); on event 2 the venue still reports flat (the order
    # fills at event 2's open, after this op has run), so 103 is measured from 100, not from 0: kept
    params = {"every_bars": 1_000_000_000, "drift_fraction": 0.25}
    out = run_op(NAME, params, [nan, 100.0, 103.0, 104.0, 140.0], [0.0, 0.0, 0.0, 100.0, 100.0])
    np.testing.assert_array_equal(out, [nan, 100.0, nan, nan, 140.0])
    # without a pass on the previous event the venue's position is used again
    out = run_op(NAME, params, [nan, 100.0, nan, 103.0], [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out, [nan, 100.0, nan, 103.0])


def test_lot_units_scale_the_drift_of_small_positions():
    params = {"every_bars": 1_000_000_000, "drift_fraction": 0.25, "lot_units": 100.0}
    # 20 units from flat is 0.2 of a lot: kept; 30 is 0.3: passed; from 50 held, 80 is 30 / 100 = 0.3: passed
    out = run_op(NAME, params, [nan, 20.0, 30.0, 80.0], [0.0, 0.0, 0.0, 50.0])
    np.testing.assert_array_equal(out, [nan, nan, 30.0, 80.0])


def test_zero_drift_fraction_passes_every_change():
    out = run_op(NAME, {"every_bars": 1_000_000_000, "drift_fraction": 0.0}, [5.0, 5.0, 6.0, 6.0],
                 [0.0, 5.0, 5.0, 6.0])
    np.testing.assert_array_equal(out, [5.0, nan, 6.0, nan])


@pytest.mark.parametrize("params", [{"every_bars": 0}, {"every_bars": 2.5}, {"drift_fraction": -0.1},
                                    {"lot_units": 0}, {"every": 5}])
def test_bad_params_are_rejected(params):
    from nodes.sizing.rebalance import RebalanceParams

    with pytest.raises(ValidationError):
        RebalanceParams.model_validate(params)


def test_docstring_example_and_param_descriptions():
    doc = default_registry().get(NAME).__doc__
    assert "prev(sim.position)" in doc and "NaN" in doc and "\n    FPGA: " in doc
    assert docstring_example(NAME)["target"]["op"] == NAME


def test_cpu_and_numba_are_bit_identical():
    rng = np.random.default_rng(21)
    n = 3_000
    target = np.where(rng.random(n) < 0.2, nan, np.round(rng.normal(0, 100, n)))
    position = np.where(rng.random(n) < 0.01, nan, np.round(rng.normal(0, 100, n)))
    for params in ({}, {"every_bars": 7, "drift_fraction": 0.0, "lot_units": 10}, {"every_bars": 1}):
        out = assert_cpu_numba_identical(NAME, params, target, position)
        assert 0 < np.isnan(out).sum() < n


def test_example_runs_and_trades_only_at_rebalance_points(tmp_path):
    path, node_id = example_spec(tmp_path, NAME)
    run = run_spec(path, write=False, record=["bars", "sized", node_id, "sim"])
    op = default_registry().get(NAME)
    params = op.Params.model_validate(docstring_example(NAME)[node_id]["with"])
    by_hand = drive(op, params, [], replayed_inputs(run, node_id), "cpu")[0]
    out = run.replay.recorded[node_id]["target"].to_numpy()
    assert_bit_identical(out, by_hand, "rebalance example: engine vs by hand")
    sized = run.replay.recorded["sized"]["target"].to_numpy()
    sim = columns(run.replay.recorded["sim"])
    before = np.concatenate([[0.0], sim["position"][:-1]])
    orders = np.flatnonzero(~np.isnan(out) & (out != before))
    # every order is on a scheduled event or beyond the drift; the sized target alone would trade far more
    scheduled = np.arange(len(out)) % params.every_bars == 0
    just_passed = np.concatenate([[nan], out[:-1]])
    held = np.where(np.isnan(just_passed), before, just_passed)
    drifted = np.abs(out - held) / np.maximum(np.abs(held), params.lot_units) > params.drift_fraction
    assert (scheduled[orders] | drifted[orders]).all()
    assert len(orders) >= 10
    assert np.sum(~np.isnan(sized) & (sized != before)) > 5 * len(orders)
    assert run.backtest.stats["# Trades"] >= 5


def test_each_instrument_keeps_its_own_schedule(tmp_path):
    """Four instruments: an instrument's events are counted, not the account's."""
    nodes = {
        "bars": {"op": "source.bars_csv",
                 "with": {"path": str(SAMPLES / "{instrument}.csv.gz"), "instruments": ["AAPL", "MSFT", "IBM", "KO"],
                          "timezone": "America/New_York"}},
        "target": {"op": "sizing.fixed_units", "in": "bars.close", "with": {"units": 1}},
        "rebalanced": {"op": NAME, "in": {"target": "target", "position": "prev(sim.position)"},
                       "with": {"every_bars": 5, "drift_fraction": NO_DRIFT}},
        "sim": {"op": "backtest.bar_venue", "in": {"market": "bars", "target": "rebalanced"}},
    }
    run = run_spec(write_spec(tmp_path, "keyed", nodes), write=False, record=["rebalanced"])
    frame = run.replay.recorded["rebalanced"]
    for name in ("AAPL", "MSFT", "IBM", "KO"):
        out = frame.filter(frame["instrument"].cast(str) == name)["target"].to_numpy()
        assert len(out) > 700
        np.testing.assert_array_equal(np.flatnonzero(~np.isnan(out)), np.arange(0, len(out), 5), err_msg=name)
