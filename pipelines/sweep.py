"""Sweep a spec's params over a grid: every combination is a full run, and every result is a row of one table.

    tickloom sweep specs/strategies/sma_cross.yaml --grid fast=5:50:5 --grid slow=20:200:10 --where "fast < slow"

Grid syntax, one ``--grid`` per param (the param must exist in the spec; a near miss gets "did you mean"):

- ``name=start:stop:step``: start, start + step, … up to **and including** stop when the steps land on it
  (``5:50:5`` is 5, 10, …, 50); integers when all three are integers, floats otherwise (rounded to 12 digits, so
  ``0.1:0.3:0.1`` is 0.1, 0.2, 0.3);
- ``name=a,b,c``: these values, each read as YAML (``fill=close,next_open`` gives strings);
- ``name=v``: one value.

Combinations are the Cartesian product in the order the grids are given (the last one varies fastest); that is
the order of the table, whatever order the runs finish in. Every combination runs unless ``where`` (a Python
comparison over param names: ``fast < slow``, ``slow >= 2 * fast and fraction <= 1``) excludes it; nothing is
skipped otherwise, and how many were skipped is reported. Each combination is ``run_spec(write=False)`` with
``--set name=value`` overrides, so its row equals the single run ``tickloom run SPEC --set ...`` gives.

The table has one column per spec param (swept or not), ``spec_hash`` (each combination is its own spec),
``events``, and one column per numeric statistic (``nodes/backtest/stats.py``; string-valued ones such as
``Duration`` are left out, their ``_ns`` twins are in).

Execution goes through an ``Executor``: anything with ``map(function, jobs) -> list`` in job order.
``SerialExecutor`` runs in this process; ``LocalProcessExecutor`` uses a spawn-started process pool. A Ray
executor plugs into the same protocol. Numba kernels are cached on disk by source hash and a sweep changes only
the constants a kernel is passed, so the first combination runs in the calling process to compile once, and
the workers load machine code from the cache.

Operational limits: a combination's run holds its recorded frames in memory until its stats are computed;
only the stats travel back from a worker (a few kB per row).
"""

import ast
import datetime as dt
import difflib
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import polars as pl
import yaml

from nodes.errors import SourceLocation, SpecError
from pipelines.spec import load_spec
from pipelines.time_window import TimeWindow

DEFAULT_METRIC = "Sharpe Ratio"
_RANGE = re.compile(r"^\s*([^:]+):([^:]+):([^:]+)\s*$")


# ---- the grid -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridAxis:
    """One swept param and its values, in sweep order."""

    name: str
    values: tuple


def parse_grid(items: Iterable[str], params: dict[str, Any]) -> list[GridAxis]:
    """Parse ``--grid`` items (``name=start:stop:step``, ``name=a,b,c`` or ``name=v``) against the spec's params.

    Raises:
        SpecError: an item is malformed, names no param of the spec (with "did you mean"), repeats a param,
            or describes an empty range.

    Example:
        >>> [a.values for a in parse_grid(["fast=5:20:5", "slow=30,60"], {"fast": 10, "slow": 30})]
        [(5, 10, 15, 20), (30, 60)]
    """
    axes: list[GridAxis] = []
    for item in items:
        where = SourceLocation(f"<command line> --grid {item}", 0, 0)
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise SpecError.at(where, f"--grid {item!r}: expected name=start:stop:step or name=a,b,c")
        _check_param(name, params, where, "--grid")
        if any(a.name == name for a in axes):
            raise SpecError.at(where, f"--grid {name}: this param is already swept by an earlier --grid")
        axes.append(GridAxis(name, _values(text, where)))
    return axes


def grid_axes(grid: dict[str, Iterable] | Iterable[str], params: dict[str, Any]) -> list[GridAxis]:
    """Axes from ``--grid`` strings or from a mapping ``{name: values}`` (values: an iterable or one value).

    Raises:
        SpecError: as ``parse_grid``; also an empty list of values.
    """
    if isinstance(grid, dict):
        axes = []
        for name, values in grid.items():
            where = SourceLocation(f"<grid> {name}", 0, 0)
            _check_param(name, params, where, "grid")
            values = tuple(values) if isinstance(values, Iterable) and not isinstance(values, str) else (values,)
            if not values:
                raise SpecError.at(where, f"grid {name}: no values")
            axes.append(GridAxis(name, tuple(_plain(v) for v in values)))
        return axes
    return parse_grid(grid, params)


def _values(text: str, where: SourceLocation) -> tuple:
    match = _RANGE.match(text)
    if match:
        start, stop, step = (yaml.safe_load(part) for part in match.groups())
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, stop, step)):
            raise SpecError.at(where, f"{text!r}: start, stop and step of a range must be numbers")
        if step <= 0:
            raise SpecError.at(where, f"{text!r}: step must be > 0, got {step}")
        if stop < start:
            raise SpecError.at(where, f"{text!r}: stop ({stop}) is below start ({start}); the range is empty")
        if all(isinstance(v, int) for v in (start, stop, step)):
            return tuple(range(start, stop + 1, step))
        count = math.floor((stop - start) / step + 1e-9) + 1  # inclusive stop, tolerant of float residue
        return tuple(round(start + i * step, 12) for i in range(count))
    return tuple(yaml.safe_load(part.strip()) for part in text.split(","))


def _check_param(name: str, params: dict, where: SourceLocation, option: str) -> None:
    if name not in params:
        close = difflib.get_close_matches(name, list(params), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = f"; the spec's params are: {', '.join(params)}" if params else "; the spec has no params"
        raise SpecError.at(where, f"{option} {name}: the spec has no param {name!r}{hint}{listed}")


def combinations(axes: list[GridAxis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    return [dict(zip([a.name for a in axes], values)) for values in itertools.product(*(a.values for a in axes))]


# ---- the where filter -----------------------------------------------------------------------------------


class Where:
    """A filter over a combination's params: ``fast < slow``, ``slow >= 2 * fast and fraction <= 1``.

    Comparisons, ``and``/``or``/``not``, arithmetic, numbers, strings and param names; nothing else (no calls,
    no attributes), so it is safe to take from a command line.

    Raises:
        SpecError: the expression does not parse, uses something not allowed, or names an unknown param.

    Example:
        >>> Where("fast < slow", {"fast": 1, "slow": 2})({"fast": 10, "slow": 5})
        False
    """

    _ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
                ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.Compare, ast.Lt, ast.LtE,
                ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Name, ast.Load, ast.Constant)

    def __init__(self, text: str, params: dict[str, Any]):
        self.text = text
        where = SourceLocation(f"<command line> --where {text}", 0, 0)
        try:
            self._tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as error:
            raise SpecError.at(where, f"--where {text!r}: not an expression ({error.msg})") from None
        for node in ast.walk(self._tree):
            if not isinstance(node, self._ALLOWED):
                raise SpecError.at(where, f"--where {text!r}: {type(node).__name__} is not allowed; use comparisons, "
                                          "and/or/not, arithmetic, numbers and param names")
            if isinstance(node, ast.Name):
                _check_param(node.id, params, where, "--where")

    def __call__(self, values: dict[str, Any]) -> bool:
        """Raises SpecError when the expression cannot be evaluated on these values (e.g. text < number)."""
        try:
            return bool(_evaluate(self._tree.body, values))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as error:
            shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
            raise SpecError.at(None, f"--where {self.text!r} fails on {shown}: {error}") from None

    def __str__(self) -> str:
        return self.text


def _evaluate(node: ast.AST, values: dict[str, Any]) -> Any:
    import operator as op

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BoolOp):
        results = (_evaluate(v, values) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return {ast.Not: op.not_, ast.USub: op.neg, ast.UAdd: op.pos}[type(node.op)](operand)
    if isinstance(node, ast.BinOp):
        function = {ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv,
                    ast.FloorDiv: op.floordiv, ast.Mod: op.mod, ast.Pow: op.pow}[type(node.op)]
        return function(_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for comparison, right_node in zip(node.ops, node.comparators):
            right = _evaluate(right_node, values)
            function = {ast.Lt: op.lt, ast.LtE: op.le, ast.Gt: op.gt, ast.GtE: op.ge, ast.Eq: op.eq,
                        ast.NotEq: op.ne}[type(comparison)]
            if not function(left, right):
                return False
            left = right
        return True
    raise SpecError.at(None, f"--where: cannot evaluate {ast.dump(node)}")


# ---- jobs and executors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunJob:
    """One run to do somewhere: a spec, its overrides and window; ``frames`` also returns trades and equity."""

    path: str
    sets: tuple[str, ...]
    places: tuple[str, ...] = ()
    window: TimeWindow | None = None
    frames: bool = False


@dataclass
class JobResult:
    """What a job sends back: the numeric stats, and with ``frames`` the equity, trades and marks."""

    spec_hash: str
    events: int
    stats: dict[str, Any]
    start_equity: float = math.nan  # the account's equity before its first event (its starting cash)
    equity: pl.DataFrame | None = None
    trades: pl.DataFrame | None = None
    marks: pl.DataFrame | None = None
    error: str | None = None


def run_job(job: RunJob) -> JobResult:
    """Run one job (in whatever process the executor chose) and keep only what the caller needs.

    A spec error comes back as ``error`` text instead of an exception: ``SpecError`` does not survive pickling.
    """
    from pipelines.codegen import initial_value
    from pipelines.run import run_spec

    try:
        output = run_spec(job.path, sets=list(job.sets), places=list(job.places), write=False, window=job.window)
    except SpecError as error:
        return JobResult("", 0, {}, error=str(error))
    if output.backtest is None:
        return JobResult(output.spec.spec_hash, output.replay.events, {},
                         error=f"spec {output.spec.name} has no venue node: there are no stats to sweep")
    backtest = output.backtest
    venue = next(n for n, summary in output.replay.summaries.items() if summary is backtest)
    result = JobResult(output.spec.spec_hash, output.replay.events, backtest.stats,
                       float(initial_value(output.plan, venue, "equity")))
    if job.frames:
        result.equity, result.trades = backtest.equity, backtest.trades
        result.marks = output.replay.recorded[venue].select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")
    return result


class Executor(Protocol):
    """Runs a picklable top-level ``function`` over ``jobs`` and returns the results in job order."""

    def map(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]: ...


class SerialExecutor:
    """Every job in this process, one after another (``--workers 1``; notebooks; tests)."""

    workers = 1

    def map(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        return [function(job) for job in jobs]


class LocalProcessExecutor:
    """Jobs in a pool of ``workers`` local processes (spawned: forking a process that runs polars' thread pool
    can deadlock).

    The first job runs in this process, so numba compiles each kernel once and the workers load it from the
    on-disk cache; results come back in job order.

    Raises:
        ValueError: ``workers`` < 1.
    """

    def __init__(self, workers: int | None = None):
        workers = (os.cpu_count() or 1) if workers is None else workers
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    def map(self, function: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
        jobs = list(jobs)
        if self.workers == 1 or len(jobs) <= 1:
            return SerialExecutor().map(function, jobs)
        first = function(jobs[0])
        rest = jobs[1:]
        workers = min(self.workers, len(rest))
        chunk = max(1, len(rest) // (workers * 4))
        # Parallelism is across processes; polars' own thread pool costs more than it gives on one run's small
        # frames (3x slower measured on the sample), so workers run it single-threaded unless the user says.
        added = "POLARS_MAX_THREADS" not in os.environ
        if added:
            os.environ["POLARS_MAX_THREADS"] = "1"  # a spawned worker inherits the environment at its start
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                return [first, *pool.map(function, rest, chunksize=chunk)]
        finally:
            if added:
                del os.environ["POLARS_MAX_THREADS"]


def make_executor(workers: int | None) -> Executor:
    """``SerialExecutor`` for one worker, else a ``LocalProcessExecutor`` (None: one per CPU)."""
    executor = LocalProcessExecutor(workers)
    return SerialExecutor() if executor.workers == 1 else executor


# ---- the sweep ------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """Every combination's params and stats (``table``, in grid order) and how the sweep was asked for."""

    spec_name: str
    spec_hash: str  # of the spec before the grid (with the caller's --set)
    axes: list[GridAxis]
    metric: str
    minimize: bool
    table: pl.DataFrame
    combinations: int  # in the grid, before ``where``
    where: str | None = None
    window: TimeWindow | None = None
    params: list[str] = field(default_factory=list)  # every param column, swept first

    @property
    def skipped(self) -> int:
        return self.combinations - self.table.height

    def ranked(self) -> pl.DataFrame:
        """The table sorted by the metric, best first; NaN and null metrics last; ties keep grid order."""
        key = pl.col(self.metric).fill_nan(None)
        return self.table.sort(key, descending=not self.minimize, nulls_last=True, maintain_order=True)

    def best(self) -> dict[str, Any]:
        """The best row as a dict (the first combination in grid order when every metric is NaN)."""
        return self.ranked().row(0, named=True)

    def best_params(self) -> dict[str, Any]:
        best = self.best()
        return {a.name: best[a.name] for a in self.axes}

    def plot(self, x: str | None = None, y: str | None = None):
        """Heatmap of the metric over two swept params (default: the first two swept with several values),
        or its line over the only one."""
        from nodes.backtest.plots import sweep_heatmap_figure, sweep_line_figure

        varied = [a.name for a in self.axes if len(a.values) > 1] or [a.name for a in self.axes]
        x = x or varied[0]
        y = y or next((n for n in varied if n != x), None)
        for name in (x, y):
            if name is not None and name not in [a.name for a in self.axes]:
                raise SpecError.at(None, f"heatmap axis {name!r} is not a swept param; swept: "
                                         f"{', '.join(a.name for a in self.axes)}")
        if y is None:
            return sweep_line_figure(self.table, x, self.metric)
        return sweep_heatmap_figure(self.table, x, y, self.metric, minimize=self.minimize)


def numeric_stat_names() -> list[str]:
    """The numeric statistics ``compute_stats`` reports, in its order (string-valued keys left out)."""
    from nodes.backtest.stats import TRADE_COLUMNS, compute_stats

    day = 86_400 * 10**9
    stats = compute_stats(pl.DataFrame({"ts": [0, day], "equity": [1.0, 1.0]}),
                          pl.DataFrame(schema={c: pl.Float64 for c in TRADE_COLUMNS}),
                          pl.DataFrame(schema={"ts": pl.Int64, "instrument": pl.String, "mark_price": pl.Float64}))
    return [k for k, v in stats.items() if k.endswith("_ns") or (isinstance(v, (int, float)) and not isinstance(v, bool))]


def check_metric(metric: str) -> None:
    """Raises SpecError when ``metric`` is not a numeric statistic (with "did you mean")."""
    names = numeric_stat_names()
    if metric not in names:
        close = difflib.get_close_matches(metric, names, n=1, cutoff=0.4)
        hint = f"; did you mean {close[0]!r}?" if close else f"; numeric stats are: {', '.join(names)}"
        raise SpecError.at(None, f"--metric {metric!r} is not a numeric statistic{hint}")


def run_sweep(
    path: str | Path,
    grid: dict[str, Iterable] | Iterable[str],
    *,
    sets: list[str] | None = None,
    places: list[str] | None = None,
    where: str | None = None,
    metric: str = DEFAULT_METRIC,
    minimize: bool = False,
    executor: Executor | None = None,
    window: TimeWindow | None = None,
) -> SweepResult:
    """Run every combination of ``grid`` on the spec at ``path`` and return them all as a table.

    ``grid``: ``--grid`` strings or ``{param: values}``; ``sets``/``places``: overrides applied to every
    combination (the grid wins over ``sets`` for a swept param); ``where``: a filter expression (see ``Where``);
    ``metric``: the numeric statistic ranked by (higher is better unless ``minimize``); ``executor``: default
    ``SerialExecutor``; ``window``: run every combination on this time window.

    Raises:
        SpecError: the spec, a grid item, ``where``, ``metric`` or a combination's params are invalid (a
            combination's error names the combination), or ``where`` leaves no combination.
        DataQualityError: a source holds bad data.

    Example:
        >>> result = run_sweep("specs/strategies/sma_cross.yaml", {"fast": [5, 10], "slow": [30]})  # doctest: +SKIP
        >>> result.table.select("fast", "slow", "Sharpe Ratio")  # doctest: +SKIP
    """
    sets, places = list(sets or []), list(places or [])
    base = load_spec(path, sets=sets, places=places)
    params = dict(base.model.params)
    axes = grid_axes(grid, params)
    if not axes:
        raise SpecError.at(None, "a sweep needs at least one --grid name=values")
    check_metric(metric)
    where_filter = Where(where, params) if where else None
    every = combinations(axes)
    chosen = [c for c in every if where_filter is None or where_filter({**params, **c})]
    if not chosen:
        raise SpecError.at(None, f"--where {where!r} leaves none of the {len(every)} combinations of the grid")
    jobs = [RunJob(str(path), tuple(sets + set_options(c)), tuple(places), window) for c in chosen]
    results = (executor or SerialExecutor()).map(run_job, jobs)
    _raise_failed(chosen, results)
    param_names = [a.name for a in axes] + [p for p in params if p not in {a.name for a in axes}]
    table = results_table([{**params, **c} for c in chosen], results, param_names)
    return SweepResult(base.name, base.spec_hash, axes, metric, minimize, table, len(every), where, window, param_names)


def set_options(values: dict[str, Any]) -> list[str]:
    """``name=value`` overrides that ``load_spec`` reads back as the same values (it parses them as YAML).

    Example:
        >>> set_options({"fast": 5, "rate": 1e-05, "fill": "close"})
        ['fast=5', 'rate=1.0e-05', 'fill=close']
    """
    options = []
    for name, value in values.items():
        text = yaml.safe_dump(_plain(value), default_flow_style=True).strip()
        options.append(f"{name}={text.removesuffix('...').strip()}")
    return options


def _raise_failed(chosen: list[dict], results: list[JobResult]) -> None:
    for combination, result in zip(chosen, results):
        if result.error is not None:
            shown = ", ".join(f"{k}={v}" for k, v in combination.items())
            raise SpecError.at(None, f"combination {shown}: {result.error}")


def results_table(rows: list[dict], results: list[JobResult], param_names: list[str]) -> pl.DataFrame:
    """One row per run: its params (``param_names`` columns), ``spec_hash``, ``events`` and every numeric stat."""
    stat_names = numeric_stat_names()
    columns: dict[str, pl.Series] = {}
    for name in param_names:
        columns[name] = pl.Series(name, [r[name] for r in rows], strict=False)
    columns["spec_hash"] = pl.Series("spec_hash", [r.spec_hash for r in results], dtype=pl.String)
    columns["events"] = pl.Series("events", [r.events for r in results], dtype=pl.Int64)
    for name in stat_names:
        values = [r.stats.get(name) for r in results]
        dtype = pl.Int64 if name == "# Trades" else pl.Float64
        columns[name] = pl.Series(name, [math.nan if v is None and dtype == pl.Float64 else v for v in values],
                                  dtype=dtype, strict=False)
    return pl.DataFrame(list(columns.values()))


def default_output_dir(spec_name: str, spec_hash: str, kind: str) -> Path:
    """``runs/<name>-<kind>-<UTC time>-<hash>``, beside the folders ``tickloom run`` writes."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{spec_name}-{kind}-{stamp}-{spec_hash[:8]}"


def write_sweep(result: SweepResult, out_dir: str | Path | None = None, *, heatmap: tuple[str, str] | None = None) -> list[Path]:
    """Write ``sweep.parquet`` (every row), ``sweep.json`` (how it was asked for, the best row) and the plot:
    ``heatmap.png`` for two or more swept params, ``sweep.png`` (a line) for one. Returns the files."""
    from nodes.backtest.plots import png_bytes

    out = Path(out_dir) if out_dir else default_output_dir(result.spec_name, result.spec_hash, "sweep")
    out.mkdir(parents=True, exist_ok=True)
    table_file = out / "sweep.parquet"
    result.table.write_parquet(table_file)
    meta = {
        "spec": result.spec_name, "spec_hash": result.spec_hash,
        "grid": {a.name: list(a.values) for a in result.axes}, "where": result.where,
        "metric": result.metric, "minimize": result.minimize,
        "combinations": result.combinations, "ran": result.table.height, "skipped": result.skipped,
        "window": result.window.as_dict() if result.window else None,
        "best": json_safe(result.best()) if result.table.height else None,
    }
    meta_file = out / "sweep.json"
    meta_file.write_text(json.dumps(meta, indent=2, default=str))
    figure = result.plot(*(heatmap or ()))
    varied = sum(1 for a in result.axes if len(a.values) > 1)
    plot_file = out / ("heatmap.png" if (heatmap or varied >= 2) else "sweep.png")
    plot_file.write_bytes(png_bytes(figure))
    return [table_file, meta_file, plot_file]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars: JSON and YAML want Python numbers
    return value


def json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers), in dicts too."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

