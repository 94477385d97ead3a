"""Target position from a weight of account equity, in whole lots."""

import math

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sizing._lots import whole_lots


class TargetWeightsParams(OpParams):
    lot_units: float = Field(1.0, gt=0, description="positions are whole multiples of this many units")


class TargetWeights(StreamOp):
    """Turn a weight of equity into a position: weight × equity / price, truncated toward zero to whole lots.

    ``weight`` is the instrument's desired share of equity (negative for short); weights of all instruments
    together set the portfolio. ``equity`` is normally the venue's equity one event back:
    ``equity: prev(sim.equity)``. A NaN weight keeps the current position.

    FPGA: partly — a divide per event (reciprocal LUT or an iterative divider) and a truncation.

    Example::

        target: {op: sizing.target_weights, in: {weight: w, price: bars.close, equity: prev(sim.equity)}}
    """

    name = "sizing.target_weights"
    Params = TargetWeightsParams
    inputs = {"weight": F64, "price": F64, "equity": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, weight, price, equity):
        lot = c[0]
        if weight != weight or not price > 0.0 or equity != equity:
            return s, math.nan
        return s, whole_lots(weight * equity / price, lot)
