"""What the sizing steps share: whole lots, truncated toward zero without leaving float64.

``math.trunc`` returns an int: on ``cpu`` a non-finite size raises and a size beyond 2**63 stays a Python
int, while numba converts it to int64 and wraps. ``np.trunc`` stays a float on both, so the two placements
agree bit for bit on every input.
"""

import math

import numpy as np

from nodes.contract import step_helper


@step_helper
def whole_lots(units, lot_units):
    """``units`` truncated toward zero to a whole number of ``lot_units``; NaN (keep) when not finite."""
    lots = np.trunc(units / lot_units)
    if not math.isfinite(lots):
        return np.nan
    # + 0.0 turns the -0.0 of a short smaller than one lot into 0.0: flat, whatever the side
    return lots * lot_units + 0.0
