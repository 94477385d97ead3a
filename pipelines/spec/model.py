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
    place: str | None = Field(None, description="target: cpu, numba or fpga; the spec default when unset")


class DefaultsModel(_Closed):
    """Settings that apply to every node unless the node says otherwise."""

    place: str = Field("cpu", description="placement of nodes without their own `place`")
    chunk_events: int = Field(65_536, ge=1, le=16_777_216, description="events per replay chunk (bounds memory)")


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
    nodes: dict[str, NodeModel] = Field(description="the graph: node id → node")


def spec_json_schema() -> dict:
    """The JSON Schema of a spec file, for editors (yaml-language-server) and tools."""
    schema = SpecModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tickloom spec"
    return schema
