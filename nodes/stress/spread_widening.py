"""``spread_widening``: for a while, bids move down and asks up by ``bps`` (for bars: highs up, lows down)."""

from collections.abc import Iterator

import numpy as np
from pydantic import Field

from nodes.stress.contract import Chunk, StreamTransform, WindowParams
from nodes.stress.regime import Regime, run_regime


class SpreadWideningParams(WindowParams):
    bps: float = Field(gt=0.0, lt=10_000.0, description="how far each side moves away, in basis points of price "
                                                       "(the spread widens by about twice this)")


class SpreadWidening(StreamTransform):
    """Move bid-side prices down and ask-side prices up by ``bps`` for rows whose market time is in
    ``[start, end)``.

    Ticks: a bid level or ``bid_px`` becomes ``p × (1 − bps/1e4)``, an ask level or ``ask_px`` ``p × (1 +
    bps/1e4)``; a trade moves with the side its aggressor took (a buy paid the ask: up); the book is
    re-published when the window opens and when it closes. Bars: the high moves up and the low down (open and
    close stay), so range-based indicators and stops see the wider market.

    Example::

        wide_spreads:
          - {transform: spread_widening, source: deltas, start: "2024-08-08T23:54:20Z",
             end: "2024-08-08T23:54:28Z", bps: 25}
    """

    name = "spread_widening"
    Params = SpreadWideningParams

    @classmethod
    def transform(cls, params: SpreadWideningParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        return run_regime(lambda kind: _Wide(kind, params), chunks, cls.name)


class _Wide(Regime):
    def __init__(self, kind: str, params: SpreadWideningParams):
        super().__init__(kind)
        self.p = params

    def epochs(self, t: np.ndarray) -> np.ndarray:
        return ((t >= self.p.start) & (t < self.p.end)).astype(np.int64)

    def prices(self, epoch, t, instrument, price, direction):
        return price * (1.0 + direction * (self.p.bps / 1e4))
