"""`place: auto` from a spec file to a plan: the planner resolves it when the plan compiles, and `tickloom plan`
prints the costed tick-to-trade path and fails (exit 2) when the spec's budget cannot be met."""

import yaml

from pipelines.plan import compile_plan
from pipelines.spec import load_spec
from runtime.cli import main
from tests.support import sma_cross_copy


def _auto_spec(tmp_path, budget: str):
    path = sma_cross_copy(tmp_path, defaults={"place": "auto"})
    document = yaml.safe_load(path.read_text())
    document["placement"] = {"latency_budget": budget}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_auto_nodes_are_placed_before_the_plan_compiles(tmp_path):
    spec = load_spec(_auto_spec(tmp_path, "5us"))
    assert {n.place for n in spec.nodes.values() if n.op.kind == "stream"} == {"auto"}
    plan = compile_plan(spec)
    placed = {n: plan.graph.nodes[n].definition.place for n in plan.graph.order}
    assert "auto" not in placed.values()
    assert placed["bars"] == "cpu"
    assert plan.placement is not None and plan.placement.placement.budget_met
    # the budget is part of the spec's identity
    assert load_spec(_auto_spec(tmp_path, "6us")).spec_hash != spec.spec_hash


def test_plan_command_reports_a_budget_it_cannot_meet(tmp_path, capsys):
    assert main(["plan", str(_auto_spec(tmp_path, "5us"))]) == 0
    assert "tick-to-trade path" in capsys.readouterr().out
    assert main(["plan", str(_auto_spec(tmp_path, "5us")), "--budget", "10ns"]) == 2
    out = capsys.readouterr().out
    assert "budget 10.0 ns" in out
