"""Target position at a capped Kelly fraction of equity, in whole lots."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sizing._lots import whole_lots


class KellyParams(OpParams):
    kelly_scale: float = Field(
        1.0, gt=0, le=1, description="share of the full Kelly fraction to bet (0.5 = half Kelly)"
    )
    max_fraction: float = Field(1.0, gt=0, le=100, description="cap on the fraction of equity held, at side ±1")
    lot_units: float = Field(1.0, gt=0, description="positions are whole multiples of this many units")


class Kelly(StreamOp):
    """Size the side at a capped Kelly fraction of equity from per-bar return mean and variance, in whole lots.

    Target = side × min(kelly_scale × f, max_fraction) × equity / price, where ``mean_per_bar`` and
    ``variance_per_bar`` are the mean and variance of the instrument's per-bar returns (e.g. rolling over a
    window) and the Kelly fraction is ``f = mean / variance`` for a long, ``−mean / variance`` for a short
    (the continuous-time Kelly bet; both per bar, so the ratio does not depend on the bar length). A
    fraction ≤ 0 means the estimated edge is against the side: the target is 0 (flat), never the opposite
    side. ``kelly_scale`` bets a share of full Kelly (famously aggressive, and the inputs are estimates),
    ``max_fraction`` caps the share of equity held, and the units are truncated toward zero to whole
    ``lot_units`` (a short rounds up toward zero too), as ``sizing.target_weights`` does.

    NaN and warm-up: a NaN side keeps the current position (NaN target); side 0 is target 0 whatever the
    other inputs. Otherwise the target is NaN (keep) while the mean is NaN or the variance is not a positive
    finite number (warming up, a flat window), or the price is NaN or not positive, or equity is NaN; an account
    with equity ≤ 0 targets 0.

    FPGA: partly — two divides per event (reciprocal LUT or an iterative divider), a clamp and a truncation.

    Example::

        target: {op: sizing.kelly, in: {side: cross, mean_per_bar: returns.mean, variance_per_bar: returns.var,
                 price: bars.close, equity: prev(sim.equity)}, with: {kelly_scale: 0.5, max_fraction: 0.95}}
    """

    name = "sizing.kelly"
    Params = KellyParams
    inputs = {"side": F64, "mean_per_bar": F64, "variance_per_bar": F64, "price": F64, "equity": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, side, mean_per_bar, variance_per_bar, price, equity):
        kelly_scale, max_fraction, lot = c
        if side != side:
            return s, np.nan
        if side == 0.0:
            return s, 0.0
        if mean_per_bar != mean_per_bar or not 0.0 < variance_per_bar < np.inf or not price > 0.0 or equity != equity:
            return s, np.nan
        if equity <= 0.0:
            return s, 0.0
        edge = mean_per_bar if side > 0.0 else -mean_per_bar
        fraction = kelly_scale * edge / variance_per_bar
        if fraction != fraction:
            return s, np.nan
        if fraction <= 0.0:
            return s, 0.0
        fraction = min(fraction, max_fraction)
        return s, whole_lots(side * fraction * equity / price, lot)
