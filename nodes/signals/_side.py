"""What the signal steps share: reading an input as a side, and the rule for what a signal emits.

A side is +1 (long), -1 (short) or 0 (flat); NaN on a side port means "no change". A signal op keeps the side
it currently wants and emits it either on every event (``mode: state``) or only on the event it changes
(``mode: change``, NaN otherwise), the way ``signal.crossover`` emits only on a cross. Change mode suits the
sizing ops: a target is recomputed only when the side changes, so the venue is not asked to rebalance on
every bar as equity and price move.

Everything here is a ``step_helper``: plain Python on ``cpu``, compiled into the calling step on ``numba``.
"""

import numpy as np

from nodes.contract import step_helper

MODE_DESCRIPTION = (
    "change: emit the side only on the event it changes (NaN, 'no change', otherwise); "
    "state: emit the current side on every event"
)


@step_helper
def side_of(x):
    """+1.0, -1.0 or 0.0 by the sign of ``x`` (so -0.0 reads as 0.0); NaN stays NaN."""
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return -1.0
    if x == 0.0:
        return 0.0
    return np.nan


@step_helper
def emit(state_mode, previous, side):
    """What a signal outputs when it wanted ``previous`` and now wants ``side`` (NaN: no side yet).

    Every event in state mode; in change mode only when the side differs from the previous one (the first
    known side counts as a change), NaN otherwise.
    """
    if state_mode or side != previous:
        return side
    return np.nan
