"""Rebalance: let a target through on a schedule, or when the position has drifted too far from it."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class RebalanceParams(OpParams):
    every_bars: int = Field(
        20, ge=1, le=1_000_000_000,
        description="pass the target on the instrument's first event and every every_bars-th event after it "
        "(a very large value leaves only the drift rule)",
    )
    drift_fraction: float = Field(
        0.25, ge=0,
        description="also pass it when |target − position| / max(|position|, lot_units) exceeds this fraction "
        "(0.25 = 25 %; .inf leaves only the schedule)",
    )
    lot_units: float = Field(
        1.0, gt=0, description="the smallest position that scales the drift, so an entry from flat always passes"
    )


class Rebalance(StreamOp):
    """Pass the incoming target through only at rebalance points; keep the position (NaN) in between.

    A sizing op recomputes its target on every bar as equity and price move; sent to the venue as it is,
    each small change becomes an order and pays commission. This op lets the target through only:

    - on the instrument's scheduled events: its first event and every ``every_bars``-th after it (events of
      this instrument are counted, whatever its target), or
    - when the target is far from the position: ``|target − position| / max(|position|, lot_units) >
      drift_fraction``. An entry of at least one lot from flat (drift ≥ 1), an exit to flat (drift 1) and a
      reversal (drift ≥ 2) all pass at once while ``drift_fraction < 1``.

    Otherwise it outputs NaN, which the venue reads as "keep the position". ``position`` is the venue's, one
    event back: ``position: prev(sim.position)``. On the event right after this op passed a target, the venue
    has not filled that order yet (next-open fills), so the drift is measured from the target passed instead
    of the stale position: an entry is not followed by a small resize on the next bar.

    The target should be given on every bar (a ``state``-mode signal); a ``change``-mode target that falls
    between schedule points is lost unless it drifts. Place exit ops (``exit.*``) before this op: they need
    the strategy's target on every bar to see it change side, and their flat target passes here at once.

    NaN: a NaN target passes as NaN (keep); a NaN position (before the venue's first event) counts as flat.

    FPGA: partly — a counter, a subtract, a compare; the drift ratio needs a divider (or a multiply of
    drift_fraction by max(|position|, lot_units) and a compare, exact in fixed point).

    Example::

        target: {op: sizing.rebalance, in: {target: sized, position: prev(sim.position)},
                 with: {every_bars: 20, drift_fraction: 0.25}}
    """

    name = "sizing.rebalance"
    Params = RebalanceParams
    inputs = {"target": F64, "position": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        # events of the instrument since its last scheduled event (modulo every_bars), the target passed on
        # the instrument's previous event (NaN: none)
        return (0, np.nan)

    @staticmethod
    def step(c, s, target, position):
        every_bars, drift_fraction, lot = c
        phase, just_passed = s
        scheduled = phase == 0
        phase += 1
        if phase >= every_bars:
            phase = 0
        if target != target:
            return (phase, np.nan), np.nan
        if scheduled:
            return (phase, target), target
        if just_passed == just_passed:
            held = just_passed
        elif position == position:
            held = position
        else:
            held = 0.0
        scale = abs(held)
        if scale < lot:
            scale = lot
        if abs(target - held) / scale > drift_fraction:
            return (phase, target), target
        return (phase, np.nan), np.nan
