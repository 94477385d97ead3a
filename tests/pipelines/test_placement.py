"""Placement of a real spec: the problem built from its graph, costs, the plan table, applying the result."""

import json
from pathlib import Path

import pytest

from hardware.planner import TargetCost, brute_force
from hardware.profile import HardwareProfile
from nodes.contract import default_registry
from nodes.errors import SpecError
from pipelines.placement import (
    apply_placement, describe_placement, fpga_cost, node_ready_ns, placement_json, plan_placement,
)
from pipelines.plan import compile_plan
from pipelines.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
SMA_CROSS = REPO / "specs" / "strategies" / "sma_cross.yaml"
STEP_NS = {
    "indicator.sma": {"cpu": 450.0, "numba": 1.5},
    "signal.crossover": {"cpu": 300.0, "numba": 1.0},
    "sizing.fraction_of_equity": {"cpu": 600.0, "numba": 1.25},
}


def fixed_profile(**device) -> HardwareProfile:
    """The default profile with host costs written down, so the test does not depend on this machine's speed."""
    return HardwareProfile.model_validate({
        "name": "test",
        "host": {"numba_call_ns": 250, "python_call_ns": 50, "step_ns": STEP_NS},
        "device": device,
    })


@pytest.fixture(scope="module")
def spec():
    return load_spec(SMA_CROSS)


def test_problem_is_built_from_the_graph(spec):
    report = plan_placement(spec, fixed_profile())
    problem = report.problem
    assert [n.id for n in problem.nodes] == ["fast", "slow", "cross", "target"]
    assert {(e.producer, e.consumer, e.bytes_per_event) for e in problem.edges} == {
        ("fast", "cross", 8), ("slow", "cross", 8), ("cross", "target", 8)}  # prev(sim.equity) is not an edge
    assert {n.id for n in problem.nodes if n.wire_bytes} == {"fast", "slow", "target"}  # they read bars.close
    assert report.order_nodes == ["target"]  # the venue reads its target as the order
    assert set(report.not_placed) == {"bars", "sim"} and "venue" in report.not_placed["sim"]
    assert report.auto == []  # nothing says auto: every node keeps its written place (numba)
    assert report.placement.assignment == {n: "numba" for n in ("fast", "slow", "cross", "target")}


def test_the_explicit_placement_is_costed_by_hand(spec):
    report = plan_placement(spec, fixed_profile(), budget_ns=2000)
    p = report.placement
    wire_in = 96 * 8 / 10e9 * 1e9 + 295
    order_out = 295 + 128 * 8 / 10e9 * 1e9
    expected = wire_in + 250 + 1.5 + 1.5 + 1.0 + 1.25 + order_out
    assert p.tick_to_trade_ns == pytest.approx(expected, abs=0.002)
    assert p.slack_ns == pytest.approx(2000 - expected, abs=0.002) and p.budget_met
    assert sum(s.ns for s in p.path) == pytest.approx(p.tick_to_trade_ns)
    ready = node_ready_ns(report)
    assert ready["fast"] < ready["cross"] < ready["target"] < p.tick_to_trade_ns
    assert all(n.cost.origin == "profile" for n in p.nodes)


def test_auto_places_every_node_and_matches_brute_force(spec):
    report = plan_placement(spec, fixed_profile(), auto="all", budget_ns=5000)
    assert report.auto == ["fast", "slow", "cross", "target"]
    reference = brute_force(report.problem)
    assert report.placement.assignment == reference.assignment
    assert report.placement.optimal
    candidates = {n.id: set(n.costs) for n in report.problem.nodes}
    assert all({"cpu", "numba"} <= c for c in candidates.values())
    assert "fpga" not in candidates["target"]  # no FPGA model for the sizing op: said so, not offered
    assert any("fpga:" in why for why in report.unavailable["target"])


def test_fpga_costs_come_from_the_fpga_model(spec):
    sma = default_registry().get("indicator.sma")
    cost = fpga_cost(sma, sma.Params(window=10), 322_265_625)
    if isinstance(cost, str):
        pytest.skip(f"the FPGA target cannot cost indicator.sma here: {cost}")
    assert isinstance(cost, TargetCost) and cost.cycles >= 1 and cost.resources.lut > 0
    assert cost.latency_ns == pytest.approx(cost.cycles * 1e9 / 322_265_625)
    report = plan_placement(spec, fixed_profile(), auto="all")
    fast = next(n for n in report.problem.nodes if n.id == "fast")
    assert fast.costs["fpga"].cycles == fpga_cost(sma, spec.nodes["fast"].params, 322_265_625).cycles
    # a device too small for any FPGA node keeps everything on the host, and the report says why
    tiny = plan_placement(spec, fixed_profile(lut=100), auto="all")
    assert "fpga" not in tiny.placement.assignment.values()
    assert any("more than the device offers" in note for note in tiny.placement.notes)


def test_plan_table_and_json(spec):
    report = plan_placement(spec, fixed_profile(), auto=["cross"], budget_ns=600)
    text = describe_placement(report)
    for needle in ("placement of sma_cross", "cross        *", "transfers:", "wire → fast", "tick-to-trade path:",
                   "order out", "total", "budget 600.0 ns", "OVER BUDGET", "BUDGET NOT MET", "why", "crossings:"):
        assert needle in text, needle
    data = placement_json(report)
    json.dumps(data)  # plain data
    assert data["budget_met"] is False and "cannot be met" in data["problem"]
    assert [n["node"] for n in data["nodes"]] == ["fast", "slow", "cross", "target"]
    assert data["nodes"][2]["auto"] and set(data["nodes"][2]["candidates"]) >= {"cpu", "numba"}
    assert sum(s["ns"] for s in data["path"]) == pytest.approx(data["tick_to_trade_ns"])


def test_applied_placement_compiles_into_segments(spec):
    profile = fixed_profile()
    profile = profile.model_copy(update={"host": profile.host.model_copy(update={"step_ns": {
        **STEP_NS, "signal.crossover": {"cpu": 0.5, "numba": 1.0}}})})
    report = plan_placement(spec, profile, auto=["cross"])
    assert report.placement.assignment["cross"] in ("cpu", "numba")
    placed = apply_placement(spec, report.placement)
    plan = compile_plan(placed)
    targets = {n: plan.segment_of(n).target for n in ("fast", "slow", "cross", "target")}
    assert targets == report.placement.assignment
    assert placed.spec_hash == spec.spec_hash  # the spec as written stays its identity


def test_bad_requests_are_spec_errors(spec):
    with pytest.raises(SpecError, match="no such node"):
        plan_placement(spec, fixed_profile(), auto=["nope"])
    with pytest.raises(SpecError, match="sources, table ops and venues are not placed"):
        plan_placement(spec, fixed_profile(), auto=["sim"])
    with pytest.raises(SpecError, match="order node"):
        plan_placement(spec, fixed_profile(), order_nodes=["bars"])


def test_place_spec_resolves_auto_nodes(spec):
    from dataclasses import replace

    from pipelines.graph import build_graph
    from pipelines.placement import place_spec

    unchanged, report = place_spec(spec, fixed_profile())
    assert unchanged is spec and report.auto == []
    # what a spec with `place: auto` on two nodes loads into (the spec model does not take `auto` yet)
    nodes = {n: replace(d, place="auto") if n in ("slow", "cross") else d for n, d in spec.nodes.items()}
    auto = replace(spec, nodes=nodes, graph=None)
    build_graph(auto)
    placed, report = place_spec(auto, fixed_profile())
    assert report.auto == ["slow", "cross"]
    assert {placed.nodes[n].place for n in ("slow", "cross")} <= {"cpu", "numba", "fpga"}
    assert placed.nodes["fast"].place == "numba"
