"""Donchian channel: the highest high and lowest low of the last ``window`` bars and their midpoint."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max, push_min


class DonchianParams(OpParams):
    window: int = Field(20, ge=1, le=10_000_000, description="bars n of the channel")


class Donchian(StreamOp):
    """Donchian channel (Richard Donchian), TA-Lib's DONCHIAN: upper = highest high, lower = lowest low over
    the last ``window`` bars, middle = (upper + lower) / 2.

    Monotonic deques: O(1) amortised whatever the window. Warm-up: NaN for the first ``window − 1`` values
    (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — compares, ring buffers and a shift (exact in fixed point).

    Example::

        channel: {op: indicator.donchian, in: {high: bars.high, low: bars.low}, with: {window: 20}}
    """

    name = "indicator.donchian"
    Params = DonchianParams
    inputs = {"high": F64, "low": F64}
    outputs = {"upper": F64, "middle": F64, "lower": F64}

    @staticmethod
    def init(c, n_keys):
        hv, he = deque_arrays(c[0])
        lv, le = deque_arrays(c[0])
        return (0, 0, 0, 0, 0, hv, he, lv, le)

    @staticmethod
    def step(c, s, high, low):
        t, h_head, h_size, l_head, l_size, hv, he, lv, le = s
        if high != high or low != low:
            return s, np.nan, np.nan, np.nan
        h_head, h_size = push_max(hv, he, h_head, h_size, t, high)
        l_head, l_size = push_min(lv, le, l_head, l_size, t, low)
        state = (t + 1, h_head, h_size, l_head, l_size, hv, he, lv, le)
        if t < c[0] - 1:
            return state, np.nan, np.nan, np.nan
        upper = hv[h_head]
        lower = lv[l_head]
        return state, upper, (upper + lower) / 2.0, lower
