"""Rate of change in percent over ``window`` bars."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import push_lagged


class RocParams(OpParams):
    window: int = Field(10, ge=1, le=100_000, description="bars back n the value is compared with")


class Roc(StreamOp):
    """Rate of change: ``100 · (x / x[n] − 1)``, TA-Lib's ROC (0 when x[n] is 0).

    Warm-up: NaN for the first ``window`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — a ring buffer; the ratio needs a divider (iterative or LUT).

    Example::

        roc: {op: indicator.roc, in: bars.close, with: {window: 10}}
    """

    name = "indicator.roc"
    Params = RocParams
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
        if before != before:
            return (count, pos, ring), np.nan
        out = ((x / before) - 1.0) * 100.0 if before != 0.0 else 0.0
        return (count, pos, ring), out
