"""Logical combination of two sides: ``signal.and`` (both agree) and ``signal.or`` (either, unless they conflict).

Why two binary ops and not an n-ary ``all``/``any``: the op contract has fixed, typed ports and no optional
inputs, so an op cannot take "2 to 4 sides" (a 4-input op would force users to wire placeholder nodes).
Binary ops chain instead. ``signal.and`` is associative — ``and(and(a, b), c)`` is "all three agree" — so a
chain of any length means what it says. ``signal.or`` is not: a conflict between ``a`` and ``b`` becomes
flat, and flat is "no opinion" to the next ``or``, so ``or(or(+1, −1), +1)`` is +1 where a three-way "any
without conflict" would be flat. For a symmetric combination of three sides, with weights, use
``signal.vote`` (``nodes/signals/vote.py``); ``signal.or`` is ``signal.vote`` over two sides with equal
weights and threshold 0.

Both ops live in one file because they are one rule read two ways and share one step.
"""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.signals._side import MODE_DESCRIPTION, emit, side_of


class CombineParams(OpParams):
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)


@step_helper
def combine_step(state_mode, both, s, a, b):
    """Hold each input's last side and combine them: all agree (``both``) or net direction (not ``both``)."""
    held_a, held_b, previous = s
    if a == a:
        held_a = side_of(a)
    if b == b:
        held_b = side_of(b)
    if held_a != held_a and held_b != held_b:
        return (held_a, held_b, previous), np.nan
    # an input that has not given a side yet has no opinion: it counts as flat
    sa = 0.0 if held_a != held_a else held_a
    sb = 0.0 if held_b != held_b else held_b
    if both:
        out = sa if sa == sb else 0.0
    else:
        out = side_of(sa + sb)
    return (held_a, held_b, out), emit(state_mode, previous, out)


class And(StreamOp):
    """Want a side only when both inputs want it: long if both are long, short if both short, else flat.

    Each input is held at its last side (read by its sign; NaN is "no change"), so a ``change``-mode signal
    that spoke ten bars ago still counts. An input that has not spoken yet counts as flat, which vetoes.
    Chain for more sides: ``and(and(a, b), c)`` is long only when all three are (see the module docstring).

    Warm-up and NaN: NaN until either input has given a side. ``change`` mode emits on the events where the
    combined side changes; ``state`` mode every event after that.

    FPGA: yes — two two-bit registers and a few gates.

    Example::

        confirmed: {op: signal.and, in: [cross, trend]}
    """

    name = "signal.and"
    Params = CombineParams
    inputs = {"a": F64, "b": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (params.mode == "state",)

    @staticmethod
    def init(c, n_keys):
        # held a, held b, side last output
        return (np.nan, np.nan, np.nan)

    @staticmethod
    def step(c, s, a, b):
        return combine_step(c[0], True, s, a, b)


class Or(StreamOp):
    """Want the side either input wants: long if one is long and the other not short; flat on a conflict.

    The output is the sign of ``a + b`` over the held sides: (+1, 0) → +1, (+1, +1) → +1, (+1, −1) → 0,
    (0, 0) → 0. Each input is held at its last side (read by its sign; NaN is "no change"); an input that has
    not spoken yet counts as flat (no opinion). Chaining is left to right and forgets a conflict (see the
    module docstring); for three sides use ``signal.vote``.

    Warm-up and NaN: NaN until either input has given a side. ``change`` mode emits on the events where the
    combined side changes; ``state`` mode every event after that.

    FPGA: yes — two two-bit registers and a small adder.

    Example::

        either: {op: signal.or, in: [cross, revert]}
    """

    name = "signal.or"
    Params = CombineParams
    inputs = {"a": F64, "b": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (params.mode == "state",)

    @staticmethod
    def init(c, n_keys):
        return (np.nan, np.nan, np.nan)

    @staticmethod
    def step(c, s, a, b):
        return combine_step(c[0], False, s, a, b)
