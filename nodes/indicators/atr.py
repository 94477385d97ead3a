"""Average true range (Wilder) and its normalized form NATR."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import true_range


class AtrParams(OpParams):
    window: int = Field(14, ge=1, le=100_000, description="Wilder period n")


@step_helper
def atr_update(prev_close, atr, count, window, high, low, close):
    """Push a bar into Wilder's ATR; return (prev_close, atr, count, atr or NaN). TA-Lib's ATR order.

    The first true range needs a previous close, so the first bar only records it; the seed is the mean of
    the first ``window`` true ranges; then ``atr = (atr · (n − 1) + tr) / n``.
    """
    if count == 0:
        return close, atr, 1, np.nan
    tr = true_range(high, low, prev_close)
    if count <= window:
        atr += tr
        if count < window:
            return close, atr, count + 1, np.nan
        atr = atr / window
        return close, atr, count + 1, atr
    atr *= window - 1
    atr += tr
    atr /= window
    return close, atr, count, atr


class Atr(StreamOp):
    """Average true range (Wilder, 1978), TA-Lib's ATR.

    True range = max(high − low, |prev close − high|, |prev close − low|); the first ATR is the mean of the
    first ``window`` true ranges, then Wilder's smoothing ``atr = (atr · (n − 1) + tr) / n``. Warm-up: NaN for
    the first ``window`` values (TA-Lib's lookback: the first bar has no true range). NaN inputs are skipped.

    FPGA: yes — compares, adds, a constant multiply and a constant divide.

    Example::

        atr:
          op: indicator.atr
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 14}
    """

    name = "indicator.atr"
    Params = AtrParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0)

    @staticmethod
    def step(c, s, high, low, close):
        prev_close, atr, count = s
        if high != high or low != low or close != close:
            return s, np.nan
        prev_close, atr, count, out = atr_update(prev_close, atr, count, c[0], high, low, close)
        return (prev_close, atr, count), out


class Natr(StreamOp):
    """Normalized average true range: ``100 · ATR / close``, TA-Lib's NATR (0 when the close is 0).

    The ATR is Wilder's, as ``indicator.atr``. Warm-up: NaN for the first ``window`` values (TA-Lib's
    lookback). NaN inputs are skipped.

    FPGA: partly — the ATR is fixed-point friendly; the divide by the close needs a divider (iterative or LUT).

    Example::

        natr:
          op: indicator.natr
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 14}
    """

    name = "indicator.natr"
    Params = AtrParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0)

    @staticmethod
    def step(c, s, high, low, close):
        prev_close, atr, count = s
        if high != high or low != low or close != close:
            return s, np.nan
        prev_close, atr, count, out = atr_update(prev_close, atr, count, c[0], high, low, close)
        if out == out:
            out = (out / close) * 100.0 if close != 0.0 else 0.0
        return (prev_close, atr, count), out
