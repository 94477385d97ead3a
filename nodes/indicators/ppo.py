"""Percentage price oscillator: (fast MA − slow MA) / slow MA in percent, with a signal line and histogram."""

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.indicators._window import is_zero
from nodes.indicators.ema import ema_update
from nodes.indicators.sma import sma_update


class PercentageOscillatorParams(OpParams):
    fast: int = Field(12, ge=2, le=100_000, description="fast moving-average period")
    slow: int = Field(26, ge=2, le=100_000, description="slow moving-average period; must be greater than fast")
    signal: int = Field(9, ge=1, le=100_000, description="EMA period of the signal line over the oscillator")
    ma: Literal["ema", "sma"] = Field("ema", description="moving average of the two legs (StockCharts: ema)")

    @model_validator(mode="after")
    def _fast_below_slow(self):
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be less than slow ({self.slow})")
        return self


def percentage_oscillator_constants(params) -> tuple:
    return (params.fast, params.slow, params.signal, 2.0 / (params.fast + 1), 2.0 / (params.slow + 1),
            2.0 / (params.signal + 1), 1 if params.ma == "ema" else 0)


def percentage_oscillator_init(c, n_keys) -> tuple:
    fast, slow = c[0], c[1]
    return (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0, 0, 0, 0.0, np.zeros(fast), np.zeros(slow))


@step_helper
def percentage_oscillator_step(c, s, x):
    """The shared step of PPO and PVO: (state, oscillator, signal, hist)."""
    (count, slow_sum, fast_sum, fast_ma, slow_ma, fast_total, fast_count, fast_pos,
     slow_total, slow_count, slow_pos, n_signal, signal, fast_ring, slow_ring) = s
    fast, slow, signal_window, fast_k, slow_k, signal_k, use_ema = c
    if x != x:
        return s, np.nan, np.nan, np.nan
    if use_ema == 1:
        # unlike MACD, TA-Lib's PPO runs two independent EMAs, each seeded over its own first window
        fast_sum, fast_count, fast_ma = ema_update(fast_sum, fast_count, fast, fast_k, x)
        slow_sum, slow_count, slow_ma = ema_update(slow_sum, slow_count, slow, slow_k, x)
        ready = slow_ma == slow_ma
    else:
        # TA-Lib computes both SMAs from the first output bar back, so the fast running sum starts at bar
        # slow − fast rather than at bar 0: the same values, and the same rounding as TA-Lib.
        if count >= slow - fast:
            fast_total, fast_count, fast_pos, fast_ma = sma_update(fast_ring, fast_total, fast_count, fast_pos, x)
        slow_total, slow_count, slow_pos, slow_ma = sma_update(slow_ring, slow_total, slow_count, slow_pos, x)
        count += 1
        ready = slow_ma == slow_ma
    state = (count, slow_sum, fast_sum, fast_ma, slow_ma, fast_total, fast_count, fast_pos,
             slow_total, slow_count, slow_pos, n_signal, signal, fast_ring, slow_ring)
    if not ready:
        return state, np.nan, np.nan, np.nan
    if is_zero(slow_ma):
        line = 0.0
    else:
        line = ((fast_ma - slow_ma) / slow_ma) * 100.0
    if n_signal < signal_window:
        signal += line
        n_signal += 1
        if n_signal < signal_window:
            return (count, slow_sum, fast_sum, fast_ma, slow_ma, fast_total, fast_count, fast_pos, slow_total,
                    slow_count, slow_pos, n_signal, signal, fast_ring, slow_ring), line, np.nan, np.nan
        signal = signal / signal_window
    else:
        signal = (line - signal) * signal_k + signal
    return (count, slow_sum, fast_sum, fast_ma, slow_ma, fast_total, fast_count, fast_pos, slow_total,
            slow_count, slow_pos, n_signal, signal, fast_ring, slow_ring), line, signal, line - signal


class Ppo(StreamOp):
    """Percentage price oscillator: ``ppo = 100 · (MA(fast) − MA(slow)) / MA(slow)``; signal = EMA(ppo); hist.

    The line is TA-Lib's PPO (``ma: ema`` is matype 1: two independent SMA-seeded EMAs; ``ma: sma`` is
    matype 0). The signal line
    and histogram follow StockCharts: an SMA-seeded EMA of the line and their difference. 0 when the slow
    average is zero. Warm-up: ``ppo`` is NaN for the first ``slow − 1`` values (TA-Lib's lookback), ``signal``
    and ``hist`` for the first ``(slow − 1) + (signal − 1)``. NaN inputs are skipped.

    FPGA: partly — the averages are constant multiplies, adds and ring buffers; the percentage needs a
    divider (iterative or LUT).

    Example::

        ppo: {op: indicator.ppo, in: bars.close, with: {fast: 12, slow: 26, signal: 9}}
    """

    name = "indicator.ppo"
    Params = PercentageOscillatorParams
    inputs = {"x": F64}
    outputs = {"ppo": F64, "signal": F64, "hist": F64}

    constants = staticmethod(percentage_oscillator_constants)
    init = staticmethod(percentage_oscillator_init)

    @staticmethod
    def step(c, s, x):
        return percentage_oscillator_step(c, s, x)
