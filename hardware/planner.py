"""Choose a target for every node so that the modeled tick-to-trade is smallest, within the device and the event rate.

The planner works on plain data (``Problem``): nodes in execution order, each with its candidate targets and what
the node costs on each (latency, initiation interval, FPGA resources); edges with the bytes they carry per event;
what crossing a boundary costs (``Crossings``, from the hardware profile); the device budget, the smallest gap
between events, and the latency budget. It knows nothing of specs or ops: ``pipelines/placement.py`` builds the
problem from a compiled graph.

**The timing model** (one market-data event; time 0 is the first bit of its message at our port):

- A node that reads the wire gets the message after its serialization (bytes at the line rate) plus the MAC/PCS
  receive latency on ``fpga``, or the NIC's receive latency (kernel bypass) on the host.
- ``cpu`` and ``numba`` nodes share **one host thread** and run one after another in the plan's order; ``fpga``
  nodes are circuits of their own and run as soon as their inputs arrive. A host node starts when its inputs have
  arrived *and* the host has finished the previous host node.
- Entering a segment (a run of consecutive nodes on one target, as ``pipelines/plan.py`` fuses them) costs the
  host a call: a Python call into a ``cpu`` segment, a dispatch into a jitted ``numba`` segment (both measured).
- A value that crosses between the host and the FPGA costs the PCIe one-way latency plus bytes over bandwidth;
  between ``cpu`` and ``numba`` it stays in host memory (the segment call above is its cost).
- An order node's output leaves through the MAC (``fpga``) or the NIC (host), then serializes on the wire.
  Tick-to-trade is the time its last order leaves; with several order nodes, the latest one.

Every node is assumed to fire on the event (the worst case), and the host is idle when the event arrives (no
queueing). Throughput: with ``min_event_interval_ns``, the host's work per event, every FPGA node's initiation
interval and the PCIe bytes per event must each fit in that interval.

**Search.** Times are integer picoseconds inside, so sums are exact and ties are real ties. Among placements of
equal tick-to-trade the planner prefers fewer FPGA resources (LUT, FF, DSP, BRAM in that order), then less host
work, then fewer PCIe bytes, then simpler targets node by node (cpu before numba before fpga): the answer is a
function of the problem alone. A chain is solved exactly by dynamic programming over targets, keeping for every
target of the current node the Pareto set of (time, resources, host work, PCIe bytes). Any other DAG of up to
``EXACT_MAX_NODES`` nodes is solved exactly by branch and bound (nodes assigned in execution order, so the times of
assigned nodes are final; the bound relaxes host sharing and resources). Larger graphs get the heuristic in
``_heuristic``, then a branch and bound capped at ``SEARCH_CAP`` expansions that proves optimality when it finishes.
"""

import itertools
from dataclasses import dataclass, field, replace
from typing import Mapping

from nodes.errors import InvariantError

HOST_TARGETS = ("cpu", "numba")
TARGET_ORDER = ("cpu", "numba", "fpga")  # a tie goes to the simpler target
EXACT_MAX_NODES = 20
SEARCH_CAP = 50_000  # branch-and-bound expansions for graphs above EXACT_MAX_NODES (counted, so deterministic)
PS_PER_NS = 1000


@dataclass(frozen=True)
class Resources:
    """FPGA resources: look-up tables, flip-flops, DSP slices and block RAMs (36 Kb; 0.5 is an 18 Kb half)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: float = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp, self.bram + other.bram)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.lut, self.ff, self.dsp, self.bram)

    def over(self, budget: "Resources") -> list[str]:
        """The resources where ``self`` exceeds ``budget``, e.g. ``["LUT 1200 > 1000"]``."""
        return [f"{name.upper()} {mine:g} > {limit:g}" if isinstance(mine, float) else f"{name.upper()} {mine} > {limit}"
                for name, mine, limit in zip(_RESOURCE_NAMES, self.as_tuple(), budget.as_tuple()) if mine > limit]

    def __str__(self) -> str:
        return " ".join(f"{name.upper()} {value:g}" for name, value in zip(_RESOURCE_NAMES, self.as_tuple()))


_RESOURCE_NAMES = ("lut", "ff", "dsp", "bram")
NO_RESOURCES = Resources()


@dataclass(frozen=True)
class TargetCost:
    """What one node costs on one target.

    ``ii_ns``: the initiation interval, the shortest gap between two events the node accepts (None: its latency,
    as on the host). ``cycles`` and ``ii_cycles`` are shown for ``fpga``; ``origin`` says where the numbers come
    from ("measured", "fpga model", "profile").
    """

    latency_ns: float
    ii_ns: float | None = None
    resources: Resources = NO_RESOURCES
    cycles: int | None = None
    ii_cycles: int | None = None
    origin: str = ""


@dataclass(frozen=True)
class PlanNode:
    """A node to place: its candidate targets with their costs (one candidate: a fixed placement).

    ``wire_bytes`` > 0: the node reads the market-data message (of that many bytes) from the wire.
    ``order_bytes`` > 0: the node's output leaves as an order of that many bytes (tick-to-trade ends there).
    """

    id: str
    costs: Mapping[str, TargetCost]
    wire_bytes: int = 0
    order_bytes: int = 0
    label: str = ""


@dataclass(frozen=True)
class PlanEdge:
    """``producer`` → ``consumer`` within one event, carrying ``bytes_per_event`` (its ports, for display)."""

    producer: str
    consumer: str
    bytes_per_event: int
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Crossings:
    """What crossing a boundary costs, in nanoseconds and bytes per second (from the hardware profile)."""

    pcie_one_way_ns: float
    pcie_bytes_per_s: float
    wire_bits_per_s: float
    mac_rx_ns: float
    mac_tx_ns: float
    nic_rx_ns: float
    nic_tx_ns: float
    numba_call_ns: float
    python_call_ns: float


@dataclass(frozen=True)
class Problem:
    """Nodes in execution order (topological), edges between them, crossing costs and limits.

    ``device``: the FPGA resources placement may use (None: unlimited). ``min_event_interval_ns``: the shortest
    gap between events the system must keep up with (None: no throughput limit). ``budget_ns``: the tick-to-trade
    budget; a placement over it is still returned, with ``Placement.problem`` saying why it cannot be met.
    """

    nodes: tuple[PlanNode, ...]
    edges: tuple[PlanEdge, ...]
    crossings: Crossings
    device: Resources | None = None
    min_event_interval_ns: float | None = None
    budget_ns: float | None = None


@dataclass(frozen=True)
class NodePlacement:
    """Where a node runs and what it costs there; ``start_ns``/``ready_ns`` are modeled times after the tick."""

    id: str
    label: str
    target: str
    cost: TargetCost
    start_ns: float
    ready_ns: float
    segment_entry_ns: float
    why: str


@dataclass(frozen=True)
class Transfer:
    """A value crossing a boundary: an edge between targets, the wire into a node, or an order out of one."""

    producer: str  # node id, or "wire"
    consumer: str  # node id, or "wire"
    from_target: str
    to_target: str
    bytes_per_event: int
    latency_ns: float
    kind: str  # "pcie", "host memory", "wire in", "order out"
    on_path: bool = False


@dataclass(frozen=True)
class PathStep:
    """One step of the tick-to-trade path: what happens, how long it takes, when it ends (ns after the tick)."""

    what: str
    ns: float
    at_ns: float


@dataclass
class Placement:
    """The planner's answer.

    When ``feasible`` is False, ``problem`` says precisely why (the node, resource or rate that cannot fit) and the
    other fields are empty. When the budget cannot be met, the best placement is still returned and ``problem``
    says why the budget is out of reach.
    """

    feasible: bool
    assignment: dict[str, str] = field(default_factory=dict)
    nodes: list[NodePlacement] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    path: list[PathStep] = field(default_factory=list)
    tick_to_trade_ns: float | None = None
    budget_ns: float | None = None
    host_busy_ns: float = 0.0
    pcie_bytes_per_event: int = 0
    resources_used: Resources = NO_RESOURCES
    device: Resources | None = None
    min_event_interval_ns: float | None = None
    method: str = ""
    optimal: bool = False
    explored: int = 0
    notes: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def slack_ns(self) -> float | None:
        if self.budget_ns is None or self.tick_to_trade_ns is None:
            return None
        return self.budget_ns - self.tick_to_trade_ns

    @property
    def budget_met(self) -> bool:
        return self.feasible and (self.slack_ns is None or self.slack_ns >= 0)

    def node(self, node_id: str) -> NodePlacement:
        return next(n for n in self.nodes if n.id == node_id)


class PlannerInputError(ValueError):
    """Raised when a Problem is malformed (unknown node in an edge, an edge against execution order, no candidates
    given at all); a problem that is well formed but cannot be placed is a ``Placement`` with ``feasible`` False."""


# ---------------------------------------------------------------------------------------------------------------
# Compiled form: integers (picoseconds, bytes), indices instead of names.


def _ps(ns: float) -> int:
    return int(round(ns * PS_PER_NS))


@dataclass
class _Compiled:
    problem: Problem
    ids: list[str]
    cands: list[list[str]]  # per node, candidate targets in TARGET_ORDER
    lat: list[dict[str, int]]
    res: list[dict[str, tuple[int, int, int, int]]]
    preds: list[list[tuple[int, int]]]  # (producer index, bytes)
    wire_in: list[dict[str, int] | None]
    wire_out: list[dict[str, int] | None]
    device: tuple[int, int, int, int] | None
    interval_ps: int | None
    pcie_one_way: int
    pcie_bytes_per_s: float
    call: dict[str, int]
    notes: list[str]
    dropped: dict[int, list[str]]  # node index → why each candidate was dropped

    @property
    def n(self) -> int:
        return len(self.ids)

    def xfer(self, t_from: str, t_to: str, nbytes: int) -> int:
        if (t_from == "fpga") == (t_to == "fpga"):
            return 0
        return self.pcie_one_way + _ps(nbytes * 1e9 / self.pcie_bytes_per_s)

    def entry(self, previous: str | None, target: str) -> int:
        if target == "fpga" or previous == target:
            return 0
        return self.call[target]


def _compile(problem: Problem) -> _Compiled:
    ids = [n.id for n in problem.nodes]
    index = {node_id: i for i, node_id in enumerate(ids)}
    if len(index) != len(ids):
        raise PlannerInputError("node ids repeat in the problem")
    c = problem.crossings
    preds: list[dict[int, int]] = [dict() for _ in ids]
    for e in problem.edges:
        if e.producer not in index or e.consumer not in index:
            raise PlannerInputError(f"edge {e.producer} → {e.consumer} names a node that is not in the problem")
        u, v = index[e.producer], index[e.consumer]
        if u >= v:
            raise PlannerInputError(f"edge {e.producer} → {e.consumer} goes against the execution order")
        preds[v][u] = preds[v].get(u, 0) + e.bytes_per_event
    wire_ps = lambda nbytes: _ps(nbytes * 8e9 / c.wire_bits_per_s)  # noqa: E731
    interval_ps = None if problem.min_event_interval_ns is None else _ps(problem.min_event_interval_ns)
    device = None if problem.device is None else problem.device.as_tuple()
    compiled = _Compiled(
        problem, ids, [], [], [], [sorted(p.items()) for p in preds], [], [], device, interval_ps,
        _ps(c.pcie_one_way_ns), c.pcie_bytes_per_s, {"cpu": _ps(c.python_call_ns), "numba": _ps(c.numba_call_ns)},
        [], {},
    )
    for i, node in enumerate(problem.nodes):
        unknown = [t for t in node.costs if t not in TARGET_ORDER]
        if unknown:
            raise PlannerInputError(f"node {node.id}: unknown target(s) {', '.join(unknown)}")
        kept, dropped = [], []
        for target in (t for t in TARGET_ORDER if t in node.costs):
            reason = _candidate_problem(node, target, node.costs[target], problem)
            if reason:
                dropped.append(f"{target}: {reason}")
            else:
                kept.append(target)
        compiled.cands.append(kept)
        if dropped:
            compiled.dropped[i] = dropped
            compiled.notes.extend(f"{node.id} cannot run on {d}" for d in dropped)
        compiled.lat.append({t: _ps(node.costs[t].latency_ns) for t in kept})
        compiled.res.append({t: (node.costs[t].resources.as_tuple() if t == "fpga" else (0, 0, 0, 0)) for t in kept})
        compiled.wire_in.append({t: wire_ps(node.wire_bytes) + _ps(c.mac_rx_ns if t == "fpga" else c.nic_rx_ns)
                                 for t in kept} if node.wire_bytes else None)
        compiled.wire_out.append({t: _ps(c.mac_tx_ns if t == "fpga" else c.nic_tx_ns) + wire_ps(node.order_bytes)
                                  for t in kept} if node.order_bytes else None)
    return compiled


def _candidate_problem(node: PlanNode, target: str, cost: TargetCost, problem: Problem) -> str | None:
    """Why ``target`` can never hold ``node`` whatever the others do, or None."""
    interval = problem.min_event_interval_ns
    if target == "fpga":
        if problem.device is not None:
            over = cost.resources.over(problem.device)
            if over:
                return f"it alone needs more than the device offers ({', '.join(over)})"
        ii = cost.ii_ns if cost.ii_ns is not None else cost.latency_ns
        if interval is not None and ii > interval:
            return f"it accepts an event every {ii:g} ns (II), but events may arrive every {interval:g} ns"
    elif interval is not None and cost.latency_ns > interval:
        return f"one step takes {cost.latency_ns:g} ns of host time, but events may arrive every {interval:g} ns"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Evaluation of one complete assignment.


@dataclass
class _Evaluation:
    key: tuple
    tick_ps: int
    finish: list[int]
    start: list[int]
    entry: list[int]
    binding: list[tuple]  # per node: ("wire",) | ("edge", u) | ("host", u) | ("none",)
    last_order: int | None
    busy_ps: int
    pcie_bytes: int
    res: tuple[int, int, int, int]
    violations: list[str]


def _evaluate(cp: _Compiled, assign: tuple[str, ...]) -> _Evaluation:
    n = cp.n
    finish, start, entry = [0] * n, [0] * n, [0] * n
    binding: list[tuple] = [("none",)] * n
    host_free, last_host = 0, None
    busy = pcie = 0
    lut = ff = dsp = bram = 0
    tick, last_order = 0, None
    previous = None
    for v in range(n):
        t = assign[v]
        ready, why = 0, ("none",)
        if cp.wire_in[v] is not None:
            ready, why = cp.wire_in[v][t], ("wire",)
        for u, nbytes in cp.preds[v]:
            arrival = finish[u] + cp.xfer(assign[u], t, nbytes)
            if (assign[u] == "fpga") != (t == "fpga"):
                pcie += nbytes
            if arrival > ready:
                ready, why = arrival, ("edge", u)
        lat = cp.lat[v][t]
        if t == "fpga":
            start[v] = ready
            r = cp.res[v][t]
            lut, ff, dsp, bram = lut + r[0], ff + r[1], dsp + r[2], bram + r[3]
        else:
            if host_free > ready:
                ready, why = host_free, ("host", last_host)
            entry[v] = cp.entry(previous, t)
            start[v] = ready
            busy += entry[v] + lat
            host_free, last_host = ready + entry[v] + lat, v
        finish[v] = start[v] + entry[v] + lat
        binding[v] = why
        if cp.wire_out[v] is not None:
            out = finish[v] + cp.wire_out[v][t]
            if last_order is None or out > tick:
                tick, last_order = out, v
        previous = t
    if last_order is None:  # no order node: the latest result counts
        tick = max(finish) if finish else 0
        last_order = max(range(n), key=lambda v: (finish[v], -v)) if n else None
    res = (lut, ff, dsp, bram)
    violations = _violations(cp, res, busy, pcie)
    key = (tick,) + res + (busy, pcie, tuple(TARGET_ORDER.index(t) for t in assign))
    return _Evaluation(key, tick, finish, start, entry, binding, last_order, busy, pcie, res, violations)


def _violations(cp: _Compiled, res: tuple, busy: int, pcie: int) -> list[str]:
    problems = []
    if cp.device is not None:
        problems += [f"{name.upper()} {used} > {limit}" for name, used, limit in zip(_RESOURCE_NAMES, res, cp.device)
                     if used > limit]
    if cp.interval_ps is not None:
        if busy > cp.interval_ps:
            problems.append(f"host work {busy / PS_PER_NS:g} ns per event > {cp.interval_ps / PS_PER_NS:g} ns between events")
        pcie_ps = _ps(pcie * 1e9 / cp.pcie_bytes_per_s)
        if pcie_ps > cp.interval_ps:
            problems.append(f"PCIe {pcie} B per event takes {pcie_ps / PS_PER_NS:g} ns > {cp.interval_ps / PS_PER_NS:g} ns")
    return problems


def evaluate(problem: Problem, assignment: Mapping[str, str]) -> tuple[float, list[str]]:
    """Return the modeled tick-to-trade (ns) of ``assignment`` and the limits it breaks (empty: feasible).

    Raises:
        PlannerInputError: a node missing from ``assignment`` or placed on a target it cannot use.
    """
    cp = _compile(problem)
    assign = _as_tuple(cp, assignment)
    ev = _evaluate(cp, assign)
    return ev.tick_ps / PS_PER_NS, ev.violations


def solution_key(problem: Problem, assignment: Mapping[str, str]) -> tuple:
    """The total order the planner minimizes: (tick-to-trade ps, LUT, FF, DSP, BRAM, host ps, PCIe bytes, targets)."""
    cp = _compile(problem)
    return _evaluate(cp, _as_tuple(cp, assignment)).key


def _as_tuple(cp: _Compiled, assignment: Mapping[str, str]) -> tuple[str, ...]:
    assign = []
    for v, node_id in enumerate(cp.ids):
        target = assignment.get(node_id)
        if target not in cp.cands[v]:
            raise PlannerInputError(f"node {node_id}: {target!r} is not one of its usable targets {cp.cands[v]}")
        assign.append(target)
    return tuple(assign)


# ---------------------------------------------------------------------------------------------------------------
# Solvers.


def solve(problem: Problem) -> Placement:
    """Place every node of ``problem``: the exact optimum for chains and DAGs up to EXACT_MAX_NODES nodes.

    Raises:
        PlannerInputError: when the problem is malformed (see the class).
    """
    cp = _compile(problem)
    unplaceable = _unplaceable(cp)
    if unplaceable:
        return Placement(False, notes=cp.notes, problem=unplaceable, device=problem.device,
                         budget_ns=problem.budget_ns, min_event_interval_ns=problem.min_event_interval_ns)
    best, method, optimal, explored = _search(cp)
    if best is None:
        return Placement(False, notes=cp.notes, problem=_why_infeasible(cp), device=problem.device,
                         budget_ns=problem.budget_ns, min_event_interval_ns=problem.min_event_interval_ns,
                         method=method, explored=explored)
    placement = _report(cp, best, method, optimal, explored)
    if placement.budget_ns is not None and not placement.budget_met:
        placement.problem = _why_over_budget(cp, placement)
    return placement


def _unplaceable(cp: _Compiled) -> str | None:
    """Name the nodes no target can hold, with each target's reason; None when every node has one."""
    empty = [v for v in range(cp.n) if not cp.cands[v]]
    if not empty:
        return None
    reasons = "; ".join(f"{cp.ids[v]}: " + ", ".join(cp.dropped.get(v, ["no candidate targets"])) for v in empty)
    return f"no target can run {', '.join(cp.ids[v] for v in empty)} ({reasons})"


def _search(cp: _Compiled) -> tuple[tuple | None, str, bool, int]:
    if cp.n == 0:
        return (), "empty", True, 0
    if _is_chain(cp):
        best, explored = _chain_dp(cp)
        return best, "dynamic programming over the chain (exact)", True, explored
    incumbent = _heuristic(cp)
    if cp.n <= EXACT_MAX_NODES:
        best, explored, finished = _branch_and_bound(cp, incumbent, cap=None)
        return best, "branch and bound (exact)", True, explored
    best, explored, finished = _branch_and_bound(cp, incumbent, cap=SEARCH_CAP)
    if finished:
        return best, "heuristic, then branch and bound (finished: exact)", True, explored
    return best, (f"heuristic (seeds, repair, single-node moves), then branch and bound stopped after {explored} "
                  "expansions: not proven optimal"), False, explored


def _is_chain(cp: _Compiled) -> bool:
    """Node i reads only node i-1; only the first node reads the wire; only the last sends orders."""
    for v in range(cp.n):
        if [u for u, _ in cp.preds[v]] != ([v - 1] if v else []):
            return False
        if v and cp.wire_in[v] is not None:
            return False
        if v < cp.n - 1 and cp.wire_out[v] is not None:
            return False
    return True


def _chain_dp(cp: _Compiled) -> tuple[tuple | None, int]:
    """Exact DP on a chain: per target of the current node, the Pareto set of labels.

    A label is (time, LUT, FF, DSP, BRAM, host ps, PCIe bytes, target ranks, assignment). On a chain the host is
    never busy when a node's input arrives, so a node's finish time depends only on its predecessor's finish time
    and target: labels extend independently, and a label that is no better in every component than another with
    the same last target can never lead to a better solution under the planner's order.
    """
    labels: dict[str, list[tuple]] = {}
    explored = 0
    for v in range(cp.n):
        extended: dict[str, list[tuple]] = {}
        sources = [(None, (0, 0, 0, 0, 0, 0, 0, (), ()))] if v == 0 else [(t, l) for t in labels for l in labels[t]]
        nbytes = cp.preds[v][0][1] if v else 0
        for previous, label in sources:
            for t in cp.cands[v]:
                explored += 1
                time, lut, ff, dsp, bram, busy, pcie, ranks, assign = label
                if v == 0:
                    time = cp.wire_in[0][t] if cp.wire_in[0] is not None else 0
                else:
                    time += cp.xfer(previous, t, nbytes)
                    if (previous == "fpga") != (t == "fpga"):
                        pcie += nbytes
                step = cp.entry(previous, t) + cp.lat[v][t]
                time += step
                if t == "fpga":
                    r = cp.res[v][t]
                    lut, ff, dsp, bram = lut + r[0], ff + r[1], dsp + r[2], bram + r[3]
                else:
                    busy += step
                new = (time, lut, ff, dsp, bram, busy, pcie, ranks + (TARGET_ORDER.index(t),), assign + (t,))
                if not _label_fits(cp, new):
                    continue
                extended.setdefault(t, []).append(new)
        labels = {t: _pareto(ls) for t, ls in extended.items()}
    best = None
    for t, ls in labels.items():
        for label in ls:
            tick = label[0] + (cp.wire_out[-1][t] if cp.wire_out[-1] is not None else 0)
            key = (tick,) + label[1:8]
            if best is None or key < best[0]:
                best = (key, label[8])
    return (best[1] if best else None), explored


def _label_fits(cp: _Compiled, label: tuple) -> bool:
    if cp.device is not None and any(used > limit for used, limit in zip(label[1:5], cp.device)):
        return False
    if cp.interval_ps is not None:
        if label[5] > cp.interval_ps or _ps(label[6] * 1e9 / cp.pcie_bytes_per_s) > cp.interval_ps:
            return False
    return True


def _pareto(labels: list[tuple]) -> list[tuple]:
    """Keep labels no other label beats in every cost component; of equal costs, the one with smaller ranks."""
    labels = sorted(labels, key=lambda l: l[:8])
    kept: list[tuple] = []
    for label in labels:
        costs = label[:7]
        if any(all(a <= b for a, b in zip(k[:7], costs)) for k in kept):
            continue
        kept.append(label)
    return kept


def _branch_and_bound(cp: _Compiled, incumbent: tuple | None, cap: int | None) -> tuple[tuple | None, int, bool]:
    """Depth-first over nodes in execution order; prune when the bound on tick-to-trade exceeds the best found.

    Assigned nodes' times are final (a node depends only on earlier nodes). The bound gives every unassigned node
    the earliest finish any target could reach with its inputs' own earliest finishes, ignoring host sharing
    among the unassigned nodes and resources: it never exceeds the true optimum of the subtree.
    """
    best, best_key = None, None
    if incumbent is not None:
        ev = _evaluate(cp, incumbent)
        if not ev.violations:
            best, best_key = incumbent, ev.key
    has_orders = any(w is not None for w in cp.wire_out)
    state = {"explored": 0, "stopped": False}
    n = cp.n
    min_res = [tuple(min(cp.res[v][t][k] for t in cp.cands[v]) for k in range(4)) for v in range(n)]
    min_busy = [min((cp.lat[v][t] for t in cp.cands[v] if t != "fpga"), default=None)
                if all(t != "fpga" for t in cp.cands[v]) else 0 for v in range(n)]
    suffix_res = [(0, 0, 0, 0)] * (n + 1)
    suffix_busy = [0] * (n + 1)
    for v in range(n - 1, -1, -1):
        suffix_res[v] = tuple(a + b for a, b in zip(suffix_res[v + 1], min_res[v]))
        suffix_busy[v] = suffix_busy[v + 1] + (min_busy[v] or 0)

    finish = [0] * n
    assign: list[str] = [""] * n

    def bound(v: int, host_free: int, tick: int) -> int:
        lbf: list[dict[str, int] | None] = [None] * n
        result = tick
        for w in range(v, n):
            row = {}
            for t in cp.cands[w]:
                r = cp.wire_in[w][t] if cp.wire_in[w] is not None else 0
                for u, nbytes in cp.preds[w]:
                    if u < v:
                        r = max(r, finish[u] + cp.xfer(assign[u], t, nbytes))
                    else:
                        r = max(r, min(f + cp.xfer(tu, t, nbytes) for tu, f in lbf[u].items()))
                if t != "fpga":
                    r = max(r, host_free)
                row[t] = r + cp.lat[w][t]
            lbf[w] = row
            if cp.wire_out[w] is not None:
                result = max(result, min(row[t] + cp.wire_out[w][t] for t in row))
        if not has_orders:
            result = max([result] + [min(lbf[w].values()) for w in range(v, n)])
        return result

    def visit(v: int, host_free: int, previous: str | None, busy: int, res: tuple, tick: int) -> None:
        nonlocal best, best_key
        if state["stopped"]:
            return
        state["explored"] += 1
        if cap is not None and state["explored"] > cap:
            state["stopped"] = True
            return
        if v == n:
            ev = _evaluate(cp, tuple(assign))
            if not ev.violations and (best_key is None or ev.key < best_key):
                best, best_key = tuple(assign), ev.key
            return
        if cp.device is not None and any(r + s > d for r, s, d in zip(res, suffix_res[v], cp.device)):
            return
        if cp.interval_ps is not None and busy + suffix_busy[v] > cp.interval_ps:
            return
        if best_key is not None and bound(v, host_free, tick) > best_key[0]:
            return
        options = []
        for t in cp.cands[v]:
            ready = cp.wire_in[v][t] if cp.wire_in[v] is not None else 0
            for u, nbytes in cp.preds[v]:
                ready = max(ready, finish[u] + cp.xfer(assign[u], t, nbytes))
            if t == "fpga":
                done = ready + cp.lat[v][t]
            else:
                done = max(ready, host_free) + cp.entry(previous, t) + cp.lat[v][t]
            options.append((done, TARGET_ORDER.index(t), t))
        for done, _, t in sorted(options):
            assign[v] = t
            finish[v] = done
            if cp.wire_out[v] is not None:
                out = max(tick, done + cp.wire_out[v][t])
            else:
                out = tick if has_orders else max(tick, done)
            if t == "fpga":
                r = cp.res[v][t]
                visit(v + 1, host_free, t, busy, tuple(a + b for a, b in zip(res, r)), out)
            else:
                visit(v + 1, done, t, busy + cp.entry(previous, t) + cp.lat[v][t], res, out)
        assign[v] = ""

    visit(0, 0, None, 0, (0, 0, 0, 0), 0)
    return best, state["explored"], not state["stopped"]


def _heuristic(cp: _Compiled) -> tuple | None:
    """A feasible placement found quickly; the incumbent of the branch and bound and the answer on big graphs.

    Guarantees: deterministic; never worse than the best feasible seed (every uniform placement — all nodes on one
    target where they can run it, the others on their fastest usable target — and the per-node fastest
    placement); a seed that breaks a limit is repaired one node at a time (``_repair``); the result is a local
    optimum for single-node moves (no single node can move to make it better under the planner's order).
    """
    seeds = []
    fastest = tuple(min(cp.cands[v], key=lambda t: (cp.lat[v][t], TARGET_ORDER.index(t))) for v in range(cp.n))
    seeds.append(fastest)
    for target in TARGET_ORDER:
        seeds.append(tuple(target if target in cp.cands[v] else fastest[v] for v in range(cp.n)))
    best = None
    for seed in seeds:
        candidate = _repair(cp, seed)
        if candidate is None:
            continue
        key = _evaluate(cp, candidate).key
        if best is None or key < best[0]:
            best = (key, candidate)
    if best is None:
        return None
    current, current_key = best[1], best[0]
    improved = True
    while improved:
        improved = False
        for v in range(cp.n):
            for t in cp.cands[v]:
                if t == current[v]:
                    continue
                trial = current[:v] + (t,) + current[v + 1:]
                ev = _evaluate(cp, trial)
                if not ev.violations and ev.key < current_key:
                    current, current_key, improved = trial, ev.key, True
    return current


def _repair(cp: _Compiled, assign: tuple) -> tuple | None:
    """Change one node at a time, the change that most reduces the excess over the limits (then the smallest
    tick-to-trade) first, until every limit holds; None when no single change reduces the excess any more."""
    ev = _evaluate(cp, assign)
    excess = _excess(cp, ev)
    while ev.violations:
        best = None
        for v in range(cp.n):
            for t in cp.cands[v]:
                if t == assign[v]:
                    continue
                trial = assign[:v] + (t,) + assign[v + 1:]
                trial_ev = _evaluate(cp, trial)
                rank = (_excess(cp, trial_ev), trial_ev.key)
                if best is None or rank < best[0]:
                    best = (rank, trial, trial_ev)
        if best is None or best[0][0] >= excess:
            return None
        (excess, _), assign, ev = best
    return assign


def _excess(cp: _Compiled, ev: _Evaluation) -> float:
    """How far an evaluation is over its limits, as a sum of relative excesses (0: feasible)."""
    total = 0.0
    if cp.device is not None:
        total += sum(max(0.0, used / max(limit, 1) - 1.0) for used, limit in zip(ev.res, cp.device) if used > limit)
    if cp.interval_ps is not None:
        total += max(0.0, ev.busy_ps / cp.interval_ps - 1.0)
        total += max(0.0, _ps(ev.pcie_bytes * 1e9 / cp.pcie_bytes_per_s) / cp.interval_ps - 1.0)
    return total


# ---------------------------------------------------------------------------------------------------------------
# Reports and explanations.


def _report(cp: _Compiled, assign: tuple, method: str, optimal: bool, explored: int) -> Placement:
    ev = _evaluate(cp, assign)
    p = cp.problem
    nodes = [
        NodePlacement(cp.ids[v], p.nodes[v].label, assign[v], p.nodes[v].costs[assign[v]], ev.start[v] / PS_PER_NS,
                      ev.finish[v] / PS_PER_NS, ev.entry[v] / PS_PER_NS, _why(cp, assign, ev, v))
        for v in range(cp.n)
    ]
    path_nodes = _critical_nodes(ev)
    transfers = _transfers(cp, assign, ev, path_nodes)
    return Placement(
        True, dict(zip(cp.ids, assign)), nodes, transfers, _path(cp, assign, ev), ev.tick_ps / PS_PER_NS,
        p.budget_ns, ev.busy_ps / PS_PER_NS, ev.pcie_bytes, Resources(*ev.res), p.device, p.min_event_interval_ns,
        method, optimal, explored, list(cp.notes),
    )


def _critical_nodes(ev: _Evaluation) -> list[int]:
    chain = []
    v = ev.last_order
    while v is not None:
        chain.append(v)
        kind = ev.binding[v]
        v = kind[1] if kind[0] in ("edge", "host") else None
    return list(reversed(chain))


def _path(cp: _Compiled, assign: tuple, ev: _Evaluation) -> list[PathStep]:
    """The chain of waits that sets tick-to-trade, from the wire to the order; its steps add up to the total.

    Each node on it was held back either by an input (the wire, or an edge from the previous node on the path)
    or by the host thread (the previous node on the path is then the host node that ran just before it).
    """
    steps: list[PathStep] = []
    at = 0

    def add(what: str, ps: int) -> None:
        nonlocal at
        at += ps
        steps.append(PathStep(what, ps / PS_PER_NS, at / PS_PER_NS))

    p = cp.problem
    chain = _critical_nodes(ev)
    for v in chain:
        t, kind = assign[v], ev.binding[v]
        medium = "MAC/PCS" if t == "fpga" else "NIC (kernel bypass)"
        if kind[0] == "wire":
            add(f"market data in: {p.nodes[v].wire_bytes} B on the wire, then the {medium} → {cp.ids[v]}",
                cp.wire_in[v][t])
        elif kind[0] == "edge" and ev.start[v] > ev.finish[kind[1]]:
            u = kind[1]
            add(f"{cp.ids[u]} → {cp.ids[v]}: {dict(cp.preds[v])[u]} B over PCIe ({assign[u]} → {t})",
                ev.start[v] - ev.finish[u])
        if ev.entry[v]:
            add(f"enter a {t} segment (call from the Python driver)", ev.entry[v])
        cost = p.nodes[v].costs[t]
        detail = f"{cost.cycles} cycles" if cost.cycles is not None else cost.origin
        name = f"{cp.ids[v]} ({p.nodes[v].label})" if p.nodes[v].label else cp.ids[v]
        add(f"{name} on {t}" + (f", {detail}" if detail else ""), cp.lat[v][t])
        if v == chain[-1] and cp.wire_out[v] is not None:
            add(f"order out: the {medium}, then {p.nodes[v].order_bytes} B on the wire", cp.wire_out[v][t])
    if at != ev.tick_ps:  # the steps are the model's own terms: they must add up
        raise InvariantError(f"tick-to-trade path adds up to {at} ps, the model says {ev.tick_ps} ps")
    return steps


def _transfers(cp: _Compiled, assign: tuple, ev: _Evaluation, path_nodes: list[int]) -> list[Transfer]:
    p = cp.problem
    on_path = set(zip(path_nodes, path_nodes[1:]))
    first = path_nodes[0] if path_nodes and ev.binding[path_nodes[0]][0] == "wire" else None
    transfers = []
    for v in range(cp.n):
        t, node_id = assign[v], cp.ids[v]
        if cp.wire_in[v] is not None:
            transfers.append(Transfer("wire", node_id, "wire", t, p.nodes[v].wire_bytes,
                                      cp.wire_in[v][t] / PS_PER_NS, "wire in", v == first))
        for u, nbytes in cp.preds[v]:
            if assign[u] == t:
                continue
            kind = "pcie" if (assign[u] == "fpga") != (t == "fpga") else "host memory"
            transfers.append(Transfer(cp.ids[u], node_id, assign[u], t, nbytes,
                                      cp.xfer(assign[u], t, nbytes) / PS_PER_NS, kind, (u, v) in on_path))
        if cp.wire_out[v] is not None:
            transfers.append(Transfer(node_id, "wire", t, "wire", p.nodes[v].order_bytes,
                                      cp.wire_out[v][t] / PS_PER_NS, "order out", v == ev.last_order))
    return transfers


def _why(cp: _Compiled, assign: tuple, ev: _Evaluation, v: int) -> str:
    """Why node v sits on its target: what moving it alone would change, and what could not hold it."""
    parts = []
    if len(cp.problem.nodes[v].costs) == 1:
        parts.append("fixed: its only candidate")
    for t in TARGET_ORDER:
        if t == assign[v] or t not in cp.cands[v]:
            continue
        trial = assign[:v] + (t,) + assign[v + 1:]
        other = _evaluate(cp, trial)
        delta = (other.tick_ps - ev.tick_ps) / PS_PER_NS
        text = f"{t}: {'+' if delta >= 0 else ''}{delta:g} ns"
        if other.violations:
            text += f" and breaks {'; '.join(other.violations)}"
        elif delta == 0:
            text += " (tie: " + _tie_reason(ev, other) + ")"
        parts.append(text)
    parts += cp.dropped.get(v, [])
    return "; ".join(parts) if parts else "the only target it can use"


def _tie_reason(chosen: _Evaluation, other: _Evaluation) -> str:
    names = ("LUT", "FF", "DSP", "BRAM", "host work", "PCIe bytes")
    for name, a, b in zip(names, chosen.key[1:7], other.key[1:7]):
        if a != b:
            return f"less {name}"
    return "simpler target"


def _why_infeasible(cp: _Compiled) -> str:
    """Name the node, resource or rate that makes every placement break a limit."""
    forced = [v for v in range(cp.n) if cp.cands[v] == ["fpga"]]
    if cp.device is not None and forced:
        total = tuple(sum(cp.res[v]["fpga"][k] for v in forced) for k in range(4))
        over = [f"{name.upper()} {used} > {limit}" for name, used, limit in zip(_RESOURCE_NAMES, total, cp.device)
                if used > limit]
        if over:
            return (f"the nodes that can only run on fpga ({', '.join(cp.ids[v] for v in forced)}) need more than the "
                    f"device budget: {', '.join(over)}")
    if cp.interval_ps is not None:
        host_only = [v for v in range(cp.n) if "fpga" not in cp.cands[v]]
        need = sum(min(cp.lat[v][t] for t in cp.cands[v]) for v in host_only)
        if need > cp.interval_ps:
            heavy = sorted(host_only, key=lambda v: -min(cp.lat[v].values()))[:3]
            most = ", ".join(f"{cp.ids[v]} {min(cp.lat[v].values()) / PS_PER_NS:g} ns" for v in heavy)
            return (f"the host cannot keep up: nodes that cannot run on fpga need at least {need / PS_PER_NS:g} ns of "
                    f"host time per event (most: {most}), but events may arrive every {cp.interval_ps / PS_PER_NS:g} ns")
    limits = []
    if cp.device is not None:
        limits.append(f"the device budget ({Resources(*cp.device)})")
    if cp.interval_ps is not None:
        limits.append(f"the event rate (one every {cp.interval_ps / PS_PER_NS:g} ns: host work, FPGA II and PCIe "
                      "bytes per event must fit in it)")
    return "no placement satisfies " + " and ".join(limits) + " together"


def _why_over_budget(cp: _Compiled, placement: Placement) -> str:
    p = cp.problem
    over = placement.tick_to_trade_ns - p.budget_ns
    text = (f"the latency budget {p.budget_ns:g} ns cannot be met: the best placement takes "
            f"{placement.tick_to_trade_ns:g} ns ({over:g} ns over).")
    free = replace(p, device=None, min_event_interval_ns=None, budget_ns=None)
    if p.device is not None or p.min_event_interval_ns is not None:
        unlimited = solve(free)
        if unlimited.feasible and unlimited.tick_to_trade_ns <= p.budget_ns:
            limits = []
            if p.device is not None:
                no_device = solve(replace(p, device=None, budget_ns=None))
                if no_device.feasible and no_device.tick_to_trade_ns <= p.budget_ns:
                    limits.append(f"the device budget ({placement.device})")
            if p.min_event_interval_ns is not None:
                no_rate = solve(replace(p, min_event_interval_ns=None, budget_ns=None))
                if no_rate.feasible and no_rate.tick_to_trade_ns <= p.budget_ns:
                    limits.append(f"the event rate (one every {p.min_event_interval_ns:g} ns)")
            moved = {k: v for k, v in unlimited.assignment.items() if placement.assignment[k] != v}
            return (text + f" Without {' or '.join(limits) or 'the limits together'} it would take "
                    f"{unlimited.tick_to_trade_ns:g} ns by moving " + ", ".join(f"{k} to {v}" for k, v in moved.items())
                    + ": the limits, not the targets' speed, are what stop it.")
        if unlimited.feasible:
            text += f" Even with unlimited FPGA resources and no rate limit the best is {unlimited.tick_to_trade_ns:g} ns."
    largest = sorted(placement.path, key=lambda s: -s.ns)[:3]
    return text + " Largest terms on the critical path: " + "; ".join(f"{s.what} {s.ns:g} ns" for s in largest) + "."


def brute_force(problem: Problem) -> Placement:
    """Try every assignment (for tests and small checks): the reference the solvers are compared with."""
    cp = _compile(problem)
    if _unplaceable(cp):
        return Placement(False, problem=_unplaceable(cp))
    best = None
    for assign in itertools.product(*cp.cands):
        ev = _evaluate(cp, assign)
        if not ev.violations and (best is None or ev.key < best[0]):
            best = (ev.key, assign)
    if best is None:
        return Placement(False, problem=_why_infeasible(cp))
    return _report(cp, best[1], "brute force", True, 0)
