"""Build the graph of a loaded spec: resolve input references, check port types, order the nodes.

An edge is ``producer.port → consumer input``. A ``prev(node.port)`` edge is a feedback edge: the consumer
reads the value as it was before the current event, so it is left out of cycle detection and of what makes
a node fire. Every other cycle is an error that prints the cycle.
"""

import difflib
import re
from dataclasses import dataclass, field

from nodes.contract import RecordType, ScalarType, Scope
from nodes.errors import GraphError, SourceLocation, SpecError

# Simulated venues are the ops of the backtest room: the exchange, outside the trading system.
VENUE_PREFIX = "backtest."

_REF = re.compile(r"^\s*(?:(?P<prev>prev)\(\s*)?(?P<node>[A-Za-z_][\w\-]*)(?:\.(?P<port>[A-Za-z_]\w*))?(?(prev)\s*\))\s*$")


@dataclass(frozen=True)
class PortRef:
    """One value a step argument reads: ``node.port``, delayed by one event when ``delayed``."""

    node: str
    port: str
    delayed: bool = False

    def __str__(self) -> str:
        return f"prev({self.node}.{self.port})" if self.delayed else f"{self.node}.{self.port}"


@dataclass
class GraphNode:
    """A node with its inputs resolved: ``args`` lists one PortRef per step argument (records expanded)."""

    id: str
    definition: object  # pipelines.spec.load.NodeDefinition
    args: list[PortRef] = field(default_factory=list)
    arg_inputs: list[str] = field(default_factory=list)  # the op input each arg belongs to (parallel to args)
    tables: dict[str, str] = field(default_factory=dict)  # table ops: input name → producer node
    sources: frozenset[str] = frozenset()  # source nodes whose events make this node fire

    @property
    def op(self):
        return self.definition.op


@dataclass
class Graph:
    """The resolved graph: nodes in topological order, sources in declaration order, instruments."""

    nodes: dict[str, GraphNode]
    order: list[str]
    sources: list[str]
    instruments: list[str]
    source_instruments: dict[str, list[str]]

    def venues(self) -> list[str]:
        """The simulated venues (ops named ``backtest.*``), in graph order."""
        return [n for n in self.order if self.nodes[n].op.name.startswith(VENUE_PREFIX)]

    def order_nodes(self, venues: list[str] | None = None) -> list[str]:
        """The stream nodes whose output a venue reads as its order within the event: every input of the venue but
        its triggering (market) inputs and feedback; in graph order of the venues, then of their inputs."""
        found: list[str] = []
        for venue in self.venues() if venues is None else venues:
            node = self.nodes[venue]
            triggers = node.op.triggers or ()
            for arg, name in zip(node.args, node.arg_inputs):
                ordering = not arg.delayed and name not in triggers and self.nodes[arg.node].op.kind == "stream"
                if ordering and arg.node not in found:
                    found.append(arg.node)
        return found

    def consumers(self, node_id: str) -> list[str]:
        """Nodes that read ``node_id`` within the same event (feedback readers are not counted)."""
        return [
            n.id for n in self.nodes.values()
            if any(a.node == node_id and not a.delayed for a in n.args) or node_id in n.tables.values()
        ]


def build_graph(spec) -> Graph:
    """Resolve and check every edge of ``spec`` (a LoadedSpec).

    Raises:
        GraphError: unknown node or port, wrong port type, a cycle, or a node that could never fire.
    """
    problems: list[tuple[SourceLocation | None, str]] = []
    nodes = {node_id: GraphNode(node_id, definition) for node_id, definition in spec.nodes.items()}
    for node in nodes.values():
        problems.extend(_connect(node, nodes, spec))
    if problems:
        raise GraphError(problems)
    order = _topological_order(nodes, spec)
    sources = [n for n in order if nodes[n].op.kind == "source"]
    source_instruments = {s: nodes[s].op.instruments(nodes[s].definition.params, spec.path.parent) for s in sources}
    instruments: list[str] = []
    for names in source_instruments.values():
        instruments.extend(name for name in names if name not in instruments)
    _assign_sources(nodes, order, spec)
    _check_as_of_reads(nodes, source_instruments, spec)
    _check_instrument_constants(nodes, instruments, spec)
    graph = Graph(nodes, order, sources, instruments, source_instruments)
    spec.graph = graph
    return graph


def _connect(node: GraphNode, nodes: dict[str, GraphNode], spec) -> list:
    op = node.op
    raw = node.definition.inputs
    at = ("nodes", node.id, "in")
    declared = list(op.inputs)
    if raw is None:
        return [(spec.where(*at[:2]), f"node {node.id!r} ({op.name}) needs inputs: {', '.join(declared)}")] if declared else []
    if not declared:
        return [(spec.where(*at), f"op {op.name} takes no inputs, but node {node.id!r} gives 'in'")]
    if isinstance(raw, str):
        if len(declared) != 1:
            return [(spec.where(*at), f"op {op.name} takes inputs {', '.join(declared)}: give a list or a map")]
        bound = {declared[0]: (raw, at)}
    elif isinstance(raw, list):
        if len(raw) != len(declared):
            return [(spec.where(*at), f"op {op.name} takes {len(declared)} inputs ({', '.join(declared)}), got {len(raw)}")]
        bound = {name: (ref, at + (i,)) for i, (name, ref) in enumerate(zip(declared, raw))}
    else:
        problems = []
        for name in raw:
            if name not in op.inputs:
                problems.append((spec.where(*at, name), f"op {op.name} has no input {name!r}{_hint(name, declared)}; inputs: {', '.join(declared)}"))
        missing = [name for name in declared if name not in raw]
        if missing:
            problems.append((spec.where(*at), f"node {node.id!r} ({op.name}) is missing input(s): {', '.join(missing)}"))
        if problems:
            return problems
        bound = {name: (raw[name], at + (name,)) for name in declared}
    problems = []
    for name in declared:
        ref, path = bound[name]
        problems.extend(_bind(node, name, ref, path, nodes, spec))
    return problems


def _bind(node: GraphNode, input_name: str, ref: str, path: tuple, nodes: dict, spec) -> list:
    where = spec.where(*path)
    match = _REF.match(ref) if isinstance(ref, str) else None
    if not match:
        return [(where, f"input {input_name!r}: {ref!r} is not a reference; expected 'node', 'node.port' or 'prev(node.port)'")]
    producer_id, port, delayed = match["node"], match["port"], bool(match["prev"])
    if producer_id not in nodes:
        return [(where, f"unknown input node {producer_id!r}{_hint(producer_id, nodes)}")]
    producer = nodes[producer_id]
    op = node.op
    if op.kind == "table":
        node.tables[input_name] = producer_id
        return []
    if producer.op.kind == "table":
        return [(where, f"table op node {producer_id!r} cannot feed stream node {node.id!r}: table ops run after the stream")]
    outputs = producer.op.outputs
    expected = op.inputs[input_name]
    if isinstance(expected, RecordType):
        if port is not None:
            return [(where, f"input {input_name!r} expects a whole {expected.name} record, e.g. '{producer_id}', not one port")]
        missing = [(f, t) for f, t in expected.fields if outputs.get(f) != t]
        if missing:
            return [(where, f"wrong port type: input {input_name!r} of {op.name} expects {expected}; node {producer_id!r} "
                            f"({producer.op.name}) lacks {', '.join(f'{f}: {t}' for f, t in missing)}")]
        node.args.extend(PortRef(producer_id, f, delayed) for f, _ in expected.fields)
        node.arg_inputs.extend(input_name for _ in expected.fields)
        return []
    if port is None:
        if len(outputs) != 1:
            return [(where, f"node {producer_id!r} has outputs {', '.join(outputs)}; name one, e.g. '{producer_id}.{next(iter(outputs), 'out')}'")]
        port = next(iter(outputs))
    if port not in outputs:
        return [(where, f"unknown output port {port!r} of node {producer_id!r} ({producer.op.name}){_hint(port, outputs)}; outputs: {', '.join(outputs)}")]
    if outputs[port] != expected:
        return [(where, f"wrong port type: input {input_name!r} of {op.name} expects {expected}, {producer_id}.{port} is {outputs[port]}")]
    node.args.append(PortRef(producer_id, port, delayed))
    node.arg_inputs.append(input_name)
    return []


def _hint(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _dependencies(node: GraphNode) -> list[str]:
    return [a.node for a in node.args if not a.delayed] + list(node.tables.values())


def _topological_order(nodes: dict[str, GraphNode], spec) -> list[str]:
    """Kahn's algorithm, ready nodes taken in declaration order so the order is stable."""
    waiting = {n: set(_dependencies(node)) for n, node in nodes.items()}
    order: list[str] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if not deps), key=lambda n: nodes[n].definition.index)
        if not ready:
            cycle = _find_cycle(waiting)
            raise GraphError.at(
                spec.where("nodes", cycle[0], "in"),
                "cycle: " + " → ".join(cycle + [cycle[0]])
                + "; break it with a feedback input prev(node.port), which reads the value one event back",
            )
        node_id = ready[0]
        order.append(node_id)
        del waiting[node_id]
        for deps in waiting.values():
            deps.discard(node_id)
    return order


def _find_cycle(waiting: dict[str, set[str]]) -> list[str]:
    start = min(waiting)
    path, seen = [start], {start: 0}
    current = start
    while True:
        current = sorted(d for d in waiting[current] if d in waiting)[0]
        if current in seen:
            cycle = path[seen[current]:]
            # a consumer depends on its producer: print the flow of data, producer first
            return list(reversed(cycle))
        seen[current] = len(path)
        path.append(current)


def _assign_sources(nodes: dict[str, GraphNode], order: list[str], spec) -> None:
    """A node fires on the events of the sources behind its triggering inputs (all inputs unless the op says).

    A venue declares ``triggers = ("market",)``: it steps on its market's events only, and reads its other
    inputs as of that moment, so a signal computed from another instrument never makes it trade that one.
    """
    for node_id in order:
        node = nodes[node_id]
        if node.op.kind == "source":
            node.sources = frozenset({node_id})
            continue
        triggers = getattr(node.op, "triggers", None)
        drivers = [
            a.node for a, name in zip(node.args, node.arg_inputs)
            if not a.delayed and (triggers is None or name in triggers)
        ] + list(node.tables.values())
        node.sources = frozenset().union(*(nodes[d].sources for d in drivers)) if drivers else frozenset()
        if not node.sources:
            raise GraphError.at(spec.where("nodes", node_id, "in"),
                                f"node {node_id!r} reads only prev(...) inputs, so no event would ever make it run")


def _check_instrument_constants(nodes: dict[str, GraphNode], instruments: list[str], spec) -> None:
    """Build every stream op's per-instrument constants once, so a param naming an instrument the spec does not
    have (``impact_by_instrument: {XOM: ...}``) is a spec error at the node, from ``validate`` and ``plan`` too."""
    problems = []
    for node in nodes.values():
        if node.op.kind != "stream":
            continue
        try:
            node.op.instrument_constants(node.definition.params, instruments)
        except ValueError as error:
            problems.append((spec.where("nodes", node.id, "with"), f"{error} [op {node.op.name}]"))
    if problems:
        raise SpecError(problems)


def _check_as_of_reads(nodes: dict[str, GraphNode], source_instruments: dict[str, list[str]], spec) -> None:
    """A node that runs on more sources than its producer reads the producer's last value (as-of, backward).

    That is well defined for one-instrument producers and account-wide ports; for a per-instrument port of a
    many-instrument stream, "the last value" would be another instrument's, so it is refused.
    """
    for node in nodes.values():
        for arg in node.args:
            producer = nodes[arg.node]
            if arg.delayed or producer.sources >= node.sources or producer.op.kind == "table":
                continue
            if producer.op.kind == "stream" and producer.op.scope_of(arg.port) is Scope.ACCOUNT:
                continue
            count = sum(len(source_instruments[s]) for s in producer.sources)
            if count > 1:
                raise GraphError.at(
                    spec.where("nodes", node.id, "in"),
                    f"node {node.id!r} runs on events of {', '.join(sorted(node.sources))} but reads {arg}, a "
                    f"per-instrument value of {count} instruments that does not update on those events; "
                    "as-of reads across sources need a one-instrument producer",
                )
