"""Mean-reversion bands on a z-score: fade the stretch, leave when it has come back."""

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp
from nodes.signals._side import MODE_DESCRIPTION, emit


class ZscoreBandsParams(OpParams):
    entry: float = Field(2.0, gt=0, description="enter when |z| rises strictly above this many deviations")
    exit: float = Field(
        0.5, ge=0, description="leave when z has come back strictly inside ±exit (0: at the mean crossing); < entry"
    )
    short: bool = Field(True, description="take the short side above +entry; when false, long-only")
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)

    @model_validator(mode="after")
    def _exit_inside_entry(self):
        if not self.exit < self.entry:
            raise ValueError(f"exit ({self.exit}) must be below entry ({self.entry}): positions leave inside the bands")
        return self


class ZscoreBands(StreamOp):
    """Fade a stretched z-score: short above ``+entry``, long below ``−entry``, flat once it has reverted.

    A long (entered at ``z < −entry``) is left when ``z > −exit``; a short (entered at ``z > +entry``) when
    ``z < +exit``. That is "exit when |z| < exit" for a z-score that returns gradually, and it also exits a
    z-score that jumps across the mean in one event (from +3 to −1 with ``exit: 0.5`` leaves the short
    rather than holding it on the wrong side). A jump past the opposite entry band reverses the position.
    Comparisons are strict: a value equal to a band changes nothing. ``short: false`` never goes short (a
    z above +entry only leaves a long).

    The input is any z-score (e.g. ``(close − mean) / std`` over a window); this op does not compute it.

    Warm-up and NaN: the side starts flat; a NaN ``z`` changes nothing and emits NaN. In ``change`` mode the
    first valid ``z`` emits the side it implies, then only changes; ``state`` mode emits the side every event.

    FPGA: yes — four comparators against constants and a two-bit state register.

    Example::

        revert: {op: signal.zscore_bands, in: z, with: {entry: 2.0, exit: 0.5}}
    """

    name = "signal.zscore_bands"
    Params = ZscoreBandsParams
    inputs = {"z": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (params.entry, params.exit, params.short, params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        return (np.nan,)

    @staticmethod
    def step(c, s, z):
        entry, exit_, short, state_mode = c
        previous = s[0]
        if z != z:
            return s, np.nan
        side = 0.0 if previous != previous else previous
        if side > 0.0:
            if short and z > entry:
                side = -1.0
            elif z > -exit_:
                side = 0.0
        elif side < 0.0:
            if z < -entry:
                side = 1.0
            elif z < exit_:
                side = 0.0
        elif z < -entry:
            side = 1.0
        elif short and z > entry:
            side = -1.0
        return (side,), emit(state_mode, previous, side)
