"""Take profit: go flat when the bar trades a fixed fraction through the entry price in the position's favour."""

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.exits._exit import exit_decision, held_side


class TakeProfitParams(OpParams):
    take_pct: float = Field(
        gt=0, le=100, description="profit distance from the entry price as a fraction (0.1 = 10 %), not a percentage"
    )


class TakeProfit(StreamOp):
    """Go flat when the bar reaches ``take_pct`` beyond the entry price in the position's favour, and stay flat.

    Long: exit when ``high >= entry_price × (1 + take_pct)``; short: when ``low <= entry_price × (1 −
    take_pct)`` (a short's level is below zero for ``take_pct >= 1`` and is never reached). ``position`` and
    ``entry_price`` are the venue's, one event back (``prev(sim.position)``, ``prev(sim.entry_price)``): the
    position held when this bar opened.

    Output: the incoming ``target`` unchanged, except 0 (flat) from the bar the level is reached until the
    incoming target changes side (flat or the other side), so a strategy whose target still says "long" does
    not buy back on the next bar; that changed target passes and the op is live again. A target that already
    leaves the position's side on that bar passes as it is. Put the exit after the sizing op and before
    ``sizing.rebalance``.

    Execution (known limitation): the venue has no limit orders, so the exit is a market order placed at this
    bar's close and filled at the next bar's open (the conservative rule for bar data), never intrabar at
    the profit level; the next open may be better or worse than that level, after a gap by much. With
    ``fill: next_open`` the op first sees a position on the bar after its entry fill, so the entry bar's own
    range is not checked.

    NaN: a NaN target is "no change" and passes as NaN unless the level is reached; a NaN high or low reaches
    nothing; a NaN position (before the venue's first event) or entry price is no position.

    FPGA: yes — one constant multiply, two comparators and a two-bit register.

    Example::

        banked: {op: exit.take_profit, with: {take_pct: 0.1},
                 in: {target: target, high: bars.high, low: bars.low, position: prev(sim.position),
                      entry_price: prev(sim.entry_price)}}
    """

    name = "exit.take_profit"
    Params = TakeProfitParams
    inputs = {"target": F64, "high": F64, "low": F64, "position": F64, "entry_price": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        # the side the op closed and keeps flat (0.0: none)
        return (0.0,)

    @staticmethod
    def step(c, s, target, high, low, position, entry_price):
        take = c[0]
        side = held_side(position)
        triggered = (side > 0.0 and high >= entry_price * (1.0 + take)) or (
            side < 0.0 and low <= entry_price * (1.0 - take)
        )
        closed_side, out = exit_decision(s[0], triggered, side, target)
        return (closed_side,), out
