"""Chaikin money flow: money-flow volume over volume, summed over a window."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class ChaikinMoneyFlowParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="bars summed")


class ChaikinMoneyFlow(StreamOp):
    """Chaikin money flow: ``Σ mfv / Σ volume`` over ``window`` bars, TA-Lib's CMF (StockCharts' definition).

    mfv = ((close − low) − (high − close)) / (high − low) · volume (0 when high == low). Running sums in
    TA-Lib's order (subtract the leaving bar, then add the new one); 0 when the window's volume is 0.
    Warm-up: NaN for the first ``window − 1`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — adds and ring buffers; the two divides need a divider (iterative or LUT).

    Example::

        cmf:
          op: indicator.chaikin_money_flow
          in: {high: bars.high, low: bars.low, close: bars.close, volume: bars.volume}
          with: {window: 20}
    """

    name = "indicator.chaikin_money_flow"
    Params = ChaikinMoneyFlowParams
    inputs = {"high": F64, "low": F64, "close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0.0, 0, 0, np.zeros(c[0]), np.zeros(c[0]))

    @staticmethod
    def step(c, s, high, low, close, volume):
        sum_mfv, sum_vol, count, pos, mfv_ring, vol_ring = s
        window = c[0]
        if high != high or low != low or close != close or volume != volume:
            return s, np.nan
        spread = high - low
        mfv = (close - low - (high - close)) / spread * volume if spread > 0.0 else 0.0
        if count == window:
            sum_mfv -= mfv_ring[pos]
            sum_vol -= vol_ring[pos]
        else:
            count += 1
        mfv_ring[pos] = mfv
        vol_ring[pos] = volume
        sum_mfv += mfv
        sum_vol += volume
        pos += 1
        if pos == window:
            pos = 0
        if count < window:
            return (sum_mfv, sum_vol, count, pos, mfv_ring, vol_ring), np.nan
        out = sum_mfv / sum_vol if sum_vol > 0.0 else 0.0
        return (sum_mfv, sum_vol, count, pos, mfv_ring, vol_ring), out
