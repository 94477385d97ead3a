"""Weighted vote of three sides."""

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from nodes.contract import F64, OpParams, StreamOp
from nodes.signals._side import MODE_DESCRIPTION, emit, side_of


class VoteParams(OpParams):
    weights: tuple[float, float, float] = Field(
        (1.0, 1.0, 1.0), description="weight of a, b and c in the score (each ≥ 0, not all 0)"
    )
    threshold: float = Field(
        0.0, ge=0, description="long when the score is strictly above +threshold, short when strictly below −threshold"
    )
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)

    @field_validator("weights")
    @classmethod
    def _weights_vote(cls, weights):
        if any(not w >= 0.0 for w in weights) or not sum(weights) > 0.0:
            raise ValueError(f"weights {list(weights)} must each be ≥ 0 and not all 0")
        return weights


class Vote(StreamOp):
    """Choose the side by a weighted vote of three sides: score = w_a·a + w_b·b + w_c·c against a threshold.

    Long when ``score > threshold``, short when ``score < −threshold``, flat otherwise; a flat input
    abstains. Each input is held at its last side (read by its sign; NaN is "no change"); an input that has
    not spoken yet abstains too. With equal weights: ``threshold: 0`` follows the net direction (one long
    and two flat is long; long, short, flat is flat), ``threshold: 1`` needs a net margin of two (two long
    and one flat, or all three), ``threshold: 2`` needs all three. Weights ``[2, 1, 1]`` with ``threshold:
    1``: ``a`` alone is enough (score 2), ``b`` and ``c`` together are enough, one of them alone is not
    (score 1), and either of them against ``a`` makes it flat (score 1 or 0).

    Why three fixed inputs: the op contract has no optional inputs, so the arity is part of the op. Two
    sides are ``signal.or`` (or ``signal.and``); more than three chain a vote into another vote's input.

    Warm-up and NaN: NaN until any input has given a side. ``change`` mode emits on the events where the
    voted side changes; ``state`` mode every event after that.

    FPGA: yes — three registers, constant multiplies (shifts for power-of-two weights), an adder and two
    comparators.

    Example::

        consensus: {op: signal.vote, in: [cross, revert, trend], with: {weights: [2, 1, 1], threshold: 1}}
    """

    name = "signal.vote"
    Params = VoteParams
    inputs = {"a": F64, "b": F64, "c": F64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        w_a, w_b, w_c = params.weights
        return (w_a, w_b, w_c, params.threshold, params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        # held a, b, c, side last output
        return (np.nan, np.nan, np.nan, np.nan)

    @staticmethod
    def step(c, s, a, b, c_):
        w_a, w_b, w_c, threshold, state_mode = c
        held_a, held_b, held_c, previous = s
        if a == a:
            held_a = side_of(a)
        if b == b:
            held_b = side_of(b)
        if c_ == c_:
            held_c = side_of(c_)
        if held_a != held_a and held_b != held_b and held_c != held_c:
            return s, np.nan
        score = 0.0
        if held_a == held_a:
            score += w_a * held_a
        if held_b == held_b:
            score += w_b * held_b
        if held_c == held_c:
            score += w_c * held_c
        out = 0.0
        if score > threshold:
            out = 1.0
        elif score < -threshold:
            out = -1.0
        return (held_a, held_b, held_c, out), emit(state_mode, previous, out)
