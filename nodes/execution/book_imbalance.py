"""Book imbalance: want the side whose top-of-book queue outweighs the other by a ratio."""

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from nodes.contract import F64, I64, OpParams, StreamOp, step_helper
from nodes.signals._side import MODE_DESCRIPTION, emit

RATIO_STEPS = 256  # the ratio is a multiple of 1/256, so the compare is exact integer arithmetic
# Sizes above this (2^50 units in 1e-9 steps: about 1.1 million whole units) are clamped, so the products
# ratio × size stay below 2^62.
SIZE_CAP = (1 << 50) - 1


class BookImbalanceParams(OpParams):
    ratio: float = Field(
        2.0, ge=1.0, le=15.0,
        description="want long when bid_size > ratio × ask_size, short when ask_size > ratio × bid_size, "
        "flat otherwise; a multiple of 1/256",
    )
    mode: Literal["change", "state"] = Field("change", description=MODE_DESCRIPTION)

    @field_validator("ratio")
    @classmethod
    def _on_the_grid(cls, ratio: float) -> float:
        if ratio * RATIO_STEPS != round(ratio * RATIO_STEPS):
            low = int(ratio * RATIO_STEPS) / RATIO_STEPS
            raise ValueError(f"ratio {ratio} is not a multiple of 1/{RATIO_STEPS}; e.g. {low} or "
                             f"{low + 1 / RATIO_STEPS}")
        return ratio


@step_helper
def imbalance_side(bid_size, ask_size, ratio_steps):
    """+1 when the bid queue outweighs the ask queue by the ratio, -1 the other way, else 0 (integers)."""
    bid = min(max(bid_size, 0), SIZE_CAP)
    ask = min(max(ask_size, 0), SIZE_CAP)
    if bid * RATIO_STEPS > ratio_steps * ask:
        return 1
    if ask * RATIO_STEPS > ratio_steps * bid:
        return -1
    return 0


class BookImbalance(StreamOp):
    """Want long when the best bid's size outweighs the best ask's by ``ratio``, short the other way, else flat.

    Reads a book's top sizes (``book.l2``'s ``bid_size`` and ``ask_size``, 1e-9 units). An empty side has size
    0, which any non-empty opposite queue outweighs; two empty sides read as flat. The compare is exact integer
    arithmetic: ``bid_size × 256 > ratio × 256 × ask_size`` (sizes are clamped at 2^50, negative ones at 0).
    Emits in ``change`` mode (a side only when it changes, NaN otherwise) or ``state`` mode (every event).

    FPGA: yes — two constant multiplies (DSP), two comparators and a two-bit state register.

    Example::

        pressure: {op: signal.book_imbalance, in: {bid_size: book.bid_size, ask_size: book.ask_size},
                   with: {ratio: 3.0}}
    """

    name = "signal.book_imbalance"
    Params = BookImbalanceParams
    inputs = {"bid_size": I64, "ask_size": I64}
    outputs = {"side": F64}

    @staticmethod
    def constants(params):
        return (round(params.ratio * RATIO_STEPS), params.mode == "state")

    @staticmethod
    def init(c, n_keys):
        return (np.nan,)

    @staticmethod
    def step(c, s, bid_size, ask_size):
        ratio_steps, state_mode = c
        previous = s[0]
        side = float(imbalance_side(bid_size, ask_size, ratio_steps))
        return (side,), emit(state_mode, previous, side)
