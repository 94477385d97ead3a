"""Threshold with hysteresis: go long above one level, leave below a lower one."""

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp
from nodes.signals._side import MODE_DESCRIPTION, emit


class ThresholdParams(OpParams):
    upper: float = Field(description="enter long when x rises strictly above this level")
    lower: float = Field(description="leave the long when x falls strictly below this level (lower ≤ upper)")
    short: bool = Field(
        False,
        description="also trade the mirror image around `center`: enter short strictly below 2·center − upper, "
        "leave it strictly above 2·center − lower",
    )
    center: float = Field(0.0, description="the level the short side mirrors around (50 for an RSI)")
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)

    @model_validator(mode="after")
    def _levels_in_order(self):
        if self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) must not be above upper ({self.upper}): the long exits below lower")
        if self.short and not self.upper > self.center:
            raise ValueError(
                f"with short: true, upper ({self.upper}) must be above center ({self.center}), "
                "or the long and short entry zones would overlap"
            )
        return self


class Threshold(StreamOp):
    """Go long above ``upper`` and flat again below ``lower``: a threshold with hysteresis.

    The gap between the levels is the hysteresis: a series hovering around one level does not flip the side
    on every event. Flat → long when ``x > upper``; long → flat when ``x < lower``; a value equal to a level
    changes nothing. With ``short: true`` the mirror image around ``center`` trades the short side: flat →
    short when ``x < 2·center − upper``, short → flat when ``x > 2·center − lower``, and a long (short) flips
    straight to short (long) when ``x`` jumps past the opposite entry level.

    Warm-up and NaN: the side starts flat; a NaN ``x`` (an indicator warming up, a gap) changes nothing and
    emits NaN. In ``change`` mode the first valid ``x`` emits the side it implies (often 0), then only
    changes; in ``state`` mode every valid ``x`` emits the current side.

    FPGA: yes — four comparators against constants and a two-bit state register.

    Example::

        trend: {op: signal.threshold, in: rsi, with: {upper: 60, lower: 50, short: true, center: 50}}
    """

    name = "signal.threshold"
    Params = ThresholdParams
    inputs = {"x": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        mirror = 2.0 * params.center
        return (params.upper, params.lower, mirror - params.upper, mirror - params.lower, params.short,
                params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        return (np.nan,)

    @staticmethod
    def step(c, s, x):
        upper, lower, short_entry, short_exit, short, state_mode = c
        previous = s[0]
        if x != x:
            return s, np.nan
        side = 0.0 if previous != previous else previous
        if side > 0.0:
            if short and x < short_entry:
                side = -1.0
            elif x < lower:
                side = 0.0
        elif side < 0.0:
            if x > upper:
                side = 1.0
            elif x > short_exit:
                side = 0.0
        elif x > upper:
            side = 1.0
        elif short and x < short_entry:
            side = -1.0
        return (side,), emit(state_mode, previous, side)
