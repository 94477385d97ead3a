"""Rolling (population) standard deviation over the last ``window`` values."""

import math

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import TA_EPSILON


class RollingStdParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="number of most recent values")


@step_helper
def moments_update(ring, total, total2, count, pos, x):
    """Push ``x`` into running sums of x and x²; return (total, total2, count, pos, mean, variance).

    TA-Lib's TA_INT_VAR order: add the new value (and its square), take the means, subtract the leaving value.
    The variance is E[x²] − E[x]² (population); mean and variance are NaN until the window is full.
    """
    window = ring.shape[0]
    ring[pos] = x
    total += x
    total2 += x * x
    pos += 1
    if pos == window:
        pos = 0
    if count < window:
        count += 1
        if count < window:
            return total, total2, count, pos, np.nan, np.nan
    mean = total / window
    mean2 = total2 / window
    leaving = ring[pos]
    total -= leaving
    total2 -= leaving * leaving
    return total, total2, count, pos, mean, mean2 - mean * mean


@step_helper
def std_of(variance):
    """TA-Lib's STDDEV: √variance, or 0 when the variance is below TA-Lib's epsilon (rounding noise)."""
    if variance < TA_EPSILON:
        return 0.0
    return math.sqrt(variance)


class RollingStd(StreamOp):
    """Rolling population standard deviation (divide by n), TA-Lib's STDDEV with nbdev 1.

    Running sums of x and x² in TA-Lib's order; 0 when the variance is below 1e-14 (TA-Lib treats that as
    rounding noise). Like TA-Lib it uses E[x²] − E[x]², which loses digits when the mean is large relative to
    the spread (about log10(mean²/variance) of the 16 digits). Warm-up: NaN for the first ``window − 1``
    values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — adds, multiplies, ring buffers and constant divides; the square root needs an iterative
    unit or a LUT.

    Example::

        vol: {op: indicator.rolling_std, in: bars.close, with: {window: 20}}
    """

    name = "indicator.rolling_std"
    Params = RollingStdParams
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
        return (total, total2, count, pos, ring), std_of(variance)
