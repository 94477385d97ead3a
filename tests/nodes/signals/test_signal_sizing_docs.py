"""Every signal and sizing op documents what STYLE.md asks: an imperative summary, NaN rules, FPGA, an example."""

import pytest

from nodes.contract import default_registry
from tests.nodes.op_examples import docstring_example

OPS = [op for op in default_registry() if op.name.split(".")[0] in ("signal", "sizing")]
# first words of the imperative summaries; a summary starting with a noun ("Target position = …") fails
VERBS = ("Go", "Fade", "Pass", "Want", "Choose", "Hold", "Size", "Turn")


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_docstring_has_summary_nan_rules_fpga_note_and_example(op):
    doc = op.__doc__ or ""
    assert op.summary().split()[0] in VERBS, f"{op.name}: summary {op.summary()!r} is not imperative"
    assert "NaN" in doc, f"{op.name}: say what a NaN input does"
    assert "\n    FPGA: " in doc, f"{op.name}: add an 'FPGA:' line"
    assert docstring_example(op.name), f"{op.name}: add an Example:: block"
    for field_name, field in op.Params.model_fields.items():
        assert field.description, f"{op.name}: param {field_name!r} has no description"
