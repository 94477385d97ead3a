"""TRIX: the one-bar rate of change, in percent, of a triple-smoothed EMA."""

import numpy as np

from nodes.contract import F64, StreamOp
from nodes.indicators.ema import EmaParams, ema_alpha, ema_update


class Trix(StreamOp):
    """TRIX (Jack Hutson): ``100 · (E3 / E3[prev] − 1)`` where E3 = EMA(EMA(EMA(x))), each SMA-seeded.

    As TA-Lib's TRIX: three chained EMAs seeded like TA-Lib's EMA, then a one-bar ROC. Warm-up: NaN for the
    first ``3·(window − 1) + 1`` values (TA-Lib's lookback). NaN inputs are skipped. A zero previous E3 gives 0.

    FPGA: partly — the EMAs are constant multiplies and adds; the ratio needs a divider (iterative or LUT).

    Example::

        trix: {op: indicator.trix, in: bars.close, with: {window: 15}}
    """

    name = "indicator.trix"
    Params = EmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, ema_alpha(params.window))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0, 0.0, 0, 0.0, 0, np.nan)

    @staticmethod
    def step(c, s, x):
        v1, n1, v2, n2, v3, n3, prev = s
        window, alpha = c
        if x != x:
            return s, np.nan
        v1, n1, e1 = ema_update(v1, n1, window, alpha, x)
        out = np.nan
        if e1 == e1:
            v2, n2, e2 = ema_update(v2, n2, window, alpha, e1)
            if e2 == e2:
                v3, n3, e3 = ema_update(v3, n3, window, alpha, e2)
                if e3 == e3:
                    if prev == prev:
                        out = ((e3 / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0
                    prev = e3
        return (v1, n1, v2, n2, v3, n3, prev), out
