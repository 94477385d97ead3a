"""Williams %R: where the close sits below the recent highest high, on a 0 to −100 scale."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max, push_min


class WilliamsRParams(OpParams):
    window: int = Field(14, ge=1, le=100_000, description="look-back n of the highest high and lowest low")


class WilliamsR(StreamOp):
    """Williams %R (Larry Williams): ``−100 · (highest high − close) / (highest high − lowest low)``.

    TA-Lib's WILLR (0 for an empty range); highest/lowest from monotonic deques (O(1) amortised). Warm-up: NaN
    for the first ``window − 1`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — compares and ring buffers; the ratio needs a divider (iterative or LUT).

    Example::

        willr:
          op: indicator.williams_r
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 14}
    """

    name = "indicator.williams_r"
    Params = WilliamsRParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        hv, he = deque_arrays(c[0])
        lv, le = deque_arrays(c[0])
        return (0, 0, 0, 0, 0, hv, he, lv, le)

    @staticmethod
    def step(c, s, high, low, close):
        t, h_head, h_size, l_head, l_size, hv, he, lv, le = s
        if high != high or low != low or close != close:
            return s, np.nan
        h_head, h_size = push_max(hv, he, h_head, h_size, t, high)
        l_head, l_size = push_min(lv, le, l_head, l_size, t, low)
        out = np.nan
        if t >= c[0] - 1:
            highest = hv[h_head]
            diff = (highest - lv[l_head]) / (-100.0)
            out = (highest - close) / diff if diff != 0.0 else 0.0
        return (t + 1, h_head, h_size, l_head, l_size, hv, he, lv, le), out
