"""Trailing stop: go flat when the bar falls a fraction below the best price since entry (long; short mirrored)."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.exits._exit import exit_decision, held_side


class TrailingStopParams(OpParams):
    trail_pct: float = Field(
        gt=0, lt=1, description="distance below the highest high (long) / above the lowest low (short) as a "
        "fraction (0.1 = 10 %), not a percentage",
    )


class TrailingStop(StreamOp):
    """Go flat when the bar trades ``trail_pct`` back from the best price since entry, and stay flat.

    Long: the op tracks the highest high since entry, starting at the entry price, and exits when ``low <=
    highest × (1 − trail_pct)``; short: the lowest low, exit when ``high >= lowest × (1 + trail_pct)``. The
    level a bar is checked against comes from the bars before it (a resting stop moves between bars, and
    within one bar nothing says whether the high came before the low); the bar's own high (low) then moves
    the level for the next bar. The tracking restarts at the entry price whenever the op sees a new position
    side (an entry or a reversal) and is dropped when flat; adding to a position keeps it.

    ``position`` and ``entry_price`` are the venue's, one event back (``prev(sim.position)``,
    ``prev(sim.entry_price)``): the position held when this bar opened. With ``fill: next_open`` the op first
    sees a position on the bar after its entry fill, so the entry bar's own range neither moves nor checks
    the level.

    Output: the incoming ``target`` unchanged, except 0 (flat) from the bar the stop is hit until the
    incoming target changes side (flat or the other side), so a strategy whose target still says "long" does
    not buy back on the next bar; that changed target passes and the op is live again. A target that already
    leaves the position's side on the stop bar passes as it is. Put the exit after the sizing op and before
    ``sizing.rebalance``.

    Execution (known limitation): the venue has no stop orders, so the exit is a market order placed at this
    bar's close and filled at the next bar's open (the conservative rule for bar data), never intrabar at
    the stop level. After a gap the next open can be far worse than the stop level.

    NaN: a NaN target is "no change" and passes as NaN unless the stop is hit; a NaN high or low neither
    moves the level nor hits it; a NaN position (before the venue's first event) or entry price is no
    position to stop.

    FPGA: yes — one constant multiply, three comparators, a price register and a two-bit register.

    Example::

        trailed: {op: exit.trailing_stop, with: {trail_pct: 0.08},
                  in: {target: target, high: bars.high, low: bars.low, position: prev(sim.position),
                       entry_price: prev(sim.entry_price)}}
    """

    name = "exit.trailing_stop"
    Params = TrailingStopParams
    inputs = {"target": F64, "high": F64, "low": F64, "position": F64, "entry_price": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        # the side the op closed and keeps flat (0.0: none), the side tracked, the best price since entry
        return (0.0, 0.0, np.nan)

    @staticmethod
    def step(c, s, target, high, low, position, entry_price):
        trail = c[0]
        closed_side, tracked, best = s
        side = held_side(position)
        if side != tracked:
            tracked = side
            best = entry_price if side != 0.0 else np.nan
        triggered = False
        if side > 0.0:
            triggered = low <= best * (1.0 - trail)
            if high > best:
                best = high
        elif side < 0.0:
            triggered = high >= best * (1.0 + trail)
            if low < best:
                best = low
        closed_side, out = exit_decision(closed_side, triggered, side, target)
        return (closed_side, tracked, best), out
