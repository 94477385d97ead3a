"""Commodity channel index: the typical price's distance from its mean in units of mean absolute deviation."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import is_zero


class CciParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="bars n of the typical-price mean and deviation")


class Cci(StreamOp):
    """Commodity channel index (Donald Lambert): ``(tp − mean(tp)) / (0.015 · mean|tp − mean(tp)|)``.

    tp = (high + low + close) / 3. TA-Lib's CCI: the mean and the mean absolute deviation are recomputed over
    the window at each bar in the ring's slot order, as TA-Lib does, so O(window) per event and no drift; 0
    when either the distance or the deviation is within 1e-14 of zero. Warm-up: NaN for the first
    ``window − 1`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — adds, compares and a ring buffer; the final ratio needs a divider (iterative or LUT).

    Example::

        cci:
          op: indicator.cci
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 20}
    """

    name = "indicator.cci"
    Params = CciParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, high, low, close):
        count, pos, ring = s
        window = c[0]
        if high != high or low != low or close != close:
            return s, np.nan
        typical = (high + low + close) / 3
        ring[pos] = typical
        pos += 1
        if pos == window:
            pos = 0
        if count < window - 1:
            return (count + 1, pos, ring), np.nan
        average = 0.0
        for j in range(window):
            average += ring[j]
        average /= window
        deviation = 0.0
        for j in range(window):
            deviation += abs(ring[j] - average)
        distance = typical - average
        if is_zero(distance) or is_zero(deviation):
            out = 0.0
        else:
            out = distance / (0.015 * (deviation / window))
        return (window, pos, ring), out
