"""Time stop: go flat after a position has been held a number of bars."""

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.exits._exit import exit_decision, held_side


class TimeStopParams(OpParams):
    bars: int = Field(ge=1, le=1_000_000_000, description="bars of the instrument in position before the exit order")


class TimeStop(StreamOp):
    """Go flat once a position has been seen for ``bars`` bars of its instrument, and stay flat.

    The op counts the instrument's bars on which ``position`` (the venue's, one event back:
    ``prev(sim.position)``, the position held when the bar opened) is open on one side; the count restarts
    on a new side (an entry or a reversal) and is dropped when flat; adding to a position keeps it. On the
    bar the count reaches ``bars`` the output goes flat and the venue fills the exit at the next bar's open.
    Counting, ``bars: 3`` with ``fill: next_open``: an entry filled at the open of bar t is first seen on
    bar t + 1, the exit order is placed at the close of bar t + 3 and filled at the open of bar t + 4; the
    position is held through bars t … t + 3. With ``fill: close`` an entry filled at the close of bar t is
    seen on bar t + 1 too and the exit fills at the close of bar t + 3.

    Output: the incoming ``target`` unchanged, except 0 (flat) from the bar the count is reached until the
    incoming target changes side (flat or the other side), so a strategy whose target still says "long" does
    not buy back on the next bar; that changed target passes and the op is live again. A target that already
    leaves the position's side on that bar passes as it is. Put the exit after the sizing op and before
    ``sizing.rebalance``.

    Execution (known limitation): the exit is a market order filled at the next bar's open, never at the
    close of the last bar held; after a gap that open can be far from it.

    NaN: a NaN target is "no change" and passes as NaN unless the count is reached; a NaN position (before
    the venue's first event) is no position.

    FPGA: yes — a counter, a comparator and two two-bit registers.

    Example::

        timed: {op: exit.time_stop, with: {bars: 20}, in: {target: target, position: prev(sim.position)}}
    """

    name = "exit.time_stop"
    Params = TimeStopParams
    inputs = {"target": F64, "position": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        # the side the op closed and keeps flat (0.0: none), the side counted, bars seen on that side
        # (saturates at bars, so it never overflows)
        return (0.0, 0.0, 0)

    @staticmethod
    def step(c, s, target, position):
        bars = c[0]
        closed_side, tracked, count = s
        side = held_side(position)
        if side != tracked:
            tracked = side
            count = 0
        if side != 0.0 and count < bars:
            count += 1
        triggered = side != 0.0 and count >= bars
        closed_side, out = exit_decision(closed_side, triggered, side, target)
        return (closed_side, tracked, count), out
