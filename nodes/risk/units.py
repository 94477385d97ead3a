"""Limits as written in a spec (decimal units, quote currency) turned into the numbers the risk steps compare.

Prices and quantities on the tick path are int64 in 1e-9 units; a limit is converted once, exactly (through
``Decimal``, so ``0.001`` is 1,000,000 units and not 999,999), and a notional limit is kept in 1e-18 quote
units as the float nearest the exact decimal, which is what ``float(price) × float(qty)`` is compared with.
"""

from decimal import Decimal

import numpy as np

UNIT = 1_000_000_000  # 1e-9 units per price or quantity unit
NO_LIMIT_UNITS = 1 << 62  # an integer limit that nothing on the tick path reaches (int64 arithmetic stays safe)


def units(value: float | None, what: str) -> int:
    """A price or quantity in 1e-9 units, exactly; ``NO_LIMIT_UNITS`` for None.

    Raises ValueError naming ``what`` when the value is not a whole number of 1e-9 units.
    """
    if value is None:
        return NO_LIMIT_UNITS
    exact = Decimal(str(value)) * UNIT
    if exact != exact.to_integral_value():
        raise ValueError(f"{what} {value} is not a whole number of the data's 1e-9 units")
    return int(exact)


def scaled_notional(value: float | None) -> float:
    """A notional in quote currency as the float nearest ``value × 1e18`` (price units × quantity units)."""
    if value is None:
        return np.inf
    return float(Decimal(str(value)) * UNIT * UNIT)
