"""Force index (Elder): the EMA of price change times volume."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.ema import ema_update


class ForceIndexParams(OpParams):
    window: int = Field(13, ge=1, le=100_000, description="EMA period over the one-bar force")


class ForceIndex(StreamOp):
    """Force index (Alexander Elder): ``EMA((close − prev close) · volume, window)``, TA-Lib's EFI.

    The EMA is SMA-seeded like TA-Lib's EMA (StockCharts' worksheet does the same). Warm-up: NaN for the first
    ``window`` values (TA-Lib's lookback: one bar for the first change, ``window − 1`` for the seed). NaN
    inputs are skipped.

    FPGA: yes — a subtract, a multiply and an EMA (constant multiplies and adds).

    Example::

        force: {op: indicator.force_index, in: {close: bars.close, volume: bars.volume}, with: {window: 13}}
    """

    name = "indicator.force_index"
    Params = ForceIndexParams
    inputs = {"close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, 2.0 / (params.window + 1.0))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0, 0.0, 0)

    @staticmethod
    def step(c, s, close, volume):
        prev, started, value, count = s
        if close != close or volume != volume:
            return s, np.nan
        if started == 0:
            return (close, 1, value, count), np.nan
        value, count, out = ema_update(value, count, c[0], c[1], (close - prev) * volume)
        return (close, 1, value, count), out
