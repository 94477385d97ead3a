"""Aroon up/down: how recently the highest high and the lowest low of the window occurred."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max, push_min


class AroonParams(OpParams):
    window: int = Field(25, ge=2, le=100_000, description="period n; the window spans the last n + 1 bars")


class Aroon(StreamOp):
    """Aroon (Tushar Chande, 1995), TA-Lib's AROON and AROONOSC.

    ``up = 100/n · (n − bars since the highest high)``, ``down`` likewise with the lowest low, over the last
    ``n + 1`` bars; ``oscillator = 100/n · (index of high − index of low)`` (= up − down, computed as TA-Lib's
    AROONOSC does). Ties count from the most recent extreme, as TA-Lib. Monotonic deques: O(1) amortised.
    Warm-up: NaN for the first ``window`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — compares, ring buffers and a multiply by the constant 100/n.

    Example::

        aroon: {op: indicator.aroon, in: {high: bars.high, low: bars.low}, with: {window: 25}}
    """

    name = "indicator.aroon"
    Params = AroonParams
    inputs = {"high": F64, "low": F64}
    outputs = {"up": F64, "down": F64, "oscillator": F64}

    @staticmethod
    def constants(params):
        return (params.window, 100.0 / params.window)

    @staticmethod
    def init(c, n_keys):
        hv, he = deque_arrays(c[0] + 1)
        lv, le = deque_arrays(c[0] + 1)
        return (0, 0, 0, 0, 0, hv, he, lv, le)

    @staticmethod
    def step(c, s, high, low):
        t, h_head, h_size, l_head, l_size, hv, he, lv, le = s
        n, factor = c
        if high != high or low != low:
            return s, np.nan, np.nan, np.nan
        h_head, h_size = push_max(hv, he, h_head, h_size, t, high)
        l_head, l_size = push_min(lv, le, l_head, l_size, t, low)
        state = (t + 1, h_head, h_size, l_head, l_size, hv, he, lv, le)
        if t < n:
            return state, np.nan, np.nan, np.nan
        high_at = he[h_head]
        low_at = le[l_head]
        up = factor * (n - (t - high_at))
        down = factor * (n - (t - low_at))
        return state, up, down, factor * (high_at - low_at)
