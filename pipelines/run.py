"""Run a spec in batch: load, compile, replay, summarize, and write the run folder.

This is the one entry point that the command line, notebooks and Dagster share, so a backtest gives the
same files wherever it is started.
"""

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from nodes.backtest.html_report import write_run_report
from nodes.backtest.report import write_report_png
from nodes.backtest.result import BacktestResult
from pipelines.plan import Plan, compile_plan
from pipelines.replay import ReplayResult, replay
from pipelines.spec import LoadedSpec, load_spec
from pipelines.time_window import TimeWindow


@dataclass
class RunOutput:
    """A finished run: the spec it ran, the replay, the backtest (when the spec has a venue) and its folder."""

    spec: LoadedSpec
    plan: Plan
    replay: ReplayResult
    backtest: BacktestResult | None
    out_dir: Path | None
    files: list[Path] = field(default_factory=list)
    window: TimeWindow | None = None


def run_spec(
    path: str | Path,
    sets: list[str] | None = None,
    places: list[str] | None = None,
    out_dir: str | Path | None = None,
    record: list[str] | None = None,
    write: bool = True,
    window: TimeWindow | None = None,
    source_transforms: dict | None = None,
) -> RunOutput:
    """Backtest (or replay) the spec at ``path`` and write its outputs.

    ``out_dir`` defaults to ``runs/<name>-<UTC time>-<hash>`` under the current folder. Files written: for a
    backtest ``stats.json``, ``trades.parquet``, ``equity.parquet``, ``stats_by_instrument.parquet`` (one row per
    instrument, ``nodes.backtest.result.stats_by_instrument``) and ``report.png``; for every recorded
    node ``<node>.parquet``; always ``spec.json`` (the resolved spec and its hash, and the window if any) and
    ``report.html`` (self-contained, see ``nodes/backtest/html_report.py``). ``window`` runs only a slice of
    time (``pipelines/time_window.py``). Logs of logging ops (a tick venue's fills and order events) are
    written as ``<node>.<log>.parquet``. ``source_transforms`` wraps sources' chunks (stress scenarios; see
    ``pipelines.replay.replay``).

    Raises:
        SpecError, GraphError: the spec is invalid.
        DataQualityError: a source holds bad data.
    """
    spec = load_spec(path, sets=sets, places=places)
    plan = compile_plan(spec, record=record)
    result = replay(plan, window=window, source_transforms=source_transforms)
    backtests = [s for s in result.summaries.values() if isinstance(s, BacktestResult)]
    backtest = backtests[0] if backtests else None
    output = RunOutput(spec, plan, result, backtest, None, window=window)
    if write:
        output.out_dir = Path(out_dir) if out_dir else default_run_dir(spec)
        output.files = write_run(output, output.out_dir)
    return output


def default_run_dir(spec: LoadedSpec) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / f"{spec.name}-{stamp}-{spec.spec_hash[:8]}"


def write_run(output: RunOutput, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    spec_file = out_dir / "spec.json"
    described = {"spec_hash": output.spec.spec_hash, "resolved": output.spec.resolved()}
    if output.window is not None:
        described["window"] = output.window.as_dict()
    spec_file.write_text(json.dumps(described, indent=2, default=str))
    files.append(spec_file)
    for node_id, frame in output.replay.recorded.items():
        files.append(_parquet(frame, out_dir / f"{node_id}.parquet"))
    for node_id, logs in output.replay.logs.items():
        for name, frame in logs.items():
            files.append(_parquet(frame, out_dir / f"{node_id}.{name}.parquet"))
    for node_id, tables in output.replay.tables.items():
        for name, frame in tables.items():
            files.append(_parquet(frame, out_dir / (f"{node_id}.parquet" if name == "out" else f"{node_id}.{name}.parquet")))
    if output.backtest is not None:
        bt = output.backtest
        stats_file = out_dir / "stats.json"
        stats = {**bt.stats, "spec_hash": output.spec.spec_hash, "events": output.replay.events}
        stats_file.write_text(json.dumps(_json_safe(stats), indent=2))
        files += [stats_file, _parquet(bt.trades, out_dir / "trades.parquet"), _parquet(bt.equity, out_dir / "equity.parquet"),
                  _parquet(bt.by_instrument, out_dir / "stats_by_instrument.parquet")]
        report = out_dir / "report.png"
        write_report_png(bt.equity, report, title=f"{output.spec.name}  ({output.spec.spec_hash[:12]})")
        files.append(report)
    # rendered from the files just written, exactly as `tickloom report RUN_DIR` re-renders it
    files += write_run_report(out_dir)
    return files


def _parquet(frame: pl.DataFrame, path: Path) -> Path:
    frame.write_parquet(path)
    return path


def _json_safe(value):
    """NaN and infinities become null: JSON has no such numbers and tools choke on them."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
