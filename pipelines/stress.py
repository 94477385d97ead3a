"""Stress test a spec: run it as it is and under each scenario, and compare.

    tickloom stress specs/strategies/sma_cross.yaml --scenario flash_crash --scenario high_vol+outage \\
        [--scenarios specs/stress/default.yaml] [--monte-carlo 2000 [--block-len 10] [--seed 0]]

A **scenario file** (``specs/stress/*.yaml``) names scenarios; a scenario is a list of steps
(``nodes/stress``: stream transforms and node overrides)::

    tickloom: 1
    kind: stress
    description: free text
    scenarios:
      flash_crash:
        - {transform: price_shock, source: bars, at: 2013-04-15, bps: -800, halflife: 2d}
      costly:
        - {transform: node_params, node: sim, with: {commission: 0.004}}

``transform`` names the step; ``source`` (stream transforms only) is the source node, or a list of them, it
rewrites (default: every source of the spec); every other key is a param of the step, validated by its
``Params``. Errors name the scenario file's line and column. ``--scenario a+b`` composes: the steps of ``a``
then those of ``b``; on one source, transforms apply in the order listed. No ``--scenario`` runs them all.

Each run (the base run and one per scenario) is a full replay: node overrides are applied to the loaded spec
(the node's op validates the new params) before the plan is compiled, stream transforms wrap the sources
(``replay(..., source_transforms=...)``). The results (``write_stress``): a run folder per run (``base/``,
``<scenario>/``, as ``tickloom run`` writes them), ``stress.parquet`` (one row per run: every numeric
statistic, and ``Δ <stat>``, the change from the base run), ``stress.json``, ``equity.png`` (every run's
equity and drawdown) and ``report.html``. With ``monte_carlo`` paths, the base run's trade returns and its
equity curve's period returns are resampled too (``pipelines/montecarlo.py``) and added to the report.
"""

import dataclasses
import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nodes.backtest.plots import png_bytes
from nodes.backtest.result import BacktestResult
from nodes.errors import SourceLocation, SpecError
from nodes.stress import TRANSFORMS
from nodes.stress.contract import TransformParams
from nodes.stress.plots import BASE, equity_overlay_figure, monte_carlo_figure
from nodes.stress.report import MonteCarloSection, StressReport, render_stress_report, step_text
from pipelines.graph import build_graph
from pipelines.montecarlo import (
    MonteCarloResult,
    block_bootstrap_returns,
    bootstrap_trades,
    default_block_len,
    path_metrics,
)
from pipelines.plan import compile_plan
from pipelines.replay import replay
from pipelines.run import RunOutput, write_run
from pipelines.spec import LoadedSpec, load_spec
from pipelines.spec.load import COMMAND_LINE, canonical_json, validation_problems
from pipelines.spec.yaml_source import read_yaml
from pipelines.sweep import default_output_dir, json_safe

DEFAULT_SCENARIOS = Path(__file__).resolve().parents[1] / "specs" / "stress" / "default.yaml"
# the statistics the report shows side by side: a bar venue's (backtesting.py's names), else a tick venue's
MAIN_STATS = ("Equity Final [$]", "Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "Sortino Ratio",
              "Volatility (Ann.) [%]", "# Trades", "Win Rate [%]", "Exposure Time [%]", "Commissions [$]")
TICK_MAIN_STATS = ("final_equity", "pnl", "fees", "max_drawdown", "sharpe", "fills", "maker_fills", "taker_fills",
                   "orders_sent", "rejected", "time_in_market")
_NAME = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
_STEP_KEYS = ("transform", "source")


class ScenarioFileModel(BaseModel):
    """A scenario file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tickloom: Literal[1] = Field(description="format version")
    kind: Literal["stress"] = Field(description="a scenario file, not a spec")
    name: str | None = Field(None, pattern=_NAME, description="the file's name (default: its file name)")
    description: str = Field("", description="free text")
    scenarios: dict[str, list[dict[str, Any]]] = Field(
        min_length=1, description="scenario name → its steps, each {transform: NAME, source: NODE, params...}")


@dataclasses.dataclass(frozen=True)
class ScenarioStep:
    """One validated step: its class, params, the sources it rewrites (None: all) and where it was written."""

    step: type
    params: TransformParams
    sources: tuple[str, ...] | None
    where: SourceLocation
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def is_override(self) -> bool:
        return self.step.kind == "override"


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[ScenarioStep, ...]


@dataclasses.dataclass
class ScenarioRun:
    """One run of the stress test: the base run (``scenario`` None) or a scenario's."""

    name: str
    scenario: Scenario | None
    output: RunOutput
    stats: dict[str, Any]
    equity: pl.DataFrame | None
    trades: pl.DataFrame | None


@dataclasses.dataclass
class StressResult:
    """The base run, each scenario's run, the comparison table and any Monte Carlo."""

    spec_name: str
    spec_hash: str
    scenario_file: Path
    base: ScenarioRun
    runs: list[ScenarioRun]
    table: pl.DataFrame
    monte_carlo: list[MonteCarloResult] = dataclasses.field(default_factory=list)
    out_dir: Path | None = None
    files: list[Path] = dataclasses.field(default_factory=list)

    def row(self, name: str) -> dict[str, Any]:
        """The comparison row of run ``name`` (``"base"`` or a scenario)."""
        return self.table.filter(pl.col("scenario") == name).row(0, named=True)


def is_scenario_file(path: str | Path) -> bool:
    """Whether a YAML file is a scenario file (top-level ``kind: stress``) rather than a spec; read as text, so
    a folder of specs can be sorted without parsing every file twice."""
    return re.search(r"^kind:\s*stress\s*(#.*)?$", Path(path).read_text(), re.MULTILINE) is not None


def load_scenarios(path: str | Path) -> dict[str, Scenario]:
    """Read and validate a scenario file; return its scenarios in file order.

    Raises:
        SpecError: listing every problem with its file:line:col.
    """
    path = Path(path)
    located = read_yaml(path)
    if not isinstance(located.data, dict):
        raise SpecError.at(located.where(()), "a scenario file must be a mapping (tickloom, kind, scenarios)")
    try:
        model = ScenarioFileModel.model_validate(located.data)
    except ValidationError as error:
        raise SpecError(validation_problems(error, ScenarioFileModel, located.locations, ())) from None
    problems: list[tuple[SourceLocation | None, str]] = []
    scenarios = {}
    for name, raw_steps in model.scenarios.items():
        at = ("scenarios", name)
        if "+" in name or not _valid_name(name):
            problems.append((located.where(at), f"scenario name {name!r}: expected letters, digits, _ and - "
                                                "('+' composes scenarios on the command line)"))
        if not raw_steps:
            problems.append((located.where(at), f"scenario {name!r} has no steps"))
        steps = []
        for index, raw in enumerate(raw_steps):
            step = _step(raw, at + (index,), located, problems)
            if step is not None:
                steps.append(step)
        scenarios[name] = Scenario(name, tuple(steps))
    if problems:
        raise SpecError(problems)
    return scenarios


def select_scenarios(available: dict[str, Scenario], names: Sequence[str]) -> list[Scenario]:
    """The scenarios asked for by name, ``a+b`` composing ``a`` then ``b``; every scenario when ``names`` is
    empty.

    Raises:
        SpecError: a name is not in the file (with "did you mean").
    """
    if not names:
        return list(available.values())
    chosen = []
    for asked in names:
        parts = [p.strip() for p in asked.split("+")]
        steps: list[ScenarioStep] = []
        for part in parts:
            if part not in available:
                close = difflib.get_close_matches(part, list(available), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; scenarios: {', '.join(available)}"
                raise SpecError.at(SourceLocation(f"{COMMAND_LINE} --scenario {asked}", 0, 0),
                                   f"no scenario {part!r}{hint}")
            steps += available[part].steps
        chosen.append(Scenario("+".join(parts), tuple(steps)))
    return chosen


def run_stress(
    spec_path: str | Path,
    scenario_file: str | Path | None,
    names: Sequence[str],
    sets: Sequence[str] = (),
    places: Sequence[str] = (),
    *,
    out_dir: str | Path | None = None,
    write: bool = True,
    monte_carlo: int = 0,
    block_len: int | None = None,
    seed: int = 0,
) -> StressResult:
    """Run the spec as it is and under each scenario; compare; optionally Monte Carlo the base run.

    ``scenario_file`` defaults to ``specs/stress/default.yaml``; ``names`` as ``select_scenarios``;
    ``sets``/``places`` as ``tickloom run``'s ``--set``/``--place`` (they apply to every run). ``monte_carlo``
    paths per resampling (0: none), ``block_len`` periods per block (default: ``default_block_len``), ``seed``
    for both. ``out_dir`` defaults to ``runs/<spec>-stress-<time>-<hash>``; ``write=False`` writes nothing.

    Raises:
        SpecError: the spec, the scenario file or a step is invalid (a step's error names its file:line:col).
        DataQualityError: a source holds bad data.
    """
    scenario_file = Path(scenario_file) if scenario_file is not None else DEFAULT_SCENARIOS
    scenarios = select_scenarios(load_scenarios(scenario_file), names)
    spec = load_spec(spec_path, sets=list(sets), places=list(places))
    base = run_scenario(spec, None)
    runs = [run_scenario(spec, scenario) for scenario in scenarios]
    result = StressResult(spec.name, spec.spec_hash, scenario_file, base, runs, comparison_table(base, runs))
    if monte_carlo:
        result.monte_carlo = monte_carlo_of(base, monte_carlo, block_len, seed)
    if write:
        result.out_dir = Path(out_dir) if out_dir else default_output_dir(spec.name, spec.spec_hash, "stress")
        result.files = write_stress(result, result.out_dir)
    return result


def run_scenario(spec: LoadedSpec, scenario: Scenario | None) -> ScenarioRun:
    """Replay ``spec`` under ``scenario`` (None: as it is)."""
    steps = scenario.steps if scenario is not None else ()
    changed = with_node_params(spec, node_overrides(spec, [s for s in steps if s.is_override]))
    plan = compile_plan(changed)
    transforms = source_transforms(changed, [s for s in steps if not s.is_override])
    result = replay(plan, base_dir=spec.path.parent, source_transforms=transforms)
    summary = next((s for s in result.summaries.values() if hasattr(s, "stats") and hasattr(s, "equity")), None)
    backtest = summary if isinstance(summary, BacktestResult) else None
    output = RunOutput(changed, plan, result, backtest, None)
    stats = dict(summary.stats) if summary is not None else {}
    equity = _equity_frame(summary.equity) if summary is not None else None
    trades = getattr(summary, "trades", None)
    return ScenarioRun(scenario.name if scenario else BASE, scenario, output, stats, equity, trades)


def source_transforms(spec: LoadedSpec, steps: list[ScenarioStep]) -> dict[str, Callable]:
    """Source node id → the composition of the stream steps on it, in the order listed.

    Raises:
        SpecError: a step names a node that is not a source of the spec (at the step's ``source``).
    """
    sources = spec.graph.sources
    per_source: dict[str, list[ScenarioStep]] = {}
    for step in steps:
        for source in step.sources or sources:
            if source not in sources:
                close = difflib.get_close_matches(source, sources, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f"; the spec's sources: {', '.join(sources)}"
                raise SpecError.at(step.where, f"{step.name}: {source!r} is not a source node of spec "
                                               f"{spec.name!r}{hint}")
            per_source.setdefault(source, []).append(step)
    return {source: _composed(source, steps) for source, steps in per_source.items()}


def node_overrides(spec: LoadedSpec, steps: list[ScenarioStep]) -> dict[str, tuple[dict, SourceLocation]]:
    """Node id → (its params after every override step, in order; where the last step was written)."""
    ops = {node_id: node.op.name for node_id, node in spec.nodes.items()}
    changes: dict[str, tuple[dict, SourceLocation]] = {}
    for step in steps:
        try:
            node_id = step.step.node_of(step.params, ops)
        except ValueError as error:
            raise SpecError.at(step.where, f"{step.name}: {error}") from None
        if node_id in changes:
            current = changes[node_id][0]
        else:  # as the spec wrote them: a dump with defaults would not validate again (nested models)
            current = spec.nodes[node_id].params.model_dump(by_alias=True, exclude_unset=True)
        changes[node_id] = (step.step.override(step.params, current), step.where)
    return changes


def with_node_params(spec: LoadedSpec, changes: dict[str, tuple[dict[str, Any], SourceLocation]]) -> LoadedSpec:
    """``spec`` with these nodes' params replaced (node id → (every ``with`` value, where the change was
    written)), validated by each node's op; its graph and hash rebuilt.

    Raises:
        SpecError: an op rejects the new params.
    """
    if not changes:
        return spec
    nodes = dict(spec.nodes)
    problems = []
    for node_id, (values, where) in changes.items():
        node = nodes[node_id]
        op = spec.registry.get(node.op.name)
        try:
            params = op.Params.model_validate(values)
        except ValidationError as error:
            problems += [(where, f"node {node_id!r}: {message} [op {op.name}]")
                         for _, message in validation_problems(error, op.Params, {}, ())]
            continue
        nodes[node_id] = dataclasses.replace(node, op=op.specialize(params), params=params)
    if problems:
        raise SpecError(problems)
    changed = dataclasses.replace(spec, nodes=nodes, graph=None, spec_hash="")
    build_graph(changed)
    changed.spec_hash = hashlib.sha256(canonical_json(changed.resolved()).encode()).hexdigest()
    return changed


def comparison_table(base: ScenarioRun, runs: list[ScenarioRun]) -> pl.DataFrame:
    """One row per run (the base first): ``scenario``, every numeric statistic of the base run, and ``Δ <stat>``
    (the run's value minus the base's; 0 for the base)."""
    names = [k for k, v in base.stats.items() if _numeric(v)]
    rows = []
    for run in [base, *runs]:
        row: dict[str, Any] = {"scenario": run.name}
        row.update({k: _number(run.stats.get(k)) for k in names})
        row.update({f"Δ {k}": _number(run.stats.get(k)) - _number(base.stats.get(k)) for k in names})
        rows.append(row)
    counts = [k for k in names if isinstance(base.stats[k], (int, np.integer))]  # "# Trades" stays an integer
    schema = {"scenario": pl.String, **{k: pl.Float64 for k in names}, **{f"Δ {k}": pl.Float64 for k in names}}
    table = pl.DataFrame(rows, schema=schema)
    return table.with_columns([pl.col(k).cast(pl.Int64) for k in counts if table[k].is_not_nan().all()])


def monte_carlo_of(base: ScenarioRun, n_paths: int, block_len: int | None, seed: int) -> list[MonteCarloResult]:
    """The base run resampled two ways (see ``pipelines/montecarlo.py``): its trades (when it has some) and its
    equity curve's period returns (when it has two points or more).

    A trade's return here is its PnL over the account's equity when it was entered (the last equity point at or
    before its entry): what it added to the account, whatever its size and however many trades were open with
    it. Compounded in the backtest's order these give about the final equity (exactly, for one trade at a
    time at the points the curve has)."""
    results = []
    if base.equity is None or base.equity.height == 0:
        return results
    ts = base.equity["ts"].to_numpy()
    equity = base.equity["equity"].cast(pl.Float64).to_numpy()
    start = float(equity[0])
    if base.trades is not None and base.trades.height and {"pnl", "entry_ts"} <= set(base.trades.columns):
        entry_ts = base.trades["entry_ts"].cast(pl.Int64).to_numpy()
        entered = np.maximum(np.searchsorted(ts, entry_ts, side="right") - 1, 0)
        returns = base.trades["pnl"].cast(pl.Float64).to_numpy() / equity[entered]
        if np.all(returns > -1.0):  # a trade that lost more than the account cannot be compounded
            mc = bootstrap_trades(returns, n_paths, seed, start_equity=start)
            mc.base = _base_values(start * np.concatenate([[1.0], np.cumprod(1.0 + returns)]))
            results.append(mc)
    if len(equity) >= 2:
        returns = equity[1:] / equity[:-1] - 1.0
        length = block_len if block_len is not None else default_block_len(len(returns))
        unit = "bars" if base.output.backtest is not None else "periods"  # a tick venue logs equity on a clock
        mc = block_bootstrap_returns(returns, min(length, len(returns)), n_paths, seed, start_equity=start,
                                     step_unit=unit)
        mc.base = _base_values(equity)
        results.append(mc)
    return results


def write_stress(result: StressResult, out_dir: str | Path) -> list[Path]:
    """Write the run folders, ``stress.parquet``, ``stress.json``, the PNGs and ``report.html``; return them."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for run in [result.base, *result.runs]:
        write_run(run.output, out / run.name)
    table_file = out / "stress.parquet"
    result.table.write_parquet(table_file)
    meta_file = out / "stress.json"
    meta_file.write_text(json.dumps(_described(result), indent=2, default=str))
    files += [table_file, meta_file]
    curves = {run.name: run.equity for run in [result.base, *result.runs] if run.equity is not None}
    equity_png = None
    if curves:
        equity_png = png_bytes(equity_overlay_figure(curves, title=f"{result.spec_name}: base run and scenarios"))
    if equity_png is not None:
        (out / "equity.png").write_bytes(equity_png)
        files.append(out / "equity.png")
    sections = []
    for mc in result.monte_carlo:
        png = png_bytes(monte_carlo_figure(mc, title=_mc_heading(mc)))
        (out / f"montecarlo_{mc.method}.png").write_bytes(png)
        files.append(out / f"montecarlo_{mc.method}.png")
        sections.append(MonteCarloSection(_mc_heading(mc), _mc_note(mc), mc.quantiles(), mc.summary(), png))
    if result.monte_carlo:
        quantiles = pl.concat([mc.quantiles().rename(lambda c: c.split(" [")[0]).with_columns(
            pl.lit(mc.method).alias("method")) for mc in result.monte_carlo], how="vertical_relaxed")
        quantiles.write_parquet(out / "montecarlo.parquet")
        files.append(out / "montecarlo.parquet")
    report = StressReport(
        title=f"{result.spec_name} — stress test",
        header={"spec": result.spec_name, "spec hash": result.spec_hash, "scenario file": str(result.scenario_file),
                "runs": ", ".join(f"{r.name}/" for r in [result.base, *result.runs])},
        table=result.table, main_stats=_main_stats(result.table), equity_png=equity_png,
        scenarios={run.name: [step_text(s.raw) for s in run.scenario.steps] for run in result.runs},
        monte_carlo=sections,
    )
    (out / "report.html").write_text(render_stress_report(report), encoding="utf-8")
    files.append(out / "report.html")
    return files


def _step(raw: Any, at: tuple, located, problems: list) -> ScenarioStep | None:
    where = located.where(at)
    if not isinstance(raw, dict):
        problems.append((where, "a step must be a mapping such as {transform: price_shock, bps: -500, ...}"))
        return None
    name = raw.get("transform")
    if name is None:
        problems.append((where, f"missing required key 'transform'; steps: {', '.join(TRANSFORMS)}"))
        return None
    step = TRANSFORMS.get(str(name))
    if step is None:
        close = difflib.get_close_matches(str(name), list(TRANSFORMS), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; steps: {', '.join(TRANSFORMS)}"
        problems.append((located.where(at + ("transform",)), f"unknown transform {name!r}{hint}"))
        return None
    sources = raw.get("source")
    if sources is not None and step.kind == "override":
        problems.append((located.where(at + ("source",)), f"{step.name} changes a node's params, not a source: "
                                                          "remove 'source'"))
        return None
    if isinstance(sources, str):
        sources = [sources]
    if sources is not None and not (isinstance(sources, list) and sources and all(isinstance(s, str) for s in sources)):
        problems.append((located.where(at + ("source",)), "source: expected a source node id or a list of them"))
        return None
    try:
        params = step.Params.model_validate({k: v for k, v in raw.items() if k not in _STEP_KEYS})
    except ValidationError as error:
        problems += [(loc, f"{message} [transform {step.name}]")
                     for loc, message in validation_problems(error, step.Params, located.locations, at)]
        return None
    return ScenarioStep(step, params, tuple(sources) if sources else None, where, raw)


def _composed(source: str, steps: list[ScenarioStep]) -> Callable[[Iterator], Iterator]:
    def transform(chunks: Iterator) -> Iterator:
        for step in steps:
            chunks = _located(step, source, step.step.transform(step.params, chunks))
        return chunks

    return transform


def _located(step: ScenarioStep, source: str, chunks: Iterator) -> Iterator:
    """The step's chunks; a ``SpecError`` it raises is re-raised at the step's place in the scenario file."""
    try:
        yield from chunks
    except SpecError as error:
        if getattr(error, "stress_step", False):
            raise  # an earlier step of the chain, already located
        located = SpecError.at(step.where, f"{step.name} on source {source!r}: {error}")
        located.stress_step = True
        raise located from None


def _equity_frame(equity: pl.DataFrame) -> pl.DataFrame:
    """``ts`` and ``equity`` of a venue's equity curve, whatever its time column is called."""
    time = next((c for c in ("ts", "ts_recv", "ts_local", "ts_event", "ts_exchange") if c in equity.columns), None)
    if time is None or "equity" not in equity.columns:
        return pl.DataFrame(schema={"ts": pl.Int64, "equity": pl.Float64})
    curve = equity.select(pl.col(time).cast(pl.Int64).alias("ts"), pl.col("equity").cast(pl.Float64))
    # a log with a row per instrument repeats the account's equity: one point per time
    return curve.unique("ts", keep="last", maintain_order=True)


def _base_values(equity: np.ndarray) -> dict[str, float]:
    final, drawdown, recovery = path_metrics(equity[None, :])
    return {"Equity Final [$]": float(final[0]), "Max. Drawdown [%]": float(-100.0 * drawdown[0]),
            "Time to Recovery": float(recovery[0])}


def _described(result: StressResult) -> dict[str, Any]:
    runs = []
    for run in [result.base, *result.runs]:
        row = result.row(run.name)
        runs.append({
            "scenario": run.name, "folder": f"{run.name}/", "spec_hash": run.output.spec.spec_hash,
            "events": run.output.replay.events,
            "steps": [s.raw for s in run.scenario.steps] if run.scenario else [],
            "stats": json_safe({k: v for k, v in row.items() if k != "scenario" and not k.startswith("Δ ")}),
            "delta": json_safe({k[2:]: v for k, v in row.items() if k.startswith("Δ ")}),
        })
    return {
        "spec": result.spec_name, "spec_hash": result.spec_hash, "scenario_file": str(result.scenario_file),
        "runs": runs,
        "monte_carlo": [
            {"method": mc.method, "paths": mc.n_paths, "seed": mc.seed, "steps": mc.steps, "block_len": mc.block_len,
             "start_equity": mc.start_equity, "backtest": json_safe(mc.base), "summary": json_safe(mc.summary()),
             "quantiles": [json_safe(r) for r in mc.quantiles().iter_rows(named=True)]}
            for mc in result.monte_carlo
        ],
    }


def _main_stats(table: pl.DataFrame) -> list[str]:
    for names in (MAIN_STATS, TICK_MAIN_STATS):
        main = [s for s in names if s in table.columns]
        if main:
            return main
    return [c for c in table.columns if c != "scenario" and not c.startswith("Δ ")][:10]


def _mc_heading(mc: MonteCarloResult) -> str:
    return "Monte Carlo: trades resampled" if mc.method == "trades" else "Monte Carlo: blocks of returns resampled"


def _mc_note(mc: MonteCarloResult) -> str:
    if mc.method == "trades":
        return (f"{mc.n_paths:,} paths of {mc.steps} trades drawn with replacement from the base run's trades, each "
                f"as its PnL over the account's equity at its entry, compounded (seed {mc.seed}).")
    return (f"{mc.n_paths:,} paths of {mc.steps} periods made of circular blocks of {mc.block_len} consecutive period "
            f"returns of the base run's equity curve (seed {mc.seed}).")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _number(value: Any) -> float:
    return float(value) if _numeric(value) else math.nan


def _valid_name(name: str) -> bool:
    return re.match(_NAME, name) is not None
