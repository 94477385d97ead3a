"""Weighted moving average: linear weights 1..window, the newest value weighted most."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper


class WmaParams(OpParams):
    window: int = Field(ge=1, le=100_000, description="number of values; weights run 1..window")


@step_helper
def wma_update(ring, period_sum, period_sub, trailing, count, pos, x):
    """Push ``x`` into a WMA over ``len(ring)`` values; return (sum, sub, trailing, count, pos, wma or NaN).

    TA-Lib's running form (TA_WMA): ``period_sub`` is the plain sum of the window, ``period_sum`` the weighted
    sum; each step adds ``x * window`` and then subtracts ``period_sub`` (shifting every weight down by one).
    The value leaving is subtracted one step late, exactly as TA-Lib does, so the result is bit-identical.
    """
    window = ring.shape[0]
    ring[pos] = x
    pos += 1
    if pos == window:
        pos = 0
    if count < window - 1:
        period_sub += x
        period_sum += x * (count + 1)
        return period_sum, period_sub, trailing, count + 1, pos, np.nan
    period_sub += x
    period_sub -= trailing
    period_sum += x * window
    trailing = ring[pos]
    out = period_sum / ((window * (window + 1)) // 2)
    period_sum -= period_sub
    return period_sum, period_sub, trailing, window, pos, out


class Wma(StreamOp):
    """Weighted moving average with weights 1, 2, ..., window (newest heaviest), divided by window(window+1)/2.

    TA-Lib's running-sum form, bit for bit. Warm-up: NaN for the first ``window - 1`` values (TA-Lib's
    lookback). NaN inputs are skipped.

    FPGA: yes — adds, a multiply by the constant window, a ring buffer and a constant divide.

    Example::

        wma: {op: indicator.wma, in: bars.close, with: {window: 10}}
    """

    name = "indicator.wma"
    Params = WmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0.0, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        period_sum, period_sub, trailing, count, pos, ring = s
        if x != x:
            return s, np.nan
        period_sum, period_sub, trailing, count, pos, out = wma_update(
            ring, period_sum, period_sub, trailing, count, pos, x
        )
        return (period_sum, period_sub, trailing, count, pos, ring), out
