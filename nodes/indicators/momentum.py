"""Momentum: the change over ``window`` bars."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class MomentumParams(OpParams):
    window: int = Field(10, ge=1, le=100_000, description="bars back n the value is compared with")


class Momentum(StreamOp):
    """Momentum: ``x − x[n]``, TA-Lib's MOM.

    Warm-up: NaN for the first ``window`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — a ring buffer and one subtraction (exact in fixed point).

    Example::

        mom: {op: indicator.momentum, in: bars.close, with: {window: 10}}
    """

    name = "indicator.momentum"
    Params = MomentumParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0, 0, np.zeros(c[0] + 1))

    @staticmethod
    def step(c, s, x):
        count, pos, ring = s
        if x != x:
            return s, np.nan
        size = ring.shape[0]
        ring[pos] = x
        pos += 1
        if pos == size:
            pos = 0
        if count < size - 1:
            return (count + 1, pos, ring), np.nan
        return (size, pos, ring), x - ring[pos]
