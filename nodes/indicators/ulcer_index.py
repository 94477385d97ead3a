"""Ulcer index (Martin): the root-mean-square percentage drawdown from the rolling high."""

import math

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators._window import deque_arrays, push_max


class UlcerIndexParams(OpParams):
    window: int = Field(14, ge=1, le=100_000, description="bars n of the rolling high and of the averaging")


class UlcerIndex(StreamOp):
    """Ulcer index (Peter Martin, 1987), StockCharts' definition.

    drawdown = 100 · (close − max close of the last n bars) / that max; ``ui = √(Σ drawdown² / n)`` over the
    last n drawdowns. The rolling max is a monotonic deque; the mean of squares is recomputed over its ring at
    each bar (O(window)) so a window of new highs gives exactly 0 instead of a running sum's residue.
    Warm-up: NaN for the first ``2·(window − 1)`` values (n closes for the first drawdown, n drawdowns for the
    first average). The ``ta`` package starts earlier with a partial-window max; from there on the two agree.
    NaN inputs are skipped.

    FPGA: partly — compares, multiplies, adds and ring buffers; the percentage divide and the square root need
    an iterative unit or a LUT.

    Example::

        ulcer: {op: indicator.ulcer_index, in: bars.close, with: {window: 14}}
    """

    name = "indicator.ulcer_index"
    Params = UlcerIndexParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        values, events = deque_arrays(c[0])
        return (0, 0, 0, 0, 0, values, events, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        t, head, size, n_dd, pos, values, events, squares = s
        n = c[0]
        if x != x:
            return s, np.nan
        head, size = push_max(values, events, head, size, t, x)
        if t < n - 1:
            return (t + 1, head, size, n_dd, pos, values, events, squares), np.nan
        highest = values[head]
        # a rolling high of 0 (a price series at zero) has no percentage drawdown: NaN on every placement
        drawdown = 100.0 * (x - highest) / highest if highest != 0.0 else np.nan
        squares[pos] = drawdown * drawdown
        pos += 1
        if pos == n:
            pos = 0
        if n_dd < n - 1:
            return (t + 1, head, size, n_dd + 1, pos, values, events, squares), np.nan
        total = 0.0
        slot = pos
        for _ in range(n):
            total += squares[slot] / n
            slot += 1
            if slot == n:
                slot = 0
        return (t + 1, head, size, n, pos, values, events, squares), math.sqrt(total)
