"""Simple moving average over the last ``window`` values."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class SmaParams(OpParams):
    window: int = Field(ge=1, le=10_000_000, description="number of most recent values averaged")


class Sma(StreamOp):
    """Simple moving average of the last ``window`` values; NaN until the window is full.

    A running sum over a ring buffer: add the new value, subtract the one that leaves. NaN inputs are skipped
    (the state does not change and the output is NaN). FPGA-friendly: adds, a ring buffer and a constant
    divide (a multiply by 1/window).

    Example::

        fast: {op: indicator.sma, in: bars.close, with: {window: 10}}
    """

    name = "indicator.sma"
    Params = SmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        window = c[0]
        return (0.0, 0, 0, np.zeros(window))

    @staticmethod
    def step(c, s, x):
        total, count, pos, ring = s
        window = c[0]
        if x != x:
            return s, np.nan
        if count == window:
            total -= ring[pos]
        else:
            count += 1
        ring[pos] = x
        total += x
        pos += 1
        if pos == window:
            pos = 0
        if count < window:
            return (total, count, pos, ring), np.nan
        return (total, count, pos, ring), total / window
