"""Keltner channel: an EMA of the typical price ± a multiple of Wilder's ATR."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.atr import atr_update
from nodes.indicators.ema import ema_update


class KeltnerParams(OpParams):
    window: int = Field(20, ge=2, le=100_000, description="EMA period of the middle line")
    atr_window: int = Field(10, ge=1, le=100_000, description="Wilder ATR period")
    multiplier: float = Field(2.0, gt=0.0, le=100.0, description="band distance in ATRs")
    center: Literal["typical", "close"] = Field(
        "typical", description="what the middle EMA averages: typical price (TA-Lib) or close (StockCharts)"
    )


class Keltner(StreamOp):
    """Keltner channel (Chester Keltner; Linda Raschke's ATR form): middle = EMA(window), bands = middle ±
    multiplier · ATR(atr_window).

    ``center: typical`` (default) is TA-Lib's KC, the EMA of (high + low + close) / 3; ``center: close`` is
    StockCharts' EMA of the close. The EMA and ATR are TA-Lib's (SMA-seeded EMA, Wilder ATR) and, as in
    TA-Lib's KC, both legs are seeded so that their warm-ups end on the same bar: the leg with the shorter
    warm-up starts later rather than earlier. Warm-up: all three outputs are NaN for the first
    ``max(window − 1, atr_window)`` values (TA-Lib's lookback). NaN inputs are skipped.

    FPGA: yes — an EMA and Wilder's ATR are constant multiplies/divides, compares and adds.

    Example::

        keltner:
          op: indicator.keltner
          in: {high: bars.high, low: bars.low, close: bars.close}
          with: {window: 20, atr_window: 10, multiplier: 2.0}
    """

    name = "indicator.keltner"
    Params = KeltnerParams
    inputs = {"high": F64, "low": F64, "close": F64}
    outputs = {"upper": F64, "middle": F64, "lower": F64}

    @staticmethod
    def constants(params):
        return (params.window, 2.0 / (params.window + 1.0), params.atr_window, params.multiplier,
                1 if params.center == "typical" else 0)

    @staticmethod
    def init(c, n_keys):
        return (0, 0.0, 0, 0.0, 0.0, 0)

    @staticmethod
    def step(c, s, high, low, close):
        t, ema, n_ema, prev_close, atr, n_atr = s
        window, alpha, atr_window, multiplier, typical = c
        if high != high or low != low or close != close:
            return s, np.nan, np.nan, np.nan
        # TA-Lib enters each leg at its own lookback before the first band: the leg with the shorter warm-up
        # starts later, so both seeds end on bar max(window − 1, atr_window).
        first_band = window - 1 if window - 1 > atr_window else atr_window
        middle = np.nan
        band = np.nan
        if t >= first_band - (window - 1):
            center = (high + low + close) / 3.0 if typical == 1 else close
            ema, n_ema, middle = ema_update(ema, n_ema, window, alpha, center)
        if t >= first_band - atr_window:
            prev_close, atr, n_atr, band = atr_update(prev_close, atr, n_atr, atr_window, high, low, close)
        state = (t + 1, ema, n_ema, prev_close, atr, n_atr)
        if middle != middle or band != band:
            return state, np.nan, np.nan, np.nan
        offset = band * multiplier
        return state, middle + offset, middle, middle - offset
