"""Target position that risks a fixed fraction of equity over a stop a few ATRs away, in whole lots."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sizing._lots import whole_lots


class AtrRiskParams(OpParams):
    risk_fraction: float = Field(
        0.01, gt=0, le=1, description="equity lost if the price moves atr_multiple × ATR against the position"
    )
    atr_multiple: float = Field(2.0, gt=0, description="stop distance in ATRs")
    max_leverage: float = Field(1.0, gt=0, le=100, description="cap on |position value| / equity at side ±1")
    lot_units: float = Field(1.0, gt=0, description="positions are whole multiples of this many units")


class AtrRisk(StreamOp):
    """Size the side to lose ``risk_fraction`` of equity on a move of ``atr_multiple`` ATRs, in whole lots.

    Target = side × risk_fraction × equity / (atr_multiple × atr): the classic "percent risk" size (the
    turtles' unit), where a move of ``atr_multiple`` ATRs against the position loses ``risk_fraction`` of
    equity. ``atr`` is in price units (e.g. a 14-bar average true range).
    A calm market (small ATR) would ask for a huge position, so the size is capped at ``max_leverage ×
    equity / price`` units; the result is truncated toward zero to whole ``lot_units`` (a short rounds up
    toward zero too), as ``sizing.target_weights`` does. This op sizes only: it places no stop.

    NaN and warm-up: a NaN side keeps the current position (NaN target); side 0 is target 0 whatever the
    other inputs. Otherwise the target is NaN (keep) while ``atr`` is NaN or not positive (warming up), or the
    price is NaN or not positive, or equity is NaN; an account with equity ≤ 0 targets 0.

    FPGA: partly — two divides per event (reciprocal LUT or an iterative divider), a min and a truncation.

    Example::

        target: {op: sizing.atr_risk, in: {side: cross, atr: atr, price: bars.close, equity: prev(sim.equity)},
                 with: {risk_fraction: 0.01, atr_multiple: 2}}
    """

    name = "sizing.atr_risk"
    Params = AtrRiskParams
    inputs = {"side": F64, "atr": F64, "price": F64, "equity": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, side, atr, price, equity):
        risk_fraction, atr_multiple, max_leverage, lot = c
        if side != side:
            return s, np.nan
        if side == 0.0:
            return s, 0.0
        if not atr > 0.0 or not price > 0.0 or equity != equity:
            return s, np.nan
        if equity <= 0.0:
            return s, 0.0
        units = min(risk_fraction * equity / (atr_multiple * atr), max_leverage * equity / price)
        return s, whole_lots(side * units, lot)
