"""Hull moving average: WMA(2·WMA(x, n/2) − WMA(x, n), √n), with Hull's integer truncation of n/2 and √n."""

import math

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.wma import wma_update


class HmaParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="period n; the inner WMAs use n//2 and n, the outer ⌊√n⌋")


class Hma(StreamOp):
    """Hull moving average (Alan Hull, 2005): ``WMA(2·WMA(x, ⌊n/2⌋) − WMA(x, n), ⌊√n⌋)``.

    Three TA-Lib WMAs in their running-sum order, so the result matches TA-Lib's HMA (itself bit-identical to
    composing three TA_WMA calls). Warm-up: NaN for the first ``(n − 1) + (⌊√n⌋ − 1)`` values (TA-Lib's
    lookback: 22 for n = 20). NaN inputs are skipped.

    FPGA: yes — three WMAs (adds, constant multiplies, ring buffers, constant divides); √n is a constant.

    Example::

        hull: {op: indicator.hma, in: bars.close, with: {window: 20}}
    """

    name = "indicator.hma"
    Params = HmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, params.window // 2, int(math.isqrt(params.window)))

    @staticmethod
    def init(c, n_keys):
        full, half, root = c
        return (0.0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0.0, 0, 0,
                np.zeros(full), np.zeros(half), np.zeros(root))

    @staticmethod
    def step(c, s, x):
        (f_sum, f_sub, f_trail, f_count, f_pos, h_sum, h_sub, h_trail, h_count, h_pos,
         r_sum, r_sub, r_trail, r_count, r_pos, f_ring, h_ring, r_ring) = s
        if x != x:
            return s, np.nan
        f_sum, f_sub, f_trail, f_count, f_pos, full = wma_update(f_ring, f_sum, f_sub, f_trail, f_count, f_pos, x)
        h_sum, h_sub, h_trail, h_count, h_pos, half = wma_update(h_ring, h_sum, h_sub, h_trail, h_count, h_pos, x)
        out = np.nan
        if full == full:
            r_sum, r_sub, r_trail, r_count, r_pos, out = wma_update(
                r_ring, r_sum, r_sub, r_trail, r_count, r_pos, 2.0 * half - full
            )
        return (f_sum, f_sub, f_trail, f_count, f_pos, h_sum, h_sub, h_trail, h_count, h_pos,
                r_sum, r_sub, r_trail, r_count, r_pos, f_ring, h_ring, r_ring), out
