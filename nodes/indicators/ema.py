"""Exponential moving average, seeded with the simple average of the first ``window`` values."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class EmaParams(OpParams):
    window: int = Field(ge=1, le=10_000_000, description="span N; the smoothing factor is 2 / (N + 1)")


class Ema(StreamOp):
    """Exponential moving average with alpha = 2 / (window + 1), seeded by the SMA of the first window values.

    The seed follows TA-Lib and StockCharts: NaN for the first ``window - 1`` values, then the simple average,
    then ``ema += alpha * (x - ema)``. NaN inputs are skipped. FPGA-friendly in fixed point (one multiply by
    a constant per step).

    Example::

        trend: {op: indicator.ema, in: bars.close, with: {window: 20}}
    """

    name = "indicator.ema"
    Params = EmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, 2.0 / (params.window + 1.0))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0)

    @staticmethod
    def step(c, s, x):
        value, count = s
        window, alpha = c
        if x != x:
            return s, np.nan
        if count < window:
            value += x
            count += 1
            if count < window:
                return (value, count), np.nan
            value = value / window
            return (value, count), value
        value = value + alpha * (x - value)
        return (value, count), value
