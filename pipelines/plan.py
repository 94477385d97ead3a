"""Compile a loaded spec into a plan: node order, placement, fused segments and transfers.

Consecutive stream nodes (in topological order) placed on the same target form one **segment**, which becomes
one generated loop over a chunk of events (compiled by numba on ``numba``, run as Python on ``cpu``). A value
crossing from one segment to another is a **transfer**: the producing segment writes it into a chunk-long
array that the consuming segment reads. A feedback edge (``prev(...)``) between different segments needs the
value of the previous event from a segment that has not run yet, so such a plan runs **interleaved**: every
segment advances one event at a time, exactly like the live runtime.
"""

from dataclasses import dataclass, field

from pipelines.graph import Graph, PortRef
from pipelines.spec.load import AUTO_PLACE, LoadedSpec


@dataclass
class Segment:
    """A run of stream nodes on one target, compiled into one loop."""

    index: int
    target: str
    nodes: list[str]
    reads: list[tuple[str, str]] = field(default_factory=list)  # transfers in: (node, port)
    writes: list[tuple[str, str]] = field(default_factory=list)  # transfers out: (node, port)


@dataclass
class Plan:
    """What runs where and in which order; ``describe()`` prints it for ``tickloom plan``."""

    spec: LoadedSpec
    graph: Graph
    segments: list[Segment]
    table_nodes: list[str]
    recorded: list[str]
    held: list[tuple[str, str]]  # ports read one event back through prev(...)
    interleaved_because: str | None
    placement: object | None = None  # the planner's report when nodes said `place: auto` (pipelines/placement.py)

    @property
    def interleaved(self) -> bool:
        return self.interleaved_because is not None

    def segment_of(self, node_id: str) -> Segment | None:
        return next((s for s in self.segments if node_id in s.nodes), None)

    def describe(self) -> str:
        g = self.graph
        lines = [f"plan of {self.spec.name}  (spec {self.spec.spec_hash[:12]})", ""]
        lines.append(f"sources: " + ", ".join(f"{s} [{', '.join(g.source_instruments[s])}]" for s in g.sources))
        lines.append("order:")
        for position, node_id in enumerate(g.order, start=1):
            node = g.nodes[node_id]
            segment = self.segment_of(node_id)
            where = f"segment {segment.index}" if segment else node.op.kind
            inputs = ", ".join(str(a) for a in _collapse(node.args)) or ", ".join(node.tables.values())
            lines.append(f"  {position:>2}. {node_id:<14} {node.op.name:<26} on {node.definition.place:<6} {where:<10} in: {inputs}")
        lines.append("segments:")
        for s in self.segments:
            lines.append(f"  {s.index}: {s.target:<6} fuses {' → '.join(s.nodes)}")
        transfers = [(n, p, s.index) for s in self.segments for n, p in s.reads]
        lines.append("transfers:" + ("" if transfers else " none"))
        for node_id, port, to in transfers:
            lines.append(f"  {node_id}.{port}: segment {self.segment_of(node_id).index} ({self.segment_of(node_id).target}) → segment {to} ({self.segments[to].target})")
        if self.held:
            lines.append("feedback (one event back): " + ", ".join(f"{n}.{p}" for n, p in self.held))
        lines.append("execution: " + (f"interleaved, one event at a time ({self.interleaved_because})"
                                        if self.interleaved else f"chunks of {self.spec.model.defaults.chunk_events} events"))
        lines.append("recorded: " + ", ".join(self.recorded))
        return "\n".join(lines)


def _collapse(args: list[PortRef]) -> list[str]:
    """Show a record input (several ports of one node) as the node's name."""
    shown: list[str] = []
    for a in args:
        label = f"prev({a.node})" if a.delayed else a.node
        if len([b for b in args if b.node == a.node and b.delayed == a.delayed]) > 1:
            if label not in shown:
                shown.append(label)
        else:
            shown.append(str(a))
    return shown


def _wants_planned_latency(spec: LoadedSpec) -> bool:
    """Whether a node takes a latency from the placement (a tick venue's ``compute_latency: plan``)."""
    return any(getattr(n.params, "compute_latency", None) == "plan" for n in spec.nodes.values())


def compile_plan(spec: LoadedSpec, record: list[str] | None = None) -> Plan:
    """Compile ``spec`` into a Plan.

    Nodes placed ``auto`` are placed first by the planner (``pipelines.placement.place_spec``) against the
    spec's ``placement`` budget; its report is ``Plan.placement``.

    ``record`` names extra nodes whose outputs are kept per event (sinks — nodes nobody consumes — and inputs of
    table ops are always recorded, except sinks whose op sets ``record_events = False``: their logs are their
    record).
    """
    placement = None
    if any(node.place == AUTO_PLACE for node in spec.nodes.values()) or _wants_planned_latency(spec):
        from pipelines.placement import place_spec, with_planned_latency

        spec, placement = place_spec(spec)
        spec = with_planned_latency(spec, placement)
    graph: Graph = spec.graph
    stream = [n for n in graph.order if graph.nodes[n].op.kind == "stream"]
    segments: list[Segment] = []
    for node_id in stream:
        place = graph.nodes[node_id].definition.place
        if not segments or segments[-1].target != place:
            segments.append(Segment(len(segments), place, []))
        segments[-1].nodes.append(node_id)
    segment_of = {n: s.index for s in segments for n in s.nodes}
    held: list[tuple[str, str]] = []
    interleaved_because = None
    for segment in segments:
        for node_id in segment.nodes:
            for arg in graph.nodes[node_id].args:
                producer = arg.node
                if producer not in segment_of:
                    continue
                if arg.delayed:
                    if (arg.node, arg.port) not in held:
                        held.append((arg.node, arg.port))
                    if segment_of[producer] != segment.index and interleaved_because is None:
                        interleaved_because = f"feedback {arg} crosses from segment {segment_of[producer]} to {segment.index}"
                elif segment_of[producer] != segment.index and (producer, arg.port) not in segment.reads:
                    segment.reads.append((producer, arg.port))
                    writer = segments[segment_of[producer]]
                    if (producer, arg.port) not in writer.writes:
                        writer.writes.append((producer, arg.port))
    tables = [n for n in graph.order if graph.nodes[n].op.kind == "table"]
    # sinks are recorded per event, except ops whose record is their logs (a tick venue)
    recorded = [n for n in stream if not graph.consumers(n) and graph.nodes[n].op.record_events]
    for table in tables:
        # a table op reading another table op gets that op's result, not a recording
        recorded.extend(
            p for p in graph.nodes[table].tables.values() if p not in recorded and graph.nodes[p].op.kind != "table"
        )
    for node_id in record or []:
        if node_id not in graph.nodes:
            raise KeyError(f"cannot record {node_id!r}: no such node")
        if node_id not in recorded and graph.nodes[node_id].op.kind in ("stream", "source"):
            recorded.append(node_id)
    return Plan(spec, graph, segments, tables, recorded, held, interleaved_because, placement)
