"""Kaufman adaptive moving average: an EMA whose factor follows the efficiency ratio of the last n bars."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import is_zero

# Kaufman's fastest and slowest smoothing factors: EMA(2) and EMA(30).
_SLOWEST = 2.0 / (30.0 + 1.0)
_FAST_MINUS_SLOW = 2.0 / (2.0 + 1.0) - _SLOWEST


class KamaParams(OpParams):
    window: int = Field(10, ge=2, le=100_000, description="bars n over which the efficiency ratio is measured")


class Kama(StreamOp):
    """Kaufman adaptive moving average (Perry Kaufman, 1995), TA-Lib's KAMA.

    ER = |x − x[n]| / Σ|Δx| over the last n changes (1 when the path is no longer than the move);
    sc = (ER · (2/3 − 2/31) + 2/31)²; ``kama = (x − kama) · sc + kama``, started from the previous value.
    TA-Lib's arithmetic order is kept (running Σ|Δx|, add-then-subtract), bit for bit. Warm-up: NaN for the
    first ``window`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — adds, compares and a ring buffer; the efficiency ratio divides by a variable (divider or
    LUT) and the factor is squared (one multiply).

    Example::

        kama: {op: indicator.kama, in: bars.close, with: {window: 10}}
    """

    name = "indicator.kama"
    Params = KamaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        # ring: the last window+1 values; trailing: the value that left the window at the previous step
        return (0.0, 0.0, 0.0, 0, 0, np.zeros(c[0] + 1))

    @staticmethod
    def step(c, s, x):
        sum_roc1, kama, trailing, count, pos, ring = s
        window = c[0]
        if x != x:
            return s, np.nan
        size = window + 1
        prev_pos = pos - 1 if pos > 0 else size - 1
        if count > 0:
            prev = ring[prev_pos]
        else:
            prev = x
        ring[pos] = x
        pos += 1
        if pos == size:
            pos = 0
        if count < window:
            if count > 0:
                sum_roc1 += abs(prev - x)
            return (sum_roc1, kama, trailing, count + 1, pos, ring), np.nan
        oldest = ring[pos]  # x[t - window]
        if count == window:
            sum_roc1 += abs(prev - x)
            kama = prev
        else:
            sum_roc1 -= abs(trailing - oldest)
            sum_roc1 += abs(x - prev)
        trailing = oldest
        period_roc = x - oldest
        if sum_roc1 <= period_roc or is_zero(sum_roc1):
            ratio = 1.0
        else:
            ratio = abs(period_roc / sum_roc1)
        factor = ratio * _FAST_MINUS_SLOW + _SLOWEST
        factor *= factor
        kama = (x - kama) * factor + kama
        return (sum_roc1, kama, trailing, window + 1, pos, ring), kama
