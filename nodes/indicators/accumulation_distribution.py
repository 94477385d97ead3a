"""Accumulation/distribution line (Chaikin): cumulative close-location-weighted volume."""

import numpy as np

from nodes.contract import F64, OpParams, StreamOp


class AccumulationDistribution(StreamOp):
    """Accumulation/distribution line (Marc Chaikin), TA-Lib's AD.

    ``ad += ((close − low) − (high − close)) / (high − low) · volume``; a bar with ``high == low`` adds
    nothing. Warm-up: none (TA-Lib's lookback 0). NaN inputs are skipped.

    FPGA: partly — adds and a multiply; the close-location value divides by the bar's range (divider or LUT).

    Example::

        ad:
          op: indicator.accumulation_distribution
          in: {high: bars.high, low: bars.low, close: bars.close, volume: bars.volume}
    """

    name = "indicator.accumulation_distribution"
    Params = OpParams
    inputs = {"high": F64, "low": F64, "close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0,)

    @staticmethod
    def step(c, s, high, low, close, volume):
        if high != high or low != low or close != close or volume != volume:
            return s, np.nan
        ad = s[0]
        spread = high - low
        if spread > 0.0:
            ad += (((close - low) - (high - close)) / spread) * volume
        return (ad,), ad
