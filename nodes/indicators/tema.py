"""Triple exponential moving average (Mulloy): 3·EMA − 3·EMA(EMA) + EMA(EMA(EMA))."""

import numpy as np

from nodes.contract import F64, StreamOp
from nodes.indicators.ema import EmaParams, ema_alpha, ema_update


class Tema(StreamOp):
    """Triple EMA (Patrick Mulloy, 1994): ``3·E1 − 3·E2 + E3`` with E2 = EMA(E1), E3 = EMA(E2), SMA-seeded.

    Each stage is seeded with the average of the first ``window`` values of the stage before, as TA-Lib's
    TEMA does. Warm-up: NaN for the first ``3·(window − 1)`` values (TA-Lib's lookback). NaN inputs are
    skipped.

    FPGA: yes — three EMAs (constant multiplies and adds).

    Example::

        tema: {op: indicator.tema, in: bars.close, with: {window: 20}}
    """

    name = "indicator.tema"
    Params = EmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, ema_alpha(params.window))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0, 0.0, 0, 0.0, 0)

    @staticmethod
    def step(c, s, x):
        v1, n1, v2, n2, v3, n3 = s
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
                    out = 3.0 * e1 - 3.0 * e2 + e3
        return (v1, n1, v2, n2, v3, n3), out
