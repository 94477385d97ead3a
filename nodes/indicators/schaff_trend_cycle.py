"""Schaff trend cycle: a MACD passed twice through a stochastic and a smoothing."""

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import deque_arrays, push_max, push_min


class SchaffTrendCycleParams(OpParams):
    fast: int = Field(23, ge=2, le=100_000, description="fast EMA period of the MACD")
    slow: int = Field(50, ge=2, le=100_000, description="slow EMA period of the MACD; greater than fast")
    cycle: int = Field(10, ge=2, le=100_000, description="stochastic look-back of both passes")
    smooth1: int = Field(3, ge=1, le=100_000, description="EMA span smoothing the first stochastic (3 = factor 0.5)")
    smooth2: int = Field(3, ge=1, le=100_000, description="EMA span smoothing the second stochastic")

    @model_validator(mode="after")
    def _fast_below_slow(self):
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


@step_helper
def ewm_update(value, count, alpha, x):
    """pandas' ``ewm(adjust=False)`` step: seeded with the first value; ``((1−α)·v + α·x) / ((1−α) + α)``."""
    if count == 0:
        return x, 1
    if value != x:
        value = ((1.0 - alpha) * value + alpha * x) / ((1.0 - alpha) + alpha)
    return value, count + 1


@step_helper
def span_alpha(span):
    """pandas' smoothing factor for a span: 1 / (1 + (span − 1) / 2)."""
    return 1.0 / (1.0 + (span - 1.0) / 2.0)


class SchaffTrendCycle(StreamOp):
    """Schaff trend cycle (Doug Schaff, 1999), as the ``ta`` package computes it (Schaff's original smoothing).

    MACD = EMA(fast) − EMA(slow); %K1 = 100 · (MACD − min) / (max − min) over ``cycle`` bars; %D1 = EMA(%K1,
    ``smooth1``); %K2 = the same stochastic of %D1; STC = EMA(%K2, ``smooth2``). EMAs are Schaff's (pandas'
    ``ewm(adjust=False)``): seeded with their first input. Where a stochastic's range is empty, the previous
    %K is held (Schaff's code; ``ta`` would emit NaN). Warm-up: NaN for the first
    ``(slow − 1) + (cycle − 1) + (smooth1 − 1) + (cycle − 1) + (smooth2 − 1)`` values (71 with the defaults), as
    ``ta``'s min_periods. NaN inputs are skipped.

    FPGA: partly — EMAs are constant multiplies, the windows are compares over ring buffers; the two
    stochastic ratios need a divider.

    Example::

        stc: {op: indicator.schaff_trend_cycle, in: bars.close, with: {fast: 23, slow: 50, cycle: 10}}
    """

    name = "indicator.schaff_trend_cycle"
    Params = SchaffTrendCycleParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.fast, params.slow, params.cycle, params.smooth1, params.smooth2,
                1.0 / (1.0 + (params.fast - 1.0) / 2.0), 1.0 / (1.0 + (params.slow - 1.0) / 2.0),
                1.0 / (1.0 + (params.smooth1 - 1.0) / 2.0), 1.0 / (1.0 + (params.smooth2 - 1.0) / 2.0))

    @staticmethod
    def init(c, n_keys):
        cycle = c[2]
        a = deque_arrays(cycle)
        b = deque_arrays(cycle)
        d = deque_arrays(cycle)
        e = deque_arrays(cycle)
        # t, fast, slow, n macd, k1 held, d1, n d1, n d1 seen in window, k2 held, stc, n stc, 4 deque heads/sizes
        return (0, 0.0, 0.0, 0, 0.0, 0.0, 0, 0, 0.0, 0.0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                a[0], a[1], b[0], b[1], d[0], d[1], e[0], e[1])

    @staticmethod
    def step(c, s, x):
        (t, fast_v, slow_v, n_macd, k1, d1, n_d1, m_d1, k2, stc, n_stc,
         mh_head, mh_size, ml_head, ml_size, dh_head, dh_size, dl_head, dl_size,
         mh_v, mh_e, ml_v, ml_e, dh_v, dh_e, dl_v, dl_e) = s
        fast, slow, cycle, smooth1, smooth2, a_fast, a_slow, a_s1, a_s2 = c
        if x != x:
            return s, np.nan
        fast_v, _ = ewm_update(fast_v, t, a_fast, x)
        slow_v, _ = ewm_update(slow_v, t, a_slow, x)
        out = np.nan
        if t >= slow - 1:
            macd = fast_v - slow_v
            mh_head, mh_size = push_max(mh_v, mh_e, mh_head, mh_size, n_macd, macd)
            ml_head, ml_size = push_min(ml_v, ml_e, ml_head, ml_size, n_macd, macd)
            if n_macd >= cycle - 1:
                low = ml_v[ml_head]
                span = mh_v[mh_head] - low
                if span != 0.0:
                    k1 = 100.0 * (macd - low) / span
                d1, n_d1 = ewm_update(d1, n_d1, a_s1, k1)
                if n_d1 >= smooth1:
                    dh_head, dh_size = push_max(dh_v, dh_e, dh_head, dh_size, m_d1, d1)
                    dl_head, dl_size = push_min(dl_v, dl_e, dl_head, dl_size, m_d1, d1)
                    if m_d1 >= cycle - 1:
                        low2 = dl_v[dl_head]
                        span2 = dh_v[dh_head] - low2
                        if span2 != 0.0:
                            k2 = 100.0 * (d1 - low2) / span2
                        stc, n_stc = ewm_update(stc, n_stc, a_s2, k2)
                        if n_stc >= smooth2:
                            out = stc
                    m_d1 += 1
            n_macd += 1
        return (t + 1, fast_v, slow_v, n_macd, k1, d1, n_d1, m_d1, k2, stc, n_stc,
                mh_head, mh_size, ml_head, ml_size, dh_head, dh_size, dl_head, dl_size,
                mh_v, mh_e, ml_v, ml_e, dh_v, dh_e, dl_v, dl_e), out
