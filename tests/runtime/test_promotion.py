"""Promotion research → paper → live: every gate passing and failing with its reason, stages, rollback, status."""

import argparse
import sys
from pathlib import Path

import pytest

from nodes.errors import SpecError, TickloomError
from pipelines.spec import load_spec
from runtime import cli_promote
from runtime.promotion import (
    PromotionError, Registry, latency_gate, load_settings, parity_gate, promote, record_baseline, require_promoted,
    risk_gate, rollback, status,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
SMA_CROSS = ROOT / "specs" / "strategies" / "sma_cross.yaml"
GATES = ["validate", "stage", "regression", "parity", "risk", "latency"]

# Glue between bars and the pre-trade check, as a user module: bars have float closes and a bar venue takes a
# float target, the check takes prices in 1e-9 units and gives a position in lots.
GLUE_OPS = '''
from pydantic import Field

from nodes.contract import F64, I64, OpParams, StreamOp


class BarQuoteParams(OpParams):
    half_spread_bps: float = Field(1.0, gt=0, le=100, description="half the quoted spread, in basis points")


class BarQuote(StreamOp):
    """Quote a bar's close as a book top, bid and ask half_spread_bps around it, in 1e-9 units."""

    name = "glue.bar_quote"
    Params = BarQuoteParams
    inputs = {"close": F64}
    outputs = {"best_bid": I64, "best_ask": I64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, close):
        half = close * c[0] / 1e4
        return s, int((close - half) * 1e9), int((close + half) * 1e9)


class LotsParams(OpParams):
    units_per_lot: float = Field(1.0, gt=0, description="instrument units in one lot")


class LotsTarget(StreamOp):
    """Turn a position in lots into a target in units."""

    name = "glue.lots_target"
    Params = LotsParams
    inputs = {"lots": I64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, lots):
        return s, lots * c[0]
'''

# An op that keeps state outside its state tuple: a second run of the same plan continues its count.
LEAKY_OPS = '''
from nodes.contract import F64, OpParams, StreamOp

_seen = [0]


class LeakyCount(StreamOp):
    """Count events in a module global (a bug: the count survives from one run to the next)."""

    name = "leak.count"
    Params = OpParams
    inputs = {"x": F64}
    outputs = {"n": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, x):
        _seen[0] += 1
        return s, float(_seen[0])
'''

# SMA(10, 30) crossover whose every order passes a pre-trade check: side → risk (position in lots) → target.
RISKED = f"""\
tickloom: 1
name: sma_risked
kind: strategy
params: {{fast: 10, slow: 30, lots: 5}}
defaults: {{place: numba}}
modules: [glue_ops.py]
placement: {{latency_budget: 2us}}
nodes:
  bars:
    op: source.bars_csv
    with: {{path: {SAMPLES / 'AAPL.csv.gz'}, instrument: AAPL, timezone: America/New_York}}
  fast: {{op: indicator.sma, in: bars.close, with: {{window: "${{fast}}"}}}}
  slow: {{op: indicator.sma, in: bars.close, with: {{window: "${{slow}}"}}}}
  cross: {{op: signal.crossover, in: [fast, slow]}}
  quote: {{op: glue.bar_quote, in: bars.close}}
  risk:
    op: risk.order_limits
    in: {{side: cross, best_bid: quote.best_bid, best_ask: quote.best_ask}}
    with: {{lots: "${{lots}}", max_position_lots: 10, max_notional: 100000, lot_size: 10}}
  target: {{op: glue.lots_target, in: risk.position, with: {{units_per_lot: 10}}}}
  sim:
    op: backtest.bar_venue
    in: {{market: bars, target: target}}
    with: {{cash: 10000, commission: 0.002}}
"""

SIDECAR = """\
regression:
  window: {start: 2013-01-01, end: 2014-01-01, warmup_start: 2012-06-01}
  tolerances:
    Return [%]: 0.01
    "# Trades": 0
    Sharpe Ratio: {abs: 0.001, rel: 0.01}
parity:
  day: 2013-06-28
"""


_GLUE: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def glue_module(tmp_path_factory):
    """One glue module for every spec here: kernels are cached by their ops' files, so they compile once."""
    path = tmp_path_factory.mktemp("glue") / "glue_ops.py"
    path.write_text(GLUE_OPS)
    _GLUE[:] = [path]


def write_spec(folder: Path, text: str = RISKED, name: str = "risked", sidecar: str | None = SIDECAR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("glue_ops.py", str(_GLUE[0])))
    if sidecar is not None:
        (folder / f"{name}.promotion.yaml").write_text(sidecar)
    return path


def sma_cross_copy(folder: Path, extra_nodes: str = "", top: str = "") -> Path:
    """specs/strategies/sma_cross.yaml reading the shipped sample by absolute path, with nodes and keys added."""
    text = SMA_CROSS.read_text().replace("../../data/samples/", f"{SAMPLES}/")
    text = text.replace("defaults: {place: numba}", f"defaults: {{place: numba}}\nmodules: [glue_ops.py]\n{top}")
    return write_spec(folder, text + extra_nodes, name="sma_cross")


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "registry.duckdb")


def gates_of(result) -> dict:
    return {g.gate: g for g in result.gates}


def test_promotion_to_paper_then_live_passes_every_gate_and_records_who_when_why(tmp_path, registry):
    spec_path = write_spec(tmp_path)
    baseline = record_baseline(spec_path, by="carol", reason="first baseline", registry=registry)
    assert baseline["stats"]["# Trades"] > 0

    paper = promote(spec_path, "paper", by="alice", reason="ready for paper", registry=registry)
    live = promote(spec_path, "live", by="bob", reason="two weeks clean on paper", registry=registry)

    for result in (paper, live):
        assert result.passed, result.format()
        assert [g.gate for g in result.gates] == GATES
    assert "3 statistics within tolerance" in gates_of(paper)["regression"].detail
    assert "every order passes a risk node" in gates_of(live)["risk"].detail
    rows = registry.history("sma_risked")
    assert [(r["stage"], r["who"], r["why"], r["passed"]) for r in rows] == [
        ("paper", "alice", "ready for paper", True), ("live", "bob", "two weeks clean on paper", True)]
    assert rows[1]["spec_hash"] == paper.spec_hash == load_spec(spec_path).spec_hash
    assert [g["gate"] for g in rows[1]["gates"]] == GATES and rows[1]["at_utc"] is not None
    assert require_promoted(paper.spec_hash, "live", registry=registry)["id"] == live.id
    assert [(r["spec"], r["stage"]) for r in status(registry).promoted] == [("sma_risked", "paper"), ("sma_risked", "live")]


def test_live_without_paper_is_refused_recorded_and_not_runnable(tmp_path, registry):
    spec_path = write_spec(tmp_path)
    record_baseline(spec_path, registry=registry)

    result = promote(spec_path, "live", by="mallory", registry=registry)

    assert not result.passed and result.exit_code == 1
    stage = gates_of(result)["stage"]
    assert not stage.passed and "live needs the hash promoted to paper first" in stage.detail
    assert all(g.passed for g in result.gates if g.gate != "stage")  # every gate still ran
    assert [(r["stage"], r["passed"], r["who"]) for r in registry.history()] == [("live", False, "mallory")]
    with pytest.raises(PromotionError) as error:
        require_promoted(result.spec_hash, "live", registry=registry, spec="sma_risked")
    assert f"sma_risked hash {result.spec_hash[:12]} at live" in str(error.value)
    assert "nothing of sma_risked is promoted to live" in str(error.value)
    with pytest.raises(PromotionError, match="cannot promote to 'research'"):
        promote(spec_path, "research", registry=registry)


def test_a_changed_param_fails_the_regression_until_a_new_baseline_is_recorded(tmp_path, registry):
    spec_path = write_spec(tmp_path)
    record_baseline(spec_path, by="carol", reason="lots 5", registry=registry)
    write_spec(tmp_path, RISKED.replace("lots: 5}", "lots: 3}"), sidecar=None)

    refused = promote(spec_path, "paper", registry=registry)

    regression = gates_of(refused)["regression"]
    assert not refused.passed and not regression.passed
    assert "Return [%]:" in regression.detail and "another hash: the spec changed since" in regression.detail
    assert [g.gate for g in refused.gates if not g.passed] == ["regression"]
    record_baseline(spec_path, by="carol", reason="smaller lots on purpose", registry=registry)
    assert promote(spec_path, "paper", registry=registry).passed


def test_regression_needs_a_declared_window_and_a_recorded_baseline(tmp_path, registry):
    bare = write_spec(tmp_path / "bare", sidecar=None)
    declared = write_spec(tmp_path / "declared")

    no_window = gates_of(promote(bare, "paper", registry=registry))["regression"]
    no_baseline = gates_of(promote(declared, "paper", registry=registry))["regression"]

    assert not no_window.passed and f"add `regression:` (window, tolerances) to {tmp_path / 'bare'}" in no_window.detail
    assert not no_baseline.passed and "no baseline recorded for sma_risked" in no_baseline.detail
    assert f"tickloom baseline {declared}" in no_baseline.detail
    with pytest.raises(PromotionError, match="no regression window declared"):
        record_baseline(bare, registry=registry)


def test_sidecar_errors_name_file_line_and_column(tmp_path, registry):
    spec_path = write_spec(tmp_path, sidecar=SIDECAR.replace("parity:\n  day:", "parity:\n  dya:")
                           .replace("end: 2014-01-01", "end: 2012-01-01"))
    with pytest.raises(SpecError) as error:
        load_settings(spec_path)
    message = str(error.value)
    sidecar = tmp_path / "risked.promotion.yaml"
    assert f"{sidecar}:8:8: unknown key 'dya'" in message
    assert f"{sidecar}:2:3: regression.window: end 2012-01-01 must be after start 2013-01-01" in message
    refused = promote(spec_path, "paper", registry=registry)
    assert "the promotion file is invalid" in gates_of(refused)["regression"].detail
    assert len(registry.history()) == 1


def test_parity_fails_on_a_day_without_events_and_on_state_outside_an_op(tmp_path):
    weekend = write_spec(tmp_path / "weekend", sidecar=SIDECAR.replace("2013-06-28", "2013-06-29"))
    spec = load_spec(weekend)
    gate = parity_gate(weekend, spec, load_settings(weekend)[0])
    assert not gate.passed and "no event on the sample day 2013-06-29" in gate.detail

    leaky_folder = tmp_path / "leaky"
    leaky = write_spec(leaky_folder, RISKED.replace("modules: [glue_ops.py]", "modules: [glue_ops.py, leaky_ops.py]")
                       + "  leak: {op: leak.count, in: bars.close, place: cpu}\n")
    (leaky_folder / "leaky_ops.py").write_text(LEAKY_OPS)
    gate = parity_gate(leaky, load_spec(leaky), load_settings(leaky)[0])
    assert not gate.passed
    assert gate.detail.startswith("2013-06-28: ") and "leak.n at ts_recv" in gate.detail
    assert {d.split(":")[0].split(".")[0] for d in gate.data["differences"]} == {"leak"}

    clean_path = write_spec(tmp_path / "clean")
    clean = parity_gate(clean_path, load_spec(clean_path), load_settings(clean_path)[0])
    assert clean.passed and "7 stream nodes equal" in clean.detail and clean.data["account_nodes"] == ["sim"]


def test_risk_gate_names_the_instruments_without_limits_and_unchecked_orders(tmp_path):
    plain = load_spec(sma_cross_copy(tmp_path / "plain"))
    gate = risk_gate(plain, "paper")
    assert not gate.passed and gate.detail.startswith("no risk limits for AAPL: no ")

    other_source = f"""\
  bars2:
    op: source.bars_csv
    with: {{path: {SAMPLES / 'MSFT.csv.gz'}, instrument: MSFT, timezone: America/New_York}}
  cross2: {{op: signal.crossover, in: [bars2.open, bars2.close]}}
  quote: {{op: glue.bar_quote, in: bars2.close}}
  risk:
    op: risk.order_limits
    in: {{side: cross2, best_bid: quote.best_bid, best_ask: quote.best_ask}}
    with: {{max_position_lots: 10, max_notional: 100000}}
"""
    gate = risk_gate(load_spec(sma_cross_copy(tmp_path / "other", other_source)), "paper")
    assert not gate.passed
    assert gate.detail == "no risk limits for AAPL (risk nodes risk cover MSFT)"

    # the check sees the signal but the venue's orders come from the sizing beside it
    side_branch = """\
  quote: {op: glue.bar_quote, in: bars.close}
  risk:
    op: risk.order_limits
    in: {side: cross, best_bid: quote.best_bid, best_ask: quote.best_ask}
    with: {max_position_lots: 10, max_notional: 100000}
"""
    branched = load_spec(sma_cross_copy(tmp_path / "branch", side_branch))
    paper, live = risk_gate(branched, "paper"), risk_gate(branched, "live")
    assert paper.passed and "orders of target do not pass a risk node" in paper.detail
    assert not live.passed and live.detail == "live needs every order checked: orders of target do not pass a risk node"
    checked = risk_gate(load_spec(write_spec(tmp_path / "risked")), "live")
    assert checked.passed and checked.data["limits"]["risk"] == {"max_position_lots": 10, "instruments": ["AAPL"]}


def test_latency_gate_needs_a_budget_for_live_and_the_placement_to_meet_it(tmp_path):
    met = latency_gate(load_spec(write_spec(tmp_path / "met")), "live")
    assert met.passed and met.detail.startswith("modeled tick-to-trade") and "budget 2,000 ns" in met.detail
    over = latency_gate(load_spec(write_spec(tmp_path / "over", RISKED.replace("2us", "500ns"))), "live")
    assert not over.passed and "budget 500 ns: over budget" in over.detail
    unbudgeted = load_spec(write_spec(tmp_path / "none", RISKED.replace("placement: {latency_budget: 2us}\n", "")))
    assert latency_gate(unbudgeted, "paper").passed
    live = latency_gate(unbudgeted, "live")
    assert not live.passed and live.detail == "no latency budget declared (placement.latency_budget): live needs one"


def test_a_spec_that_does_not_load_is_refused_and_recorded_under_its_name(tmp_path, registry):
    spec_path = write_spec(tmp_path, RISKED.replace("indicator.sma", "indicator.smaa", 1))
    result = promote(spec_path, "paper", registry=registry)
    assert not result.passed and result.spec == "sma_risked" and result.spec_hash == ""
    assert "did you mean 'indicator.sma'" in gates_of(result)["validate"].detail
    assert {g.detail for g in result.gates[1:]} == {"not run: the spec does not load"}
    assert registry.history()[0]["passed"] is False


def test_rollback_returns_to_the_previous_hash_and_is_recorded(tmp_path, registry):
    spec_path = write_spec(tmp_path)
    record_baseline(spec_path, registry=registry)
    first = promote(spec_path, "paper", registry=registry)
    write_spec(tmp_path, RISKED.replace("lots: 5}", "lots: 4}"), sidecar=None)
    record_baseline(spec_path, registry=registry)
    second = promote(spec_path, "paper", registry=registry)
    assert first.passed and second.passed and second.previous_hash == first.spec_hash
    deployment = registry.start_deployment("sma_risked", second.spec_hash, "paper", pid=4242, host="paper-1")

    row = rollback("sma_risked", "paper", by="ops", reason="fills look wrong", registry=registry)

    assert (row["spec_hash"], row["previous_hash"]) == (first.spec_hash, second.spec_hash)
    assert registry.current("sma_risked", "paper")["spec_hash"] == first.spec_hash
    assert registry.history()[-1]["action"] == "rollback" and registry.history()[-1]["why"] == "fills look wrong"
    shown = status(registry).promoted[0]
    assert (shown["spec_hash"], shown["action"], shown["who"]) == (first.spec_hash, "rollback", "ops")
    require_promoted(first.spec_hash, "paper", registry=registry)
    with pytest.raises(PromotionError, match=f"paper runs {first.spec_hash[:12]}"):
        require_promoted(second.spec_hash, "paper", registry=registry, spec="sma_risked")
    session = status(registry).deployments
    assert [(d["id"], d["host"], d["state"], d["promoted"]) for d in session] == [(deployment, "paper-1", "running", False)]
    assert "NOT the promoted hash" in status(registry).format()
    with pytest.raises(PromotionError, match="no earlier promoted hash"):
        rollback("sma_risked", "paper", registry=registry)


def test_status_lists_sessions_until_they_end_and_marks_silent_ones_stale(tmp_path, registry):
    assert "nothing promoted yet" in status(registry).format()
    running = registry.start_deployment("sma_risked", "ab" * 32, "paper")
    registry.heartbeat(running)
    assert [d["state"] for d in status(registry).deployments] == ["running"]
    assert [d["state"] for d in status(registry, stale_after_s=-1).deployments] == ["stale"]
    registry.end_deployment(running)
    assert status(registry).deployments == []
    assert "no session running" in status(registry).format()


def tickloom(argv: list[str]) -> int:
    """The commands as ``tickloom`` runs them (main's error handling), on a parser holding only them."""
    parser = argparse.ArgumentParser(prog="tickloom")
    cli_promote.add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except TickloomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def test_command_line_promotes_shows_status_and_rolls_back(tmp_path, capsys, monkeypatch):
    spec_path = write_spec(tmp_path)
    monkeypatch.setenv("TICKLOOM_REGISTRY", str(tmp_path / "env.duckdb"))
    assert tickloom(["baseline", str(spec_path), "--reason", "first"]) == 0
    assert tickloom(["promote", str(spec_path), "--to", "live", "--by", "eve"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  stage" in out and "REFUSED (stage)" in out
    assert tickloom(["promote", str(spec_path), "--to", "paper", "--by", "eve", "--reason", "go"]) == 0
    assert "promoted: paper now runs sma_risked" in capsys.readouterr().out
    assert tickloom(["status"]) == 0
    assert "sma_risked" in capsys.readouterr().out
    assert tickloom(["rollback", str(spec_path), "--stage", "paper"]) == 1
    assert "no earlier promoted hash" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        tickloom(["promote", str(spec_path), "--to", "research"])
    assert usage.value.code == 2
    assert (tmp_path / "env.duckdb").exists()


@pytest.mark.slow
def test_the_shipped_paper_market_maker_passes_every_gate_once_its_baseline_is_recorded(tmp_path, capsys, monkeypatch):
    """The operator's path for a shipped spec: record the baseline on purpose, then promote (tick venue stats)."""
    spec_path = ROOT / "specs" / "deploy" / "market_making_paper.yaml"
    monkeypatch.setenv("TICKLOOM_REGISTRY", str(tmp_path / "ops.duckdb"))
    assert tickloom(["promote", str(spec_path), "--to", "paper"]) == 1
    assert "no baseline recorded for market_making_paper" in capsys.readouterr().out
    assert tickloom(["baseline", str(spec_path), "--reason", "shipped cut"]) == 0
    assert "fills" in capsys.readouterr().out
    assert tickloom(["promote", str(spec_path), "--to", "paper", "--by", "ops"]) == 0
    out = capsys.readouterr().out
    assert all(f"PASS  {gate}" in out for gate in GATES), out
    require_promoted(load_spec(spec_path).spec_hash, "paper", str(tmp_path / "ops.duckdb"), "market_making_paper")
