"""Placement of a loaded spec: build the planner's problem from its graph, solve it, show what every node costs.

What is placed: the stream nodes of our system. Sources are the wire (a node reading a source reads the market
data message off the network); a simulated venue (an op named ``backtest.*``) is the exchange, outside our
system, and so is every node that reads a venue's output within the event. An **order node** is a node whose
output a venue reads as an order (any input but the venue's triggering market input): tick-to-trade ends when
its order leaves. A graph without a venue ends at its sinks.

Costs: ``cpu`` and ``numba`` from steps measured on this machine (``hardware.profile.measure_step_ns``, cached;
the profile's ``host.step_ns`` wins); ``fpga`` from the FPGA model (``hardware.fpga.registry.fpga_impl``) at the
profile's clock, when the FPGA target is installed and models the op. An edge carries 8 bytes per f64/i64 port
and 1 per bool port.

``plan_placement`` returns a ``PlacementReport``; ``describe_placement`` and ``placement_json`` print it for
``tickloom plan``; ``apply_placement`` turns the chosen targets into an ordinary spec that compiles as usual;
``node_ready_ns`` gives the modeled time after the tick at which each node's output exists, which replay adds to
the node's output time.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hardware.planner import (
    TARGET_ORDER, Crossings, PlanEdge, PlanNode, Placement, Problem, Resources, TargetCost, solve,
)
from hardware.profile import HardwareProfile, crossings, step_cost_ns
from hardware.targets import StepCompileError
from nodes.errors import SpecError
from pipelines.graph import VENUE_PREFIX
from pipelines.spec.load import LoadedSpec

AUTO = "auto"


@dataclass
class PlacementReport:
    """A solved placement with what it was solved from."""

    spec: LoadedSpec
    profile: HardwareProfile
    problem: Problem
    placement: Placement
    auto: list[str]
    order_nodes: list[str]
    not_placed: dict[str, str]  # node → why it is outside the placement (source, venue, after the venue)
    unavailable: dict[str, list[str]] = field(default_factory=dict)  # node → targets it could not be offered, why

    @property
    def crossings(self) -> Crossings:
        return self.problem.crossings


def plan_placement(
    spec: LoadedSpec,
    profile: HardwareProfile | None = None,
    *,
    auto: Iterable[str] | Literal["all"] | None = None,
    budget_ns: float | None = None,
    min_event_interval_ns: float | None = None,
    order_nodes: Iterable[str] | None = None,
) -> PlacementReport:
    """Place ``spec``'s nodes to minimize modeled tick-to-trade and report every cost.

    ``auto``: the nodes the planner may move — ``"all"``, a list of node ids, or None for the nodes whose
    ``place`` is ``auto``; every other node keeps its placement (and is still costed). ``budget_ns``: the latency
    budget. ``min_event_interval_ns``: overrides the profile's ``traffic.min_event_interval_ns``.
    ``order_nodes``: where tick-to-trade ends (default: what the venues read as orders, else the sinks).

    Raises:
        SpecError: an unknown node in ``auto`` or ``order_nodes``; a fixed node whose target cannot be costed.
    """
    profile = profile or HardwareProfile()
    graph = spec.graph
    not_placed = _outside(spec)
    placed = [n for n in graph.order if n not in not_placed]
    auto_ids = _auto_nodes(spec, placed, auto)
    orders = _order_nodes(spec, placed, not_placed, order_nodes)
    unavailable: dict[str, list[str]] = {}
    nodes = []
    for node_id in placed:
        costs, missing = _costs(spec, node_id, node_id in auto_ids, profile)
        if missing:
            unavailable[node_id] = missing
        reads_wire = any(graph.nodes[a.node].op.kind == "source" for a in graph.nodes[node_id].args if not a.delayed)
        nodes.append(PlanNode(
            node_id, costs,
            wire_bytes=profile.network.market_data_bytes if reads_wire else 0,
            order_bytes=profile.network.order_bytes if node_id in orders else 0,
            label=graph.nodes[node_id].op.name,
        ))
    interval = min_event_interval_ns if min_event_interval_ns is not None else profile.traffic.min_event_interval_ns
    problem = Problem(tuple(nodes), tuple(_edges(spec, placed)), crossings(profile), profile.device_budget(),
                      interval, budget_ns)
    return PlacementReport(spec, profile, problem, solve(problem), sorted(auto_ids, key=placed.index), orders,
                           not_placed, unavailable)


def _outside(spec: LoadedSpec) -> dict[str, str]:
    """Nodes that are not ours to place, and why."""
    graph = spec.graph
    outside: dict[str, str] = {}
    for node_id in graph.order:
        node = graph.nodes[node_id]
        if node.op.kind == "source":
            outside[node_id] = "source: its events arrive on the wire"
        elif node.op.kind == "table":
            outside[node_id] = "table op: runs in batch after the stream"
        elif node.op.name.startswith(VENUE_PREFIX):
            outside[node_id] = f"{node.op.name}: the venue, outside our system"
        else:
            after = [a.node for a in node.args if not a.delayed and a.node in outside
                     and graph.nodes[a.node].op.kind == "stream"]
            if after:
                outside[node_id] = f"reads {after[0]} within the event: runs after the venue answers"
    return outside


def _auto_nodes(spec: LoadedSpec, placed: list[str], auto) -> set[str]:
    written = {n for n in placed if spec.graph.nodes[n].definition.place == AUTO}
    if auto is None:
        return written
    if auto == "all":
        return set(placed)
    chosen = set(auto) | written
    unknown = sorted(chosen - set(spec.graph.nodes))
    if unknown:
        raise SpecError.at(None, f"cannot place {', '.join(unknown)} automatically: no such node")
    outside = sorted(chosen - set(placed))
    if outside:
        raise SpecError.at(None, f"cannot place {', '.join(outside)}: sources, table ops and venues are not placed")
    return chosen


def _order_nodes(spec: LoadedSpec, placed: list[str], not_placed: dict[str, str], given) -> list[str]:
    graph = spec.graph
    if given is not None:
        given = list(given)
        unknown = [n for n in given if n not in placed]
        if unknown:
            raise SpecError.at(None, f"order node(s) {', '.join(unknown)} are not placed nodes of {spec.name}")
        return given
    orders = [n for n in graph.order_nodes() if n in placed]
    if orders:
        return sorted(orders, key=placed.index)
    return [n for n in placed if not any(c in placed for c in graph.consumers(n))]


def _edges(spec: LoadedSpec, placed: list[str]) -> list[PlanEdge]:
    graph = spec.graph
    edges = []
    for node_id in placed:
        carried: dict[str, list[str]] = {}
        for arg in graph.nodes[node_id].args:
            if not arg.delayed and arg.node in placed and arg.port not in carried.setdefault(arg.node, []):
                carried[arg.node].append(arg.port)
        for producer, ports in carried.items():
            outputs = graph.nodes[producer].op.outputs
            nbytes = sum(outputs[p].dtype.itemsize for p in ports)
            edges.append(PlanEdge(producer, node_id, nbytes, tuple(ports)))
    return edges


def _costs(spec: LoadedSpec, node_id: str, auto: bool, profile: HardwareProfile) -> tuple[dict, list[str]]:
    """Each candidate target's cost; for an auto node, also why other targets are not offered."""
    definition = spec.graph.nodes[node_id].definition
    op, params = definition.op, definition.params
    if auto:
        wanted = [t for t in TARGET_ORDER if t in op.targets or t == "fpga"]
    else:
        wanted = [definition.place]
    costs: dict[str, TargetCost] = {}
    missing: list[str] = []
    for target in wanted:
        if target == "fpga":
            cost = fpga_cost(op, params, profile.device.clock_hz)
        else:
            cost = _host_cost(op, params, target, profile, _instruments(spec, node_id), raise_errors=not auto)
        if isinstance(cost, str):
            if not auto:
                raise SpecError.at(spec.where("nodes", node_id, "place"), f"node {node_id!r} on {target}: {cost}")
            missing.append(f"{target}: {cost}")
        else:
            costs[target] = cost
    return costs, missing


def _instruments(spec: LoadedSpec, node_id: str) -> list[str]:
    """The instruments of the sources a node fires on (what its per-instrument constants are built for)."""
    graph = spec.graph
    names: list[str] = []
    for source in graph.sources:
        if source in graph.nodes[node_id].sources:
            names += [i for i in graph.source_instruments[source] if i not in names]
    return names or ["SAMPLE"]


def _host_cost(op, params, target: str, profile: HardwareProfile, instruments: list[str],
               raise_errors: bool) -> TargetCost | str:
    try:
        ns, origin = step_cost_ns(profile, op, params, target, instruments)
    except StepCompileError as error:
        if raise_errors:
            raise
        return f"numba cannot compile its step ({error.reason[:160]})"
    return TargetCost(latency_ns=ns, origin=origin)


def fpga_cost(op, params, clock_hz: float) -> TargetCost | str:
    """The op's cost on the FPGA from ``hardware.fpga``'s model at ``clock_hz``, or why there is none.

    A thin adapter: ``fpga_impl(op_name)`` gives ``timing(params, clock_hz)`` (latency and II in cycles, whether
    the clock is met, the critical path) and ``resources(params)`` (LUT, FF, DSP, BRAM).
    """
    try:
        from hardware.fpga.registry import fpga_impl
    except ModuleNotFoundError as error:
        if error.name not in ("hardware.fpga", "hardware.fpga.registry"):
            raise  # a broken FPGA package must not pass for a missing one
        return "the FPGA target is not installed (no hardware.fpga)"
    from hardware.fpga.registry import FpgaPlacementError

    impl = fpga_impl(op.name)
    if impl is None:
        return f"no FPGA model for {op.name}"
    try:
        impl.check(params)
    except FpgaPlacementError as error:
        return f"these params do not fit its FPGA implementation ({error})"
    timing = impl.timing(params, clock_hz)
    if not timing.fmax_ok:
        return f"does not meet timing at {clock_hz / 1e6:.2f} MHz (critical path: {timing.critical_path})"
    used = impl.resources(params)
    ns_per_cycle = 1e9 / clock_hz
    return TargetCost(
        latency_ns=timing.latency_cycles * ns_per_cycle,
        ii_ns=timing.ii_cycles * ns_per_cycle,
        resources=Resources(int(used.lut), int(used.ff), int(used.dsp), float(used.bram)),
        cycles=int(timing.latency_cycles),
        ii_cycles=int(timing.ii_cycles),
        origin="fpga model" + (f": {timing.note}" if getattr(timing, "note", "") else ""),
    )


def place_spec(spec: LoadedSpec, profile: HardwareProfile | None = None,
               require_budget: bool = False, budget_ns: float | None = None) -> tuple[LoadedSpec, PlacementReport]:
    """Resolve ``place: auto`` in ``spec`` with its ``placement:`` settings; return the placed spec and the report.

    Reads, when the spec model has them, ``placement.latency_budget`` (``2us`` or ns), ``placement.profile`` (a
    profile YAML relative to the spec; ``profile`` given here wins), ``placement.min_event_interval`` and
    ``placement.orders_from``; ``budget_ns`` given here wins over the spec's budget. A spec without ``auto``
    nodes is returned as it is (with its costed report).

    Raises:
        SpecError: no feasible placement (at the spec's ``placement`` block, or the first auto node), or the budget
        is not met and ``require_budget``.
    """
    from hardware.profile import parse_duration_ns
    from pipelines.hardware_profile import load_profile

    settings = getattr(spec.model, "placement", None)
    value = lambda name: getattr(settings, name, None) if settings is not None else None  # noqa: E731
    if profile is None:
        profile = load_profile(spec.path.parent / value("profile")) if value("profile") else HardwareProfile()
    budget = value("latency_budget")
    interval = value("min_event_interval")
    report = plan_placement(
        spec, profile,
        budget_ns=budget_ns if budget_ns is not None else parse_duration_ns(budget) if budget is not None else None,
        min_event_interval_ns=parse_duration_ns(interval) if interval is not None else None,
        order_nodes=value("orders_from"),
    )
    placement = report.placement
    where = spec.origin("placement") or (spec.where("nodes", report.auto[0], "place") if report.auto else None)
    if not placement.feasible:
        raise SpecError.at(where, f"cannot place {spec.name}: {placement.problem}")
    if require_budget and not placement.budget_met:
        raise SpecError.at(spec.origin("placement", "latency_budget") or where, placement.problem)
    return (apply_placement(spec, placement) if report.auto else spec), report


def apply_placement(spec: LoadedSpec, placement: Placement) -> LoadedSpec:
    """Return ``spec`` with every placed node on its chosen target, graph rebuilt, ready for ``compile_plan``.

    The spec's hash is kept: the spec as written (``place: auto`` and its budget) is its identity.

    Raises:
        SpecError: ``placement`` is not feasible.
    """
    if not placement.feasible:
        raise SpecError.at(None, f"no placement to apply: {placement.problem}")
    from pipelines.graph import build_graph

    nodes = {node_id: replace(d, place=placement.assignment.get(node_id, _outside_target(d))) for node_id, d in spec.nodes.items()}
    placed = replace(spec, nodes=nodes, graph=None)
    build_graph(placed)
    return placed


def with_planned_latency(spec: LoadedSpec, report: PlacementReport) -> LoadedSpec:
    """Return ``spec`` with every ``compute_latency: plan`` replaced by the placement's modeled tick-to-trade.

    The replay engine then adds what the chosen placement costs to the time the strategy's orders leave: a
    strategy placed on ``fpga`` reaches the venue sooner than the same strategy on ``cpu``, and fills differently
    where that matters. The spec's hash is kept (``plan`` is what the spec says).
    """
    planned = [n for n, d in spec.nodes.items() if getattr(d.params, "compute_latency", None) == "plan"]
    if not planned:
        return spec
    ticks = report.placement.tick_to_trade_ns
    if ticks is None:
        raise SpecError.at(spec.where("nodes", planned[0], "with", "compute_latency"),
                           f"compute_latency: plan needs a placement with a tick-to-trade path: {report.placement.problem}")
    from pipelines.graph import build_graph

    latency = f"{int(round(ticks))}ns"
    nodes = {node_id: replace(d, params=d.params.model_copy(update={"compute_latency": latency}))
             if node_id in planned else d for node_id, d in spec.nodes.items()}
    updated = replace(spec, nodes=nodes, graph=None)
    build_graph(updated)
    return updated


def _outside_target(definition) -> str:
    """Where an ``auto`` node the planner does not place runs (a venue: the exchange, outside our system): the
    fastest host target it offers, since its cost is not on our tick-to-trade path."""
    if definition.place != AUTO:
        return definition.place
    return "numba" if "numba" in definition.op.targets else "cpu"


def node_ready_ns(report: PlacementReport) -> dict[str, float]:
    """Modeled time after the tick at which each placed node's output exists (compute, crossings, host waits)."""
    return {n.id: n.ready_ns for n in report.placement.nodes}


# ---------------------------------------------------------------------------------------------------------------
# Showing it.


def _ns(value: float) -> str:
    return f"{value:,.1f} ns" if abs(value) < 10_000 else f"{value / 1000:,.2f} µs"


def _count(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,g}"


def _latency_text(node) -> str:
    cost = node.cost
    if cost.cycles is not None:
        return f"{cost.cycles} cycles = {cost.latency_ns:.1f} ns"
    return f"{cost.latency_ns / 1000:.3g} µs ({cost.origin})" if cost.origin else f"{cost.latency_ns / 1000:.3g} µs"


def _ii_text(node) -> str:
    cost = node.cost
    if cost.ii_cycles is not None:
        return f"{cost.ii_cycles} cycle{'s' if cost.ii_cycles != 1 else ''} = {cost.ii_ns:.1f} ns"
    return "host, serial"


def describe_placement(report: PlacementReport) -> str:
    """The placement as text for ``tickloom plan``: nodes, transfers, the tick-to-trade path, why each target."""
    p = report.placement
    spec = report.spec
    device = report.profile.device
    lines = [f"placement of {spec.name}  (spec {spec.spec_hash[:12]}, profile {report.profile.name}, "
             f"{device.part} at {device.clock_hz / 1e6:.2f} MHz)"]
    lines.append(f"method: {p.method or '—'}" + (f", {p.explored} expansions" if p.explored else "")
                 + f"; auto: {', '.join(report.auto) or 'none'}; orders from: {', '.join(report.order_nodes) or 'none'}")
    if not p.feasible:
        lines.append(f"INFEASIBLE: {p.problem}")
        lines += [f"  note: {n}" for n in p.notes]
        return "\n".join(lines)
    lines.append("")
    header = f"{'node':<14} {'op':<28} {'target':<6} {'latency':<26} {'II':<18} resources"
    lines.append(header)
    for node in p.nodes:
        resources = str(node.cost.resources) if node.target == "fpga" else "—"
        auto = "*" if node.id in report.auto else " "
        lines.append(f"{node.id:<13}{auto} {node.label:<28} {node.target:<6} {_latency_text(node):<26} "
                     f"{_ii_text(node):<18} {resources}")
    if report.auto:
        lines.append("  (* placed by the planner)")
    if report.not_placed:
        lines.append("not placed: " + "; ".join(f"{n} ({why})" for n, why in report.not_placed.items()))
    lines.append("")
    lines.append("transfers:" + ("" if p.transfers else " none"))
    for t in p.transfers:
        mark = "  ← on the path" if t.on_path else ""
        lines.append(f"  {t.producer} → {t.consumer}: {t.from_target} → {t.to_target}, {t.bytes_per_event} B, "
                     f"{t.kind}, {_ns(t.latency_ns)}{mark}")
    lines.append("")
    lines.append("tick-to-trade path:")
    for step in p.path:
        lines.append(f"  +{_ns(step.ns):>12}  at {_ns(step.at_ns):>12}  {step.what}")
    total = f"  total {_ns(p.tick_to_trade_ns)}"
    if p.budget_ns is not None:
        total += f"; budget {_ns(p.budget_ns)}; slack {_ns(p.slack_ns)}" + ("" if p.budget_met else "  (OVER BUDGET)")
    lines.append(total)
    budget = p.device
    lines.append(f"host work per event {_ns(p.host_busy_ns)}; PCIe {p.pcie_bytes_per_event} B per event; FPGA "
                 + (", ".join(f"{k.upper()} {_count(u)}/{_count(b)}" for k, u, b in
                              zip(("lut", "ff", "dsp", "bram"), p.resources_used.as_tuple(), budget.as_tuple()))
                    if budget else str(p.resources_used))
                 + (f"; events every ≥ {_ns(p.min_event_interval_ns)}" if p.min_event_interval_ns else ""))
    lines.append("")
    lines.append("why (tick-to-trade change if the node alone moved):")
    for node in p.nodes:
        extra = report.unavailable.get(node.id, [])
        lines.append(f"  {node.id} on {node.target}: " + "; ".join([node.why] + extra))
    c = report.crossings
    lines.append(f"crossings: PCIe {c.pcie_one_way_ns:g} ns + B/{c.pcie_bytes_per_s / 1e9:g} GB/s; MAC rx/tx "
                 f"{c.mac_rx_ns:g}/{c.mac_tx_ns:g} ns; NIC rx/tx {c.nic_rx_ns:g}/{c.nic_tx_ns:g} ns; numba call "
                 f"{c.numba_call_ns:g} ns; Python call {c.python_call_ns:g} ns")
    if p.problem:
        lines.append(f"BUDGET NOT MET: {p.problem}")
    return "\n".join(lines)


def placement_json(report: PlacementReport) -> dict[str, Any]:
    """The placement as plain data for tools (``tickloom plan --json``)."""
    p = report.placement
    return {
        "spec": report.spec.name,
        "spec_hash": report.spec.spec_hash,
        "profile": report.profile.name,
        "device": report.profile.device.model_dump(),
        "feasible": p.feasible,
        "method": p.method,
        "optimal": p.optimal,
        "explored": p.explored,
        "auto": report.auto,
        "order_nodes": report.order_nodes,
        "not_placed": report.not_placed,
        "nodes": [
            {
                "node": n.id, "op": n.label, "target": n.target, "auto": n.id in report.auto,
                "latency_ns": n.cost.latency_ns, "cycles": n.cost.cycles, "ii_ns": n.cost.ii_ns,
                "ii_cycles": n.cost.ii_cycles, "resources": _resources(n.cost.resources), "origin": n.cost.origin,
                "start_ns": n.start_ns, "ready_ns": n.ready_ns, "segment_entry_ns": n.segment_entry_ns,
                "why": n.why, "unavailable": report.unavailable.get(n.id, []),
                "candidates": {t: {"latency_ns": c.latency_ns, "ii_ns": c.ii_ns, "cycles": c.cycles,
                                   "resources": _resources(c.resources), "origin": c.origin}
                               for t, c in report.problem.nodes[i].costs.items()},
            }
            for i, n in enumerate(p.nodes)
        ],
        "transfers": [t.__dict__ for t in p.transfers],
        "path": [s.__dict__ for s in p.path],
        "tick_to_trade_ns": p.tick_to_trade_ns,
        "budget_ns": p.budget_ns,
        "slack_ns": p.slack_ns,
        "budget_met": p.budget_met,
        "host_busy_ns": p.host_busy_ns,
        "pcie_bytes_per_event": p.pcie_bytes_per_event,
        "resources_used": _resources(p.resources_used),
        "device_budget": _resources(p.device) if p.device else None,
        "min_event_interval_ns": p.min_event_interval_ns,
        "crossings": report.crossings.__dict__,
        "notes": p.notes,
        "problem": p.problem,
    }


def _resources(r: Resources) -> dict[str, int]:
    return {"lut": r.lut, "ff": r.ff, "dsp": r.dsp, "bram": r.bram}
