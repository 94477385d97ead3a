"""Stress scenarios: transforms of a replayed market stream, and overrides of node params.

A **scenario** is a list of steps. A step is either a *stream transform* — it rewrites one source's chunks on
their way into the engine (``pipelines.replay.replay(..., source_transforms=...)``): a price shock, wider
spreads, drained depth, a latency spike, a feed outage, a volatility regime — or a *node override*, which
changes a node's params before the plan is compiled (a burst of venue rejects, higher costs). Steps compose:
transforms of one source apply in the order listed, each to the output of the one before.

One concept per file (``price_shock.py``, ``feed_outage.py``, ...); ``contract.py`` states what a step is,
``regime.py`` runs the market transforms over bars and ticks, ``book.py`` keeps an L2 book so that a price map
that changes in time re-publishes the book instead of leaving orphan levels. ``TRANSFORMS`` maps each step's
name to its class. Scenario files and the stress run itself are in ``pipelines/stress.py``.
"""

from nodes.stress.contract import NodeOverride, StreamTransform
from nodes.stress.feed_outage import FeedOutage
from nodes.stress.latency_spike import LatencySpike
from nodes.stress.liquidity_drain import LiquidityDrain
from nodes.stress.node_params import NodeParams
from nodes.stress.price_shock import PriceShock
from nodes.stress.spread_widening import SpreadWidening
from nodes.stress.venue_reject_burst import VenueRejectBurst
from nodes.stress.volatility_regime import VolatilityRegime

TRANSFORMS: dict[str, type[StreamTransform] | type[NodeOverride]] = {
    step.name: step
    for step in (PriceShock, SpreadWidening, LiquidityDrain, LatencySpike, FeedOutage, VolatilityRegime,
                 VenueRejectBurst, NodeParams)
}

__all__ = ["TRANSFORMS", "NodeOverride", "StreamTransform"]
