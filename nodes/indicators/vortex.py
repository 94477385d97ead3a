"""Vortex indicator: upward and downward vortex movement over true range."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import true_range


class VortexParams(OpParams):
    window: int = Field(14, ge=1, le=100_000, description="bars summed")


class Vortex(StreamOp):
    """Vortex indicator (Botes & Siepman, 2010), TA-Lib's VORTEX.

    ``plus = Σ|high − prev low| / Σ TR``, ``minus = Σ|low − prev high| / Σ TR`` over ``window`` bars. Running
    sums in TA-Lib's order (add, read, subtract); when every true range in the window is 0 the TR sum is reset
    to exactly 0 and both lines are 0. Warm-up: NaN for the first ``window`` values (TA-Lib's lookback).
    NaN inputs are skipped.

    FPGA: partly — compares, adds and ring buffers; the two ratios need a divider (iterative or LUT).

    Example::

        vortex:
          op: indicator.vortex
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 14}
    """

    name = "indicator.vortex"
    Params = VortexParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"plus": F64, "minus": F64}

    @staticmethod
    def init(c, n_keys):
        # prev high, prev low, prev close, bars seen, ring pos, flat run, ΣTR, ΣVM+, ΣVM−, rings
        n = c[0]
        return (0.0, 0.0, 0.0, 0, 0, 0, 0.0, 0.0, 0.0, np.zeros(n), np.zeros(n), np.zeros(n))

    @staticmethod
    def step(c, s, high, low, close):
        prev_high, prev_low, prev_close, count, pos, null_run, s_tr, s_vmp, s_vmm, tr_ring, vmp_ring, vmm_ring = s
        n = c[0]
        if high != high or low != low or close != close:
            return s, np.nan, np.nan
        if count == 0:
            return (high, low, close, 1, pos, null_run, s_tr, s_vmp, s_vmm, tr_ring, vmp_ring, vmm_ring), np.nan, np.nan
        tr = true_range(high, low, prev_close)
        vmp = abs(high - prev_low)
        vmm = abs(low - prev_high)
        s_tr += tr
        s_vmp += vmp
        s_vmm += vmm
        tr_ring[pos] = tr
        vmp_ring[pos] = vmp
        vmm_ring[pos] = vmm
        null_run = null_run + 1 if tr == 0.0 else 0
        pos += 1
        if pos == n:
            pos = 0
        if count < n:
            return (high, low, close, count + 1, pos, null_run, s_tr, s_vmp, s_vmm, tr_ring, vmp_ring,
                    vmm_ring), np.nan, np.nan
        if null_run >= n:
            null_run = n
            s_tr = 0.0
        if s_tr > 0.0:
            plus = s_vmp / s_tr
            minus = s_vmm / s_tr
        else:
            plus = 0.0
            minus = 0.0
        s_tr -= tr_ring[pos]
        s_vmp -= vmp_ring[pos]
        s_vmm -= vmm_ring[pos]
        return (high, low, close, count, pos, null_run, s_tr, s_vmp, s_vmm, tr_ring, vmp_ring, vmm_ring), plus, minus
