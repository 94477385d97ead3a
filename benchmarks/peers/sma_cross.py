"""SMA(10, 30) crossover: one workload, defined exactly, run by several engines side by side.

Standalone on purpose: it imports nothing from tickloom, only numpy + numba, and the peers
(vectorbt, backtesting.py) when they are importable. Run it from the separate benchmark venv
(see README.md beside this file):

    /work/benchvenv/bin/python /work/main/benchmarks/peers/sma_cross.py

The workload
------------
* Data: ``synthetic_bars(n, seed)`` -- 1-minute bars, a geometric random walk (see its docstring).
* Signals: SMA(fast) and SMA(slow) of close, simple means, NaN until the window is full.
  Cross up at bar i  <=>  fast[i-1] < slow[i-1] and fast[i] > slow[i]   (backtesting.py's ``crossover``);
  cross down mirrors it.  A bar where either side of that test is NaN is never a cross.
* Orders: on a cross up the target position is ``+units``, on a cross down ``-units`` (a reversal from
  +units to -units trades 2*units in one fill).  An order decided at bar i's close fills at bar i+1's
  open; an order decided on the last bar never fills.  Commission = ``commission * |qty| * fill price``.
* Accounting: start cash ``cash`` (1e6 -- size never limits); equity at every bar is
  cash + position * close[i]; positions still open at the end are *not* closed (marked at the last close).
* ``n_fills`` = number of bars on which the position changed (an entry from flat or a reversal),
  which equals vectorbt's order count and backtesting.py's number of trades (closed + still open).

Why the engines agree (and where they could not)
------------------------------------------------
* Commission: backtesting.py charges it at trade entry and again at trade exit, each on the unadjusted
  fill price.  A reversal there is "close 1 unit + open 1 unit" at the same open, i.e. 2*units*open*c --
  identical to one 2-unit fill here and in vectorbt (fees are a fraction of order value).
* Final bar: none of the three closes the open position (backtesting.py's ``finalize_trades=False``,
  the default) and none fills the order decided on the last bar, so final equity is the same marking.
* Warm-up: backtesting.py calls ``next()`` from bar 30 (1 + the index of the first non-NaN slow SMA);
  the earliest possible cross under the definition above is also bar 30.
* SMA arithmetic is the only source of difference.  The hand loop keeps running sums (add new,
  subtract old), pandas' rolling mean (used by the backtesting.py strategy) a compensated running sum,
  vectorbt's MA differences of one global cumulative sum.  Measured against an exact per-window sum on
  these bars: pandas <= 1e-15 relative, hand loop <= 5e-12 at 10M bars, vectorbt <= 4e-8 at 10M bars
  (the global cumsum reaches ~1e9 while the price wanders down to ~1).  A cross decided by a margin
  smaller than that error lands on a neighbouring bar.  At 10k and 100k bars no cross moves: fills are
  identical, the equity curves match bar by bar (vectorbt exactly, backtesting.py within 3e-9 $ from
  the order of its cash additions) and the final equities agree to ~1e-15 relative.  At 10M bars
  (seed 0) vectorbt moves one cross down by one bar (bar 8,857,945, where fast - slow = +1.3e-8 and
  vectorbt's MA gets -1.2e-8), so its final equity differs by ~0.007 $ (8e-9 relative) with the same
  fill count; the hand loop and pandas still match the exact SMA there.  ``main()`` prints the
  relative difference to the hand loop and exits 1 if fills differ or it exceeds 1e-9.
* vectorbt's own ``crossed_above`` differs from backtesting.py's ``crossover`` only at exact ties
  (below, equal, above counts as a cross there), so the vectorbt runner computes the crossover itself
  with the definition above instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

try:  # the hand loop needs numba; the script is useless without it
    import numba
except ImportError:  # pragma: no cover
    numba = None

FAST, SLOW, UNITS, CASH, COMMISSION = 10, 30, 1, 1e6, 0.001
T0_NS = 1_577_836_800 * 1_000_000_000  # 2020-01-01T00:00:00Z in ns
MINUTE_NS = 60 * 1_000_000_000


# --------------------------------------------------------------------------------------------- data
def synthetic_bars(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` one-minute OHLCV bars of a geometric random walk.

    * ``ts``: int64 ns UTC, 2020-01-01T00:00Z + i minutes.
    * ``close``: starts at exactly 100, then ``close[i] = close[i-1] * exp(N(0, 1e-3))``.
    * ``open[i] = close[i-1] * exp(N(0, 2e-4))`` (``open[0]`` uses 100 as the previous close).
    * ``high = max(open, close) * exp(|N(0, 5e-4)|)``, ``low = min(open, close) * exp(-|N(0, 5e-4)|)``,
      so high >= max(open, close) and low <= min(open, close).
    * ``volume``: lognormal around 1000, always > 0.
    All price/volume arrays are float64 and C-contiguous.
    """
    rng = np.random.default_rng(seed)
    logret = rng.normal(0.0, 1e-3, n)
    logret[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(logret))
    prev_close = np.empty(n)
    prev_close[0] = 100.0
    prev_close[1:] = close[:-1]
    open_ = prev_close * np.exp(rng.normal(0.0, 2e-4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 5e-4, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 5e-4, n)))
    volume = rng.lognormal(np.log(1000.0), 0.5, n)
    ts = T0_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


# ---------------------------------------------------------------------------------------- hand loop
if numba is not None:

    @numba.njit(nogil=True)  # no cache=True: keep __pycache__ out of the repo
    def _hand_loop_nb(open_, close, fast, slow, units, cash, commission):
        """The whole workload in one pass; the only allocation is the output equity array."""
        n = close.shape[0]
        equity = np.empty(n, dtype=np.float64)
        inv_fast = 1.0 / fast
        inv_slow = 1.0 / slow
        fsum = 0.0
        ssum = 0.0
        prev_f = np.nan
        prev_s = np.nan
        pos = 0.0          # position in units
        target = 0.0       # position wanted after the next fill
        pending = False    # an order decided at the previous close waits for this bar's open
        n_fills = 0
        for i in range(n):
            # 1) fill the order decided at bar i-1's close at bar i's open
            if pending:
                qty = target - pos
                if qty != 0.0:
                    px = open_[i]
                    cash -= qty * px + abs(qty) * px * commission
                    pos = target
                    n_fills += 1
                pending = False
            # 2) rolling sums -> SMAs at bar i's close (NaN until the window is full)
            c = close[i]
            fsum += c
            ssum += c
            if i >= fast:
                fsum -= close[i - fast]
            if i >= slow:
                ssum -= close[i - slow]
            f = fsum * inv_fast if i >= fast - 1 else np.nan
            s = ssum * inv_slow if i >= slow - 1 else np.nan
            # 3) crossover (backtesting.py's definition; comparisons with NaN are False)
            if prev_f < prev_s and f > s:
                target = units
                pending = True
            elif prev_f > prev_s and f < s:
                target = -units
                pending = True
            prev_f = f
            prev_s = s
            # 4) mark to market at the close
            equity[i] = cash + pos * c
        return equity[n - 1], n_fills, equity


def hand_loop(bars, fast=FAST, slow=SLOW, units=UNITS, cash=CASH, commission=COMMISSION):
    """-> (final_equity, n_fills, equity_array). One @numba.njit loop; the practical speed limit."""
    if numba is None:
        raise RuntimeError("numba is not installed")
    eq_last, n_fills, equity = _hand_loop_nb(
        bars["open"], bars["close"], int(fast), int(slow), float(units), float(cash), float(commission)
    )
    return float(eq_last), int(n_fills), equity


# ----------------------------------------------------------------------------------------- peers
def _crossovers(fast_ma: np.ndarray, slow_ma: np.ndarray):
    """Cross up / cross down per bar, backtesting.py's definition, NaN-safe (NaN compares False)."""
    up = np.zeros(fast_ma.shape[0], dtype=bool)
    down = np.zeros(fast_ma.shape[0], dtype=bool)
    with np.errstate(invalid="ignore"):
        up[1:] = (fast_ma[:-1] < slow_ma[:-1]) & (fast_ma[1:] > slow_ma[1:])
        down[1:] = (fast_ma[:-1] > slow_ma[:-1]) & (fast_ma[1:] < slow_ma[1:])
    return up, down


def _shift1(a: np.ndarray) -> np.ndarray:
    """Decided at bar i's close -> acted on at bar i+1 (the last bar's decision is dropped)."""
    out = np.zeros_like(a)
    out[1:] = a[:-1]
    return out


# Peers are imported lazily (each costs 0.5-2 s and hundreds of MiB), so a run of one engine -- e.g. the
# peak-RSS child processes below -- carries only what that engine needs.
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py draws a tqdm progress bar otherwise


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run_vectorbt(bars, fast=FAST, slow=SLOW, units=UNITS, cash=CASH, commission=COMMISSION):
    """-> (final_equity, n_fills): ``vbt.Portfolio.from_signals``, signals shifted one bar, price=open."""
    import pandas as pd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt

    # tz-naive (UTC by convention): with a tz-aware index vectorbt 1.2 / pandas 3 turn the index into an
    # object array of Timestamps in every shape check (np.asarray(index)) -- ~25x slower end to end.
    idx = pd.DatetimeIndex(bars["ts"].view("datetime64[ns]"))
    close = pd.Series(bars["close"], index=idx)
    open_ = pd.Series(bars["open"], index=idx)
    fast_ma = vbt.MA.run(close, fast, short_name="fast").ma.to_numpy()
    slow_ma = vbt.MA.run(close, slow, short_name="slow").ma.to_numpy()
    up, down = _crossovers(fast_ma, slow_ma)
    up, down = _shift1(up), _shift1(down)
    pf = vbt.Portfolio.from_signals(
        close,
        entries=up, exits=down, short_entries=down, short_exits=up,
        price=open_, size=float(units), size_type="amount", fees=commission,
        init_cash=cash, upon_opposite_entry="reverse", accumulate=False, freq="1min",
    )
    return float(pf.final_value()), int(pf.orders.count())


_BT = {}


def _bt_strategy():
    """backtesting.py's Strategy subclass, built on first use (so importing this file needs no peer)."""
    if "cls" not in _BT:
        import pandas as pd
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from backtesting import Backtest, Strategy
            from backtesting.lib import crossover

        def sma(values, n):
            return pd.Series(values).rolling(n).mean().to_numpy()

        class SmaCross(Strategy):
            fast = FAST
            slow = SLOW
            units = UNITS

            def init(self):
                self.fast_ma = self.I(sma, self.data.Close, self.fast)
                self.slow_ma = self.I(sma, self.data.Close, self.slow)

            def next(self):
                if crossover(self.fast_ma, self.slow_ma):
                    self.buy(size=self.units)
                elif crossover(self.slow_ma, self.fast_ma):
                    self.sell(size=self.units)

        _BT.update(cls=SmaCross, Backtest=Backtest, pd=pd)
    return _BT["cls"], _BT["Backtest"], _BT["pd"]


def run_backtesting(bars, fast=FAST, slow=SLOW, units=UNITS, cash=CASH, commission=COMMISSION):
    """-> (final_equity, n_fills): backtesting.py, exclusive_orders=True, trade_on_close=False.

    ``units`` must be an int >= 1 (backtesting.py reads a size in (0, 1) as a fraction of equity).
    """
    SmaCross, Backtest, pd = _bt_strategy()
    df = pd.DataFrame(
        {"Open": bars["open"], "High": bars["high"], "Low": bars["low"],
         "Close": bars["close"], "Volume": bars["volume"]},
        index=pd.DatetimeIndex(bars["ts"].view("datetime64[ns]")),
    )
    bt = Backtest(df, SmaCross, cash=cash, commission=commission,
                  exclusive_orders=True, trade_on_close=False, finalize_trades=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Some trades remain open at the end of backtest"
        stats = bt.run(fast=fast, slow=slow, units=int(units))
    strat = stats._strategy
    n_fills = len(strat.closed_trades) + len(strat.trades)
    return float(stats["Equity Final [$]"]), int(n_fills)


# ------------------------------------------------------------------------------------------ driver
ENGINES = {"hand_loop": hand_loop if numba is not None else None,
           "vectorbt": run_vectorbt if _have("vectorbt") else None,
           "backtesting": run_backtesting if _have("backtesting") else None}
MAX_N = {"backtesting": 100_000}  # ~130k bars/s: keep it to seconds


def _time(fn, bars, repeat=3, warmup=True):
    if warmup:  # numba compile / vectorbt's first-call caches; harmless for the others
        fn(synthetic_bars(2_000, 1))
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(bars)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _vm_hwm_mib() -> float:
    """Peak RSS of this process image in MiB. /proc's VmHWM, not getrusage's ru_maxrss: the latter is
    kept across fork + exec, so a child started by a big parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_child(engine: str, n: int) -> None:
    """Child mode: warm up on 2k bars, run ``engine`` once on ``n`` bars, print peak RSS."""
    fn = ENGINES[engine]
    fn(synthetic_bars(2_000, 1))
    bars = synthetic_bars(n, 0)
    rss_before = _vm_hwm_mib()
    t = time.perf_counter()
    out = fn(bars)
    dt = time.perf_counter() - t
    peak = _vm_hwm_mib()
    print(f"{engine:12s} n={n:>9,d}  one run {dt:7.3f} s ({n / dt / 1e6:7.2f} M bars/s)  "
          f"peak RSS {peak:5.0f} MiB (peak before the run, incl. imports + bars: {rss_before:.0f} MiB)  "
          f"final equity {out[0]:.6f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rss-n", type=int, default=1_000_000,
                    help="bars for the peak-RSS runs (fresh process per engine); 0 to skip")
    ap.add_argument("--_rss-child", nargs=2, metavar=("ENGINE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._rss_child:
        _peak_rss_child(args._rss_child[0], int(args._rss_child[1]))
        return 0

    import importlib.metadata as md
    versions = []
    for dist in ("numpy", "numba", "pandas", "vectorbt", "backtesting"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    print(f"python {sys.version.split()[0]};", ", ".join(versions))
    print(f"workload: SMA({FAST},{SLOW}) cross, units={UNITS}, cash={CASH:g}, commission={COMMISSION}, "
          f"next-open fills; time = median of 3 after a warm-up, bars dict -> final equity")
    rc = 0
    for n in args.sizes:
        bars = synthetic_bars(n, args.seed)
        print(f"\nn = {n:,d}")
        ref = None
        for name, fn in ENGINES.items():
            if fn is None:
                print(f"  {name:12s} not installed")
                continue
            if n > MAX_N.get(name, n):
                print(f"  {name:12s} skipped (capped at {MAX_N[name]:,d} bars)")
                continue
            dt, out = _time(fn, bars)
            eq, fills = out[0], out[1]
            if ref is None:
                ref = (eq, fills)
                diff = ""
            else:
                rel = abs(eq - ref[0]) / abs(ref[0])
                same = "same fills" if fills == ref[1] else f"FILLS DIFFER ({fills} vs {ref[1]})"
                diff = f"  vs hand loop: rel diff {rel:.1e}, {same}"
                if fills != ref[1] or rel > 1e-9:
                    rc = 1
            print(f"  {name:12s} {n / dt:>14,.0f} bars/s  ({dt * 1e3:9.3f} ms)  "
                  f"final equity {eq:.6f}  fills {fills}{diff}")
    if args.rss_n:
        print(f"\npeak RSS, fresh process per engine, {args.rss_n:,d} bars:")
        for name in ("hand_loop", "vectorbt"):
            if ENGINES[name] is None:
                continue
            sys.stdout.flush()
            subprocess.run([sys.executable, os.path.abspath(__file__), "--_rss-child", name,
                            str(args.rss_n), "--rss-n", "0"], check=False)
    return rc


if __name__ == "__main__":
    sys.exit(main())
