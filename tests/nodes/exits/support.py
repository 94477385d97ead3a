"""Helpers for the exit op tests: hand-made bars through the whole engine, and docstring examples as strategies.

``backtest_by_hand`` runs a tiny strategy (scripted targets → the exit op → the bar venue) over bars written
as CSV, so a test can state every fill the exit causes. ``example_run`` turns an op's ``Example::`` block into
a strategy on the AAPL sample: an SMA(10, 30) state crossover sized all in as ``target`` (and as ``sized``),
the example node, and the venue trading the example's output.
"""

import math
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.run import run_spec
from tests.nodes.op_examples import docstring_example
from tests.support import SAMPLES, write_spec

SCRIPTED_TARGETS = '''
import numpy as np

from nodes.contract import F64, StreamOp

TARGETS = np.array([{targets}])


class ScriptedTarget(StreamOp):
    """The target of bar i is TARGETS[i] (NaN past its end)."""

    name = "user.scripted_target"
    inputs = {{"x": F64}}
    outputs = {{"target": F64}}

    @staticmethod
    def init(c, n_keys):
        return (0,)

    @staticmethod
    def step(c, s, x):
        i = s[0]
        out = TARGETS[i] if i < TARGETS.shape[0] else np.nan
        return (i + 1,), out
'''

EXIT_INPUTS = {
    "target": "target", "high": "bars.high", "low": "bars.low", "position": "prev(sim.position)",
    "entry_price": "prev(sim.entry_price)",
}


def exit_node(op_name: str, params: dict) -> dict:
    """The exit op on ``target``, reading the bars and the venue's feedback (only the inputs it declares)."""
    from nodes.contract import default_registry

    op = default_registry().get(op_name)
    return {"op": op_name, "in": {k: v for k, v in EXIT_INPUTS.items() if k in op.inputs}, "with": params}


def backtest_by_hand(folder: Path, csv: str, targets: list[float], exit_op: str, params: dict, *,
                     fill: str = "next_open", place: str = "cpu"):
    """Run scripted ``targets`` (one per bar) through ``exit_op`` into the venue over the CSV bars.

    Returns ``(exit output, sim record as a dict of numpy arrays, trades)``.
    """
    (folder / "bars.csv").write_text(csv)
    values = ", ".join("np.nan" if math.isnan(t) else repr(float(t)) for t in targets)
    (folder / "scripted.py").write_text(SCRIPTED_TARGETS.format(targets=values))
    nodes = {
        "bars": {"op": "source.bars_csv",
                 "with": {"path": str(folder / "bars.csv"), "instrument": "X", "timezone": "America/New_York"}},
        "target": {"op": "user.scripted_target", "in": "bars.close"},
        "exit": exit_node(exit_op, params),
        "sim": {"op": "backtest.bar_venue", "in": {"market": "bars", "target": "exit"},
                "with": {"cash": 10_000, "fill": fill}},
    }
    path = write_spec(folder, f"by_hand_{place}", nodes, modules=["scripted.py"], defaults={"place": place})
    run = run_spec(path, write=False, record=["exit", "sim"])
    sim = run.replay.recorded["sim"]
    columns = {c: sim[c].to_numpy() for c in ("position", "fill_qty", "fill_price", "entry_price")}
    return run.replay.recorded["exit"]["target"].to_numpy(), columns, run.backtest.trades


BASE_NODES = {
    "bars": {"op": "source.bars_csv",
             "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL", "timezone": "America/New_York"}},
    "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 10}},
    "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 30}},
    "cross": {"op": "signal.crossover", "in": ["fast", "slow"], "with": {"mode": "state"}},
    "target": {"op": "sizing.fraction_of_equity", "in": {"side": "cross", "price": "bars.close",
                                                          "equity": "prev(sim.equity)"}, "with": {"fraction": 0.95}},
}


def example_spec(folder: Path, op_name: str) -> tuple[Path, str]:
    """The op's docstring example as a whole strategy on AAPL; returns its path and the example's node id."""
    example = docstring_example(op_name)
    node_id = next(iter(example))
    nodes = dict(BASE_NODES)
    if "sized" in str(example):
        nodes["sized"] = nodes.pop("target")
    nodes.update(example)
    nodes["sim"] = {"op": "backtest.bar_venue", "in": {"market": "bars", "target": node_id},
                    "with": {"cash": 10_000, "commission": 0.001}}
    return write_spec(folder, "example_" + op_name.replace(".", "_"), nodes), node_id


def columns(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in frame.columns if frame[c].dtype.is_numeric()}
