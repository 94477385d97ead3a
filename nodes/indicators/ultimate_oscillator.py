"""Ultimate oscillator (Larry Williams): buying pressure over true range on three horizons, weighted 4:2:1."""

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import is_zero, true_range


class UltimateOscillatorParams(OpParams):
    short: int = Field(7, ge=1, le=100_000, description="shortest horizon (weight 4)")
    medium: int = Field(14, ge=1, le=100_000, description="middle horizon (weight 2)")
    long: int = Field(28, ge=1, le=100_000, description="longest horizon (weight 1)")

    @model_validator(mode="after")
    def _ordered(self):
        if not self.short < self.medium < self.long:
            raise ValueError(f"need short < medium < long, got {self.short}, {self.medium}, {self.long}")
        return self


class UltimateOscillator(StreamOp):
    """Ultimate oscillator: ``100 · (4·A7 + 2·A14 + A28) / 7`` with ``A_n = Σ BP / Σ TR`` over n bars.

    BP = close − min(low, prev close), TR = Wilder's true range. TA-Lib's ULTOSC: running sums in its order
    (a window's sum starts when its first bar arrives, add-then-subtract); a horizon with Σ TR within 1e-14 of
    zero contributes 0. Warm-up: NaN for the first ``long`` values (TA-Lib's lookback). NaN inputs are
    skipped.

    FPGA: partly — compares, adds and a ring buffer; the three ratios need dividers (iterative or LUT).

    Example::

        uo:
          op: indicator.ultimate_oscillator
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {short: 7, medium: 14, long: 28}
    """

    name = "indicator.ultimate_oscillator"
    Params = UltimateOscillatorParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        # prev close, bars seen, ring position, a1, b1, a2, b2, a3, b3, BP ring, TR ring (long slots)
        return (0.0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, np.zeros(c[2]), np.zeros(c[2]))

    @staticmethod
    def step(c, s, high, low, close):
        prev_close, count, pos, a1, b1, a2, b2, a3, b3, bp_ring, tr_ring = s
        p1, p2, p3 = c
        if high != high or low != low or close != close:
            return s, np.nan
        if count == 0:
            return (close, 1, pos, a1, b1, a2, b2, a3, b3, bp_ring, tr_ring), np.nan
        true_low = low if low < prev_close else prev_close
        bp = close - true_low
        tr = true_range(high, low, prev_close)
        bp_ring[pos] = bp
        tr_ring[pos] = tr
        # bar `count` belongs to window k from bar p3 − p_k + 1 on (TA-Lib starts each sum there)
        if count >= p3 - p1 + 1:
            a1 += bp
            b1 += tr
        if count >= p3 - p2 + 1:
            a2 += bp
            b2 += tr
        a3 += bp
        b3 += tr
        pos += 1
        if pos == p3:
            pos = 0
        if count < p3:
            return (close, count + 1, pos, a1, b1, a2, b2, a3, b3, bp_ring, tr_ring), np.nan
        out = 0.0
        if not is_zero(b1):
            out += 4.0 * (a1 / b1)
        if not is_zero(b2):
            out += 2.0 * (a2 / b2)
        if not is_zero(b3):
            out += a3 / b3
        # retire the oldest bar of each window (slots are bars mod p3)
        old1 = pos + p3 - p1
        if old1 >= p3:
            old1 -= p3
        old2 = pos + p3 - p2
        if old2 >= p3:
            old2 -= p3
        a1 -= bp_ring[old1]
        b1 -= tr_ring[old1]
        a2 -= bp_ring[old2]
        b2 -= tr_ring[old2]
        a3 -= bp_ring[pos]
        b3 -= tr_ring[pos]
        return (close, count, pos, a1, b1, a2, b2, a3, b3, bp_ring, tr_ring), 100.0 * (out / 7.0)
