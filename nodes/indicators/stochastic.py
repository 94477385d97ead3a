"""Stochastic oscillator: where the close sits in the recent high-low range, smoothed (%K) and signalled (%D)."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import deque_arrays, push_max, push_min
from nodes.indicators.sma import sma_update


class StochasticParams(OpParams):
    k_window: int = Field(14, ge=1, le=100_000, description="look-back n of the highest high and lowest low")
    k_smooth: int = Field(3, ge=1, le=100_000, description="SMA applied to the raw %K (1 = fast stochastic)")
    d_window: int = Field(3, ge=1, le=100_000, description="SMA of %K giving %D")


@step_helper
def fast_k(close, lowest, highest):
    """TA-Lib's raw %K: (close − lowest) / ((highest − lowest) / 100), 0 when the range is empty."""
    diff = (highest - lowest) / 100.0
    if diff != 0.0:
        return (close - lowest) / diff
    return 0.0


class Stochastic(StreamOp):
    """Stochastic oscillator (George Lane), StockCharts' full stochastic = TA-Lib's STOCH with SMAs.

    raw %K = 100 · (close − lowest low) / (highest high − lowest low) over ``k_window`` bars (0 for an empty
    range); ``k`` = SMA(raw %K, ``k_smooth``); ``d`` = SMA(k, ``d_window``). ``k_smooth = 1`` is the fast
    stochastic. Highest/lowest come from monotonic deques (O(1) amortised). Warm-up: both outputs are NaN for
    the first ``(k_window − 1) + (k_smooth − 1) + (d_window − 1)`` values (TA-Lib's lookback; TA-Lib aligns %K
    with %D). NaN inputs are skipped.

    FPGA: partly — compares, adds and ring buffers; the %K ratio needs a divider (iterative or LUT).

    Example::

        stoch:
          op: indicator.stochastic
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {k_window: 14, k_smooth: 3, d_window: 3}
    """

    name = "indicator.stochastic"
    Params = StochasticParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"k": F64, "d": F64}

    @staticmethod
    def init(c, n_keys):
        k_window, k_smooth, d_window = c
        hv, he = deque_arrays(k_window)
        lv, le = deque_arrays(k_window)
        return (0, 0, 0, 0, 0, 0.0, 0, 0, 0.0, 0, 0, hv, he, lv, le, np.zeros(k_smooth), np.zeros(d_window))

    @staticmethod
    def step(c, s, high, low, close):
        (t, h_head, h_size, l_head, l_size, k_total, k_count, k_pos, d_total, d_count, d_pos,
         hv, he, lv, le, k_ring, d_ring) = s
        k_window = c[0]
        if high != high or low != low or close != close:
            return s, np.nan, np.nan
        h_head, h_size = push_max(hv, he, h_head, h_size, t, high)
        l_head, l_size = push_min(lv, le, l_head, l_size, t, low)
        k = np.nan
        d = np.nan
        if t >= k_window - 1:
            raw = fast_k(close, lv[l_head], hv[h_head])
            k_total, k_count, k_pos, k = sma_update(k_ring, k_total, k_count, k_pos, raw)
            if k == k:
                d_total, d_count, d_pos, d = sma_update(d_ring, d_total, d_count, d_pos, k)
                if d != d:
                    k = np.nan
        return (t + 1, h_head, h_size, l_head, l_size, k_total, k_count, k_pos, d_total, d_count, d_pos,
                hv, he, lv, le, k_ring, d_ring), k, d
