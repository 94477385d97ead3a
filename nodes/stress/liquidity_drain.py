"""``liquidity_drain``: for a while, displayed depth (and traded size, and bar volume) is scaled by a factor."""

from collections.abc import Iterator

import numpy as np
from pydantic import Field

from nodes.stress.contract import Chunk, StreamTransform, WindowParams
from nodes.stress.regime import Regime, run_regime


class LiquidityDrainParams(WindowParams):
    factor: float = Field(gt=0.0, description="multiplier of sizes in the window: 0.1 leaves a tenth of the depth "
                                              "(above 1: a flood of liquidity)")


class LiquidityDrain(StreamTransform):
    """Multiply sizes of rows whose market time is in ``[start, end)`` by ``factor``.

    Ticks: book level sizes, trade sizes and ``bid_sz``/``ask_sz``, rounded to whole units; a size that was
    there stays at least one unit (a level is thinned, never removed); the book is re-published when the window
    opens and when it closes, so levels set before it are thinned too and thinned levels get their size back.
    Trades shrink with the book so a venue's queue model sees the same ratio of traded to displayed size.
    Bars: ``volume``.

    Example::

        thin_book:
          - {transform: liquidity_drain, source: deltas, start: "2024-08-08T23:54:20Z",
             end: "2024-08-08T23:54:30Z", factor: 0.1}
    """

    name = "liquidity_drain"
    Params = LiquidityDrainParams

    @classmethod
    def transform(cls, params: LiquidityDrainParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        return run_regime(lambda kind: _Drain(kind, params), chunks, cls.name)


class _Drain(Regime):
    def __init__(self, kind: str, params: LiquidityDrainParams):
        super().__init__(kind)
        self.p = params

    def epochs(self, t: np.ndarray) -> np.ndarray:
        return ((t >= self.p.start) & (t < self.p.end)).astype(np.int64)

    def sizes(self, epoch, t, instrument, size):
        return size * self.p.factor
