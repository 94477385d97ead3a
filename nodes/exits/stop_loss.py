"""Stop loss: go flat when the bar trades a fixed fraction through the entry price against the position."""

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.exits._exit import exit_decision, held_side


class StopLossParams(OpParams):
    stop_pct: float = Field(
        gt=0, lt=1, description="stop distance from the entry price as a fraction (0.05 = 5 %), not a percentage"
    )


class StopLoss(StreamOp):
    """Go flat when the bar reaches ``stop_pct`` beyond the entry price against the position, and stay flat.

    Long: exit when ``low <= entry_price × (1 − stop_pct)``; short: when ``high >= entry_price × (1 +
    stop_pct)``. ``position`` and ``entry_price`` are the venue's, one event back (``prev(sim.position)``,
    ``prev(sim.entry_price)``): the position held when this bar opened, so the bar's high and low are
    compared with a level set before the bar.

    Output: the incoming ``target`` unchanged, except 0 (flat) from the bar the stop is hit until the
    incoming target changes side (flat or the other side), so a strategy whose target still says "long" does
    not buy back on the next bar; that changed target passes and the op is live again. A target that already
    leaves the position's side on the stop bar passes as it is. Put the exit after the sizing op and before
    ``sizing.rebalance``.

    Execution (known limitation): the venue has no stop orders, so the exit is a market order placed at this
    bar's close and filled at the next bar's open (the conservative rule for bar data), never intrabar at
    the stop level. After a gap the next open can be far worse than the stop level. With ``fill: next_open``
    the op first sees a position on the bar after its entry fill, so the entry bar's own range is not
    checked.

    NaN: a NaN target is "no change" and passes as NaN unless the stop is hit; a NaN high or low hits
    nothing; a NaN position (before the venue's first event) or entry price is no position to stop.

    FPGA: yes — one constant multiply, two comparators and a two-bit register.

    Example::

        stopped: {op: exit.stop_loss, with: {stop_pct: 0.05},
                  in: {target: target, high: bars.high, low: bars.low, position: prev(sim.position),
                       entry_price: prev(sim.entry_price)}}
    """

    name = "exit.stop_loss"
    Params = StopLossParams
    inputs = {"target": F64, "high": F64, "low": F64, "position": F64, "entry_price": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        # the side the op closed and keeps flat (0.0: none)
        return (0.0,)

    @staticmethod
    def step(c, s, target, high, low, position, entry_price):
        stop = c[0]
        side = held_side(position)
        triggered = (side > 0.0 and low <= entry_price * (1.0 - stop)) or (
            side < 0.0 and high >= entry_price * (1.0 + stop)
        )
        closed_side, out = exit_decision(s[0], triggered, side, target)
        return (closed_side,), out
