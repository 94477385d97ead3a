"""Simple moving average over the last ``window`` values."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper


class SmaParams(OpParams):
    window: int = Field(ge=1, le=10_000_000, description="number of most recent values averaged")


@step_helper
def sma_update(ring, total, count, pos, x):
    """Push ``x`` into a running-sum SMA over ``len(ring)`` values; return (total, count, pos, mean or NaN).

    TA-Lib's order (TA_INT_SMA): ``total`` holds the last window-1 values; add the new one, divide, then
    subtract the value that leaves. Keeping that order makes the result bit-identical to TA-Lib's SMA.
    """
    window = ring.shape[0]
    ring[pos] = x
    total += x
    pos += 1
    if pos == window:
        pos = 0
    if count < window:
        count += 1
        if count < window:
            return total, count, pos, np.nan
    mean = total / window
    total -= ring[pos]
    return total, count, pos, mean


class Sma(StreamOp):
    """Simple moving average of the last ``window`` values; NaN until the window is full.

    A running sum over a ring buffer in TA-Lib's arithmetic order (add the new value, divide, subtract the
    one that leaves), so it matches TA-Lib's SMA bit for bit. Warm-up: NaN for the first ``window - 1``
    values (TA-Lib's lookback). NaN inputs are skipped: the state does not change and the output is NaN.

    FPGA: yes — adds, a ring buffer and a constant divide (a multiply by 1/window in fixed point).

    Example::

        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
    """

    name = "indicator.sma"
    Params = SmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        total, count, pos, ring = s
        if x != x:
            return s, np.nan
        total, count, pos, mean = sma_update(ring, total, count, pos, x)
        return (total, count, pos, ring), mean
