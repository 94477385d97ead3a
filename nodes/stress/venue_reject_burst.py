"""``venue_reject_burst``: for a while the venue rejects orders (a node override of the tick venue)."""

from typing import Any

from pydantic import Field

from nodes.stress.contract import NodeOverride, TransformParams, WindowParams

TICK_VENUE = "backtest.tick_venue"


class RejectBurst(WindowParams):
    """A window ``[start, end)`` of exchange time and the share of arriving requests the venue rejects in it."""

    rate: float = Field(1.0, ge=0.0, le=1.0, description="probability that a request arriving in the window is "
                                                         "rejected (1: every one)")


class VenueRejectBurstParams(TransformParams):
    node: str | None = Field(None, description=f"the venue node; default: the spec's one {TICK_VENUE} node")
    windows: list[RejectBurst] = Field(min_length=1, description="windows {start, end, rate} in which the venue "
                                                                 "rejects arriving requests")


class VenueRejectBurst(NodeOverride):
    """Put ``windows`` in front of the tick venue's ``reject_windows`` (``[{start, end, rate}]``, ns since the
    epoch; the venue applies the first window containing a request's arrival, so the burst wins where it
    overlaps a window the spec already has). Not a stream transform: the market is unchanged, the venue's
    params are.

    Example::

        rejects:
          - {transform: venue_reject_burst, windows: [{start: "2024-08-08T23:54:20Z", end: "2024-08-08T23:54:26Z"}]}
    """

    name = "venue_reject_burst"
    Params = VenueRejectBurstParams

    @classmethod
    def node_of(cls, params: VenueRejectBurstParams, ops: dict[str, str]) -> str:
        if params.node is not None:
            if params.node not in ops:
                raise ValueError(f"node {params.node!r} is not in the spec (nodes: {', '.join(ops)})")
            return params.node
        venues = [node for node, op in ops.items() if op == TICK_VENUE]
        if len(venues) != 1:
            found = f"{len(venues)} ({', '.join(venues)})" if venues else "none"
            raise ValueError(f"name the venue with 'node': the spec must have exactly one {TICK_VENUE} node, it has "
                             f"{found}")
        return venues[0]

    @classmethod
    def override(cls, params: VenueRejectBurstParams, current: dict[str, Any]) -> dict[str, Any]:
        burst = [{"start": w.start, "end": w.end, "rate": w.rate} for w in params.windows]
        return {**current, "reject_windows": burst + list(current.get("reject_windows") or [])}
