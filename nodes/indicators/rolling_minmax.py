"""Rolling minimum and maximum over the last ``window`` values (monotonic deques, O(1) amortised)."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max, push_min


class RollingExtremeParams(OpParams):
    window: int = Field(20, ge=1, le=10_000_000, description="number of most recent values")


class RollingMax(StreamOp):
    """Rolling maximum of the last ``window`` values, TA-Lib's MAX.

    A monotonic deque in a ring buffer: O(1) amortised per event whatever the window. Warm-up: NaN for the
    first ``window − 1`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — compares and a ring buffer (exact in fixed point).

    Example::

        highest: {op: indicator.rolling_max, in: bars.high, with: {window: 20}}
    """

    name = "indicator.rolling_max"
    Params = RollingExtremeParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        values, events = deque_arrays(c[0])
        return (0, 0, 0, values, events)

    @staticmethod
    def step(c, s, x):
        t, head, size, values, events = s
        if x != x:
            return s, np.nan
        head, size = push_max(values, events, head, size, t, x)
        out = values[head] if t >= c[0] - 1 else np.nan
        return (t + 1, head, size, values, events), out


class RollingMin(StreamOp):
    """Rolling minimum of the last ``window`` values, TA-Lib's MIN.

    A monotonic deque in a ring buffer: O(1) amortised per event. Warm-up: NaN for the first ``window − 1``
    values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — compares and a ring buffer (exact in fixed point).

    Example::

        lowest: {op: indicator.rolling_min, in: bars.low, with: {window: 20}}
    """

    name = "indicator.rolling_min"
    Params = RollingExtremeParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        values, events = deque_arrays(c[0])
        return (0, 0, 0, values, events)

    @staticmethod
    def step(c, s, x):
        t, head, size, values, events = s
        if x != x:
            return s, np.nan
        head, size = push_min(values, events, head, size, t, x)
        out = values[head] if t >= c[0] - 1 else np.nan
        return (t + 1, head, size, values, events), out
