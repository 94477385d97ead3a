"""The spec format (version 1) as pydantic models: the typed twin of a YAML spec file.

A spec file is validated against ``SpecModel`` after overlays and command-line overrides are merged, so every
field here is what the engine sees. ``tickloom schema`` prints the JSON Schema generated from these models.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ParamValue = int | float | bool | str | list[int | float | bool | str]
InputRef = str
Inputs = InputRef | list[InputRef] | dict[str, InputRef]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class NodeModel(_Closed):
    """One node of the graph: an op, its inputs, its parameters and its placement."""

    op: str = Field(description="the op's name, e.g. indicator.sma (see `tickloom ops`)")
    in_: Inputs | None = Field(
        None,
        alias="in",
        description="inputs: 'node', 'node.port' or 'prev(node.port)' (the value one event back); "
        "a list in the op's input order, or a map from input name to reference",
    )
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="the op's parameters; '${name}' refers to a spec param"
    )
    place: str | None = Field(
        None, description="target: cpu, numba, fpga, or auto (the planner chooses); the spec default when unset"
    )


class DefaultsModel(_Closed):
    """Settings that apply to every node unless the node says otherwise."""

    place: str = Field("cpu", description="placement of nodes without their own `place` (cpu, numba, fpga, auto)")
    chunk_events: int = Field(65_536, ge=1, le=16_777_216, description="events per replay chunk (bounds memory)")


class PlacementModel(_Closed):
    """How ``place: auto`` nodes are placed: the latency budget and the hardware they are planned against."""

    latency_budget: str | int | None = Field(
        None, description="modeled tick-to-trade the placement must meet, e.g. 2us (or ns as a number)"
    )
    min_event_interval: str | int | None = Field(
        None, description="shortest gap between events the placement must sustain, e.g. 100ns"
    )
    profile: str | None = Field(None, description="hardware profile YAML, relative to the spec (docs/hardware.md)")
    orders_from: list[str] | None = Field(
        None, description="nodes whose output is the order (default: the nodes a venue reads orders from)"
    )


class SpecModel(_Closed):
    """A tickloom spec: a named graph of nodes with parameters."""

    tickloom: Literal[1] = Field(description="spec format version")
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", description="the spec's name")
    kind: Literal["ingest", "research", "strategy"] = Field(description="what the spec builds")
    description: str = Field("", description="free text for people; not part of the spec's identity")
    extends: str | None = Field(None, description="path of the base spec this overlay layers onto")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="values that `${name}` refers to")
    defaults: DefaultsModel = Field(default_factory=DefaultsModel)
    modules: list[str] = Field(
        default_factory=list, description="Python files with user ops, relative to the spec that lists them"
    )
    placement: PlacementModel | None = Field(None, description="settings of `place: auto` (docs/hardware.md)")
    nodes: dict[str, NodeModel] = Field(description="the graph: node id → node")


def spec_json_schema() -> dict:
    """The JSON Schema of a spec file, for editors (yaml-language-server) and tools."""
    schema = SpecModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tickloom spec"
    return schema
