"""Volume price trend: cumulative volume weighted by the close's relative change."""

import numpy as np

from nodes.contract import F64, OpParams, StreamOp


class Vpt(StreamOp):
    """Volume price trend (StockCharts' PVT), TA-Lib's PVT: ``vpt += volume · (close − prev) / prev``.

    Warm-up: none — 0 on the first bar (TA-Lib's lookback 0). A zero previous close adds nothing. NaN inputs
    are skipped.

    FPGA: partly — adds and a multiply; the relative change divides by the previous close (divider or LUT).

    Example::

        vpt: {op: indicator.vpt, in: {close: bars.close, volume: bars.volume}}
    """

    name = "indicator.vpt"
    Params = OpParams
    inputs = {"close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0)

    @staticmethod
    def step(c, s, close, volume):
        prev, vpt, started = s
        if close != close or volume != volume:
            return s, np.nan
        if started == 1 and prev != 0.0:
            vpt += volume * ((close - prev) / prev)
        return (close, vpt, 1), vpt
