"""Every research op documents itself: an imperative first line, frozen params, and a YAML example that runs."""

import inspect
import textwrap

import pytest
from pydantic import ValidationError

from nodes.contract import default_registry
from pipelines.run import run_spec
from tests.nodes.research.support import SAMPLE_INSTRUMENTS, SAMPLES
from tests.support import write_spec

OPS = [op for op in default_registry() if op.name.startswith("research.")]
EXPECTED = {"research.volatility", "research.intraday_profile", "research.return_stats", "research.autocorrelation",
            "research.correlation", "research.resample"}


def example_nodes(op) -> dict:
    import yaml

    doc = inspect.getdoc(op) or ""
    assert "Example::" in doc, f"{op.name}: the docstring has no 'Example::' block"
    nodes = yaml.safe_load(textwrap.dedent(doc.split("Example::", 1)[1]))
    assert isinstance(nodes, dict) and nodes, f"{op.name}: the example is not a YAML map of nodes"
    return nodes


def test_every_research_op_is_registered():
    assert {op.name for op in OPS} == EXPECTED
    assert all(op.kind == "table" and op.targets == {"cpu"} for op in OPS)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_docstring_and_params(op):
    first = op.summary()
    assert first and not first.split()[0].endswith("s") and first.endswith("."), f"{op.name}: {first!r} is not imperative"
    assert "Raises" in inspect.getdoc(op) or "Error" in inspect.getdoc(op), f"{op.name}: say what it raises"
    config = op.Params.model_config
    assert config["frozen"] is True and config["extra"] == "forbid"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        op.Params.model_validate({**_required(op), "no_such_key": 1})
    for name, field in op.Params.model_fields.items():
        assert field.description, f"{op.name}.{name} has no description"


def _required(op) -> dict:
    return {"volatility": {"estimator": "parkinson"}, "intraday_profile": {"timezone": "UTC"},
            "resample": {"every": "1d", "timezone": "UTC"}}.get(op.name.split(".")[1], {})


def test_volatility_docstring_cites_every_estimator():
    doc = inspect.getdoc(default_registry().get("research.volatility"))
    for reference in ("Parkinson (1980)", "Garman & Klass (1980)", "Rogers & Satchell (1991)", "Yang & Zhang (2000)"):
        assert reference in doc


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
def test_docstring_example_runs_on_the_samples(op, tmp_path):
    nodes = example_nodes(op)
    ours = [node_id for node_id, node in nodes.items() if node.get("op") == op.name]
    assert len(ours) == 1, f"{op.name}: the example must contain exactly one node of this op"
    spec = write_spec(tmp_path, "example", {
        "bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "{instrument}.csv.gz"),
                                                   "instruments": SAMPLE_INSTRUMENTS, "timezone": "America/New_York"}},
        **nodes,
    })
    result = run_spec(spec, write=False)
    tables = result.replay.tables[ours[0]]
    assert tables["out"].height > 0
    direct = op.run(op.Params.model_validate(nodes[ours[0]].get("with", {})), {name: result.replay.recorded["bars"]
                                                                             for name in op.inputs})
    assert set(direct) == set(tables)
    for name, frame in direct.items():
        assert frame.equals(tables[name]), f"{op.name}: table {name!r} via run_spec differs from run()"
    instruments = tables["out"]["instrument"].unique(maintain_order=True).to_list()
    assert instruments == SAMPLE_INSTRUMENTS, f"{op.name}: instruments {instruments}"
