"""tickloom bar-backtest summary benchmark: trades, equity curve and stats of a recorded SMA-cross replay.

Run from the repository root with tickloom's dev venv:

    /work/venv/bin/python benchmarks/summarize.py                       # 10M bars (~389k fills)
    /work/venv/bin/python benchmarks/summarize.py --n 1000000 --repeat 5
    /work/venv/bin/python benchmarks/summarize.py --save /tmp/summary_a     # keep the outputs ...
    /work/venv/bin/python benchmarks/summarize.py --compare /tmp/summary_a  # ... and check a later run

What runs: the bars of ``benchmarks/peers/sma_cross.py`` (``synthetic_bars``: one-minute geometric random walk)
are written to Parquet, the SMA(10, 30) crossover spec of ``benchmarks/bar_backtest.py`` is loaded, compiled
and replayed with ``replay(plan, summarize=False)``, and the ``sim`` node's recorded frame is kept (cached as
Parquet in ``--cache-dir``, keyed by size and seed, so later runs skip the replay). Then
``nodes.backtest.result.summarize_bar_backtest(params, recorded)`` is timed: one untimed warm-up call (numba
kernels load from their on-disk cache), then the median of ``--repeat`` calls. A per-phase split is printed
from separate calls of ``trades_from_fills`` and ``compute_stats`` on the same inputs.

``--save DIR`` writes the trades (Parquet), the equity curve (Parquet) and the stats (JSON, NaN kept) of the
last call; ``--compare DIR`` checks the current outputs against such a directory: every trade and equity column
bit-identical (same dtypes, same row order; floats compared by their bit patterns) and the stats dict equal
key by key (NaN where NaN). It exits 1 on any difference.
"""

import argparse
import gc
import importlib.util
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recorded_frame(n: int, seed: int, cache_dir: Path) -> tuple[object, pl.DataFrame]:
    """The bar venue's params and its recorded frame for ``n`` synthetic bars (replayed once, then cached)."""
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    bench = _load("bar_backtest_bench", HERE / "bar_backtest.py")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"recorded_sim_{n}_{seed}.parquet"
    parquet = cache_dir / f"bars_{n}_{seed}.parquet"
    spec_path = cache_dir / f"spec_{n}_{seed}.yaml"
    if not parquet.exists():
        bench.write_parquet(bench.peer.synthetic_bars(n, seed), parquet)
    bench.write_spec(parquet, spec_path)
    plan = compile_plan(load_spec(spec_path))
    params = plan.graph.nodes["sim"].definition.params
    if cached.exists():
        return params, pl.read_parquet(cached)
    t = time.perf_counter()
    recorded = replay(plan, summarize=False).recorded["sim"]
    print(f"replayed {n:,d} bars in {time.perf_counter() - t:.1f} s; cached the record in {cached}", flush=True)
    recorded.write_parquet(cached)
    return params, recorded


def _median(fn, repeat: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def _stats_json(stats: dict) -> str:
    return json.dumps(stats, allow_nan=True, indent=1)


def _frames_identical(name: str, got: pl.DataFrame, want: pl.DataFrame) -> list[str]:
    if got.schema != want.schema:
        return [f"{name}: schema {got.schema} != {want.schema}"]
    if got.height != want.height:
        return [f"{name}: {got.height} rows != {want.height}"]
    problems = []
    for column in got.columns:
        a, b = got.get_column(column), want.get_column(column)
        if a.null_count() != b.null_count() or not (a.is_null() == b.is_null()).all():
            problems.append(f"{name}.{column}: nulls differ")
            continue
        if a.dtype == pl.Float64:
            same = np.array_equal(a.to_numpy().view(np.int64), b.to_numpy().view(np.int64))
        else:
            same = a.equals(b)
        if not same:
            problems.append(f"{name}.{column}: values differ")
    return problems


def _stats_identical(got: dict, want: dict) -> list[str]:
    if list(got) != list(want):
        return [f"stats keys differ: {list(got)} != {list(want)}"]
    problems = []
    for key in got:
        a, b = got[key], want[key]
        if type(a) is not type(b):
            problems.append(f"stats[{key!r}]: type {type(a).__name__} != {type(b).__name__}")
        elif isinstance(a, float) and math.isnan(a):
            if not math.isnan(b):
                problems.append(f"stats[{key!r}]: NaN != {b!r}")
        elif a != b:
            problems.append(f"stats[{key!r}]: {a!r} != {b!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="bars (default 10M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls; the median is reported")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "tickloom_summarize_bench")
    parser.add_argument("--save", type=Path, help="write the outputs of the last call here")
    parser.add_argument("--compare", type=Path, help="check the outputs against a --save directory")
    args = parser.parse_args(argv)

    from nodes.backtest.result import summarize_bar_backtest
    from nodes.backtest.stats import compute_stats
    from nodes.backtest.trades import trades_from_fills

    params, recorded = recorded_frame(args.n, args.seed, args.cache_dir)
    fills = int((recorded.get_column("fill_qty") != 0.0).sum())
    print(f"recorded frame: {recorded.height:,d} rows, {fills:,d} fills; params {params!r}", flush=True)

    t = time.perf_counter()
    summarize_bar_backtest(params, recorded)
    print(f"warm-up call: {time.perf_counter() - t:.3f} s", flush=True)

    total, times, result = _median(lambda: summarize_bar_backtest(params, recorded), args.repeat)
    print(f"summarize_bar_backtest: median {total:.3f} s of {args.repeat} "
          f"({', '.join(f'{x:.3f}' for x in times)}); {result.trades.height:,d} trades", flush=True)

    fill_at = "close" if params.fill == "close" else "next_open"
    costs = dict(commission=params.commission, commission_per_unit=params.commission_per_unit,
                 slippage_bps=params.slippage_bps)
    t_trades, _, _ = _median(
        lambda: trades_from_fills(recorded, fill_at=fill_at, close_at_end=params.close_at_end, **costs), args.repeat
    )
    marks = recorded.select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")
    t_stats, _, _ = _median(lambda: compute_stats(result.equity, result.trades, marks), args.repeat)
    print(f"  of which trades_from_fills {t_trades:.3f} s, compute_stats {t_stats:.3f} s, "
          f"equity curve + marks + rest {total - t_trades - t_stats:+.3f} s (medians)", flush=True)

    rc = 0
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        result.trades.write_parquet(args.save / "trades.parquet")
        result.equity.write_parquet(args.save / "equity.parquet")
        (args.save / "stats.json").write_text(_stats_json(result.stats))
        print(f"saved the outputs in {args.save}")
    if args.compare:
        want_stats = json.loads((args.compare / "stats.json").read_text())
        got_stats = json.loads(_stats_json(result.stats))  # the same JSON round trip as the saved one
        problems = (
            _frames_identical("trades", result.trades, pl.read_parquet(args.compare / "trades.parquet"))
            + _frames_identical("equity", result.equity, pl.read_parquet(args.compare / "equity.parquet"))
            + _stats_identical(got_stats, want_stats)
        )
        for problem in problems:
            print("DIFFERS: " + problem)
        print(f"compared with {args.compare}: {'identical' if not problems else f'{len(problems)} differences'}")
        rc = 1 if problems else 0
    return rc


if __name__ == "__main__":
    sys.exit(main())
