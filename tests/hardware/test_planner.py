"""The placement planner: exact against brute force, the timing model by hand, limits, messages, determinism."""

import random

import pytest

from hardware.planner import (
    EXACT_MAX_NODES, TARGET_ORDER, Crossings, PlanEdge, PlanNode, PlannerInputError, Problem, Resources, TargetCost,
    brute_force, evaluate, solution_key, solve,
)

CROSSINGS = Crossings(pcie_one_way_ns=425, pcie_bytes_per_s=6.6e9, wire_bits_per_s=10e9, mac_rx_ns=30,
                      mac_tx_ns=30, nic_rx_ns=295, nic_tx_ns=295, numba_call_ns=250, python_call_ns=55)


def random_problem(rng: random.Random, n: int, chain: bool, limited: bool) -> Problem:
    """A random placement problem; costs in the ranges measured on real ops (cpu µs, numba ns, fpga cycles)."""
    nodes = []
    for i in range(n):
        costs = {}
        for target in TARGET_ORDER:
            if rng.random() < 0.75:
                if target == "cpu":
                    costs[target] = TargetCost(rng.randint(200, 3000))
                elif target == "numba":
                    costs[target] = TargetCost(rng.randint(1, 60))
                else:
                    cycles = rng.randint(1, 12)
                    costs[target] = TargetCost(cycles * 3.1, ii_ns=rng.choice([3.1, 6.2, 31.0]), cycles=cycles,
                                               resources=Resources(rng.randint(100, 5000), rng.randint(100, 5000),
                                                                   rng.randint(0, 20), rng.randint(0, 6) / 2))
        costs = costs or {"cpu": TargetCost(rng.randint(200, 3000))}
        first, last = i == 0, i == n - 1
        nodes.append(PlanNode(
            f"n{i}", costs,
            wire_bytes=96 if first or (not chain and rng.random() < 0.3) else 0,
            order_bytes=128 if last or (not chain and rng.random() < 0.2) else 0,
        ))
    edges = []
    for v in range(1, n):
        if chain:
            edges.append(PlanEdge(f"n{v - 1}", f"n{v}", 8))
        else:
            edges += [PlanEdge(f"n{u}", f"n{v}", 8 * rng.randint(1, 3)) for u in range(v) if rng.random() < 0.35]
    device = Resources(rng.randint(2000, 12000), rng.randint(2000, 12000), 40, 12) if limited else None
    interval = rng.randint(100, 4000) if limited and rng.random() < 0.5 else None
    return Problem(tuple(nodes), tuple(edges), CROSSINGS, device, interval, budget_ns=1500)


@pytest.mark.parametrize("chain", [True, False], ids=["chain", "dag"])
def test_solver_matches_brute_force_on_random_graphs(chain):
    rng = random.Random(20240611)
    compared = feasible = 0
    for case in range(150):
        problem = random_problem(rng, rng.randint(1, 7), chain, limited=case % 3 != 0)
        exact, reference = solve(problem), brute_force(problem)
        assert exact.feasible == reference.feasible, (case, exact.problem, reference.problem)
        if exact.feasible:
            feasible += 1
            assert exact.optimal
            assert exact.assignment == reference.assignment, case
            assert exact.tick_to_trade_ns == reference.tick_to_trade_ns
            methods = ("dynamic programming",) if chain else ("dynamic programming", "branch and bound")
            assert exact.method.startswith(methods), exact.method
        compared += 1
    assert compared == 150 and feasible > 60  # the limits must not make most cases trivially infeasible


def test_chain_dp_is_used_and_exact_with_every_limit_binding():
    # 8 nodes where the fpga is fastest for all but the device fits only three: a knapsack the DP must solve
    nodes = tuple(PlanNode(f"n{i}", {"cpu": TargetCost(900), "numba": TargetCost(40 + i),
                                    "fpga": TargetCost(6.2, ii_ns=3.1, cycles=2, resources=Resources(lut=1000 + 100 * i))},
                           wire_bytes=96 if i == 0 else 0, order_bytes=128 if i == 7 else 0) for i in range(8))
    edges = tuple(PlanEdge(f"n{i}", f"n{i + 1}", 8) for i in range(7))
    problem = Problem(nodes, edges, CROSSINGS, device=Resources(lut=3400, ff=10**6, dsp=10, bram=10))
    placement, reference = solve(problem), brute_force(problem)
    assert placement.method.startswith("dynamic programming")
    assert placement.assignment == reference.assignment
    assert sum(t == "fpga" for t in placement.assignment.values()) <= 3
    assert placement.resources_used.lut <= 3400


def test_timing_model_by_hand():
    # wire → a (fpga, 3 cycles) → b (numba) → c (cpu) → order out
    nodes = (
        PlanNode("a", {"fpga": TargetCost(9.3, ii_ns=3.1, cycles=3, resources=Resources(500, 600, 1, 0))}, wire_bytes=100),
        PlanNode("b", {"numba": TargetCost(2.0)}),
        PlanNode("c", {"cpu": TargetCost(400.0)}, order_bytes=125),
    )
    edges = (PlanEdge("a", "b", 16), PlanEdge("b", "c", 8))
    placement = solve(Problem(nodes, edges, CROSSINGS))
    wire_in = 100 * 8 / 10e9 * 1e9 + 30  # serialization at 10 Gb/s + MAC rx
    pcie = 425 + 16 / 6.6e9 * 1e9
    expected = wire_in + 9.3 + pcie + 250 + 2.0 + 55 + 400.0 + 295 + 125 * 8 / 10e9 * 1e9
    assert placement.tick_to_trade_ns == pytest.approx(expected, abs=0.002)
    assert sum(step.ns for step in placement.path) == pytest.approx(placement.tick_to_trade_ns, abs=1e-9)
    assert placement.path[-1].at_ns == placement.tick_to_trade_ns
    kinds = {(t.producer, t.consumer): t.kind for t in placement.transfers}
    assert kinds == {("wire", "a"): "wire in", ("a", "b"): "pcie", ("b", "c"): "host memory", ("c", "wire"): "order out"}
    assert placement.pcie_bytes_per_event == 16
    assert placement.host_busy_ns == pytest.approx(250 + 2 + 55 + 400)
    assert placement.node("c").segment_entry_ns == 55
    tick, violations = evaluate(Problem(nodes, edges, CROSSINGS), placement.assignment)
    assert tick == placement.tick_to_trade_ns and violations == []


def test_host_nodes_share_one_thread_fpga_nodes_do_not():
    def problem(target: str) -> Problem:
        cost = {"cpu": TargetCost(1000.0), "fpga": TargetCost(31.0, ii_ns=3.1, cycles=10)}[target]
        nodes = (PlanNode("left", {target: cost}, wire_bytes=64), PlanNode("right", {target: cost}, wire_bytes=64),
                 PlanNode("join", {target: cost}, order_bytes=64))
        return Problem(nodes, (PlanEdge("left", "join", 8), PlanEdge("right", "join", 8)), CROSSINGS)

    host, fpga = solve(problem("cpu")), solve(problem("fpga"))
    assert host.node("right").start_ns == host.node("left").ready_ns  # waits for the thread, not for its input
    assert fpga.node("right").start_ns == fpga.node("left").start_ns  # circuits run side by side
    assert host.tick_to_trade_ns - fpga.tick_to_trade_ns > 2 * 1000
    assert any("waits for the host" in s.what or s.what.startswith("left") for s in host.path)


def test_heuristic_above_the_exact_size_keeps_its_guarantees():
    rng = random.Random(7)
    problem = random_problem(rng, EXACT_MAX_NODES + 8, chain=False, limited=True)
    problem = Problem(problem.nodes, problem.edges, problem.crossings, Resources(30_000, 30_000, 200, 40), None, None)
    first, second = solve(problem), solve(problem)
    assert first.feasible and first.assignment == second.assignment and first.method == second.method
    key = solution_key(problem, first.assignment)
    fastest = {n.id: min(n.costs, key=lambda t: (n.costs[t].latency_ns, TARGET_ORDER.index(t))) for n in problem.nodes}
    for target in TARGET_ORDER:  # never worse than a feasible uniform placement
        uniform = {n.id: target if target in n.costs else fastest[n.id] for n in problem.nodes}
        tick, violations = evaluate(problem, uniform)
        if not violations:
            assert key[0] <= solution_key(problem, uniform)[0]
    for node in problem.nodes:  # a local optimum for single-node moves
        for target in node.costs:
            moved = dict(first.assignment, **{node.id: target})
            if not evaluate(problem, moved)[1]:
                assert solution_key(problem, moved) >= key


def test_unplaceable_node_is_named_with_each_reason():
    nodes = (PlanNode("book", {"fpga": TargetCost(12.0, ii_ns=3.1, cycles=4, resources=Resources(lut=2_000_000))}),
             PlanNode("slow", {"cpu": TargetCost(5000.0)}, order_bytes=64))
    placement = solve(Problem(nodes, (PlanEdge("book", "slow", 8),), CROSSINGS, Resources(1_000_000, 10**6, 10, 10),
                              min_event_interval_ns=1000))
    assert not placement.feasible
    assert "no target can run book, slow" in placement.problem
    assert "LUT" in placement.problem.upper() and "2000000 > 1000000" in placement.problem
    assert "5000 ns of host time" in placement.problem and "every 1000 ns" in placement.problem


def test_forced_fpga_nodes_over_the_device_are_named():
    fpga = lambda lut: {"fpga": TargetCost(3.1, ii_ns=3.1, cycles=1, resources=Resources(lut=lut))}  # noqa: E731
    nodes = (PlanNode("a", fpga(600), wire_bytes=64), PlanNode("b", fpga(600), order_bytes=64))
    placement = solve(Problem(nodes, (PlanEdge("a", "b", 8),), CROSSINGS, Resources(1000, 10**6, 10, 10)))
    assert not placement.feasible
    assert placement.problem.startswith("the nodes that can only run on fpga (a, b)") and "LUT 1200 > 1000" in placement.problem


def test_host_throughput_limit_is_named():
    nodes = tuple(PlanNode(f"n{i}", {"cpu": TargetCost(600.0), "numba": TargetCost(400.0)},
                           wire_bytes=64 if i == 0 else 0, order_bytes=64 if i == 2 else 0) for i in range(3))
    problem = Problem(nodes, (PlanEdge("n0", "n1", 8), PlanEdge("n1", "n2", 8)), CROSSINGS, min_event_interval_ns=1000)
    placement = solve(problem)
    assert not placement.feasible
    assert "the host cannot keep up" in placement.problem and "1200 ns of host time" in placement.problem


def test_budget_violation_says_what_limits_it():
    # the device fits one of the two fast fpga nodes: the budget is out of reach because of the device only
    fast = {"cpu": TargetCost(2000.0), "fpga": TargetCost(6.2, ii_ns=3.1, cycles=2, resources=Resources(lut=800))}
    nodes = (PlanNode("a", fast, wire_bytes=64), PlanNode("b", fast, order_bytes=64))
    problem = Problem(nodes, (PlanEdge("a", "b", 8),), CROSSINGS, Resources(1000, 10**6, 10, 10), budget_ns=500)
    placement = solve(problem)
    assert placement.feasible and not placement.budget_met and placement.slack_ns < 0
    assert "latency budget 500 ns cannot be met" in placement.problem
    assert "Without the device budget" in placement.problem and "moving" in placement.problem

    # no limit in the way: the wire and the host are simply too slow; the largest terms are named
    slow = Problem(tuple(PlanNode(n.id, {"cpu": fast["cpu"]}, n.wire_bytes, n.order_bytes) for n in nodes),
                   problem.edges, CROSSINGS, budget_ns=500)
    placement = solve(slow)
    assert "cannot be met" in placement.problem and "Largest terms on the critical path" in placement.problem
    assert "a on cpu 2000 ns" in placement.problem


def test_budget_met_reports_slack():
    nodes = (PlanNode("a", {"numba": TargetCost(5.0)}, wire_bytes=64, order_bytes=64),)
    placement = solve(Problem(nodes, (), CROSSINGS, budget_ns=2000))
    assert placement.budget_met and placement.problem is None
    assert placement.slack_ns == pytest.approx(2000 - placement.tick_to_trade_ns)


def test_deterministic_and_ties_go_to_fewer_resources_then_simpler_targets():
    same = TargetCost(10.0)
    nodes = (PlanNode("a", {"fpga": TargetCost(10.0, ii_ns=3.1, cycles=3, resources=Resources(lut=100)),
                            "numba": same, "cpu": same}, wire_bytes=64),
             PlanNode("b", {"numba": same, "cpu": same}, order_bytes=64))
    problem = Problem(nodes, (PlanEdge("a", "b", 8),), CROSSINGS)
    placement = solve(problem)
    # cpu and numba cost the same here (and the segment calls differ): whatever wins, it wins every time
    runs = {tuple(sorted(solve(problem).assignment.items())) for _ in range(5)}
    assert len(runs) == 1
    reversed_costs = Problem(tuple(PlanNode(n.id, dict(reversed(list(n.costs.items()))), n.wire_bytes, n.order_bytes)
                                   for n in nodes), problem.edges, CROSSINGS)
    assert solve(reversed_costs).assignment == placement.assignment

    # exact ties: equal time and no resources on either side → the simpler target (cpu) wins
    calls_free = Crossings(**{**CROSSINGS.__dict__, "numba_call_ns": 0, "python_call_ns": 0})
    tie = Problem((PlanNode("x", {"numba": same, "cpu": same}, wire_bytes=64, order_bytes=64),), (), calls_free)
    assert solve(tie).assignment == {"x": "cpu"}
    assert "tie" in solve(tie).node("x").why


def test_malformed_problems_are_refused():
    node = PlanNode("a", {"cpu": TargetCost(1.0)})
    with pytest.raises(PlannerInputError, match="against the execution order"):
        solve(Problem((node, PlanNode("b", {"cpu": TargetCost(1.0)})), (PlanEdge("b", "a", 8),), CROSSINGS))
    with pytest.raises(PlannerInputError, match="not in the problem"):
        solve(Problem((node,), (PlanEdge("a", "zz", 8),), CROSSINGS))
    with pytest.raises(PlannerInputError, match="unknown target"):
        solve(Problem((PlanNode("a", {"gpu": TargetCost(1.0)}),), (), CROSSINGS))


def test_explanations_quantify_each_alternative():
    nodes = (PlanNode("sig", {"cpu": TargetCost(800.0), "numba": TargetCost(3.0),
                              "fpga": TargetCost(9.3, ii_ns=3.1, cycles=3, resources=Resources(lut=400))},
                      wire_bytes=64, order_bytes=64),)
    placement = solve(Problem(nodes, (), CROSSINGS))
    assert placement.assignment == {"sig": "fpga"}
    why = placement.node("sig").why
    # on the host it would pay the NIC both ways and the call instead of the MAC: each alternative quantified
    numba_delta = (295 + 295 + 250 + 3.0) - (30 + 30 + 9.3)
    assert f"numba: +{numba_delta:g} ns" in why and "cpu: +" in why


def test_limits_that_only_bind_together_are_both_named():
    # each node fits the host's time or the device alone, but only one fits the device and two overflow the host
    either = {"cpu": TargetCost(300.0), "fpga": TargetCost(6.2, ii_ns=3.1, cycles=2, resources=Resources(lut=800))}
    nodes = tuple(PlanNode(f"n{i}", either, wire_bytes=64 if i == 0 else 0, order_bytes=64 if i == 2 else 0)
                  for i in range(3))
    problem = Problem(nodes, (PlanEdge("n0", "n1", 8), PlanEdge("n1", "n2", 8)), CROSSINGS,
                      Resources(1000, 10**6, 10, 10), min_event_interval_ns=500)
    placement = solve(problem)
    assert not placement.feasible and not brute_force(problem).feasible
    assert placement.problem.startswith("no placement satisfies the device budget (LUT 1000")
    assert "and the event rate (one every 500 ns" in placement.problem
