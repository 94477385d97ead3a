"""Slope of the least-squares line through the last ``window`` values (per bar)."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class LinregSlopeParams(OpParams):
    window: int = Field(14, ge=2, le=100_000, description="number of most recent values fitted")


class LinregSlope(StreamOp):
    """Slope of the ordinary least-squares line through the last ``window`` values, in units per bar.

    TA-Lib's LINEARREG_SLOPE, with its sums recomputed over the window at each bar in TA-Lib's order
    (oldest first), so there is no running-sum drift: O(window) per event. Warm-up: NaN for the first
    ``window − 1`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — multiply-accumulate over a ring buffer by constant weights and a divide by a constant.

    Example::

        slope: {op: indicator.linreg_slope, in: bars.close, with: {window: 14}}
    """

    name = "indicator.linreg_slope"
    Params = LinregSlopeParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        n = params.window
        sum_x = n * (n - 1) * 0.5
        sum_x_sqr = float(n * (n - 1) * (2 * n - 1) // 6)
        return (n, sum_x, sum_x * sum_x - n * sum_x_sqr)

    @staticmethod
    def init(c, n_keys):
        return (0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        count, pos, ring = s
        n, sum_x, divisor = c
        if x != x:
            return s, np.nan
        ring[pos] = x
        pos += 1
        if pos == n:
            pos = 0
        if count < n - 1:
            return (count + 1, pos, ring), np.nan
        sum_xy = 0.0
        sum_y = 0.0
        slot = pos  # the oldest value, weight n − 1 (TA-Lib weighs by bars back)
        for i in range(n - 1, -1, -1):
            y = ring[slot]
            sum_y += y
            sum_xy += i * y
            slot += 1
            if slot == n:
                slot = 0
        return (n, pos, ring), (n * sum_xy - sum_x * sum_y) / divisor
