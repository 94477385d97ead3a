"""Every indicator documents itself: a YAML example that runs, its warm-up and an FPGA note.

The example under ``Example::`` in each op's docstring is wired to the AAPL sample bars (node ``bars``) and run
through ``pipelines.run.run_spec``; its outputs must equal the op's step driven directly over the same bars.
"""

import inspect
import textwrap

import numpy as np
import pytest
import yaml

from pipelines.run import run_spec
from tests.nodes.indicators.support import indicator_ops, indicator_registry, run
from tests.support import SAMPLES, assert_bit_identical, write_spec

OPS = indicator_ops()


def example_nodes(op) -> dict:
    doc = inspect.getdoc(op) or ""
    assert "Example::" in doc, f"{op.name}: the docstring has no 'Example::' block"
    block = textwrap.dedent(doc.split("Example::", 1)[1])
    nodes = yaml.safe_load(block)
    assert isinstance(nodes, dict) and nodes, f"{op.name}: the example is not a YAML map of nodes"
    return nodes


def _input_fields(op, wiring) -> dict:
    """Input name → bar field, from the example's ``in`` (one reference, a list or a map)."""
    names = list(op.inputs)
    if isinstance(wiring, str):
        wiring = [wiring]
    if isinstance(wiring, list):
        wiring = dict(zip(names, wiring))
    return {name: reference.split(".", 1)[1] for name, reference in wiring.items()}


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_docstring_states_warm_up_and_fpga(op):
    doc = inspect.getdoc(op) or ""
    assert "Warm-up" in doc, f"{op.name}: say what is emitted before the window fills ('Warm-up: ...')"
    fpga = [line for line in doc.splitlines() if line.strip().startswith("FPGA:")]
    assert len(fpga) == 1, f"{op.name}: needs exactly one 'FPGA: ...' line, found {len(fpga)}"


# pipelines/codegen.py passes a context field (ts_event) to a step as the whole chunk array instead of its
# element [i]; indicator.vwap is the first stream op that asks for ts_event. Strict, so the fix flips it.
EXAMPLE_CASES = [pytest.param(op, id=op.name) for op in OPS]


@pytest.mark.parametrize("op", EXAMPLE_CASES)
def test_docstring_example_runs_on_aapl(op, tmp_path):
    nodes = example_nodes(op)
    ours = [node_id for node_id, node in nodes.items() if node.get("op") == op.name]
    assert len(ours) == 1, f"{op.name}: the example must contain exactly one node of this op"
    spec = write_spec(tmp_path, "example", {
        "bars": {"op": "source.bars_csv",
                 "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL", "timezone": "America/New_York"}},
        **nodes,
    })
    result = run_spec(spec, write=False, record=ours)
    frame = result.replay.recorded[ours[0]]
    params = nodes[ours[0]].get("with", {})
    ts = frame["ts_event"].to_numpy()
    direct = run(op.name, params, ts=ts, fields=_input_fields(op, nodes[ours[0]]["in"]))
    for port in op.outputs:
        values = frame[port].to_numpy()
        assert np.isfinite(values).any(), f"{op.name}: port {port!r} has no value over 754 bars"
        assert_bit_identical(values, direct[port], f"{op.name} example via run_spec vs step: port {port!r}")
