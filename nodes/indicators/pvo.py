"""Percentage volume oscillator: the PPO of volume."""

from nodes.contract import F64, StreamOp
from nodes.indicators.ppo import (
    PercentageOscillatorParams,
    percentage_oscillator_constants,
    percentage_oscillator_init,
    percentage_oscillator_step,
)


class Pvo(StreamOp):
    """Percentage volume oscillator: ``pvo = 100 · (MA(volume, fast) − MA(volume, slow)) / MA(volume, slow)``.

    StockCharts' PVO, computed exactly as the PPO over volume (TA-Lib's PVO bit for bit for the line); the
    signal line is an SMA-seeded EMA of the oscillator and ``hist`` their difference. Warm-up: ``pvo`` is NaN
    for the first ``slow − 1`` values (TA-Lib's lookback), ``signal`` and ``hist`` for the first
    ``(slow − 1) + (signal − 1)``. NaN inputs are skipped.

    FPGA: partly — constant multiplies, adds and ring buffers; the percentage needs a divider.

    Example::

        pvo: {op: indicator.pvo, in: bars.volume, with: {fast: 12, slow: 26, signal: 9}}
    """

    name = "indicator.pvo"
    Params = PercentageOscillatorParams
    inputs = {"volume": F64}
    outputs = {"pvo": F64, "signal": F64, "hist": F64}

    constants = staticmethod(percentage_oscillator_constants)
    init = staticmethod(percentage_oscillator_init)

    @staticmethod
    def step(c, s, volume):
        return percentage_oscillator_step(c, s, volume)
