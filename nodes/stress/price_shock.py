"""``price_shock``: at a moment, every price jumps by ``bps`` (a gap), optionally fading with a half-life."""

from collections.abc import Iterator

import numpy as np
from pydantic import Field, field_validator

from nodes.stress.contract import Chunk, Duration, StreamTransform, Timestamp, TransformParams
from nodes.stress.regime import Regime, run_regime


class PriceShockParams(TransformParams):
    at: Timestamp = Field(description="market time (ts_event) from which prices are shocked: a date, an ISO "
                                      "date-time or int ns, UTC")
    bps: float = Field(gt=-10_000.0, description="the jump in basis points of price (-800: prices 8 % lower)")
    halflife: Duration | None = Field(
        None, description="time for the shock to halve (e.g. 2d); none: the shock is permanent")
    step_bps: float = Field(
        1.0, gt=0.0, description="ticks only: the fading shock moves in steps of this many bps, and the book is "
                                 "re-published at each step (bars fade continuously)")

    @field_validator("halflife")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("halflife must be longer than 0 (leave it out for a permanent shock)")
        return value


class PriceShock(StreamTransform):
    """Shift every price of rows whose market time is at or after ``at`` by the factor ``1 + s(t)``, with
    ``s(t) = bps/1e4 × 0.5^((t − at)/halflife)`` (``bps/1e4`` without a half-life).

    Bars: open, high, low and close of a bar are multiplied by the factor of the bar's ``ts_event`` (its open),
    so the bar whose open is at or after ``at`` gaps. Ticks: book levels, trades and quotes move together;
    ``s`` is rounded to a multiple of ``step_bps`` and the book is re-published whenever it changes (so a
    -800 bps shock re-publishes the book at most 800 times with the default step). Sizes are unchanged.

    Example::

        flash_crash:
          - {transform: price_shock, source: bars, at: 2013-04-15, bps: -800, halflife: 2d}
    """

    name = "price_shock"
    Params = PriceShockParams

    @classmethod
    def transform(cls, params: PriceShockParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        return run_regime(lambda kind: _Shock(kind, params), chunks, cls.name)


class _Shock(Regime):
    def __init__(self, kind: str, params: PriceShockParams):
        super().__init__(kind)
        self.p = params

    def shock(self, t: np.ndarray) -> np.ndarray:
        """The shock as a fraction of price at market times ``t`` (0 before ``at``)."""
        after = t >= self.p.at
        if self.p.halflife is None:
            return np.where(after, self.p.bps / 1e4, 0.0)
        elapsed = np.maximum(t - self.p.at, 0).astype(float)
        return np.where(after, self.p.bps / 1e4 * np.exp2(-elapsed / self.p.halflife), 0.0)

    def epochs(self, t: np.ndarray) -> np.ndarray:
        if self.kind == "bars":
            return (t >= self.p.at).astype(np.int64)
        # ticks: the shock in whole steps; 0 steps is the unchanged market
        return np.rint(self.shock(t) * 1e4 / self.p.step_bps).astype(np.int64)

    def prices(self, epoch, t, instrument, price, direction):
        if self.kind == "bars":
            return price * (1.0 + self.shock(t))
        return price * (1.0 + epoch * self.p.step_bps / 1e4)
