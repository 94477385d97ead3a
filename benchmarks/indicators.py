"""Benchmark every indicator: numba placement vs cpu placement vs TA-Lib, on synthetic bars.

    python benchmarks/indicators.py [--bars 10000000] [--cpu-bars 100000] [--only rsi,macd]

What is measured:
- numba: the op's jitted ``step`` (``step_function(step, "numba")``) driven by a jitted loop over the arrays
  (one generated loop per input/output arity; the step is inlined into it). The same step a fused engine
  segment calls, without the engine's per-event bookkeeping. Compile time is excluded (one warm-up run).
- cpu: the same ``step`` as plain Python in a Python loop, on ``--cpu-bars`` bars, extrapolated linearly to
  ``--bars`` (said so in the table).
- TA-Lib: the TA-Lib function on the same arrays (best of three), where TA-Lib has the indicator.
Throughput is values per second (bars in / seconds). ``numba/TA-Lib`` is numba's time over TA-Lib's: below 2
meets the goal of being within 2× of TA-Lib. TA-Lib is a test/benchmark-only dependency (pip install ta-lib).
"""

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nodes.indicators  # noqa: E402
from hardware.targets import step_function  # noqa: E402
from nodes.contract import OpRegistry  # noqa: E402

try:
    import talib
except ImportError:  # the benchmark still runs, without the TA-Lib column
    talib = None

# op → (params for both sides, TA-Lib call over the bar dict)
CASES = {
    "indicator.sma": ({"window": 30}, lambda b: talib.SMA(b["close"], 30)),
    "indicator.ema": ({"window": 30}, lambda b: talib.EMA(b["close"], 30)),
    "indicator.wma": ({"window": 30}, lambda b: talib.WMA(b["close"], 30)),
    "indicator.dema": ({"window": 30}, lambda b: talib.DEMA(b["close"], 30)),
    "indicator.tema": ({"window": 30}, lambda b: talib.TEMA(b["close"], 30)),
    "indicator.kama": ({"window": 10}, lambda b: talib.KAMA(b["close"], 10)),
    "indicator.hma": ({"window": 20}, lambda b: talib.HMA(b["close"], 20)),
    "indicator.trix": ({"window": 15}, lambda b: talib.TRIX(b["close"], 15)),
    "indicator.rsi": ({"window": 14}, lambda b: talib.RSI(b["close"], 14)),
    "indicator.stochastic": ({}, lambda b: talib.STOCH(b["high"], b["low"], b["close"], 14, 3, 0, 3, 0)),
    "indicator.stoch_rsi": ({}, lambda b: talib.STOCHRSI(b["close"], 14, 14, 3, 0)),
    "indicator.williams_r": ({"window": 14}, lambda b: talib.WILLR(b["high"], b["low"], b["close"], 14)),
    "indicator.cci": ({"window": 20}, lambda b: talib.CCI(b["high"], b["low"], b["close"], 20)),
    "indicator.roc": ({"window": 10}, lambda b: talib.ROC(b["close"], 10)),
    "indicator.momentum": ({"window": 10}, lambda b: talib.MOM(b["close"], 10)),
    "indicator.macd": ({}, lambda b: talib.MACD(b["close"], 12, 26, 9)),
    "indicator.ppo": ({}, lambda b: talib.PPO(b["close"], 12, 26, 1)),
    "indicator.pvo": ({}, lambda b: talib.PVO(b["volume"], 12, 26, 1)),
    "indicator.bollinger": ({}, lambda b: talib.BBANDS(b["close"], 20, 2.0, 2.0, 0)),
    "indicator.keltner": ({}, lambda b: talib.KC(b["high"], b["low"], b["close"], 20, 10, 2.0)),
    "indicator.donchian": ({"window": 20}, lambda b: talib.DONCHIAN(b["high"], b["low"], 20)),
    "indicator.atr": ({"window": 14}, lambda b: talib.ATR(b["high"], b["low"], b["close"], 14)),
    "indicator.natr": ({"window": 14}, lambda b: talib.NATR(b["high"], b["low"], b["close"], 14)),
    "indicator.adx": ({"window": 14}, lambda b: (talib.ADX(b["high"], b["low"], b["close"], 14),
                                                 talib.PLUS_DI(b["high"], b["low"], b["close"], 14),
                                                 talib.MINUS_DI(b["high"], b["low"], b["close"], 14))),
    "indicator.aroon": ({"window": 25}, lambda b: (talib.AROON(b["high"], b["low"], 25),
                                                   talib.AROONOSC(b["high"], b["low"], 25))),
    "indicator.parabolic_sar": ({}, lambda b: talib.SAR(b["high"], b["low"], 0.02, 0.2)),
    "indicator.ultimate_oscillator": ({}, lambda b: talib.ULTOSC(b["high"], b["low"], b["close"], 7, 14, 28)),
    "indicator.tsi": ({}, lambda b: talib.TSI(b["close"], 25, 13)),
    "indicator.obv": ({}, lambda b: talib.OBV(b["close"], b["volume"])),
    "indicator.accumulation_distribution": ({}, lambda b: talib.AD(b["high"], b["low"], b["close"], b["volume"])),
    "indicator.chaikin_money_flow": ({"window": 20}, lambda b: talib.CMF(b["high"], b["low"], b["close"], b["volume"], 20)),
    "indicator.mfi": ({"window": 14}, lambda b: talib.MFI(b["high"], b["low"], b["close"], b["volume"], 14)),
    "indicator.force_index": ({"window": 13}, lambda b: talib.EFI(b["close"], b["volume"], 13)),
    "indicator.ease_of_movement": ({}, None),
    "indicator.vwap": ({}, None),  # TA-Lib's VWAP is not session-anchored
    "indicator.vpt": ({}, lambda b: talib.PVT(b["close"], b["volume"])),
    "indicator.vortex": ({"window": 14}, lambda b: talib.VORTEX(b["high"], b["low"], b["close"], 14)),
    "indicator.ulcer_index": ({"window": 14}, None),
    "indicator.schaff_trend_cycle": ({}, None),
    "indicator.rolling_std": ({"window": 20}, lambda b: talib.STDDEV(b["close"], 20, 1)),
    "indicator.zscore": ({"window": 20}, None),
    "indicator.rolling_min": ({"window": 20}, lambda b: talib.MIN(b["close"], 20)),
    "indicator.rolling_max": ({"window": 20}, lambda b: talib.MAX(b["close"], 20)),
    "indicator.linreg_slope": ({"window": 14}, lambda b: talib.LINEARREG_SLOPE(b["close"], 14)),
}


def synthetic_bars(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """A random-walk OHLCV series with minute timestamps (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.0008, n)) * close
    return {
        "open": open_, "close": close,
        "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
        "volume": rng.integers(100, 10_000, n).astype(np.float64),
        "ts_event": np.arange(n, dtype=np.int64) * 60_000_000_000,
    }


_drivers: dict[tuple[int, int], object] = {}


def driver(n_args: int, n_out: int):
    """A jitted loop ``(step, c, s, *columns, *outs)`` calling the step per event (generated per arity)."""
    key = (n_args, n_out)
    if key not in _drivers:
        cols = [f"a{j}" for j in range(n_args)]
        outs = [f"o{j}" for j in range(n_out)]
        lines = [f"def drive(step, c, s, {', '.join(cols + outs)}):",
                 f"    for i in range({cols[0]}.shape[0]):",
                 f"        r = step(c, s, {', '.join(f'{a}[i]' for a in cols)})",
                 "        s = r[0]"]
        lines += [f"        {o}[i] = r[{j + 1}]" for j, o in enumerate(outs)]
        lines.append("    return s")
        scope: dict = {}
        exec("\n".join(lines), scope)
        _drivers[key] = numba.njit(scope["drive"])
    return _drivers[key]


def columns(op, bars: dict, n: int) -> list[np.ndarray]:
    cols = [bars[name][:n] for name in op.context]
    cols += [bars["close" if name == "x" else name][:n] for name, _, _ in op.flat_inputs()]
    return [np.ascontiguousarray(c) for c in cols]


def time_numba(op, params, bars: dict, n: int) -> float:
    c = tuple(op.constants(params))
    cols = columns(op, bars, n)
    outs = [np.empty(n) for _ in op.outputs]
    loop = driver(len(cols), len(outs))
    step = step_function(op.step, "numba")
    loop(step, c, op.init(c, 1), *[x[:1000] for x in cols], *[o[:1000] for o in outs])  # compile
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        loop(step, c, op.init(c, 1), *cols, *outs)
        best = min(best, time.perf_counter() - start)
    return best


def time_cpu(op, params, bars: dict, n: int) -> float:
    c = tuple(op.constants(params))
    cols = columns(op, bars, n)
    s = op.init(c, 1)
    step = op.step
    start = time.perf_counter()
    for i in range(n):
        s = step(c, s, *[x[i] for x in cols])[0]
    return time.perf_counter() - start


def time_talib(call, bars: dict) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        call(bars)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=10_000_000)
    parser.add_argument("--cpu-bars", type=int, default=100_000)
    parser.add_argument("--only", default="", help="comma-separated op names without 'indicator.'")
    args = parser.parse_args()
    registry = OpRegistry()
    for info in pkgutil.iter_modules(nodes.indicators.__path__):
        registry.scan(importlib.import_module(f"nodes.indicators.{info.name}"))
    wanted = {f"indicator.{n}" for n in args.only.split(",") if n}
    bars = synthetic_bars(args.bars)
    print(f"{args.bars:,} synthetic bars; numba: jitted step in a jitted loop; cpu: Python loop on "
          f"{args.cpu_bars:,} bars extrapolated; TA-Lib {getattr(talib, '__version__', 'absent')}; numba {numba.__version__}")
    print(f"{'indicator':32s} {'numba Mv/s':>11s} {'cpu Mv/s':>9s} {'TA-Lib Mv/s':>12s} {'numba/TA-Lib':>13s}")
    ratios = []
    for name, (raw, call) in CASES.items():
        if wanted and name not in wanted:
            continue
        op = registry.get(name)
        params = op.Params.model_validate(raw)
        t_numba = time_numba(op, params, bars, args.bars)
        t_cpu = time_cpu(op, params, bars, min(args.cpu_bars, args.bars)) * args.bars / min(args.cpu_bars, args.bars)
        t_talib = time_talib(call, bars) if (talib is not None and call is not None) else float("nan")
        ratio = t_numba / t_talib
        if ratio == ratio:
            ratios.append(ratio)
        rate = lambda t: args.bars / t / 1e6 if t == t else float("nan")  # noqa: E731
        print(f"{name[10:]:32s} {rate(t_numba):11.1f} {rate(t_cpu):9.2f} {rate(t_talib):12.1f} {ratio:13.2f}")
    if ratios:
        print(f"numba/TA-Lib time ratio: median {np.median(ratios):.2f}, worst {max(ratios):.2f}, "
              f"{sum(r <= 2.0 for r in ratios)}/{len(ratios)} within 2x")


if __name__ == "__main__":
    main()
