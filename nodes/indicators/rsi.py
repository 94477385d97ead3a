"""Relative strength index with Wilder's smoothing."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import is_zero


class RsiParams(OpParams):
    window: int = Field(14, ge=2, le=100_000, description="Wilder period n (gains and losses averaged over n changes)")


@step_helper
def rsi_update(prev, gain, loss, count, window, x):
    """Push ``x`` into Wilder's RSI; return (prev, gain, loss, count, rsi or NaN). TA-Lib's arithmetic order."""
    if count == 0:
        return x, gain, loss, 1, np.nan
    change = x - prev
    prev = x
    if count <= window:
        if change < 0.0:
            loss -= change
        else:
            gain += change
        if count < window:
            return prev, gain, loss, count + 1, np.nan
        loss /= window
        gain /= window
        count += 1
    else:
        loss *= window - 1
        gain *= window - 1
        if change < 0.0:
            loss -= change
        else:
            gain += change
        loss /= window
        gain /= window
    total = gain + loss
    if is_zero(total):
        return prev, gain, loss, count, 0.0
    return prev, gain, loss, count, 100.0 * (gain / total)


class Rsi(StreamOp):
    """Relative strength index (Wilder, 1978): ``100 · avg_gain / (avg_gain + avg_loss)``.

    The first averages are the plain means of the first ``window`` gains and losses; after that Wilder's
    smoothing ``avg = (avg · (n − 1) + today) / n``. TA-Lib's RSI bit for bit (classic, not Metastock,
    compatibility). Warm-up: NaN for the first ``window`` values (TA-Lib's lookback). 0 when both averages are
    zero (a flat series), as TA-Lib. NaN inputs are skipped.

    FPGA: partly — the averages are adds and constant multiplies/divides; the ratio needs a divider
    (iterative or LUT).

    Example::

        rsi: {op: indicator.rsi, in: bars.close, with: {window: 14}}
    """

    name = "indicator.rsi"
    Params = RsiParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0.0, 0)

    @staticmethod
    def step(c, s, x):
        prev, gain, loss, count = s
        if x != x:
            return s, np.nan
        prev, gain, loss, count, out = rsi_update(prev, gain, loss, count, c[0], x)
        return (prev, gain, loss, count), out
