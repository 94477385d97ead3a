"""Money flow index: a volume-weighted RSI of the typical price."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import TA_EPSILON


class MfiParams(OpParams):
    window: int = Field(14, ge=2, le=100_000, description="bars of money flow summed")


class Mfi(StreamOp):
    """Money flow index (Quong & Soudack), TA-Lib's MFI: ``100 · Σ positive flow / Σ all flow`` over n bars.

    Flow = typical price · volume, typical = (high + low + close) / 3, positive when the typical price rose
    from the bar before, negative when it fell. TA-Lib 0.8's details are kept: a change within 1e-14 of the
    two prices' magnitude counts as no change, a window of nothing but empty bars resets the sums to exactly
    0, the ratio is clamped to [0, 100] and an empty window gives 0. Warm-up: NaN for the first ``window``
    values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: partly — multiplies, adds and ring buffers; the ratio needs a divider (iterative or LUT).

    Example::

        mfi:
          op: indicator.mfi
          in: {high: bars.high, low: bars.low, close: bars.close, volume: bars.volume}
          with: {window: 14}
    """

    name = "indicator.mfi"
    Params = MfiParams
    inputs = {"high": F64, "low": F64, "close": F64, "volume": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        # prev typical, positive sum, negative sum, bars seen, ring position, empty-bar run, rings
        return (0.0, 0.0, 0.0, 0, 0, 0, np.zeros(c[0]), np.zeros(c[0]))

    @staticmethod
    def step(c, s, high, low, close, volume):
        prev, pos_sum, neg_sum, count, pos, null_run, pos_ring, neg_ring = s
        n = c[0]
        if high != high or low != low or close != close or volume != volume:
            return s, np.nan
        typical = (high + low + close) / 3.0
        if count == 0:
            return (typical, pos_sum, neg_sum, 1, pos, null_run, pos_ring, neg_ring), np.nan
        if count > n:
            pos_sum -= pos_ring[pos]
            neg_sum -= neg_ring[pos]
        change = typical - prev
        scale = abs(typical) + abs(prev)
        flow = 0.0 if abs(change) <= TA_EPSILON * scale else typical * volume
        pos_flow = 0.0 if change < 0.0 else flow
        neg_flow = flow if change < 0.0 else 0.0
        pos_ring[pos] = pos_flow
        neg_ring[pos] = neg_flow
        pos_sum += pos_flow
        neg_sum += neg_flow
        null_run = null_run + 1 if flow == 0.0 else 0
        if null_run >= n:
            null_run = n
            pos_sum = 0.0
            neg_sum = 0.0
        pos += 1
        if pos == n:
            pos = 0
        if count < n:
            return (typical, pos_sum, neg_sum, count + 1, pos, null_run, pos_ring, neg_ring), np.nan
        total = pos_sum + neg_sum
        clamped = 0.0 if pos_sum < 0.0 else (total if pos_sum > total else pos_sum)
        out = 0.0 if total <= 0.0 else 100.0 * (clamped / total)
        return (typical, pos_sum, neg_sum, n + 1, pos, null_run, pos_ring, neg_ring), out
