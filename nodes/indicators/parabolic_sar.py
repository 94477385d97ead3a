"""Parabolic SAR (Wilder): a trailing stop that accelerates toward price while a trend lasts."""

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams, StreamOp


class ParabolicSarParams(OpParams):
    acceleration: float = Field(0.02, gt=0.0, le=1.0, description="starting and step acceleration factor")
    maximum: float = Field(0.2, gt=0.0, le=1.0, description="cap of the acceleration factor")

    @model_validator(mode="after")
    def _step_below_cap(self):
        if self.acceleration > self.maximum:
            raise ValueError(f"acceleration ({self.acceleration}) must not exceed maximum ({self.maximum})")
        return self


class ParabolicSar(StreamOp):
    """Parabolic stop-and-reverse (Wilder, 1978), TA-Lib's SAR.

    The first direction is short when the second bar's −DM is positive (and larger than its +DM), else long;
    the first SAR is the first bar's low (long) or high (short) and the first extreme point the second bar's
    high or low — TA-Lib's choice. Then ``sar += af · (ep − sar)``, ``af`` rising by ``acceleration`` at each
    new extreme up to ``maximum``, the SAR never inside the last two bars' range, and a reversal to the
    extreme point when price crosses it. Warm-up: NaN for the first value (TA-Lib's lookback 1). NaN inputs
    are skipped.

    FPGA: yes — compares, adds and a multiply by the (bounded, stepwise) acceleration factor.

    Example::

        sar: {op: indicator.parabolic_sar, in: {high: bars.high, low: bars.low}, with: {acceleration: 0.02, maximum: 0.2}}
    """

    name = "indicator.parabolic_sar"
    Params = ParabolicSarParams
    inputs = {"high": F64, "low": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        # bars seen, long?, af, ep, sar, previous high, previous low
        return (0, 1, 0.0, 0.0, 0.0, 0.0, 0.0)

    @staticmethod
    def step(c, s, high, low):
        count, is_long, af, ep, sar, prev_high, prev_low = s
        step_af, max_af = c
        if high != high or low != low:
            return s, np.nan
        if count == 0:
            return (1, is_long, af, ep, sar, high, low), np.nan
        if count == 1:
            diff_p = high - prev_high
            diff_m = prev_low - low
            is_long = 0 if (diff_m > 0 and diff_p < diff_m) else 1
            af = step_af
            if is_long == 1:
                ep = high
                sar = prev_low
            else:
                ep = low
                sar = prev_high
            # TA-Lib lets the second bar stand in for "yesterday" on its own first step
            prev_high = high
            prev_low = low
        if is_long == 1:
            if low <= sar:
                is_long = 0
                sar = ep
                if sar < prev_high:
                    sar = prev_high
                if sar < high:
                    sar = high
                out = sar
                af = step_af
                ep = low
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < high:
                    sar = high
            else:
                out = sar
                if high > ep:
                    ep = high
                    af += step_af
                    if af > max_af:
                        af = max_af
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > low:
                    sar = low
        elif high >= sar:
            is_long = 1
            sar = ep
            if sar > prev_low:
                sar = prev_low
            if sar > low:
                sar = low
            out = sar
            af = step_af
            ep = high
            sar = sar + af * (ep - sar)
            if sar > prev_low:
                sar = prev_low
            if sar > low:
                sar = low
        else:
            out = sar
            if low < ep:
                ep = low
                af += step_af
                if af > max_af:
                    af = max_af
            sar = sar + af * (ep - sar)
            if sar < prev_high:
                sar = prev_high
            if sar < high:
                sar = high
        return (2, is_long, af, ep, sar, high, low), out
