"""Walk-forward: per fold, sweep the params in sample, pick the best, and score that choice out of sample.

    tickloom walkforward specs/strategies/sma_cross.yaml --grid fast=5:30:5 --grid slow=20:100:20 \\
        --where "fast < slow" --train 252 --test 63 [--step 63] [--anchored] [--warmup N]

Windows are counted in **bars**: the distinct ``ts_recv`` of the spec's sources (for daily bars, trading days;
with several instruments, the distinct timestamps). With ``n`` bars, fold k (from 0) tests on bars
``[train + k·step, train + k·step + test)`` and trains on the ``train`` bars before them (rolling) or on every
bar from the first (``anchored``). ``step`` defaults to ``test``; it may be larger (gaps between test windows)
but not smaller: test windows never overlap, so their out-of-sample results can be chained. Only whole test
windows are used; bars after the last one are left out (the result says how many).

No look-ahead. Every run is a ``TimeWindow`` run (``pipelines/time_window.py``): an in-sample run sees no event
at or after its window's end (the test window's start), an out-of-sample run none at or after its own end.
Choosing the params uses in-sample stats only.

Warm-up. Each run is fed the ``warmup`` bars (default: ``train``) before its window, so indicators are warm
when it opens, and starts its account flat with the starting cash at the window start; trades and stats cover
the window only. Out of sample with the default, the warm-up is exactly the fold's training window. The first
training window has no bars before it and starts cold; ``--warmup 0`` starts every window cold.

Results: one row per fold (its windows, the chosen params, every numeric in-sample stat as ``IS <stat>`` and
out-of-sample stat as ``OOS <stat>``), every in-sample combination of every fold, and the out-of-sample equity
curves chained into one: each fold starts with the previous fold's final equity (its equity, and its trades'
size, pnl and commission, are scaled by that capital over the starting cash), and that curve's statistics
are computed on their own: the walk-forward's out-of-sample stats.

Ties and NaN: the best combination is the highest metric (lowest with ``minimize``); NaN ranks last; ties go to
the first in grid order; a fold where every metric is NaN takes the first combination and says so in
``warnings``.
"""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nodes.backtest.stats import compute_stats
from nodes.errors import SpecError
from pipelines.spec import load_spec
from pipelines.sweep import (
    DEFAULT_METRIC,
    Executor,
    GridAxis,
    JobResult,
    RunJob,
    SerialExecutor,
    Where,
    check_metric,
    combinations,
    default_output_dir,
    grid_axes,
    json_safe,
    numeric_stat_names,
    results_table,
    run_job,
    set_options,
)
from pipelines.time_window import TimeWindow, event_times


@dataclass(frozen=True)
class Fold:
    """One fold's windows as bar indices, half-open: train ``[train_start, train_end)``, test ``[test_start,
    test_end)``."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def train_window(self, times: np.ndarray, warmup_bars: int) -> TimeWindow:
        return _window(times, self.train_start, self.train_end, warmup_bars)

    def test_window(self, times: np.ndarray, warmup_bars: int) -> TimeWindow:
        return _window(times, self.test_start, self.test_end, warmup_bars)


def plan_folds(n_bars: int, train_bars: int, test_bars: int, step_bars: int | None = None,
               anchored: bool = False) -> list[Fold]:
    """The folds over ``n_bars`` bars (see the module docstring).

    Raises:
        SpecError: a count below 1, ``step_bars < test_bars`` (test windows would overlap), or fewer bars
            than one training plus one test window.

    Example:
        >>> [(f.train_start, f.train_end, f.test_end) for f in plan_folds(10, 4, 2)]
        [(0, 4, 6), (2, 6, 8), (4, 8, 10)]
        >>> [(f.train_start, f.train_end) for f in plan_folds(10, 4, 3, anchored=True)]
        [(0, 4), (0, 7)]
    """
    step_bars = test_bars if step_bars is None else step_bars
    for name, value in (("--train", train_bars), ("--test", test_bars), ("--step", step_bars)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise SpecError.at(None, f"{name} must be a whole number of bars >= 1, got {value!r}")
    if step_bars < test_bars:
        raise SpecError.at(None, f"--step ({step_bars}) must be >= --test ({test_bars}): test windows would overlap "
                                 "and their out-of-sample results could not be chained")
    if train_bars + test_bars > n_bars:
        raise SpecError.at(None, f"the data has {n_bars} bars, fewer than --train {train_bars} + --test {test_bars}")
    folds = []
    test_start = train_bars
    while test_start + test_bars <= n_bars:
        folds.append(Fold(len(folds), 0 if anchored else test_start - train_bars, test_start, test_start,
                          test_start + test_bars))
        test_start += step_bars
    return folds


def _window(times: np.ndarray, start: int, end: int, warmup_bars: int) -> TimeWindow:
    end_ns = int(times[end]) if end < len(times) else int(times[-1]) + 1
    warmup_start = max(start - warmup_bars, 0)
    return TimeWindow(int(times[start]), end_ns, int(times[warmup_start]) if warmup_start < start else None)


@dataclass
class WalkForwardResult:
    """Every fold, every in-sample combination, and the chained out-of-sample curve with its own stats."""

    spec_name: str
    spec_hash: str
    axes: list[GridAxis]
    metric: str
    minimize: bool
    folds: pl.DataFrame  # one row per fold
    in_sample: pl.DataFrame  # every combination of every fold, with a ``fold`` column
    oos_equity: pl.DataFrame  # ts, equity, fold
    oos_trades: pl.DataFrame
    oos_marks: pl.DataFrame  # ts, instrument, mark_price over the test windows
    oos_stats: dict[str, Any]
    settings: dict[str, Any]  # train, test, step, anchored, warmup, where, bars, bars left out
    warnings: list[str] = field(default_factory=list)

    def plot(self):
        """The chained out-of-sample equity and drawdown, a dotted line at each fold's start."""
        from nodes.backtest.plots import equity_drawdown_figure

        starts = self.folds["test_start_ns"].to_list()
        return equity_drawdown_figure(self.oos_equity, title=f"{self.spec_name}: out-of-sample walk-forward",
                                      boundaries_ns=starts[1:])


def run_walkforward(
    path: str | Path,
    grid: dict | list[str],
    *,
    train_bars: int,
    test_bars: int,
    step_bars: int | None = None,
    anchored: bool = False,
    warmup_bars: int | None = None,
    sets: list[str] | None = None,
    places: list[str] | None = None,
    where: str | None = None,
    metric: str = DEFAULT_METRIC,
    minimize: bool = False,
    executor: Executor | None = None,
) -> WalkForwardResult:
    """Walk forward over the spec at ``path`` (see the module docstring for the windows and the rules).

    Raises:
        SpecError: the spec, the grid, ``where``, ``metric`` or the window sizes are invalid.
        DataQualityError: a source holds bad data.
    """
    sets, places = list(sets or []), list(places or [])
    spec = load_spec(path, sets=sets, places=places)
    params = dict(spec.model.params)
    axes = grid_axes(grid, params)
    if not axes:
        raise SpecError.at(None, "a walk-forward needs at least one --grid name=values to choose from")
    check_metric(metric)
    warmup_bars = train_bars if warmup_bars is None else warmup_bars
    if not isinstance(warmup_bars, (int, np.integer)) or warmup_bars < 0:
        raise SpecError.at(None, f"--warmup must be a whole number of bars >= 0, got {warmup_bars!r}")
    where_filter = Where(where, params) if where else None
    chosen = [c for c in combinations(axes) if where_filter is None or where_filter({**params, **c})]
    if not chosen:
        raise SpecError.at(None, f"--where {where!r} leaves no combination of the grid to choose from")
    times = event_times(spec)
    folds = plan_folds(len(times), train_bars, test_bars, step_bars, anchored)
    executor = executor or SerialExecutor()
    param_names = [a.name for a in axes] + [p for p in params if p not in {a.name for a in axes}]

    in_sample_jobs = [RunJob(str(path), tuple(sets + set_options(c)), tuple(places), f.train_window(times, warmup_bars))
                      for f in folds for c in chosen]
    in_sample_results = executor.map(run_job, in_sample_jobs)
    _raise_failed(in_sample_jobs, in_sample_results)
    warnings, picks, tables = [], [], []
    for fold in folds:
        results = in_sample_results[fold.index * len(chosen):(fold.index + 1) * len(chosen)]
        table = results_table([{**params, **c} for c in chosen], results, param_names)
        ranked_index = _best_index(table, metric, minimize)
        if table[metric].fill_nan(None).null_count() == table.height:
            warnings.append(f"fold {fold.index}: {metric} is NaN for every combination in sample; "
                            "took the first combination of the grid")
        picks.append((chosen[ranked_index], results[ranked_index]))
        tables.append(table.with_columns(pl.lit(fold.index).alias("fold"), pl.lit(ranked_index).alias("rank_index"))
                      .with_columns((pl.int_range(pl.len()) == ranked_index).alias("chosen")))
    oos_jobs = [RunJob(str(path), tuple(sets + set_options(pick)), tuple(places), f.test_window(times, warmup_bars),
                       frames=True) for f, (pick, _) in zip(folds, picks)]
    oos_results = executor.map(run_job, oos_jobs)
    _raise_failed(oos_jobs, oos_results)

    fold_rows = [_fold_row(f, times, pick, is_result, oos) for f, (pick, is_result), oos in zip(folds, picks, oos_results)]
    equity, trades, marks = _chain(oos_results)
    oos_stats = compute_stats(equity, trades, marks)
    in_sample = pl.concat(tables).drop("rank_index")
    in_sample = in_sample.select("fold", *[c for c in in_sample.columns if c != "fold"])
    settings = {"train_bars": train_bars, "test_bars": test_bars, "step_bars": step_bars or test_bars,
                "anchored": anchored, "warmup_bars": warmup_bars, "where": where, "bars": len(times),
                "bars_left_out": len(times) - folds[-1].test_end, "combinations": len(chosen),
                "grid": {a.name: list(a.values) for a in axes}}
    return WalkForwardResult(spec.name, spec.spec_hash, axes, metric, minimize, pl.DataFrame(fold_rows), in_sample,
                             equity, trades, marks, oos_stats, settings, warnings)


def _best_index(table: pl.DataFrame, metric: str, minimize: bool) -> int:
    ranked = (table.with_row_index("_row")
              .sort(pl.col(metric).fill_nan(None), descending=not minimize, nulls_last=True, maintain_order=True))
    return int(ranked["_row"][0])


def _raise_failed(jobs: list[RunJob], results: list[JobResult]) -> None:
    for job, result in zip(jobs, results):
        if result.error is not None:
            raise SpecError.at(None, f"run with {' '.join(job.sets)} on {job.window}: {result.error}")


def _fold_row(fold: Fold, times: np.ndarray, pick: dict, is_result: JobResult, oos: JobResult) -> dict:
    row: dict[str, Any] = {"fold": fold.index}
    for name, start, end in (("train", fold.train_start, fold.train_end), ("test", fold.test_start, fold.test_end)):
        row[f"{name}_start_ns"] = int(times[start])
        row[f"{name}_end_ns"] = int(times[end - 1])  # the window's last bar (windows are half-open on bars)
        row[f"{name}_bars"] = end - start
    row.update(pick)
    for prefix, result in (("IS", is_result), ("OOS", oos)):
        for name in numeric_stat_names():
            value = result.stats.get(name)
            row[f"{prefix} {name}"] = int(value) if name == "# Trades" else math.nan if value is None else float(value)
    return row


def _chain(results: list[JobResult]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Chain the folds' out-of-sample equity: each fold starts from the previous one's final equity."""
    equities, trades = [], []
    capital = None
    for fold, result in enumerate(results):
        capital = result.start_equity if capital is None else capital
        factor = capital / result.start_equity
        scaled = result.equity.select("ts", pl.col("equity") * factor).with_columns(pl.lit(fold).alias("fold"))
        equities.append(scaled)
        if result.trades.height:
            trades.append(result.trades.with_columns([pl.col(c) * factor for c in ("size", "pnl", "commission")])
                          .with_columns(pl.lit(fold).alias("fold")))
        capital = float(scaled["equity"][-1])
    equity = pl.concat(equities)
    trade_frame = pl.concat(trades) if trades else results[0].trades.with_columns(pl.lit(0).alias("fold")).clear()
    marks = pl.concat([r.marks for r in results])
    return equity, trade_frame, marks


def write_walkforward(result: WalkForwardResult, out_dir: str | Path | None = None) -> list[Path]:
    """Write the walk-forward folder: ``folds.parquet``, ``in_sample.parquet``, ``oos_equity.parquet``,
    ``oos_trades.parquet``, ``oos_marks.parquet``, ``oos_stats.json``, ``walkforward.json`` (settings, spec,
    warnings), ``walkforward.png`` and ``report.html`` (the out-of-sample report with every fold). Returns them."""
    from nodes.backtest.plots import png_bytes

    out = Path(out_dir) if out_dir else default_output_dir(result.spec_name, result.spec_hash, "walkforward")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in (("folds", result.folds), ("in_sample", result.in_sample), ("oos_equity", result.oos_equity),
                        ("oos_trades", result.oos_trades), ("oos_marks", result.oos_marks)):
        frame.write_parquet(out / f"{name}.parquet")
        files.append(out / f"{name}.parquet")
    (out / "oos_stats.json").write_text(json.dumps(json_safe(result.oos_stats), indent=2))
    meta = {"spec": result.spec_name, "spec_hash": result.spec_hash, "metric": result.metric,
            "minimize": result.minimize, **result.settings, "warnings": result.warnings}
    (out / "walkforward.json").write_text(json.dumps(json_safe(meta), indent=2, default=str))
    (out / "walkforward.png").write_bytes(png_bytes(result.plot()))
    files += [out / "oos_stats.json", out / "walkforward.json", out / "walkforward.png"]
    files.append(write_walkforward_report(out))
    return files


def write_walkforward_report(out_dir: str | Path) -> Path:
    """Render ``report.html`` of a walk-forward folder from its files (no re-run).

    Raises:
        DataQualityError: ``out_dir`` has no ``walkforward.json``.
    """
    from nodes.backtest.html_report import REPORT_FILE, ReportData, render_html_report
    from nodes.errors import DataQualityError

    out = Path(out_dir)
    if not (out / "walkforward.json").is_file():
        raise DataQualityError(f"{out} is not a walk-forward folder: it has no walkforward.json")
    meta = json.loads((out / "walkforward.json").read_text())
    folds = pl.read_parquet(out / "folds.parquet")
    stats = json.loads((out / "oos_stats.json").read_text())
    header = {
        "spec": meta["spec"], "spec hash": meta["spec_hash"],
        "windows": f"train {meta['train_bars']} bars{' (anchored)' if meta['anchored'] else ''}, test "
                   f"{meta['test_bars']}, step {meta['step_bars']}, warm-up {meta['warmup_bars']} bars",
        "choice": f"{'lowest' if meta['minimize'] else 'highest'} in-sample {meta['metric']} over "
                  f"{meta['combinations']} combinations" + (f" where {meta['where']}" if meta.get("where") else ""),
        "bars": f"{meta['bars']:,} ({meta['bars_left_out']:,} after the last test window left out)",
        "folder": out.resolve().name,
    }
    data = ReportData(
        f"{meta['spec']} — walk-forward report (out of sample)", header, meta["grid"], stats,
        pl.read_parquet(out / "oos_equity.parquet"), pl.read_parquet(out / "oos_trades.parquet"),
        pl.read_parquet(out / "oos_marks.parquet"),
        sections=[("Folds", _folds_html(folds, list(meta["grid"]), meta["metric"]))],
        note="Statistics, equity and trades are out of sample only: each fold's test window, run with the params "
             "chosen on its training window, chained. The parameters section lists the grid searched."
             + "".join(f" Warning: {w}." for w in meta.get("warnings", [])),
    )
    page, _ = render_html_report(data)
    report = out / REPORT_FILE
    report.write_text(page, encoding="utf-8")
    return report


def _folds_html(folds: pl.DataFrame, params: list[str], metric: str) -> str:
    from nodes.backtest.html_report import format_time, html_table

    columns = [("fold", "fold"), ("train_start_ns", "train from"), ("train_end_ns", "train to"),
               ("test_start_ns", "test from"), ("test_end_ns", "test to"), *[(p, p) for p in params],
               (f"IS {metric}", f"IS {metric}"), (f"OOS {metric}", f"OOS {metric}"),
               ("IS Return [%]", "IS return [%]"), ("OOS Return [%]", "OOS return [%]"),
               ("OOS Max. Drawdown [%]", "OOS max DD [%]"), ("OOS # Trades", "OOS trades")]
    rows = [[format_time(row[c])[:10] if c.endswith("_ns") else row.get(c) for c, _ in columns]
            for row in folds.iter_rows(named=True)]
    return (html_table([label for _, label in columns], rows) + "<p class='note'>Every in-sample and out-of-sample "
            "statistic of each fold is in <code>folds.parquet</code>; every in-sample combination in "
            "<code>in_sample.parquet</code>.</p>")
