"""Regime filter: let a side through only while a regime series allows it."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.signals._side import MODE_DESCRIPTION, emit, side_of

CONDITIONS = ("direction", "above", "below")


class RegimeFilterParams(OpParams):
    condition: Literal["direction", "above", "below"] = Field(
        "direction",
        description="direction: regime > level allows longs only, regime < level shorts only; "
        "above: regime > level allows both sides; below: regime < level allows both sides",
    )
    level: float = Field(0.0, description="the level the regime is compared with (strictly)")
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)


class RegimeFilter(StreamOp):
    """Pass the input's side while a regime series allows it; want flat while it does not.

    The op holds the last side its ``side`` input gave (read by its sign) and the last valid ``regime``
    value, and outputs the held side if the regime allows it, else 0. Flat is always allowed. Conditions,
    all strict:

    - ``direction`` (default): ``regime > level`` allows longs only, ``regime < level`` shorts only,
      ``regime == level`` neither — e.g. a fast-minus-slow trend gap as the regime: trade only with the trend;
    - ``above``: ``regime > level`` allows both sides — e.g. trade only while a trend-strength or volume
      measure is high;
    - ``below``: ``regime < level`` allows both sides — e.g. trade only while volatility is low.

    The output is a desired side, not an entry gate: when the regime stops allowing a held long, the output
    goes flat (the position is closed), and when the regime allows it again while the input still wants
    long, the output is long again (the position is reopened without a new entry signal).

    Warm-up and NaN: a NaN ``side`` is "no change" (the held side stays); a NaN ``regime`` keeps the last
    valid regime. Until the first valid regime nothing but flat is allowed; until the input's first side the
    output is NaN. ``change`` mode emits on the events where the output side changes; ``state`` mode every
    event once there is a side.

    FPGA: yes — two comparators against a constant, two registers and a multiplexer.

    Example::

        with_trend: {op: signal.regime_filter, in: {side: revert, regime: trend_gap}, with: {condition: direction}}
    """

    name = "signal.regime_filter"
    Params = RegimeFilterParams
    inputs = {"side": F64, "regime": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (CONDITIONS.index(params.condition), params.level, params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        # held input side, last valid regime, side last output
        return (np.nan, np.nan, np.nan)

    @staticmethod
    def step(c, s, side, regime):
        condition, level, state_mode = c
        held, last_regime, previous = s
        if side == side:
            held = side_of(side)
        if regime == regime:
            last_regime = regime
        out = held
        if held != 0.0 and held == held:
            if condition == 0:
                allowed = (held > 0.0 and last_regime > level) or (held < 0.0 and last_regime < level)
            elif condition == 1:
                allowed = last_regime > level
            else:
                allowed = last_regime < level
            if not allowed:
                out = 0.0
        return (held, last_regime, out), emit(state_mode, previous, out)
