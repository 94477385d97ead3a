"""Stochastic RSI: the stochastic oscillator applied to Wilder's RSI."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max, push_min
from nodes.indicators.rsi import rsi_update
from nodes.indicators.sma import sma_update
from nodes.indicators.stochastic import fast_k


class StochRsiParams(OpParams):
    rsi_window: int = Field(14, ge=2, le=100_000, description="Wilder RSI period")
    k_window: int = Field(14, ge=1, le=100_000, description="look-back of the RSI's highest and lowest value")
    d_window: int = Field(3, ge=1, le=100_000, description="SMA of %K giving %D")


class StochRsi(StreamOp):
    """Stochastic RSI (Chande & Kroll): ``k = 100 · (RSI − min RSI) / (max RSI − min RSI)`` over ``k_window``.

    TA-Lib's STOCHRSI (the fast stochastic of the RSI, ``d`` = SMA(k, ``d_window``)), on TA-Lib's 0–100 scale
    (StockCharts plots the same line on 0–1). 0 when the RSI range is empty. Defaults follow StockCharts
    (14, 14); TA-Lib's default ``k_window`` is 5. Warm-up: both outputs are NaN for the first
    ``rsi_window + (k_window − 1) + (d_window − 1)`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — the RSI and %K each need a divider (iterative or LUT); the rest is compares and adds.

    Example::

        srsi: {op: indicator.stoch_rsi, in: bars.close, with: {rsi_window: 14, k_window: 14, d_window: 3}}
    """

    name = "indicator.stoch_rsi"
    Params = StochRsiParams
    inputs = {"x": F64}
    outputs = {"k": F64, "d": F64}

    @staticmethod
    def init(c, n_keys):
        rsi_window, k_window, d_window = c
        hv, he = deque_arrays(k_window)
        lv, le = deque_arrays(k_window)
        return (0.0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, hv, he, lv, le, np.zeros(d_window))

    @staticmethod
    def step(c, s, x):
        (prev, gain, loss, r_count, t, h_head, h_size, l_head, l_size, d_total, d_count, d_pos,
         hv, he, lv, le, d_ring) = s
        rsi_window, k_window, d_window = c
        if x != x:
            return s, np.nan, np.nan
        prev, gain, loss, r_count, rsi = rsi_update(prev, gain, loss, r_count, rsi_window, x)
        k = np.nan
        d = np.nan
        if rsi == rsi:
            h_head, h_size = push_max(hv, he, h_head, h_size, t, rsi)
            l_head, l_size = push_min(lv, le, l_head, l_size, t, rsi)
            if t >= k_window - 1:
                k = fast_k(rsi, lv[l_head], hv[h_head])
                d_total, d_count, d_pos, d = sma_update(d_ring, d_total, d_count, d_pos, k)
                if d != d:
                    k = np.nan
            t += 1
        return (prev, gain, loss, r_count, t, h_head, h_size, l_head, l_size, d_total, d_count, d_pos,
                hv, he, lv, le, d_ring), k, d
