"""Fees and notionals of fills: maker/taker rates on notional plus per-unit fees, negative = rebate.

Prices and quantities are int64 in 1e-9 units; a fill's notional is ``price × qty`` in quote currency, a float
(the product of two 1e-9-unit integers overflows int64 long before realistic sizes). The same two helpers run
at the venue (the fill log, the venue's cash) and at the strategy's side (its cash), so both agree to the bit.
"""

from nodes.backtest.tick.codes import MAKER
from nodes.backtest.tick.layout import C_MAKER_FEE, C_MAKER_PER_UNIT, C_TAKER_FEE, C_TAKER_PER_UNIT
from nodes.contract import step_helper

UNIT = 1e9  # int64 quantities and prices are in 1e-9 units


@step_helper(_nrt=False)
def notional_of(price, qty):
    """``price × qty`` in quote currency (price and qty in 1e-9 units)."""
    return (price / UNIT) * (qty / UNIT)


@step_helper(_nrt=False)
def fee_of(c, price, qty, liquidity):
    """The fee of a fill in quote currency: rate × |notional| + per-unit fee × |qty| (negative = rebate)."""
    notional = abs(notional_of(price, qty))
    units = abs(qty) / UNIT
    if liquidity == MAKER:
        return c[C_MAKER_FEE] * notional + c[C_MAKER_PER_UNIT] * units
    return c[C_TAKER_FEE] * notional + c[C_TAKER_PER_UNIT] * units
