"""specs/research/equities_overview.yaml runs from the command line on the shipped samples and writes its tables."""

import json
from pathlib import Path

import numpy as np
import polars as pl

from runtime.cli import main
from tests.nodes.research.support import SAMPLE_INSTRUMENTS

SPEC = Path(__file__).resolve().parents[3] / "specs" / "research" / "equities_overview.yaml"
TABLES = ["vol_close_to_close", "vol_parkinson", "vol_garman_klass", "vol_rogers_satchell", "vol_yang_zhang",
          "vol_yang_zhang_rolling", "returns", "autocorrelation", "correlation", "correlation.aligned", "weekly"]


def test_tickloom_run_writes_every_table(tmp_path, capsys):
    assert main(["run", str(SPEC), "--out", str(tmp_path)]) == 0
    assert "equities_overview" in capsys.readouterr().out
    for name in TABLES:
        assert (tmp_path / f"{name}.parquet").exists(), name
    assert json.loads((tmp_path / "spec.json").read_text())["resolved"]["kind"] == "research"

    for estimator in ("close_to_close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang"):
        vol = pl.read_parquet(tmp_path / f"vol_{estimator}.parquet")
        assert vol["instrument"].to_list() == SAMPLE_INSTRUMENTS
        # annualised daily volatility of large US stocks in 2012-2014: 10-40 %
        assert vol["volatility"].is_between(0.10, 0.40).all(), (estimator, vol["volatility"].to_list())
    rolling = pl.read_parquet(tmp_path / "vol_yang_zhang_rolling.parquet")
    # warm-up: the first bar has no previous close, then 20 more bars fill the 21-bar window
    assert rolling.height == 4 * 754 and rolling["volatility"].is_nan().sum() == 4 * 21

    correlation = pl.read_parquet(tmp_path / "correlation.parquet")
    pearson = correlation.filter(pl.col("method") == "pearson").select(SAMPLE_INSTRUMENTS).to_numpy()
    assert np.all(np.linalg.eigvalsh(pearson) > 0) and np.all((pearson > 0) & (pearson <= 1))

    weekly = pl.read_parquet(tmp_path / "weekly.parquet")
    assert weekly["input_bars"].sum() == 4 * 754 and weekly["input_bars"].max() == 5
    assert (weekly["ts_recv"] - weekly["ts_event"]).min() >= 4 * 86_400 * 10**9
