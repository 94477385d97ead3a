"""``node_params``: give a node other params for the scenario (costs doubled, a slower venue, ...)."""

from typing import Any

from pydantic import Field

from nodes.stress.contract import NodeOverride, TransformParams


class NodeParamsParams(TransformParams):
    node: str = Field(description="the node whose params change")
    with_: dict[str, Any] = Field(alias="with", min_length=1,
                                  description="params to set, as under the node's own `with:`; validated by its op")


class NodeParams(NodeOverride):
    """Set some of a node's params (the others keep the spec's values); the node's op validates the result.

    Example::

        costly:
          - {transform: node_params, node: sim, with: {commission: 0.004}}
    """

    name = "node_params"
    Params = NodeParamsParams

    @classmethod
    def node_of(cls, params: NodeParamsParams, ops: dict[str, str]) -> str:
        if params.node not in ops:
            raise ValueError(f"node {params.node!r} is not in the spec (nodes: {', '.join(ops)})")
        return params.node

    @classmethod
    def override(cls, params: NodeParamsParams, current: dict[str, Any]) -> dict[str, Any]:
        return {**current, **params.with_}
