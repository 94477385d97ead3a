"""Average directional index with the directional indicators +DI and −DI (Wilder)."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import is_zero, true_range


class AdxParams(OpParams):
    window: int = Field(14, ge=2, le=100_000, description="Wilder period n of the DM, TR and ADX smoothing")


class Adx(StreamOp):
    """ADX, +DI and −DI (Wilder, 1978), TA-Lib's ADX, PLUS_DI and MINUS_DI.

    +DM/−DM are the larger part of today's range outside yesterday's (Wilder's rules; ties give neither).
    +DM, −DM and TR are summed over the first ``window − 1`` changes, then smoothed with Wilder's
    ``s = s − s/n + today``; +DI = 100 · +DM/TR, −DI = 100 · −DM/TR; DX = 100 · |+DI − −DI| / (+DI + −DI);
    the first ADX is the mean of the first ``window`` DX, then ``adx = (adx · (n − 1) + dx) / n``. No rounding
    (TA-Lib does not round as Wilder's worksheets did). Warm-up: ``plus_di`` and ``minus_di`` are NaN for the
    first ``window`` values, ``adx`` for the first ``2·window − 1`` (TA-Lib's lookbacks). NaN inputs are
    skipped.

    FPGA: partly — the DM/TR smoothing is compares, adds and constant divides; the DI and DX ratios need a
    divider (iterative or LUT).

    Example::

        adx:
          op: indicator.adx
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 14}
    """

    name = "indicator.adx"
    Params = AdxParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"adx": F64, "plus_di": F64, "minus_di": F64}

    @staticmethod
    def init(c, n_keys):
        # prev high, prev low, prev close, +DM, −DM, TR, sum or average of DX, bars seen
        return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)

    @staticmethod
    def step(c, s, high, low, close):
        prev_high, prev_low, prev_close, plus_dm, minus_dm, tr, adx, count = s
        n = c[0]
        if high != high or low != low or close != close:
            return s, np.nan, np.nan, np.nan
        if count == 0:
            return (high, low, close, plus_dm, minus_dm, tr, adx, 1), np.nan, np.nan, np.nan
        diff_p = high - prev_high
        diff_m = prev_low - low
        range_today = true_range(high, low, prev_close)
        if count >= n:
            plus_dm -= plus_dm / n
            minus_dm -= minus_dm / n
        if diff_m > 0 and diff_p < diff_m:
            minus_dm += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            plus_dm += diff_p
        if count < n:
            tr += range_today
            return (high, low, close, plus_dm, minus_dm, tr, adx, count + 1), np.nan, np.nan, np.nan
        tr = tr - tr / n + range_today
        plus_di = 0.0
        minus_di = 0.0
        dx = np.nan
        if not is_zero(tr):
            minus_di = 100.0 * (minus_dm / tr)
            plus_di = 100.0 * (plus_dm / tr)
            total = minus_di + plus_di
            if not is_zero(total):
                dx = 100.0 * (abs(minus_di - plus_di) / total)
        out = np.nan
        if count <= 2 * n - 1:
            if dx == dx:
                adx += dx
            if count == 2 * n - 1:
                adx = adx / n
                out = adx
        else:
            if dx == dx:
                adx = (adx * (n - 1) + dx) / n
            out = adx
        next_count = count + 1 if count < 2 * n else count
        return (high, low, close, plus_dm, minus_dm, tr, adx, next_count), out, plus_di, minus_di
