"""Momentum: the change over ``window`` bars."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import push_lagged


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
        count, pos, before = push_lagged(count, pos, ring, x)
        return (count, pos, ring), x - before
