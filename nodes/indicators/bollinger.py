"""Bollinger Bands: SMA ± k population standard deviations, with %B and bandwidth."""

import math

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import TA_EPSILON
from nodes.indicators.sma import sma_update


class BollingerParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="SMA and deviation window")
    num_std: float = Field(2.0, gt=0.0, le=100.0, description="band distance in standard deviations")


class Bollinger(StreamOp):
    """Bollinger Bands (John Bollinger): middle = SMA(window); upper/lower = middle ± num_std · σ.

    σ is the population standard deviation computed as TA-Lib's BBANDS does with an SMA: a running sum of x²
    and the SMA itself (σ = √(E[x²] − SMA²), 0 below 1e-14). ``percent_b = (x − lower) / (upper − lower)``
    and ``bandwidth = 100 · (upper − lower) / middle`` follow StockCharts; both are NaN when undefined (zero
    band width or zero middle). Warm-up: NaN for the first ``window − 1`` values on every output (TA-Lib's
    lookback). NaN inputs are skipped.

    FPGA: partly — adds, multiplies and ring buffers; the square root and %B/bandwidth divides need an
    iterative unit or a LUT.

    Example::

        bb: {op: indicator.bollinger, in: bars.close, with: {window: 20, num_std: 2.0}}
    """

    name = "indicator.bollinger"
    Params = BollingerParams
    inputs = {"x": F64}
    outputs = {"upper": F64, "middle": F64, "lower": F64, "percent_b": F64, "bandwidth": F64}

    @staticmethod
    def init(c, n_keys):
        window = c[0]
        return (0.0, 0.0, 0, 0, np.zeros(window))

    @staticmethod
    def step(c, s, x):
        total, total2, count, pos, ring = s
        num_std = c[1]
        if x != x:
            return s, np.nan, np.nan, np.nan, np.nan, np.nan
        window = ring.shape[0]
        total2 += x * x
        leaving_pos = pos + 1 if pos + 1 < window else 0
        leaving = ring[leaving_pos]
        total, count, pos, middle = sma_update(ring, total, count, pos, x)
        if middle != middle:
            return (total, total2, count, pos, ring), np.nan, np.nan, np.nan, np.nan, np.nan
        mean2 = total2 / window
        total2 -= leaving * leaving
        mean2 -= middle * middle
        std = math.sqrt(mean2) if mean2 >= TA_EPSILON else 0.0
        offset = std * num_std
        upper = middle + offset
        lower = middle - offset
        width = upper - lower
        percent_b = (x - lower) / width if width != 0.0 else np.nan
        bandwidth = width / middle * 100.0 if middle != 0.0 else np.nan
        return (total, total2, count, pos, ring), upper, middle, lower, percent_b, bandwidth
