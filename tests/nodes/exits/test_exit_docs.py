"""Every exit op documents what STYLE.md asks, and its docstring example runs as a strategy on AAPL.

The example's recorded output must be bit-identical to stepping the op by hand over the values its producers
recorded (the engine, its fused segments and the venue's feedback add nothing), identical on numba, and every
exit it fires must be filled by the venue at the next bar's open.
"""

import numpy as np
import pytest

from nodes.contract import default_registry
from pipelines.run import run_spec
from tests.nodes.exits.support import columns, example_spec
from tests.nodes.op_examples import docstring_example, replayed_inputs
from tests.support import assert_bit_identical, assert_frames_identical, drive

EXITS = [op for op in default_registry() if op.name.startswith("exit.")]


def test_the_four_exits_are_registered():
    assert sorted(op.name for op in EXITS) == ["exit.stop_loss", "exit.take_profit", "exit.time_stop",
                                               "exit.trailing_stop"]


@pytest.mark.parametrize("op", EXITS, ids=lambda op: op.name)
def test_docstring_states_rules_limits_fpga_and_example(op):
    doc = " ".join((op.__doc__ or "").split())
    assert op.summary().startswith("Go flat "), f"{op.name}: summary {op.summary()!r}"
    for needed in ("NaN", "next bar's open", "until the incoming target changes side", "known limitation",
                   "prev(sim.position)"):
        assert needed in doc, f"{op.name}: say {needed!r}"
    if "entry_price" in op.inputs:
        assert "gap" in doc, f"{op.name}: say that a gap can fill the exit beyond its level"
    assert "\n    FPGA: " in op.__doc__, f"{op.name}: add an 'FPGA:' line"
    assert docstring_example(op.name)
    for name, field in op.Params.model_fields.items():
        assert field.description, f"{op.name}: param {name!r} has no description"
        assert name.endswith(("_pct", "bars")), f"{op.name}: param {name!r} names no unit"


@pytest.mark.parametrize("op", EXITS, ids=lambda op: op.name)
def test_example_runs_fires_and_fills_at_the_next_open(tmp_path, op):
    path, node_id = example_spec(tmp_path, op.name)
    runs = {}
    for place in ("cpu", "numba"):
        streams = ["fast", "slow", "cross", "target", node_id, "sim"]
        runs[place] = run_spec(path, places=[f"{n}={place}" for n in streams], write=False,
                               record=["bars", "target", node_id, "sim"])
    run = runs["cpu"]
    for node in ("target", node_id, "sim"):
        assert_frames_identical(run.replay.recorded[node], runs["numba"].replay.recorded[node], f"{node} cpu vs numba")

    params = op.Params.model_validate(docstring_example(op.name)[node_id]["with"])
    by_hand = drive(op, params, [], replayed_inputs(run, node_id), "cpu")[0]
    out = run.replay.recorded[node_id]["target"].to_numpy()
    assert_bit_identical(out, by_hand, f"{op.name} example: engine vs by hand")

    incoming = run.replay.recorded["target"]["target"].to_numpy()
    sim, bars = columns(run.replay.recorded["sim"]), columns(run.replay.recorded["bars"])
    before = np.concatenate([[0.0], sim["position"][:-1]])
    # an exit: flat out while the strategy did not ask for flat, on a position the bar opened with and holds
    fired = np.flatnonzero((out == 0.0) & (incoming != 0.0) & (before != 0.0) & (sim["position"] != 0.0))
    fired = fired[fired + 1 < len(out)]
    assert len(fired) >= 2, f"{op.name} example: the exit never fires on AAPL"
    np.testing.assert_array_equal(sim["fill_qty"][fired + 1], -sim["position"][fired])
    np.testing.assert_array_equal(sim["fill_price"][fired + 1], bars["open"][fired + 1])
    assert (sim["position"][fired + 1] == 0.0).all()
    assert run.backtest.stats["# Trades"] >= 2
