"""On-balance volume (Granville): volume added on up closes, subtracted on down closes."""

import numpy as np

from nodes.contract import F64, OpParams, StreamOp


class Obv(StreamOp):
    """On-balance volume (Joe Granville), TA-Lib's OBV: starts at the first bar's volume.

    ``obv += volume`` when the close rises, ``−= volume`` when it falls, unchanged when equal. Warm-up: none
    (TA-Lib's lookback 0; StockCharts starts from 0 instead, a constant offset). NaN inputs are skipped.

    FPGA: yes — a compare and an add (exact in fixed point).

    Example::

        obv: {op: indicator.obv, in: {close: bars.close, volume: bars.volume}}
    """

    name = "indicator.obv"
    Params = OpParams
    inputs = {"close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0)

    @staticmethod
    def step(c, s, close, volume):
        prev, obv, started = s
        if close != close or volume != volume:
            return s, np.nan
        if started == 0:
            return (close, volume, 1), volume
        if close > prev:
            obv += volume
        elif close < prev:
            obv -= volume
        return (close, obv, 1), obv
