"""Helpers for the indicator tests: the indicator ops, their example params, real bars, driving and comparing.

The ops are found by scanning ``nodes.indicators`` only, so these tests do not depend on the rest of the op
library importing cleanly.
"""

import importlib
import pkgutil
from functools import lru_cache

import numpy as np

import nodes.indicators
from nodes.contract import OpRegistry, StreamOp
from tests.support import drive, op_context, read_bars

# Small valid params per indicator op, several where a switch changes the code path. The parity tests run
# every set on cpu and numba; tests/support.py's EXAMPLE_PARAMS should include these (see test_examples).
INDICATOR_EXAMPLE_PARAMS: dict[str, list[dict]] = {
    "indicator.sma": [{"window": 1}, {"window": 5}, {"window": 30}],
    "indicator.ema": [{"window": 1}, {"window": 3}, {"window": 20}],
    "indicator.wma": [{"window": 1}, {"window": 10}],
    "indicator.dema": [{"window": 2}, {"window": 10}],
    "indicator.tema": [{"window": 2}, {"window": 10}],
    "indicator.kama": [{"window": 2}, {"window": 10}],
    "indicator.hma": [{"window": 2}, {"window": 9}, {"window": 20}],
    "indicator.trix": [{"window": 2}, {"window": 15}],
    "indicator.rsi": [{"window": 2}, {"window": 14}],
    "indicator.stochastic": [{}, {"k_window": 5, "k_smooth": 1, "d_window": 1}],
    "indicator.stoch_rsi": [{}, {"rsi_window": 7, "k_window": 3, "d_window": 1}],
    "indicator.williams_r": [{"window": 1}, {"window": 14}],
    "indicator.cci": [{"window": 2}, {"window": 20}],
    "indicator.roc": [{"window": 1}, {"window": 10}],
    "indicator.momentum": [{"window": 1}, {"window": 10}],
    "indicator.macd": [{}, {"fast": 3, "slow": 10, "signal": 1}],
    "indicator.ppo": [{}, {"fast": 3, "slow": 10, "signal": 4, "ma": "sma"}],
    "indicator.pvo": [{}, {"fast": 3, "slow": 10, "signal": 4, "ma": "sma"}],
    "indicator.bollinger": [{}, {"window": 5, "num_std": 1.0}],
    "indicator.keltner": [{}, {"window": 5, "atr_window": 14, "multiplier": 1.5, "center": "close"}],
    "indicator.donchian": [{"window": 1}, {"window": 20}],
    "indicator.atr": [{"window": 1}, {"window": 14}],
    "indicator.natr": [{"window": 2}, {"window": 14}],
    "indicator.adx": [{"window": 2}, {"window": 14}],
    "indicator.aroon": [{"window": 2}, {"window": 25}],
    "indicator.parabolic_sar": [{}, {"acceleration": 0.05, "maximum": 0.3}],
    "indicator.ultimate_oscillator": [{}, {"short": 2, "medium": 3, "long": 4}],
    "indicator.tsi": [{}, {"long": 5, "short": 3, "signal": 1}],
    "indicator.obv": [{}],
    "indicator.accumulation_distribution": [{}],
    "indicator.chaikin_money_flow": [{"window": 2}, {"window": 20}],
    "indicator.mfi": [{"window": 2}, {"window": 14}],
    "indicator.force_index": [{"window": 1}, {"window": 13}],
    "indicator.ease_of_movement": [{}, {"window": 1, "volume_scale": 1.0}],
    "indicator.vwap": [{}, {"session_start_utc": "13:30"}],
    "indicator.vpt": [{}],
    "indicator.vortex": [{"window": 1}, {"window": 14}],
    "indicator.ulcer_index": [{"window": 2}, {"window": 14}],
    "indicator.schaff_trend_cycle": [{}, {"fast": 5, "slow": 12, "cycle": 4, "smooth1": 2, "smooth2": 4}],
    "indicator.rolling_std": [{"window": 2}, {"window": 20}],
    "indicator.zscore": [{"window": 2}, {"window": 20}],
    "indicator.rolling_min": [{"window": 1}, {"window": 20}],
    "indicator.rolling_max": [{"window": 1}, {"window": 20}],
    "indicator.linreg_slope": [{"window": 2}, {"window": 14}],
}


@lru_cache(maxsize=1)
def indicator_registry() -> OpRegistry:
    registry = OpRegistry()
    for info in pkgutil.iter_modules(nodes.indicators.__path__):
        registry.scan(importlib.import_module(f"nodes.indicators.{info.name}"))
    return registry


def indicator_ops() -> list[type[StreamOp]]:
    """Every built-in indicator op (``indicator.*``), in name order."""
    return [op for op in indicator_registry() if op.name.startswith("indicator.")]


def indicator_names() -> list[str]:
    return [op.name for op in indicator_ops()]


@lru_cache(maxsize=None)
def bars(instrument: str = "AAPL") -> dict[str, np.ndarray]:
    return read_bars(instrument)


def feeds(op: type[StreamOp], data: dict, fields: dict | None = None) -> list[np.ndarray]:
    """One array per input: the bar field named in ``fields``, else the input's own name (``x``: the close)."""
    fields = fields or {}
    return [np.ascontiguousarray(data[fields.get(name, "close" if name == "x" else name)], dtype=np.float64)
            for name, _, _ in op.flat_inputs()]


def run(name: str, params: dict | None = None, data: dict | None = None, target: str = "cpu",
        ts: np.ndarray | None = None, fields: dict | None = None) -> dict[str, np.ndarray]:
    """Drive indicator ``name`` over ``data`` (AAPL by default) on ``target``; one array per output port."""
    op = indicator_registry().get(name)
    data = bars() if data is None else data
    inputs = feeds(op, data, fields)
    context = op_context(op, len(inputs[0]), ts=ts)
    outputs = drive(op, op.Params.model_validate(params or {}), context, inputs, target)
    return dict(zip(op.outputs, outputs))


def assert_matches(ours: np.ndarray, reference: np.ndarray, what: str, rtol: float = 1e-9,
                   floor: float = 1e-12) -> float:
    """Same NaN mask, and every value within ``rtol`` relative of the reference; return the largest error.

    Values that cancel to about zero (an oscillator crossing 0, a running sum returning to 0) are compared
    with an absolute floor of ``floor`` times the series' largest magnitude: there only the summation order
    decides the residue, and TA-Lib's C build and numpy do not share it.
    """
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, f"{what}: shapes differ {ours.shape} vs {reference.shape}"
    ours_nan, ref_nan = np.isnan(ours), np.isnan(reference)
    differ = np.flatnonzero(ours_nan != ref_nan)
    assert not len(differ), (
        f"{what}: NaN masks differ at {len(differ)} index(es), first {differ[0]}: ours {ours[differ[0]]!r} vs "
        f"reference {reference[differ[0]]!r} (ours has {ours_nan.sum()} NaN, the reference {ref_nan.sum()})"
    )
    valid = ~ref_nan
    assert valid.sum() > 0, f"{what}: the reference has no values"
    a, b = ours[valid], reference[valid]
    atol = floor * float(np.max(np.abs(b)))
    error = np.abs(a - b)
    bad = np.flatnonzero(error > atol + rtol * np.abs(b))
    assert not len(bad), (
        f"{what}: {len(bad)} value(s) beyond rtol {rtol}, first at valid index {bad[0]}: {a[bad[0]]!r} vs "
        f"{b[bad[0]]!r}"
    )
    return float(np.max(error / np.maximum(np.abs(b), atol or 1e-300)))
