"""Generate the loop of one segment: the same Python text runs on cpu and compiles with numba.

The generated function takes flat arguments (arrays, constant tuples, state, held port values), loops over
the events of one chunk and returns its state and held values so the next chunk continues where this one
stopped. Per event it: reads transfers and feedback snapshots, then for each node whose sources include the
event's source, loads the node's inputs, calls its ``step``, records outputs and stores feedback values, and
finally writes the transfers later segments read.

State lives where it is cheapest: an unkeyed node, or a keyed node that only ever sees one instrument, threads
its state tuple through the loop (scalars stay in registers); a keyed node over several instruments keeps
each state element in an array indexed by instrument, loaded before and stored after its step.
"""

from dataclasses import dataclass, field

import numpy as np

from hardware.targets import implementation
from nodes.contract import ScalarType, Scope
from pipelines.plan import Plan, Segment


@dataclass
class SegmentCode:
    """A generated segment: its source and what each argument is, for the executor to bind."""

    entry: str
    source: str
    arguments: list[tuple[str, str, tuple]] = field(default_factory=list)  # (name, kind, detail)
    returns: list[tuple[str, str, tuple]] = field(default_factory=list)  # (kind, detail...) per returned value
    steps: dict[str, object] = field(default_factory=dict)  # global name → node id (bound by the executor)


def ident(plan: Plan, node_id: str) -> str:
    """A Python identifier for a node id (ids may hold '-')."""
    return f"n{plan.graph.nodes[node_id].definition.index}"


def node_is_threaded(plan: Plan, node_id: str) -> bool:
    """Whether the node's state is one tuple threaded through the loop (else per-instrument arrays)."""
    node = plan.graph.nodes[node_id]
    if not node.op.keyed:
        return True
    return sum(len(plan.graph.source_instruments[s]) for s in node.sources) <= 1


def generate_segment(plan: Plan, segment: Segment) -> SegmentCode:
    g = plan.graph
    code = SegmentCode(entry=f"segment_{segment.index}", source="")
    many_sources = len(g.sources) > 1
    needs = {"key"} if len(g.instruments) > 1 or any(not g.nodes[n].op.keyed for n in segment.nodes) else set()
    needs |= {c for n in segment.nodes for c in g.nodes[n].op.context}
    arg = lambda name, kind, *detail: code.arguments.append((name, kind, detail)) or name  # noqa: E731

    arg("n", "n")
    if many_sources:
        arg("src", "src")
        arg("row", "row")
    if "key" in needs or plan.held:
        arg("key", "key")
    for context in ("ts_event", "ts_recv"):
        if context in needs:
            arg(context, context)
    body_top: list[str] = []
    # values this segment reads: source columns (per source), transfers in, feedback snapshots
    source_reads: dict[str, list[str]] = {}
    for node_id in segment.nodes:
        for a in g.nodes[node_id].args:
            if g.nodes[a.node].op.kind == "source" and not a.delayed:
                ports = source_reads.setdefault(a.node, [])
                if a.port not in ports:
                    ports.append(a.port)
    for source_id, ports in source_reads.items():
        for port in ports:
            arg(f"col_{ident(plan, source_id)}_{port}", "column", source_id, port)
    for node_id, port in segment.reads:
        name = arg(f"xin_{ident(plan, node_id)}_{port}", "transfer_in", node_id, port)
        body_top.append(f"v_{ident(plan, node_id)}_{port} = {name}[i]")
    held_arrays = set()
    for node_id in segment.nodes:
        for a in g.nodes[node_id].args:
            if a.delayed:
                held_arrays.add((a.node, a.port))
    for node_id, port in plan.held:
        if node_id in segment.nodes:
            held_arrays.add((node_id, port))
    for node_id, port in sorted(held_arrays):
        name = arg(f"hold_{ident(plan, node_id)}_{port}", "hold", node_id, port)
        scope = g.nodes[node_id].op.scope_of(port)
        index = "k" if scope is Scope.KEY else "0"
        if any(a.delayed and (a.node, a.port) == (node_id, port) for n in segment.nodes for a in g.nodes[n].args):
            body_top.append(f"p_{ident(plan, node_id)}_{port} = {name}[{index}]")
    for node_id in segment.nodes:
        node_name = ident(plan, node_id)
        arg(f"c_{node_name}", "constants", node_id)
        if node_is_threaded(plan, node_id):
            arg(f"s_{node_name}", "state", node_id)
        else:
            for j in range(_state_size(plan, node_id)):
                arg(f"S_{node_name}_{j}", "state_array", node_id, j)
    produced = [(n, p) for n in segment.nodes for p in g.nodes[n].op.outputs]
    # a source's values are held like a node's: read when its own event arrives, kept (also across chunks)
    # for nodes that read them as of later events of other sources
    held = produced + [(s, p) for s, ports in source_reads.items() for p in ports]
    for node_id, port in held:
        arg(f"v0_{ident(plan, node_id)}_{port}", "held_value", node_id, port)
    recorded = [(n, p) for n in segment.nodes if n in plan.recorded for p in g.nodes[n].op.outputs]
    for node_id, port in recorded:
        arg(f"rec_{ident(plan, node_id)}_{port}", "record", node_id, port)
    for node_id, port in segment.writes:
        arg(f"xout_{ident(plan, node_id)}_{port}", "transfer_out", node_id, port)

    lines = [f"def {code.entry}({', '.join(name for name, _, _ in code.arguments)}):"]
    for node_id, port in held:
        lines.append(f"    v_{ident(plan, node_id)}_{port} = v0_{ident(plan, node_id)}_{port}")
    for node_id, port in segment.reads:
        lines.append(f"    v_{ident(plan, node_id)}_{port} = xin_{ident(plan, node_id)}_{port}[0]")
    lines.append("    for i in range(n):")
    inner = ["k = key[i]"] if ("key" in needs or plan.held) else []
    inner += ["sid = src[i]", "r = row[i]"] if many_sources else ["r = i"]
    for source_id, ports in source_reads.items():
        loads = [f"v_{ident(plan, source_id)}_{p} = col_{ident(plan, source_id)}_{p}[r]" for p in ports]
        if many_sources:
            inner.append(f"if sid == {_source_index(plan, source_id)}:")
            loads = ["    " + line for line in loads]
        inner += loads
    inner += body_top
    groups = _group_by_condition(plan, segment)
    for condition, node_ids in groups:
        block: list[str] = []
        for node_id in node_ids:
            block += _node_lines(plan, node_id, code, recorded)
        if condition is None or not many_sources:
            inner += block
        else:
            test = " or ".join(f"sid == {s}" for s in sorted(condition))
            inner.append(f"if {test}:")
            inner += ["    " + line for line in block]
    for node_id, port in segment.writes:
        inner.append(f"xout_{ident(plan, node_id)}_{port}[i] = v_{ident(plan, node_id)}_{port}")
    lines += ["        " + line for line in inner]
    returned = []
    for node_id in segment.nodes:
        if node_is_threaded(plan, node_id):
            returned.append(f"s_{ident(plan, node_id)}")
            code.returns.append(("state", (node_id,)))
    for node_id, port in held:
        returned.append(f"v_{ident(plan, node_id)}_{port}")
        code.returns.append(("held_value", (node_id, port)))
    lines.append(f"    return ({', '.join(returned)}{',' if len(returned) == 1 else ''})")
    code.source = "import numpy as np\n\n\n" + "\n".join(lines) + "\n"
    return code


def _source_index(plan: Plan, source_id: str) -> int:
    return plan.graph.sources.index(source_id)


def _group_by_condition(plan: Plan, segment: Segment) -> list[tuple[frozenset | None, list[str]]]:
    """Consecutive nodes that fire on the same sources share one ``if``."""
    groups: list[tuple[frozenset | None, list[str]]] = []
    for node_id in segment.nodes:
        condition = frozenset(_source_index(plan, s) for s in plan.graph.nodes[node_id].sources)
        if len(plan.graph.sources) == 1:
            condition = None
        if groups and groups[-1][0] == condition:
            groups[-1][1].append(node_id)
        else:
            groups.append((condition, [node_id]))
    return groups


def _node_lines(plan: Plan, node_id: str, code: SegmentCode, recorded: list) -> list[str]:
    g = plan.graph
    node = g.nodes[node_id]
    name = ident(plan, node_id)
    step = f"step_{name}"
    code.steps[step] = node_id
    args = [f"c_{name}", f"s_{name}"] + ["k" if c == "key" else f"{c}[i]" for c in node.op.context]
    for a in node.args:
        args.append(f"p_{ident(plan, a.node)}_{a.port}" if a.delayed else f"v_{ident(plan, a.node)}_{a.port}")
    outputs = [f"v_{name}_{p}" for p in node.op.outputs]
    lines = []
    threaded = node_is_threaded(plan, node_id)
    size = _state_size(plan, node_id)
    if not threaded:
        loaded = ", ".join(f"S_{name}_{j}[k]" for j in range(size))
        lines.append(f"s_{name} = ({loaded}{',' if size == 1 else ''})")
    lines.append(f"s_{name}, {', '.join(outputs)} = {step}({', '.join(args)})")
    if not threaded:
        for j in range(size):
            if not _state_element_is_array(plan, node_id, j):
                lines.append(f"S_{name}_{j}[k] = s_{name}[{j}]")
    for port in node.op.outputs:
        if (node_id, port) in recorded:
            lines.append(f"rec_{name}_{port}[i] = v_{name}_{port}")
        if (node_id, port) in plan.held:
            index = "k" if node.op.scope_of(port) is Scope.KEY else "0"
            lines.append(f"hold_{name}_{port}[{index}] = v_{name}_{port}")
    return lines


def node_implementation(plan: Plan, node_id: str):
    """What runs the node: its op, or on ``fpga`` the op's golden model (``hardware.targets.implementation``)."""
    node = plan.graph.nodes[node_id]
    return implementation(node.op, node.definition.place)


def initial_state(plan: Plan, node_id: str) -> tuple:
    return node_implementation(plan, node_id).init(node_constants(plan, node_id), len(plan.graph.instruments))


def node_constants(plan: Plan, node_id: str) -> tuple:
    params = plan.graph.nodes[node_id].definition.params
    runs = node_implementation(plan, node_id)
    per_instrument = getattr(runs, "instrument_constants", None)
    extra = tuple(per_instrument(params, plan.graph.instruments)) if per_instrument else ()
    return tuple(runs.constants(params)) + extra


def _state_size(plan: Plan, node_id: str) -> int:
    return len(initial_state(plan, node_id))


def _state_element_is_array(plan: Plan, node_id: str, j: int) -> bool:
    return isinstance(initial_state(plan, node_id)[j], np.ndarray)


def keyed_state_arrays(plan: Plan, node_id: str) -> list[np.ndarray]:
    """Per-instrument state: element j of every instrument's state, stacked along a leading key axis."""
    n_keys = len(plan.graph.instruments)
    arrays = []
    for value in initial_state(plan, node_id):
        if isinstance(value, np.ndarray):
            arrays.append(np.ascontiguousarray(np.stack([value.copy() for _ in range(n_keys)])))
        else:
            arrays.append(np.full(n_keys, value, dtype=np.asarray(value).dtype))
    return arrays


def initial_value(plan: Plan, node_id: str, port: str):
    """A port's value before its node first fires: the op's declared initial output, else NaN / 0 / False."""
    op = plan.graph.nodes[node_id].op
    declared = getattr(node_implementation(plan, node_id), "initial_outputs", None)
    if declared is not None:
        values = declared(node_constants(plan, node_id))
        if port in values:
            return _typed(values[port], op.outputs[port])
    return _typed(op.outputs[port].initial, op.outputs[port])


def _typed(value, scalar: ScalarType):
    return scalar.dtype.type(value)
