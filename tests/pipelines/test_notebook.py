"""The notebook API and the quickstart notebook under docs/, executed as a reader would run it."""

import math
import os

import polars as pl
import pytest
from matplotlib.figure import Figure

from nodes.errors import SpecError
from pipelines.notebook import load
from pipelines.run import run_spec
from tests.support import REPO, SMA_CROSS

NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"


def test_study_overrides_runs_and_gives_frames_and_a_figure():
    study = load(SMA_CROSS)
    faster = study.with_params(fast=20)
    assert study.params["fast"] == 10 and faster.params["fast"] == 20  # a study never changes
    bt = faster.run(record=["fast", "slow"])
    single = run_spec(SMA_CROSS, sets=["fast=20"], write=False)
    assert bt.spec_hash == single.spec.spec_hash
    assert bt.stats["Sharpe Ratio"] == single.backtest.stats["Sharpe Ratio"]
    assert bt.trades.equals(single.backtest.trades) and bt.equity.equals(single.backtest.equity)
    fast = bt.outputs("fast")
    assert isinstance(fast, pl.DataFrame) and {"ts_recv", "instrument", "out"} <= set(fast.columns)
    assert math.isnan(fast["out"][18]) and not math.isnan(fast["out"][19])  # SMA(20) is full on the 20th bar
    assert isinstance(bt.plot(), Figure)
    assert bt.stats_frame().height > 20


def test_mistakes_are_named():
    study = load(SMA_CROSS)
    with pytest.raises(SpecError, match="did you mean 'fast'"):
        study.with_params(fsat=3)
    bt = study.run()
    with pytest.raises(KeyError, match=r"run\(record=\['cross'\]\)"):
        bt.outputs("cross")
    with pytest.raises(KeyError, match="did you mean 'slow'"):
        bt.outputs("slwo")


def test_a_windowed_run_and_a_sweep_from_a_study(tmp_path):
    study = load(SMA_CROSS)
    bt = study.run(start="2013-01-01", end="2014-01-01", warmup_start="2012-06-01")
    assert bt.equity["ts"].min() >= 1356998400 * 10**9 and bt.equity["ts"].max() < 1388534400 * 10**9
    sweep = study.sweep({"fast": [5, 10], "slow": [30]})
    assert sweep.table.select("fast", "slow").rows() == [(5, 30), (10, 30)]
    folder = bt.save(tmp_path / "saved")
    assert (folder / "report.html").is_file() and (folder / "stats.json").is_file()


def test_quickstart_notebook_executes(monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="nbclient and ipykernel run the docs notebook (test extras)")
    pytest.importorskip("ipykernel", reason="nbclient needs a Python kernel")
    import nbformat

    # the kernel is another process: make tickloom importable there even without an installed package
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # executed in memory: outputs are never written back
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2  # the backtest and the sweep figures

    kept = nbformat.read(NOTEBOOK, as_version=4)
    assert not [c for c in kept.cells if c.cell_type == "code" and (c.outputs or c.execution_count)], \
        "the notebook under docs/ is kept without outputs"
