"""Walk-forward: folds tile the data without overlapping tests, choices use in-sample data only, a fold's results
do not change when later bars do, each run is warmed up, and out-of-sample results are chained and scored apart."""

import gzip
import json
import math

import numpy as np
import polars as pl
import pytest

from nodes.errors import SpecError
from pipelines.run import run_spec
from pipelines.time_window import TimeWindow, event_times
from pipelines.spec import load_spec
from pipelines.walkforward import plan_folds, run_walkforward
from runtime.cli import main
from tests.support import SAMPLES, SMA_CROSS, sma_cross_copy

GRID = {"fast": [5, 10, 20], "slow": [30, 60]}
SETTINGS = {"train_bars": 200, "test_bars": 100}


def test_rolling_anchored_and_gapped_folds():
    rolling = plan_folds(754, 200, 100)
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in rolling] == [
        (0, 200, 200, 300), (100, 300, 300, 400), (200, 400, 400, 500), (300, 500, 500, 600), (400, 600, 600, 700)]
    anchored = plan_folds(754, 200, 100, anchored=True)
    assert all(f.train_start == 0 and f.train_end == f.test_start for f in anchored)
    gapped = plan_folds(754, 200, 100, step_bars=150)
    assert [f.test_start for f in gapped] == [200, 350, 500, 650]
    for folds in (rolling, anchored, gapped):
        assert all(a.test_end <= b.test_start for a, b in zip(folds, folds[1:]))  # test windows never overlap
        assert all(f.train_end <= f.test_start for f in folds)


@pytest.mark.parametrize("args, message", [
    ((754, 200, 100, 50), "must be >= --test"),
    ((250, 200, 100), "fewer than --train 200 \\+ --test 100"),
    ((754, 0, 100), "--train must be a whole number"),
])
def test_bad_fold_settings_are_refused(args, message):
    with pytest.raises(SpecError, match=message):
        plan_folds(*args)


@pytest.fixture(scope="module")
def result():
    return run_walkforward(SMA_CROSS, GRID, **SETTINGS)


def test_every_fold_reports_choice_in_sample_and_out_of_sample_stats(result):
    folds = result.folds
    assert folds.height == 5 and result.settings["bars_left_out"] == 54
    assert {"fast", "slow", "IS Sharpe Ratio", "OOS Sharpe Ratio", "IS # Trades", "OOS Return [%]"} <= set(folds.columns)
    assert (folds["train_end_ns"] < folds["test_start_ns"]).all()
    assert (folds["test_end_ns"].head(4) < folds["test_start_ns"].tail(4)).all()
    # the choice is the in-sample best of that fold's sweep, which holds every combination
    assert result.in_sample.height == 5 * 6
    for row in folds.iter_rows(named=True):
        sweep = result.in_sample.filter(pl.col("fold") == row["fold"])
        best = sweep.sort(pl.col("Sharpe Ratio").fill_nan(None), descending=True, nulls_last=True,
                          maintain_order=True).row(0, named=True)
        assert (row["fast"], row["slow"]) == (best["fast"], best["slow"])
        assert row["IS Sharpe Ratio"] == best["Sharpe Ratio"]
        assert sweep.filter(pl.col("chosen")).select("fast", "slow").row(0) == (best["fast"], best["slow"])


def test_out_of_sample_runs_are_windowed_warmed_up_and_match_a_direct_run(result):
    times = event_times(load_spec(SMA_CROSS))
    fold = result.folds.row(2, named=True)
    window = TimeWindow(int(times[400]), int(times[500]), int(times[400 - 200]))
    direct = run_spec(SMA_CROSS, sets=[f"fast={fold['fast']}", f"slow={fold['slow']}"], write=False, window=window)
    assert fold["test_start_ns"] == window.start_ns and fold["test_end_ns"] == int(times[499])
    for name in ("Return [%]", "Sharpe Ratio", "# Trades", "Max. Drawdown [%]", "Start_ns", "End_ns"):
        a, b = fold[f"OOS {name}"], direct.backtest.stats[name]
        assert a == b or (math.isnan(a) and math.isnan(b)), name
    assert direct.replay.warmup_events == 200 and direct.replay.events == 100


def test_out_of_sample_equity_is_chained_and_scored_on_its_own(result):
    equity = result.oos_equity
    assert equity["ts"].is_sorted() and equity["ts"].n_unique() == equity.height
    assert equity["equity"][0] == 10_000.0
    growth = np.prod([1 + r / 100 for r in result.folds["OOS Return [%]"]])
    assert result.oos_stats["Return [%]"] == pytest.approx((growth - 1) * 100, rel=1e-9)
    for k in range(1, 5):  # each fold opens flat with the capital the previous one closed with
        before = equity.filter(pl.col("fold") == k - 1)["equity"][-1]
        assert equity.filter(pl.col("fold") == k)["equity"][0] == pytest.approx(before, rel=1e-12)
    assert result.oos_stats["Start_ns"] == result.folds["test_start_ns"][0]
    assert result.oos_stats["# Trades"] == result.oos_trades.height == result.folds["OOS # Trades"].sum()


def _bars_copy(path, perturb_from_date=None, seed=7):
    frame = pl.read_csv(SAMPLES / "AAPL.csv.gz")
    if perturb_from_date is not None:
        rng = np.random.default_rng(seed)
        factor = pl.Series(rng.uniform(0.6, 1.4, frame.height))
        later = pl.col("date").cast(pl.String) >= perturb_from_date
        frame = frame.with_columns([pl.when(later).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
                                    for c in ("open", "high", "low", "close")])
    with gzip.open(path, "wt") as file:
        file.write(frame.write_csv())
    return path


def test_a_fold_never_sees_bars_after_its_test_window(tmp_path):
    # bars from fold 1's test end on are scrambled: folds 0 and 1 must not move, later folds must
    dates = pl.read_csv(SAMPLES / "AAPL.csv.gz")["date"].cast(pl.String)
    first_unseen = dates[400]  # fold 1 tests on bars [300, 400)
    for folder in ("base", "scrambled"):
        (tmp_path / folder).mkdir()
    # both copies are re-written by polars, so they differ only in the scrambled bars
    base = sma_cross_copy(tmp_path / "base", bars_path=_bars_copy(tmp_path / "base" / "AAPL.csv.gz"))
    scrambled = sma_cross_copy(tmp_path / "scrambled",
                               bars_path=_bars_copy(tmp_path / "scrambled" / "AAPL.csv.gz", first_unseen))
    a = run_walkforward(base, GRID, **SETTINGS)
    b = run_walkforward(scrambled, GRID, **SETTINGS)
    for k in (0, 1):
        row_a, row_b = a.folds.row(k, named=True), b.folds.row(k, named=True)
        for key in row_a:
            assert row_a[key] == row_b[key] or (math.isnan(row_a[key]) and math.isnan(row_b[key])), (k, key)
        assert a.in_sample.filter(pl.col("fold") == k).drop("spec_hash").equals(
            b.in_sample.filter(pl.col("fold") == k).drop("spec_hash"))
    assert a.folds.row(2, named=True)["OOS Return [%]"] != b.folds.row(2, named=True)["OOS Return [%]"]


def test_cli_walkforward_writes_every_fold_and_a_report_that_re_renders(tmp_path, capsys):
    out = tmp_path / "wf"
    code = main(["walkforward", str(SMA_CROSS), "--grid", "fast=5,20", "--grid", "slow=30,60", "--train", "252",
                 "--test", "126", "--workers", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 folds over 754 bars" in printed and "out-of-sample statistics" in printed
    for name in ("folds.parquet", "in_sample.parquet", "oos_equity.parquet", "oos_trades.parquet", "oos_stats.json",
                 "walkforward.json", "walkforward.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "walkforward.json").read_text())["train_bars"] == 252
    page = (out / "report.html").read_text()
    assert "id='folds'" in page and "walk-forward report" in page
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    assert "id='folds'" in (out / "report.html").read_text()
