"""The tickloom command line, run as a user runs it (in-process through main(), same argv)."""

import json
from pathlib import Path

import jsonschema
import polars as pl
import pytest
import yaml

from pipelines.spec import spec_files
from runtime.cli import DEMO_SPEC, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"


def test_demo_prints_stats_and_writes_every_output(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for key in ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades", "SQN"):
        assert key in printed
    for name in ("stats.json", "trades.parquet", "equity.parquet", "report.png", "spec.json"):
        assert (tmp_path / name).stat().st_size > 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    trades = pl.read_parquet(tmp_path / "trades.parquet")
    assert stats["# Trades"] == trades.height > 0
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_applies_set_and_place_and_records_them_in_the_hash(tmp_path, capsys):
    assert main(["run", str(DEMO_SPEC), "--set", "fast=5", "--place", "sim=cpu", "--out", str(tmp_path / "a")]) == 0
    assert main(["run", str(DEMO_SPEC), "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "spec.json").read_text())
    b = json.loads((tmp_path / "b" / "spec.json").read_text())
    assert a["resolved"]["params"]["fast"] == 5
    assert a["resolved"]["nodes"]["sim"]["place"] == "cpu"
    assert a["spec_hash"] != b["spec_hash"]


def test_validate_exit_codes(tmp_path, capsys):
    assert main(["validate", str(DEMO_SPEC), str(ROOT / "specs" / "deploy" / "sma_cross_paper.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO_SPEC.read_text().replace("indicator.sma", "indicator.smaa", 1))
    assert main(["validate", str(DEMO_SPEC), str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "did you mean 'indicator.sma'" in err


def test_validate_explain_shows_who_set_each_value(capsys):
    overlay = ROOT / "specs" / "deploy" / "sma_cross_paper.yaml"
    assert main(["validate", str(overlay), "--explain", "--set", "fast=15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fast = next(line for line in lines if line.strip().startswith("params.fast "))
    slow = next(line for line in lines if line.strip().startswith("params.slow "))
    cash = next(line for line in lines if line.strip().startswith("nodes.sim.with.cash "))
    assert "--set fast=15" in fast
    assert "sma_cross_paper.yaml:7:" in slow
    assert "sma_cross_paper.yaml:10:" in cash


def test_schema_is_valid_json_schema_and_accepts_every_shipped_spec(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    for spec in spec_files(ROOT / "specs"):
        document = yaml.safe_load(spec.read_text())
        if "extends" not in document:  # overlays are partial by design
            jsonschema.validate(document, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tickloom": 1, "name": "x", "kind": "strategy", "nodes": {}, "nodez": 1}, schema)


def test_ops_lists_every_op_with_ports_and_params(capsys):
    assert main(["ops", "--json"]) == 0
    ops = {op["name"]: op for op in json.loads(capsys.readouterr().out)}
    assert {"indicator.sma", "indicator.ema", "signal.crossover", "backtest.bar_venue", "source.bars_csv"} <= set(ops)
    assert ops["indicator.sma"]["params"]["window"]["required"] is True
    assert ops["backtest.bar_venue"]["inputs"]["market"].startswith("bar{")
    assert main(["ops"]) == 0
    assert "indicator.sma" in capsys.readouterr().out


def test_plan_shows_segments_and_transfers(capsys):
    assert main(["plan", str(DEMO_SPEC), "--place", "cross=cpu"]) == 0
    out = capsys.readouterr().out
    assert "0: numba  fuses fast → slow" in out
    assert "1: cpu    fuses cross" in out
    assert "slow.out: segment 0 (numba) → segment 1 (cpu)" in out
    assert main(["plan", str(DEMO_SPEC), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["target"] for s in plan["segments"]] == ["numba"]
    assert "def segment_0(" in plan["kernels"]["segment_0"]


def test_bad_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    rows = (SAMPLES / "AAPL.csv.gz").read_bytes()
    import gzip

    text = gzip.decompress(rows).decode().splitlines()
    text[5] = text[5].replace(text[5].split(",")[4], "oops")
    (tmp_path / "AAPL.csv").write_text("\n".join(text))
    spec = tmp_path / "s.yaml"
    spec.write_text(DEMO_SPEC.read_text().replace("../../data/samples/AAPL.csv.gz", "AAPL.csv"))
    assert main(["run", str(spec), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "AAPL.csv" in err and "missing or non-numeric close" in err and "line(s) 6" in err
