"""Target position worth a fraction of equity on the signal's side, in whole lots."""

import math

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sizing._lots import whole_lots


class FractionOfEquityParams(OpParams):
    fraction: float = Field(1.0, gt=0, le=100, description="share of equity to hold at side ±1 (1.0 = all in)")
    lot_units: float = Field(1.0, gt=0, description="positions are whole multiples of this many units")


class FractionOfEquity(StreamOp):
    """Size the side as a fraction of equity: side × fraction × equity / price, truncated toward zero to lots.

    The price is the one the decision sees (normally the bar's close); with next-open fills the order may cost
    a little more or less than planned, as in every bar backtester. A NaN side keeps the current position.

    FPGA: partly — a divide per event (reciprocal LUT or an iterative divider) and a truncation.

    Example::

        target: {op: sizing.fraction_of_equity, in: {side: cross, price: bars.close, equity: prev(sim.equity)},
                 with: {fraction: 0.95}}
    """

    name = "sizing.fraction_of_equity"
    Params = FractionOfEquityParams
    inputs = {"side": F64, "price": F64, "equity": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, side, price, equity):
        fraction, lot = c
        if side != side or not price > 0.0 or equity != equity:
            return s, math.nan
        return s, whole_lots(side * fraction * equity / price, lot)
