"""Exponential moving average, seeded with the simple average of the first ``window`` values."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper


class EmaParams(OpParams):
    window: int = Field(ge=1, le=10_000_000, description="span N; the smoothing factor is 2 / (N + 1)")


def ema_alpha(window: int) -> float:
    """TA-Lib's PER_TO_K: 2 / (window + 1)."""
    return 2.0 / (window + 1.0)


@step_helper
def ema_update(value, count, window, alpha, x):
    """Push ``x`` into an SMA-seeded EMA; return (value, count, ema or NaN during the seed).

    TA-Lib's TA_INT_EMA: sum the first ``window`` values from 0.0 in order, divide by ``window``, then
    ``value = (x - value) * alpha + value``.
    """
    if count < window:
        value += x
        count += 1
        if count < window:
            return value, count, np.nan
        value = value / window
        return value, count, value
    value = (x - value) * alpha + value
    return value, count, value


class Ema(StreamOp):
    """Exponential moving average with alpha = 2 / (window + 1), seeded by the SMA of the first window values.

    The seed follows TA-Lib and StockCharts: the simple average of the first ``window`` values, then
    ``ema = (x - ema) * alpha + ema`` — TA-Lib's EMA bit for bit. Warm-up: NaN for the first ``window - 1``
    values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — one multiply by a constant and two adds per step in fixed point (the seed divide is by a
    constant).

    Example::

        trend: {op: indicator.ema, in: bars.close, with: {window: 20}}
    """

    name = "indicator.ema"
    Params = EmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, ema_alpha(params.window))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0)

    @staticmethod
    def step(c, s, x):
        value, count = s
        window, alpha = c
        if x != x:
            return s, np.nan
        value, count, out = ema_update(value, count, window, alpha, x)
        return (value, count), out
