"""Crossover of two series: the classic moving-average cross."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class CrossoverParams(OpParams):
    mode: Literal["cross", "state"] = Field(
        "cross", description="cross: a side only on the event of a cross, NaN otherwise; state: a side every event"
    )
    short: bool = Field(True, description="go short when fast falls below slow; when false, go flat instead")


class Crossover(StreamOp):
    """Want long when ``fast`` is above ``slow`` and short (or flat) when below: the moving-average cross.

    In ``cross`` mode a side is emitted only on the event where ``fast`` crosses ``slow`` (previous difference
    strictly below zero and current strictly above, as backtesting.py's ``crossover``), NaN meaning "no
    change" otherwise. In ``state`` mode the side is emitted on every event once both inputs are valid.

    Warm-up and NaN: NaN while either input is NaN (the state does not change); in ``cross`` mode the first
    side comes with the first cross after both inputs are valid; ``fast == slow`` emits NaN.

    FPGA: yes — a subtractor, a sign register and two comparators.

    Example::

        cross: {op: signal.crossover, in: [fast, slow], with: {short: false}}
    """

    name = "signal.crossover"
    Params = CrossoverParams
    inputs = {"fast": F64, "slow": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (params.mode == "cross", params.short)

    @staticmethod
    def init(c, n_keys):
        return (np.nan,)

    @staticmethod
    def step(c, s, fast, slow):
        cross_only, short = c
        previous = s[0]
        diff = fast - slow
        down = -1.0 if short else 0.0
        if diff != diff:
            return s, np.nan
        if cross_only:
            if previous < 0.0 and diff > 0.0:
                return (diff,), 1.0
            if previous > 0.0 and diff < 0.0:
                return (diff,), down
            return (diff,), np.nan
        if diff > 0.0:
            return (diff,), 1.0
        if diff < 0.0:
            return (diff,), down
        return (diff,), np.nan
