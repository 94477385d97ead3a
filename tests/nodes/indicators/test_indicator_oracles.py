"""Every indicator against an independent reference on real data (AAPL daily bars 2012–2014, 754 bars).

The reference is TA-Lib (the C library, through the ``ta-lib`` wheel) wherever TA-Lib defines the indicator,
else the ``ta`` package, else a composition of TA-Lib functions that the published definition names. Both are
test-only dependencies. Tolerance: 1e-9 relative, with an absolute floor of 1e-12 of the series' scale where a
value cancels to about zero (see ``assert_matches``); the NaN masks (the warm-up) must be identical.

Measured agreement is far tighter than the tolerance: most ops are bit-identical to TA-Lib; the rest differ in
the last bits because TA-Lib 0.8's C build fuses multiply-adds (FMA) in its recursions, which a Python/numba
step does not (e.g. RSI 1e-15, WMA/HMA 1e-12 after drift in their running sums, TSI 1e-13).
"""

import numpy as np
import pandas as pd
import pytest

from tests.nodes.indicators.support import assert_matches, bars, run

talib = pytest.importorskip("talib", reason="TA-Lib is a test-only oracle: pip install ta-lib==0.8.2")
ta = pytest.importorskip("ta", reason="the ta package is a test-only oracle: pip install ta")

B = bars("AAPL")
H, L, C, V = B["high"], B["low"], B["close"], B["volume"]


def _nan_where(reference: np.ndarray, count: int) -> np.ndarray:
    out = np.array(reference, dtype=np.float64, copy=True)
    out[:count] = np.nan
    return out


def _percent_b(upper, middle, lower):
    return (C - lower) / (upper - lower)  # StockCharts' %B over TA-Lib's bands


def _bandwidth(upper, middle, lower):
    return (upper - lower) / middle * 100.0  # StockCharts' BandWidth over TA-Lib's bands


def _ema_of_valid(series: np.ndarray, window: int) -> np.ndarray:
    out = np.full(len(series), np.nan)
    valid = ~np.isnan(series)
    out[valid] = talib.EMA(series[valid], window)
    return out


# (op, params, {port: reference}) — each reference computed independently of tickloom.
CASES = [
    *[("indicator.sma", {"window": w}, {"out": lambda w=w: talib.SMA(C, w)}) for w in (2, 10, 50)],
    *[("indicator.ema", {"window": w}, {"out": lambda w=w: talib.EMA(C, w)}) for w in (2, 10, 50)],
    *[("indicator.wma", {"window": w}, {"out": lambda w=w: talib.WMA(C, w)}) for w in (2, 10, 30)],
    *[("indicator.dema", {"window": w}, {"out": lambda w=w: talib.DEMA(C, w)}) for w in (2, 20)],
    *[("indicator.tema", {"window": w}, {"out": lambda w=w: talib.TEMA(C, w)}) for w in (2, 20)],
    *[("indicator.kama", {"window": w}, {"out": lambda w=w: talib.KAMA(C, w)}) for w in (2, 10, 30)],
    *[("indicator.hma", {"window": w}, {"out": lambda w=w: talib.HMA(C, w)}) for w in (2, 4, 9, 20)],
    ("indicator.hma", {"window": 16}, {  # Hull's definition composed from TA-Lib's WMA
        "out": lambda: talib.WMA(2.0 * talib.WMA(C, 8) - talib.WMA(C, 16), 4)}),
    *[("indicator.trix", {"window": w}, {"out": lambda w=w: talib.TRIX(C, w)}) for w in (2, 15)],
    *[("indicator.rsi", {"window": w}, {"out": lambda w=w: talib.RSI(C, w)}) for w in (2, 14, 30)],
    *[("indicator.stochastic", {"k_window": k, "k_smooth": s, "d_window": d}, {
        "k": lambda k=k, s=s, d=d: talib.STOCH(H, L, C, k, s, 0, d, 0)[0],
        "d": lambda k=k, s=s, d=d: talib.STOCH(H, L, C, k, s, 0, d, 0)[1]})
      for k, s, d in ((14, 3, 3), (5, 3, 3), (5, 1, 3), (14, 1, 1))],
    ("indicator.stochastic", {"k_window": 14, "k_smooth": 1, "d_window": 3}, {  # fast stochastic = STOCHF
        "k": lambda: talib.STOCHF(H, L, C, 14, 3, 0)[0], "d": lambda: talib.STOCHF(H, L, C, 14, 3, 0)[1]}),
    *[("indicator.stoch_rsi", {"rsi_window": r, "k_window": k, "d_window": d}, {
        "k": lambda r=r, k=k, d=d: talib.STOCHRSI(C, r, k, d, 0)[0],
        "d": lambda r=r, k=k, d=d: talib.STOCHRSI(C, r, k, d, 0)[1]})
      for r, k, d in ((14, 14, 3), (14, 5, 3), (7, 3, 1))],
    *[("indicator.williams_r", {"window": w}, {"out": lambda w=w: talib.WILLR(H, L, C, w)}) for w in (2, 14)],
    *[("indicator.cci", {"window": w}, {"out": lambda w=w: talib.CCI(H, L, C, w)}) for w in (2, 14, 20)],
    *[("indicator.roc", {"window": w}, {"out": lambda w=w: talib.ROC(C, w)}) for w in (1, 10)],
    *[("indicator.momentum", {"window": w}, {"out": lambda w=w: talib.MOM(C, w)}) for w in (1, 10)],
    *[("indicator.macd", {"fast": f, "slow": s, "signal": g}, {
        port: (lambda f=f, s=s, g=g, i=i: talib.MACD(C, f, s, g)[i]) for i, port in enumerate(("macd", "signal", "hist"))})
      for f, s, g in ((12, 26, 9), (3, 10, 1), (5, 35, 5))],
    *[("indicator.ppo", {"fast": f, "slow": s, "signal": 9, "ma": ma}, {
        "ppo": lambda f=f, s=s, m=m: talib.PPO(C, f, s, m),
        "signal": lambda f=f, s=s, m=m: _ema_of_valid(talib.PPO(C, f, s, m), 9),
        "hist": lambda f=f, s=s, m=m: talib.PPO(C, f, s, m) - _ema_of_valid(talib.PPO(C, f, s, m), 9)})
      for f, s in ((12, 26), (3, 10)) for ma, m in (("ema", 1), ("sma", 0))],
    *[("indicator.pvo", {"fast": f, "slow": s, "ma": ma}, {"pvo": lambda f=f, s=s, m=m: talib.PVO(V, f, s, m)})
      for f, s in ((12, 26), (3, 10)) for ma, m in (("ema", 1), ("sma", 0))],
    ("indicator.pvo", {}, {  # the PVO is the PPO of volume
        "pvo": lambda: talib.PPO(V, 12, 26, 1), "signal": lambda: _ema_of_valid(talib.PPO(V, 12, 26, 1), 9)}),
    *[("indicator.bollinger", {"window": w, "num_std": k}, {
        "upper": lambda w=w, k=k: talib.BBANDS(C, w, k, k, 0)[0],
        "middle": lambda w=w, k=k: talib.BBANDS(C, w, k, k, 0)[1],
        "lower": lambda w=w, k=k: talib.BBANDS(C, w, k, k, 0)[2],
        "percent_b": lambda w=w, k=k: _percent_b(*talib.BBANDS(C, w, k, k, 0)),
        "bandwidth": lambda w=w, k=k: _bandwidth(*talib.BBANDS(C, w, k, k, 0))})
      for w, k in ((20, 2.0), (10, 1.0))],
    ("indicator.bollinger", {"window": 5, "num_std": 1.5}, {  # %B of a 5-bar band: see the ta test below
        port: (lambda i=i: talib.BBANDS(C, 5, 1.5, 1.5, 0)[i]) for i, port in enumerate(("upper", "middle", "lower"))}),
    *[("indicator.keltner", {"window": w, "atr_window": a, "multiplier": k}, {
        port: (lambda w=w, a=a, k=k, i=i: talib.KC(H, L, C, w, a, k)[i]) for i, port in enumerate(("upper", "middle", "lower"))})
      for w, a, k in ((20, 10, 2.0), (5, 14, 1.5))],
    ("indicator.keltner", {"window": 20, "atr_window": 10, "center": "close"}, {  # StockCharts: EMA of close
        "middle": lambda: talib.EMA(C, 20),
        "upper": lambda: talib.EMA(C, 20) + 2.0 * _nan_where(
            np.concatenate([np.full(9, np.nan), talib.ATR(H[9:], L[9:], C[9:], 10)]), 19)}),
    *[("indicator.donchian", {"window": w}, {
        port: (lambda w=w, i=i: talib.DONCHIAN(H, L, w)[i]) for i, port in enumerate(("upper", "middle", "lower"))})
      for w in (2, 20)],
    *[("indicator.atr", {"window": w}, {"out": lambda w=w: talib.ATR(H, L, C, w)}) for w in (1, 14)],
    *[("indicator.natr", {"window": w}, {"out": lambda w=w: talib.NATR(H, L, C, w)}) for w in (2, 14)],
    *[("indicator.adx", {"window": w}, {
        "adx": lambda w=w: talib.ADX(H, L, C, w), "plus_di": lambda w=w: talib.PLUS_DI(H, L, C, w),
        "minus_di": lambda w=w: talib.MINUS_DI(H, L, C, w)}) for w in (2, 14, 20)],
    *[("indicator.aroon", {"window": w}, {
        "up": lambda w=w: talib.AROON(H, L, w)[1], "down": lambda w=w: talib.AROON(H, L, w)[0],
        "oscillator": lambda w=w: talib.AROONOSC(H, L, w)}) for w in (2, 14, 25)],
    *[("indicator.parabolic_sar", {"acceleration": a, "maximum": m}, {"out": lambda a=a, m=m: talib.SAR(H, L, a, m)})
      for a, m in ((0.02, 0.2), (0.05, 0.3), (0.2, 0.2))],
    *[("indicator.ultimate_oscillator", {"short": a, "medium": b, "long": c}, {
        "out": lambda a=a, b=b, c=c: talib.ULTOSC(H, L, C, a, b, c)}) for a, b, c in ((7, 14, 28), (2, 3, 4), (5, 10, 40))],
    *[("indicator.tsi", {"long": a, "short": b, "signal": 7}, {
        "tsi": lambda a=a, b=b: talib.TSI(C, a, b), "signal": lambda a=a, b=b: _ema_of_valid(talib.TSI(C, a, b), 7)})
      for a, b in ((25, 13), (5, 3))],
    ("indicator.tsi", {}, {  # the ta package seeds its EMAs with the first value: compare once that has decayed
        "tsi": lambda: (ta.momentum.TSIIndicator(pd.Series(C)).tsi().values, 400)}),
    ("indicator.obv", {}, {"out": lambda: talib.OBV(C, V)}),
    ("indicator.accumulation_distribution", {}, {"out": lambda: talib.AD(H, L, C, V)}),
    *[("indicator.chaikin_money_flow", {"window": w}, {"out": lambda w=w: talib.CMF(H, L, C, V, w)}) for w in (2, 20)],
    ("indicator.chaikin_money_flow", {"window": 20}, {
        "out": lambda: ta.volume.ChaikinMoneyFlowIndicator(pd.Series(H), pd.Series(L), pd.Series(C), pd.Series(V), 20)
        .chaikin_money_flow().values}),
    *[("indicator.mfi", {"window": w}, {"out": lambda w=w: talib.MFI(H, L, C, V, w)}) for w in (2, 14)],
    *[("indicator.force_index", {"window": w}, {"out": lambda w=w: talib.EFI(C, V, w)}) for w in (1, 2, 13)],
    ("indicator.force_index", {"window": 13}, {  # Elder's definition composed: EMA of (Δclose · volume)
        "out": lambda: np.concatenate([[np.nan], talib.EMA(np.diff(C) * V[1:], 13)])}),
    ("indicator.ease_of_movement", {"window": 14}, {
        "emv": lambda: ta.volume.EaseOfMovementIndicator(pd.Series(H), pd.Series(L), pd.Series(V), 14).ease_of_movement().values,
        "sma": lambda: ta.volume.EaseOfMovementIndicator(pd.Series(H), pd.Series(L), pd.Series(V), 14).sma_ease_of_movement().values}),
    ("indicator.vwap", {}, {  # daily bars: every bar is its own session, TA-Lib's VWAP of a one-bar session
        "out": lambda: np.array([talib.VWAP(H[i:i + 1], L[i:i + 1], C[i:i + 1], V[i:i + 1])[0] for i in range(len(C))])}),
    ("indicator.vpt", {}, {"out": lambda: talib.PVT(C, V)}),
    *[("indicator.vortex", {"window": w}, {
        "plus": lambda w=w: talib.VORTEX(H, L, C, w)[0], "minus": lambda w=w: talib.VORTEX(H, L, C, w)[1]}) for w in (2, 14)],
    ("indicator.vortex", {"window": 14}, {
        "plus": lambda: ta.trend.VortexIndicator(pd.Series(H), pd.Series(L), pd.Series(C), 14).vortex_indicator_pos().values,
        "minus": lambda: ta.trend.VortexIndicator(pd.Series(H), pd.Series(L), pd.Series(C), 14).vortex_indicator_neg().values}),
    *[("indicator.ulcer_index", {"window": w}, {  # ta starts with a partial-window max: compare from 2(n−1) on
        "out": lambda w=w: _nan_where(ta.volatility.UlcerIndex(pd.Series(C), w).ulcer_index().values, 2 * (w - 1))})
      for w in (2, 14)],
    ("indicator.schaff_trend_cycle", {}, {"out": lambda: ta.trend.STCIndicator(pd.Series(C)).stc().values}),
    ("indicator.schaff_trend_cycle", {"fast": 5, "slow": 12, "cycle": 4, "smooth1": 2, "smooth2": 4}, {
        "out": lambda: ta.trend.STCIndicator(pd.Series(C), 12, 5, 4, 2, 4).stc().values}),
    *[("indicator.rolling_std", {"window": w}, {"out": lambda w=w: talib.STDDEV(C, w, 1)}) for w in (5, 20, 50)],
    *[("indicator.zscore", {"window": w}, {"out": lambda w=w: (C - talib.SMA(C, w)) / talib.STDDEV(C, w, 1)})
      for w in (5, 20)],
    *[("indicator.rolling_max", {"window": w}, {"out": lambda w=w: talib.MAX(C, w)}) for w in (2, 20, 100)],
    *[("indicator.rolling_min", {"window": w}, {"out": lambda w=w: talib.MIN(C, w)}) for w in (2, 20, 100)],
    *[("indicator.linreg_slope", {"window": w}, {"out": lambda w=w: talib.LINEARREG_SLOPE(C, w)}) for w in (2, 14, 30)],
]


@pytest.mark.parametrize("name, params, references", CASES, ids=[f"{n[10:]}-{p}" for n, p, _ in CASES])
def test_matches_reference_on_aapl(name, params, references):
    outputs = run(name, params)
    for port, reference in references.items():
        expected = reference()
        start = 0
        if isinstance(expected, tuple):  # (reference, first index to compare): a reference warmed up differently
            expected, start = expected
        assert_matches(outputs[port][start:], expected[start:], f"{name} {params} port {port!r}")


@pytest.mark.parametrize("window, num_std", [(20, 2.0), (5, 1.5)])
def test_bollinger_percent_b_and_bandwidth_match_ta(window, num_std):
    """%B and BandWidth as the ``ta`` package computes them (pandas' rolling std, not TA-Lib's E[x²] − E[x]²).

    The two variance formulas round differently (TA-Lib's cancels about log10(mean²/var) digits: ~6 for a
    5-bar window of a $500 stock), and %B near 0 amplifies that, so this check is 1e-6 relative.
    """
    ours = run("indicator.bollinger", {"window": window, "num_std": num_std})
    bands = ta.volatility.BollingerBands(pd.Series(C), window, num_std)
    assert_matches(ours["percent_b"], bands.bollinger_pband().values, "percent_b vs ta", rtol=1e-6, floor=1e-9)
    assert_matches(ours["bandwidth"], bands.bollinger_wband().values, "bandwidth vs ta", rtol=1e-6, floor=1e-9)


def test_every_indicator_has_a_reference_case():
    from tests.nodes.indicators.support import indicator_names

    covered = {name for name, _, _ in CASES}
    missing = [name for name in indicator_names() if name not in covered]
    assert not missing, f"indicators without an oracle case: {missing}"
