"""What the exit steps share: the side held, and the rule that turns an exit into a flat target that sticks.

The rule (``exit_decision``): on the bar an exit condition is met while the strategy still wants the held
side (or says nothing: NaN), the output is 0 and the op remembers the side it closed. From then on it outputs
0 on every event until the incoming target's side differs from that side (flat, or the other side); that
target is passed through and the op is live again. Without this, a strategy whose target still says "long"
(a ``state``-mode signal, or a ``change``-mode one repeating its last side) would re-enter on the next bar
and the exit would only cost two commissions.

Everything here is a ``step_helper``: plain Python on ``cpu``, compiled into the calling step on ``numba``.
"""

from nodes.contract import step_helper
from nodes.signals._side import side_of

EXECUTION_NOTE = "the venue fills the exit at the next bar's open of the instrument"


@step_helper
def held_side(position):
    """+1.0 long, -1.0 short, 0.0 flat; a NaN position (before the venue's first event) is flat."""
    side = side_of(position)
    if side != side:
        return 0.0
    return side


@step_helper
def exit_decision(closed_side, triggered, side, target):
    """``(closed_side, output)`` after this event: the exit rule of the module docstring.

    ``closed_side`` is the side the op closed and keeps flat (0.0: none), ``triggered`` whether the exit
    condition of a position on ``side`` is met on this bar, ``target`` the strategy's target.
    """
    wanted = side_of(target)
    if closed_side != 0.0:
        if wanted == wanted and wanted != closed_side:
            closed_side = 0.0
        else:
            return closed_side, 0.0
    if triggered and side != 0.0 and (wanted != wanted or wanted == side):
        return side, 0.0
    return closed_side, target
