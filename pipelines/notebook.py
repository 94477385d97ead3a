"""The notebook API: load a spec, override params, run, and get polars frames and matplotlib figures.

    from pipelines.notebook import load

    study = load("specs/strategies/sma_cross.yaml")        # validated now: errors say file:line:col
    bt = study.with_params(fast=20).run(record=["fast", "slow"])
    bt.stats["Sharpe Ratio"]; bt.trades; bt.equity; bt.outputs("fast")
    bt.plot()                                              # a matplotlib Figure: price and trades, equity, drawdown
    sweep = study.sweep({"fast": range(5, 30, 5), "slow": [30, 60]}, where="fast < slow")
    sweep.table; sweep.plot()

Scope: a thin layer over ``pipelines.run``, ``pipelines.sweep`` and ``pipelines.walkforward``; a ``Study`` is an
immutable spec-plus-overrides, so ``with_params`` never changes the study it is called on. Times in every frame
are int64 ns since the epoch (UTC), as in the run folder's parquet files
(``pl.col("ts").cast(pl.Datetime("ns", "UTC"))`` shows them as dates). Non-goals: interactive widgets, its own
plotting style: the figures are the reports'.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipelines.run import RunOutput, default_run_dir, run_spec, write_run
from pipelines.spec import LoadedSpec, load_spec
from pipelines.sweep import DEFAULT_METRIC, SweepResult, make_executor, run_sweep, set_options
from pipelines.time_window import TimeWindow, to_ns


def load(path: str | Path) -> "Study":
    """Load the spec at ``path`` (relative to the current folder) as a ``Study``.

    Raises:
        SpecError, GraphError: the spec is invalid.
    """
    study = Study(Path(path))
    study.spec  # validate now, where the user typed the path
    return study


@dataclass(frozen=True)
class Study:
    """A spec with param and placement overrides; every method returns a new object or a result."""

    path: Path
    overrides: tuple[tuple[str, Any], ...] = ()
    placements: tuple[tuple[str, str], ...] = ()

    @property
    def spec(self) -> LoadedSpec:
        """The resolved spec (loaded afresh: cheap, and always what ``run`` will run)."""
        return load_spec(self.path, sets=self._sets(), places=self._places())

    @property
    def params(self) -> dict[str, Any]:
        """Every param's final value."""
        return dict(self.spec.model.params)

    @property
    def spec_hash(self) -> str:
        return self.spec.spec_hash

    def with_params(self, **values: Any) -> "Study":
        """A study with these params overridden (as ``--set``).

        Raises:
            SpecError: an unknown param (with "did you mean") or a value the spec rejects.
        """
        merged = dict(self.overrides)
        merged.update(values)
        study = Study(self.path, tuple(merged.items()), self.placements)
        study.spec
        return study

    def with_places(self, **targets: str) -> "Study":
        """A study with these nodes placed elsewhere (as ``--place``), e.g. ``with_places(sim="cpu")``."""
        merged = dict(self.placements)
        merged.update(targets)
        study = Study(self.path, self.overrides, tuple(merged.items()))
        study.spec
        return study

    def run(self, record: list[str] | None = None, *, start=None, end=None, warmup_start=None) -> "Backtest":
        """Run the study and keep everything in memory (nothing is written until ``Backtest.save``).

        ``record``: extra nodes whose outputs to keep (for ``Backtest.outputs``). ``start``/``end``: a time window
        (ISO text, datetime or int ns; ``end`` excluded), warmed up from ``warmup_start`` (see
        ``pipelines/time_window.py``).
        """
        window = None
        if start is not None or end is not None:
            window = TimeWindow(_ns(start), _ns(end), _ns(warmup_start))
        elif warmup_start is not None:
            raise ValueError("warmup_start needs a start: warm-up is the time before the window opens")
        output = run_spec(self.path, sets=self._sets(), places=self._places(), record=record, write=False,
                          window=window)
        return Backtest(output)

    def sweep(self, grid: dict[str, Any], *, where: str | None = None, metric: str = DEFAULT_METRIC,
              minimize: bool = False, workers: int = 1) -> SweepResult:
        """Run every combination of ``grid`` (``{param: values}``); see ``pipelines/sweep.py``.

        ``workers`` > 1 runs in a local process pool (each worker pays a few seconds of start-up).
        """
        return run_sweep(self.path, grid, sets=self._sets(), places=self._places(), where=where, metric=metric,
                         minimize=minimize, executor=make_executor(workers))

    def walkforward(self, grid: dict[str, Any], *, train_bars: int, test_bars: int, step_bars: int | None = None,
                    anchored: bool = False, warmup_bars: int | None = None, where: str | None = None,
                    metric: str = DEFAULT_METRIC, minimize: bool = False, workers: int = 1):
        """Walk forward over ``grid``; see ``pipelines/walkforward.py``. Returns a ``WalkForwardResult``."""
        from pipelines.walkforward import run_walkforward

        return run_walkforward(self.path, grid, train_bars=train_bars, test_bars=test_bars, step_bars=step_bars,
                               anchored=anchored, warmup_bars=warmup_bars, sets=self._sets(),
                               places=self._places(), where=where, metric=metric, minimize=minimize,
                               executor=make_executor(workers))

    def _sets(self) -> list[str]:
        return set_options(dict(self.overrides))

    def _places(self) -> list[str]:
        return [f"{node}={target}" for node, target in self.placements]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.overrides)
        return f"Study({str(self.path)!r}{', ' + shown if shown else ''})"


class Backtest:
    """A finished run in memory: stats, trades, equity, recorded outputs and figures.

    Raises (on use):
        ValueError: a backtest-only attribute of a run whose spec has no venue node.
    """

    def __init__(self, output: RunOutput):
        self.output = output

    @property
    def spec_hash(self) -> str:
        return self.output.spec.spec_hash

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.output.spec.model.params)

    @property
    def stats(self) -> dict[str, Any]:
        """backtesting.py-style statistics (``nodes/backtest/stats.py``)."""
        return self._backtest().stats

    @property
    def trades(self) -> pl.DataFrame:
        """One row per round trip: instrument, size, entry/exit ts and price, pnl, return_pct, commission."""
        return self._backtest().trades

    @property
    def equity(self) -> pl.DataFrame:
        """The account after each distinct ts: ``ts``, ``equity``, ``cash``, ``exposed``."""
        return self._backtest().equity

    @property
    def prices(self) -> pl.DataFrame:
        """The venue's marks: ``ts``, ``instrument``, ``mark_price`` (each bar's close)."""
        venue = self._venue()
        return self.output.replay.recorded[venue].select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")

    def outputs(self, node: str) -> pl.DataFrame:
        """A recorded node's outputs, one row per event it fired on (``ts_event``, ``ts_recv``, ``instrument``,
        one column per port).

        Raises:
            KeyError: the node does not exist, or was not recorded (pass it in ``run(record=[...])``).
        """
        recorded = self.output.replay.recorded
        if node in recorded:
            return recorded[node]
        if node in self.output.spec.nodes:
            raise KeyError(f"node {node!r} was not recorded; run(record=[{node!r}]) keeps its outputs "
                           f"(recorded: {', '.join(recorded)})")
        import difflib

        close = difflib.get_close_matches(node, list(self.output.spec.nodes), n=1)
        raise KeyError(f"no node {node!r}" + (f"; did you mean {close[0]!r}?" if close else ""))

    def stats_frame(self) -> pl.DataFrame:
        """The statistics as a two-column frame (``_ns`` twins left out), for display."""
        shown = [(k, _text(v)) for k, v in self.stats.items() if not k.endswith("_ns")]
        return pl.DataFrame(shown, schema={"stat": pl.String, "value": pl.String}, orient="row")

    def plot(self, instrument: str | None = None):
        """A matplotlib Figure: ``instrument``'s price (default: the first) with trades, equity and drawdown."""
        from nodes.backtest.plots import backtest_figure

        prices = self.prices
        instrument = instrument or prices["instrument"][0]
        title = f"{self.output.spec.name} ({self.spec_hash[:12]})"
        return backtest_figure(self.equity, self.trades, prices, instrument, title=title)

    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write the run folder (as ``tickloom run`` does, ``report.html`` included) and return its path."""
        out = Path(out_dir) if out_dir else default_run_dir(self.output.spec)
        self.output.out_dir = out
        self.output.files = write_run(self.output, out)
        return out

    def _backtest(self):
        if self.output.backtest is None:
            raise ValueError(f"spec {self.output.spec.name} has no venue node, so there is no backtest; "
                             "use outputs(node) for what it recorded")
        return self.output.backtest

    def _venue(self) -> str:
        backtest = self._backtest()
        return next(n for n, summary in self.output.replay.summaries.items() if summary is backtest)

    def __repr__(self) -> str:
        if self.output.backtest is None:
            return f"Backtest({self.output.spec.name}, {self.output.replay.events} events, no venue)"
        s = self.stats
        return (f"Backtest({self.output.spec.name} {self.spec_hash[:12]}: return {s['Return [%]']:.2f} %, "
                f"Sharpe {s['Sharpe Ratio']:.3f}, {s['# Trades']} trades)")


def _ns(value) -> int | None:
    return None if value is None else to_ns(value)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "--" if value is None else str(value)
