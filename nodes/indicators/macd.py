"""MACD: the difference of a fast and a slow EMA, its signal EMA and the histogram."""

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp, step_helper


class MacdParams(OpParams):
    fast: int = Field(12, ge=2, le=100_000, description="fast EMA period")
    slow: int = Field(26, ge=2, le=100_000, description="slow EMA period; must be greater than fast")
    signal: int = Field(9, ge=1, le=100_000, description="signal EMA period over the MACD line")

    @model_validator(mode="after")
    def _fast_below_slow(self):
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


@step_helper
def aligned_emas(count, slow_sum, fast_sum, fast_ema, slow_ema, fast, slow, fast_k, slow_k, x):
    """Advance a fast and a slow EMA seeded on the same bar, as TA-Lib's MACD/PPO do.

    Both seeds end on bar ``slow − 1``: the slow EMA averages the first ``slow`` values, the fast one the last
    ``fast`` of them (not the first ``fast`` values of the series). Returns (count, slow_sum, fast_sum, fast_ema,
    slow_ema, ready).
    """
    if count < slow:
        slow_sum += x
        if count >= slow - fast:
            fast_sum += x
        count += 1
        if count < slow:
            return count, slow_sum, fast_sum, fast_ema, slow_ema, False
        slow_ema = slow_sum / slow
        fast_ema = fast_sum / fast
        return count, slow_sum, fast_sum, fast_ema, slow_ema, True
    fast_ema = (x - fast_ema) * fast_k + fast_ema
    slow_ema = (x - slow_ema) * slow_k + slow_ema
    return count, slow_sum, fast_sum, fast_ema, slow_ema, True


class Macd(StreamOp):
    """MACD (Gerald Appel): line = EMA(fast) − EMA(slow); signal = EMA(signal) of the line; hist = line − signal.

    TA-Lib's MACD bit for bit: both price EMAs are seeded on bar ``slow − 1`` (the fast one with the average
    of the ``fast`` values ending there), the signal EMA with the average of the first ``signal`` line values.
    Warm-up: all three outputs are NaN for the first ``(slow − 1) + (signal − 1)`` values (TA-Lib's lookback:
    33 for 12/26/9), even though the line alone is defined earlier — TA-Lib aligns the three outputs. NaN
    inputs are skipped.

    FPGA: yes — three EMAs (constant multiplies and adds) and two subtractions.

    Example::

        macd: {op: indicator.macd, in: bars.close, with: {fast: 12, slow: 26, signal: 9}}
    """

    name = "indicator.macd"
    Params = MacdParams
    inputs = {"x": F64}
    outputs = {"macd": F64, "signal": F64, "hist": F64}

    @staticmethod
    def constants(params):
        return (params.fast, params.slow, params.signal, 2.0 / (params.fast + 1), 2.0 / (params.slow + 1),
                2.0 / (params.signal + 1))

    @staticmethod
    def init(c, n_keys):
        return (0, 0.0, 0.0, 0.0, 0.0, 0, 0.0)

    @staticmethod
    def step(c, s, x):
        count, slow_sum, fast_sum, fast_ema, slow_ema, n_signal, signal = s
        fast, slow, signal_window, fast_k, slow_k, signal_k = c
        if x != x:
            return s, np.nan, np.nan, np.nan
        count, slow_sum, fast_sum, fast_ema, slow_ema, ready = aligned_emas(
            count, slow_sum, fast_sum, fast_ema, slow_ema, fast, slow, fast_k, slow_k, x
        )
        if not ready:
            return (count, slow_sum, fast_sum, fast_ema, slow_ema, n_signal, signal), np.nan, np.nan, np.nan
        line = fast_ema - slow_ema
        if n_signal < signal_window:
            signal += line
            n_signal += 1
            if n_signal < signal_window:
                return (count, slow_sum, fast_sum, fast_ema, slow_ema, n_signal, signal), np.nan, np.nan, np.nan
            signal = signal / signal_window
        else:
            signal = (line - signal) * signal_k + signal
        return (count, slow_sum, fast_sum, fast_ema, slow_ema, n_signal, signal), line, signal, line - signal
