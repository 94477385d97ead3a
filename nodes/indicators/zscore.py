"""Rolling z-score: how many standard deviations the value sits from its rolling mean."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.rolling_std import moments_update, std_of


class ZscoreParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="number of most recent values (including the current)")


class Zscore(StreamOp):
    """Rolling z-score ``(x − mean) / std`` over the last ``window`` values, the current one included.

    Mean and population standard deviation are TA-Lib's SMA and STDDEV (same running sums, same order), so
    the result equals ``(x − SMA) / STDDEV`` computed with TA-Lib. 0 when the deviation is 0 (a flat window).
    Warm-up: NaN for the first ``window − 1`` values. NaN inputs are skipped.

    FPGA: partly — adds, multiplies and ring buffers; the square root and the divide by a variable need an
    iterative unit or a LUT.

    Example::

        z: {op: indicator.zscore, in: bars.close, with: {window: 20}}
    """

    name = "indicator.zscore"
    Params = ZscoreParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        total, total2, count, pos, ring = s
        if x != x:
            return s, np.nan
        total, total2, count, pos, mean, variance = moments_update(ring, total, total2, count, pos, x)
        if variance != variance:
            return (total, total2, count, pos, ring), np.nan
        std = std_of(variance)
        out = (x - mean) / std if std > 0.0 else 0.0
        return (total, total2, count, pos, ring), out
