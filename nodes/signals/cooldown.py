"""Cooldown: after the side changes, hold it for a number of events."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.signals._side import MODE_DESCRIPTION, emit, side_of


class CooldownParams(OpParams):
    events: int = Field(ge=0, le=1_000_000_000, description="after a change, ignore changes on this many events")
    during_cooldown: Literal["defer", "drop"] = Field(
        "defer",
        description="defer: when the cooldown ends, follow the side the input last asked for; "
        "drop: forget what was asked during the cooldown (the input must ask again)",
    )
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)


class Cooldown(StreamOp):
    """Hold each new side for ``events`` more events before taking another change: a guard against whipsaw.

    The event on which the output side changes starts the cooldown; on the next ``events`` events a
    different side from the input is not taken (``events: 0`` lets every change through). Every event the
    node runs on counts, whether or not its input carries a side. What the input asked for during the
    cooldown: with ``defer`` (default) the output follows the input's last side on the first event after
    the cooldown, even if the input says nothing on that event (a ``change``-mode input never repeats
    itself); with ``drop`` it is forgotten and only a side given after the cooldown is taken.

    Counting, ``events: 2``: a change at event 10 holds through events 11 and 12; event 13 may change again.
    The first side is taken at once; it starts a cooldown unless it is flat (the account starts flat, so
    flat is no change). Sides are read by their sign.

    Warm-up and NaN: a NaN input is "no change"; the output is NaN until the input's first side. ``change``
    mode emits on the events where the output side changes; ``state`` mode every event after the first side.

    FPGA: yes — a counter, a comparator and two two-bit registers.

    Example::

        calm: {op: signal.cooldown, in: trend, with: {events: 10}}
    """

    name = "signal.cooldown"
    Params = CooldownParams
    inputs = {"side": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (params.events, params.during_cooldown == "drop", params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        # side last output, side the input asks for (defer), events since the last change (saturates at
        # events + 1, i.e. "cooled down", so it never overflows)
        return (np.nan, np.nan, c[0] + 1)

    @staticmethod
    def step(c, s, side):
        events, drop, state_mode = c
        previous, held, since = s
        asked = side_of(side)
        if asked == asked:
            held = asked
        if drop:
            held = asked
        if since <= events:
            since += 1
        out = previous
        if held == held and held != previous and since > events:
            out = held
            if previous == previous or held != 0.0:
                since = 0
        return (out, held, since), emit(state_mode, previous, out)
