"""Ease of movement (Arms): price change per unit of volume-adjusted range, raw and smoothed."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.sma import sma_update


class EaseOfMovementParams(OpParams):
    window: int = Field(14, ge=1, le=100_000, description="SMA period of the smoothed line")
    volume_scale: float = Field(100_000_000.0, gt=0.0, description="volume divisor of the box ratio (StockCharts: 1e8)")


class EaseOfMovement(StreamOp):
    """Ease of movement (Richard Arms), StockCharts' definition as the ``ta`` package computes it.

    ``emv = (Δhigh + Δlow) · (high − low) / (2 · volume) · volume_scale`` — the same as StockCharts'
    distance moved ((H + L)/2 − (H' + L')/2) over the box ratio ((V / scale) / (H − L)); ``sma`` is its
    ``window``-bar SMA. Bars with zero volume are skipped like NaN (the ratio is undefined). Warm-up: ``emv``
    is NaN for the first value, ``sma`` for the first ``window`` values. NaN inputs are skipped.

    FPGA: partly — adds, multiplies and a ring buffer; the divide by volume needs a divider.

    Example::

        emv:
          op: indicator.ease_of_movement
          in: {high: bars.high, low: bars.low, volume: bars.volume}
          with: {window: 14}
    """

    name = "indicator.ease_of_movement"
    Params = EaseOfMovementParams
    inputs = {"high": F64, "low": F64, "volume": F64}
    outputs = {"emv": F64, "sma": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0, 0.0, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, high, low, volume):
        prev_high, prev_low, started, total, count, pos, ring = s
        scale = c[1]
        if high != high or low != low or volume != volume or volume == 0.0:
            return s, np.nan, np.nan
        if started == 0:
            return (high, low, 1, total, count, pos, ring), np.nan, np.nan
        emv = ((high - prev_high) + (low - prev_low)) * (high - low) / (2.0 * volume)
        emv *= scale
        total, count, pos, sma = sma_update(ring, total, count, pos, emv)
        return (high, low, 1, total, count, pos, ring), emv, sma
