"""Target position sized so that its volatility matches a yearly target, in whole lots."""

import math

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sizing._lots import whole_lots


class VolatilityTargetParams(OpParams):
    target_vol_annual: float = Field(
        gt=0, le=10, description="desired yearly volatility of the position as a fraction of equity (0.15 = 15 %)"
    )
    bars_per_year: float = Field(252.0, gt=0, description="bars in a year, to annualize per-bar volatility (252 daily)")
    max_leverage: float = Field(1.0, gt=0, le=100, description="cap on |position value| / equity at side ±1")
    lot_units: float = Field(1.0, gt=0, description="positions are whole multiples of this many units")


class VolatilityTarget(StreamOp):
    """Size the side so the position's yearly volatility is about ``target_vol_annual``, in whole lots.

    ``vol_per_bar`` is the standard deviation of the instrument's per-bar returns (e.g. of close-to-close
    returns over a window); annualized it is ``vol_per_bar × √bars_per_year``, and a position worth
    ``leverage × equity`` with ``leverage = target_vol_annual / (vol_per_bar × √bars_per_year)`` has about
    the target volatility. The leverage is capped at ``max_leverage``; the units are truncated toward zero
    to whole ``lot_units`` (a short rounds up toward zero too), as ``sizing.target_weights`` does.

    NaN and warm-up: a NaN side keeps the current position (NaN target); side 0 is target 0 whatever the
    other inputs (leaving never waits for an estimate). Otherwise the target is NaN (keep) while
    ``vol_per_bar`` is NaN or not positive (a volatility still warming up, or a flat window), or the price
    is NaN or not positive, or equity is NaN; an account with equity ≤ 0 targets 0.

    FPGA: partly — two divides per event (reciprocal LUT or an iterative divider), a min and a truncation.

    Example::

        target: {op: sizing.volatility_target, in: {side: cross, vol_per_bar: returns.vol, price: bars.close,
                 equity: prev(sim.equity)}, with: {target_vol_annual: 0.15}}
    """

    name = "sizing.volatility_target"
    Params = VolatilityTargetParams
    inputs = {"side": F64, "vol_per_bar": F64, "price": F64, "equity": F64}
    outputs = {"target": F64}

    @staticmethod
    def constants(params):
        # the target per bar, so a step divides once instead of taking a square root
        return (params.target_vol_annual / math.sqrt(params.bars_per_year), params.max_leverage, params.lot_units)

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, side, vol_per_bar, price, equity):
        target_per_bar, max_leverage, lot = c
        if side != side:
            return s, np.nan
        if side == 0.0:
            return s, 0.0
        if not vol_per_bar > 0.0 or not price > 0.0 or equity != equity:
            return s, np.nan
        if equity <= 0.0:
            return s, 0.0
        leverage = min(target_per_bar / vol_per_bar, max_leverage)
        return s, whole_lots(side * leverage * equity / price, lot)
