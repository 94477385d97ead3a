"""True strength index (Blau): double-smoothed momentum over double-smoothed absolute momentum."""

import numpy as np
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.indicators.ema import ema_update


class TsiParams(OpParams):
    long: int = Field(25, ge=2, le=100_000, description="first (long) EMA period over the one-bar change")
    short: int = Field(13, ge=2, le=100_000, description="second (short) EMA period")
    signal: int = Field(7, ge=1, le=100_000, description="EMA period of the signal line over the TSI")


class Tsi(StreamOp):
    """True strength index (William Blau): ``100 · EMA(EMA(Δx, long), short) / EMA(EMA(|Δx|, long), short)``.

    Each EMA is seeded with the simple average of its first ``window`` inputs, as TA-Lib's TSI does (and as
    StockCharts' worksheet); 0 when the denominator is 0 (a flat series). ``signal`` is an SMA-seeded EMA of
    the TSI (StockCharts: 7 bars). Warm-up: ``tsi`` is NaN for the first ``long + short − 1`` values (TA-Lib's
    lookback: 37 for 25/13), ``signal`` for ``signal − 1`` more. NaN inputs are skipped.

    TA-Lib 0.8 evaluates its EMA recursions with a fused multiply-add (``fma(β, ema, k·x)``); tickloom keeps
    the classic ``(x − ema)·k + ema`` of TA-Lib's EMA, so the two agree to about 1e-13 relative, not bit for bit.

    FPGA: partly — four EMAs are constant multiplies and adds; the final ratio needs a divider.

    Example::

        tsi: {op: indicator.tsi, in: bars.close, with: {long: 25, short: 13, signal: 7}}
    """

    name = "indicator.tsi"
    Params = TsiParams
    inputs = {"x": F64}
    outputs = {"tsi": F64, "signal": F64}

    @staticmethod
    def constants(params):
        return (params.long, params.short, params.signal, 2.0 / (params.long + 1), 2.0 / (params.short + 1),
                2.0 / (params.signal + 1))

    @staticmethod
    def init(c, n_keys):
        # prev, started?, then (value, count) for: num long, num short, den long, den short, signal
        return (0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0, 0.0, 0)

    @staticmethod
    def step(c, s, x):
        prev, started, nl, nl_n, ns, ns_n, dl, dl_n, ds, ds_n, sg, sg_n = s
        long_w, short_w, signal_w, long_k, short_k, signal_k = c
        if x != x:
            return s, np.nan, np.nan
        if started == 0:
            return (x, 1, nl, nl_n, ns, ns_n, dl, dl_n, ds, ds_n, sg, sg_n), np.nan, np.nan
        change = x - prev
        nl, nl_n, num1 = ema_update(nl, nl_n, long_w, long_k, change)
        dl, dl_n, den1 = ema_update(dl, dl_n, long_w, long_k, abs(change))
        tsi = np.nan
        signal = np.nan
        if num1 == num1:
            ns, ns_n, num2 = ema_update(ns, ns_n, short_w, short_k, num1)
            ds, ds_n, den2 = ema_update(ds, ds_n, short_w, short_k, den1)
            if num2 == num2:
                tsi = 100.0 * num2 / den2 if den2 > 0.0 else 0.0
                sg, sg_n, signal = ema_update(sg, sg_n, signal_w, signal_k, tsi)
        return (x, 1, nl, nl_n, ns, ns_n, dl, dl_n, ds, ds_n, sg, sg_n), tsi, signal
