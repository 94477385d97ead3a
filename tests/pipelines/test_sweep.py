"""Parameter sweeps: every combination is a row equal to its single run, nothing is skipped unless --where says
so, the order is the grid's whatever the executor, and the CLI writes the table and the heatmap."""

import json
import math

import polars as pl
import pytest

from nodes.errors import SpecError
from pipelines.run import run_spec
from pipelines.sweep import (
    LocalProcessExecutor,
    SerialExecutor,
    Where,
    numeric_stat_names,
    parse_grid,
    run_sweep,
    set_options,
)
from runtime.cli import main
from tests.support import SMA_CROSS

PARAMS = {"fast": 10, "slow": 30, "fraction": 0.95}
PNG = b"\x89PNG\r\n\x1a\n"


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def test_grid_syntax_ranges_include_a_reached_stop_lists_and_single_values():
    axes = parse_grid(["fast=5:50:5", "slow=20:45:10", "fraction=0.1:0.3:0.1"], PARAMS)
    assert axes[0].values == (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    assert axes[1].values == (20, 30, 40)  # 45 is not reached by the steps
    assert axes[2].values == (0.1, 0.2, 0.3)
    assert parse_grid(["fast=3,8", "slow=40"], PARAMS)[0].values == (3, 8)
    assert parse_grid(["fast=3,8", "slow=40"], PARAMS)[1].values == (40,)


@pytest.mark.parametrize("item, message", [
    ("fsat=1:5:1", "did you mean 'fast'"),
    ("fast", "expected name=start:stop:step"),
    ("fast=5:1:1", "stop (1) is below start (5)"),
    ("fast=1:5:0", "step must be > 0"),
    ("fast=a:5:1", "must be numbers"),
])
def test_grid_errors_say_what_is_wrong(item, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_grid([item], PARAMS)
    with pytest.raises(SpecError, match="already swept"):
        parse_grid(["fast=1,2", "fast=3"], PARAMS)


def test_where_is_a_safe_expression_over_params():
    assert Where("fast < slow and fraction <= 1", PARAMS)({"fast": 5, "slow": 30, "fraction": 0.5})
    assert not Where("slow >= 2 * fast", PARAMS)({"fast": 20, "slow": 30, "fraction": 0.5})
    with pytest.raises(SpecError, match="did you mean 'slow'"):
        Where("fast < slwo", PARAMS)
    with pytest.raises(SpecError, match="Call is not allowed"):
        Where("__import__('os').system('true')", PARAMS)


def test_set_options_round_trip_through_the_loader():
    assert set_options({"fast": 5, "fraction": 1e-05}) == ["fast=5", "fraction=1.0e-05"]


def test_every_combination_is_a_row_equal_to_its_single_run():
    result = run_sweep(SMA_CROSS, ["fast=5:15:5", "slow=30,50"])
    table = result.table
    assert table.height == result.combinations == 6 and result.skipped == 0
    assert table.select("fast", "slow").rows() == [(5, 30), (5, 50), (10, 30), (10, 50), (15, 30), (15, 50)]
    assert table["fraction"].to_list() == [0.95] * 6  # unswept params are columns too
    assert set(numeric_stat_names()) <= set(table.columns) and "Duration" not in table.columns
    for row in table.iter_rows(named=True):
        single = run_spec(SMA_CROSS, sets=[f"fast={row['fast']}", f"slow={row['slow']}"], write=False)
        assert row["spec_hash"] == single.spec.spec_hash
        for name in numeric_stat_names():
            assert same(float(row[name]), float(single.backtest.stats[name])), (row["fast"], row["slow"], name)
    best = result.best()
    assert best["Sharpe Ratio"] == table["Sharpe Ratio"].max()


def test_nothing_is_skipped_without_where_and_where_skips_explicitly():
    everything = run_sweep(SMA_CROSS, {"fast": [10, 30, 50], "slow": [30]})
    assert everything.table["fast"].to_list() == [10, 30, 50]  # fast >= slow still runs: never silently skipped
    filtered = run_sweep(SMA_CROSS, {"fast": [10, 30, 50], "slow": [30]}, where="fast < slow")
    assert filtered.table["fast"].to_list() == [10] and filtered.skipped == 2 and filtered.combinations == 3
    assert filtered.table.row(0) == everything.table.row(0)
    with pytest.raises(SpecError, match="leaves none of the 3 combinations"):
        run_sweep(SMA_CROSS, {"fast": [10, 30, 50], "slow": [30]}, where="fast > 100")


def test_unknown_metric_gets_did_you_mean():
    with pytest.raises(SpecError, match="did you mean 'Sharpe Ratio'"):
        run_sweep(SMA_CROSS, {"fast": [5]}, metric="Sharpe ratio")


def test_a_combination_the_spec_rejects_names_the_combination():
    with pytest.raises(SpecError, match="combination fast=0"):
        run_sweep(SMA_CROSS, {"fast": [0]})


class ReversedExecutor:
    """An executor that finishes jobs in reverse order but, as the protocol says, returns them in job order."""

    def __init__(self):
        self.jobs = 0

    def map(self, function, jobs):
        self.jobs += len(jobs)
        results = [function(job) for job in reversed(jobs)]
        return list(reversed(results))


def test_any_executor_plugs_in_and_the_table_keeps_grid_order():
    serial = run_sweep(SMA_CROSS, {"fast": [5, 20], "slow": [30, 60]}, executor=SerialExecutor())
    executor = ReversedExecutor()
    reversed_ = run_sweep(SMA_CROSS, {"fast": [5, 20], "slow": [30, 60]}, executor=executor)
    assert executor.jobs == 4
    assert serial.table.equals(reversed_.table)


def test_local_process_pool_gives_the_serial_table():
    grid = {"fast": [5, 10, 20], "slow": [40]}
    serial = run_sweep(SMA_CROSS, grid)
    pooled = run_sweep(SMA_CROSS, grid, executor=LocalProcessExecutor(workers=2))
    assert pooled.table.equals(serial.table)


def test_cli_sweep_writes_table_json_and_heatmap(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", str(SMA_CROSS), "--grid", "fast=5:15:5", "--grid", "slow=10,40", "--where", "fast < slow",
                 "--workers", "1", "--out", str(out), "--top", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "4 of 6 combinations run, 2 skipped" in printed and "best 3 by Sharpe Ratio" in printed
    table = pl.read_parquet(out / "sweep.parquet")
    assert table.height == 4 and {"fast", "slow", "fraction", "Sharpe Ratio", "# Trades"} <= set(table.columns)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["skipped"] == 2 and meta["where"] == "fast < slow" and meta["best"]["Sharpe Ratio"] == table["Sharpe Ratio"].max()
    assert (out / "heatmap.png").read_bytes()[:8] == PNG


def test_cli_sweep_reports_a_bad_grid_with_exit_1(tmp_path, capsys):
    assert main(["sweep", str(SMA_CROSS), "--grid", "fsat=1,2", "--out", str(tmp_path)]) == 1
    assert "did you mean 'fast'" in capsys.readouterr().err
