"""Double exponential moving average (Mulloy): 2·EMA − EMA(EMA)."""

import numpy as np

from nodes.contract import F64, StreamOp
from nodes.indicators.ema import EmaParams, ema_alpha, ema_update


class Dema(StreamOp):
    """Double EMA (Patrick Mulloy, 1994): ``2·EMA(x) − EMA(EMA(x))``, both SMA-seeded as in TA-Lib.

    The second EMA is seeded with the average of the first ``window`` values of the first one, as TA-Lib's
    DEMA does. Warm-up: NaN for the first ``2·(window − 1)`` values (TA-Lib's lookback). NaN inputs are
    skipped.

    FPGA: yes — two EMAs (constant multiplies and adds) and a shift.

    Example::

        dema: {op: indicator.dema, in: bars.close, with: {window: 20}}
    """

    name = "indicator.dema"
    Params = EmaParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return (params.window, ema_alpha(params.window))

    @staticmethod
    def init(c, n_keys):
        return (0.0, 0, 0.0, 0)

    @staticmethod
    def step(c, s, x):
        v1, n1, v2, n2 = s
        window, alpha = c
        if x != x:
            return s, np.nan
        v1, n1, e1 = ema_update(v1, n1, window, alpha, x)
        out = np.nan
        if e1 == e1:
            v2, n2, e2 = ema_update(v2, n2, window, alpha, e1)
            if e2 == e2:
                out = (2.0 * e1) - e2
        return (v1, n1, v2, n2), out
