"""Stress tests end to end: scenario files (and their errors), composition, the shipped SMA crossover under a
crash and higher costs, the report, the Monte Carlo and the command."""

import argparse
import json
import textwrap

import numpy as np
import polars as pl
import pytest

from nodes.errors import SpecError
from nodes.stress import TRANSFORMS
from pipelines.spec import load_spec
from pipelines.stress import (
    DEFAULT_SCENARIOS,
    is_scenario_file,
    load_scenarios,
    node_overrides,
    run_stress,
    select_scenarios,
    with_node_params,
)
from runtime.cli_stress import add_command
from tests.support import SAMPLES, SMA_CROSS

CRASH_AT = 1_376_524_800 * 10**9  # 2013-08-15, midnight UTC: the crossover is long 166 AAPL then
SCENARIOS = """\
tickloom: 1
kind: stress
scenarios:
  crash:
    - {transform: price_shock, source: bars, at: 2013-08-15, bps: -1000, halflife: 2d}
  costly:
    - {transform: node_params, node: sim, with: {commission: 0.004}}
  late:
    - {transform: latency_spike, start: 2013-05-01, end: 2013-05-15, extra_latency: 3d}
"""


@pytest.fixture(scope="module")
def stressed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stress")
    (folder / "scenarios.yaml").write_text(SCENARIOS)
    return run_stress(SMA_CROSS, folder / "scenarios.yaml", ["crash", "costly"], out_dir=folder / "out",
                      monte_carlo=300, seed=11)


def test_a_deep_shock_while_long_lowers_equity_from_the_shocked_bar(stressed):
    base, crash = stressed.base, stressed.runs[0]
    assert crash.name == "crash"
    before = base.equity["ts"] < CRASH_AT
    np.testing.assert_array_equal(crash.equity["equity"].to_numpy()[before], base.equity["equity"].to_numpy()[before])
    first = int(np.argmax(~before.to_numpy()))
    marks = base.output.replay.recorded["sim"]
    position = marks["position"][first]
    assert position == 166.0
    # the bar opened 13.5 h after the shock: its close is 10 % × 2^(-13.5 / 48) lower, and so is the position's value
    close = marks["mark_price"][first]
    drop = position * close * 0.1 * 2 ** (-13.5 / 48)
    assert base.equity["equity"][first] - crash.equity["equity"][first] == pytest.approx(drop, rel=1e-9)
    assert crash.stats["Equity Peak [$]"] == base.stats["Equity Peak [$]"]  # the peak was before the crash
    assert stressed.row("crash")["Δ Equity Final [$]"] != 0


def test_higher_costs_cost_more_and_leave_less(stressed):
    row = stressed.row("costly")
    assert row["Δ Commissions [$]"] > 0.8 * stressed.row("base")["Commissions [$]"]  # doubled, on smaller trades
    assert row["Δ Equity Final [$]"] < 0 and row["Δ Return [%]"] < 0
    assert row["# Trades"] == stressed.row("base")["# Trades"]  # same signals, same trades
    costly = stressed.runs[1]
    assert costly.output.spec.nodes["sim"].params.commission == 0.004
    assert costly.output.spec.spec_hash != stressed.spec_hash  # an override is another spec
    assert stressed.runs[0].output.spec.spec_hash == stressed.spec_hash  # a stream transform is not


def test_the_table_has_every_run_every_stat_and_its_change(stressed):
    table = stressed.table
    assert table["scenario"].to_list() == ["base", "crash", "costly"]
    assert table.filter(pl.col("scenario") == "base")["Δ Equity Final [$]"].item() == 0.0
    for row in table.iter_rows(named=True):
        assert row["Δ Sharpe Ratio"] == pytest.approx(row["Sharpe Ratio"] - stressed.row("base")["Sharpe Ratio"])
    assert table["# Trades"].dtype == pl.Int64


def test_the_report_and_its_files(stressed):
    out = stressed.out_dir
    names = {f.name for f in stressed.files}
    assert {"stress.parquet", "stress.json", "equity.png", "report.html", "montecarlo_trades.png",
            "montecarlo_block.png", "montecarlo.parquet"} <= names
    assert pl.read_parquet(out / "stress.parquet").equals(stressed.table)
    for run in ("base", "crash", "costly"):
        assert (out / run / "report.html").is_file() and (out / run / "stats.json").is_file()
    described = json.loads((out / "stress.json").read_text())
    crash = described["runs"][1]
    assert crash["steps"] == [{"transform": "price_shock", "source": "bars", "at": "2013-08-15", "bps": -1000,
                               "halflife": "2d"}]
    assert crash["delta"]["Equity Final [$]"] == pytest.approx(stressed.row("crash")["Δ Equity Final [$]"])
    assert [m["method"] for m in described["monte_carlo"]] == ["trades", "block"]
    page = (out / "report.html").read_text()
    assert "<h2>Base run and scenarios</h2>" in page and "price_shock" in page and "class='worse'" in page
    assert "Monte Carlo: trades resampled" in page and "Monte Carlo: blocks of returns resampled" in page
    assert "http" not in page.replace("<!DOCTYPE html>", "")  # self-contained


def test_monte_carlo_of_the_base_run(stressed):
    trades, block = stressed.monte_carlo
    assert (trades.n_paths, trades.steps, trades.seed) == (300, stressed.row("base")["# Trades"], 11)
    assert block.steps == stressed.base.equity.height - 1 and block.block_len == 9
    assert block.base["Equity Final [$]"] == pytest.approx(stressed.row("base")["Equity Final [$]"])
    assert block.base["Max. Drawdown [%]"] == pytest.approx(stressed.row("base")["Max. Drawdown [%]"])


def test_the_default_scenarios_and_every_docstring_example_load(write_yaml):
    scenarios = load_scenarios(DEFAULT_SCENARIOS)
    assert {"flash_crash", "high_vol", "outage", "costly"} <= set(scenarios)
    for name, step in TRANSFORMS.items():
        example = textwrap.dedent(step.__doc__.split("Example::", 1)[1]).strip("\n")
        text = "tickloom: 1\nkind: stress\nscenarios:\n" + textwrap.indent(example, "  ") + "\n"
        loaded = load_scenarios(write_yaml(text, f"{name}.yaml").path)
        assert [s.name for scenario in loaded.values() for s in scenario.steps] == [name], name


def test_names_compose_with_plus_and_unknown_names_get_a_suggestion(write_yaml):
    scenarios = load_scenarios(write_yaml(SCENARIOS).path)
    both = select_scenarios(scenarios, ["crash+costly"])
    assert [s.name for s in both] == ["crash+costly"]
    assert [step.name for step in both[0].steps] == ["price_shock", "node_params"]
    assert [s.name for s in select_scenarios(scenarios, [])] == ["crash", "costly", "late"]
    with pytest.raises(SpecError, match="--scenario crash\\+cosly: no scenario 'cosly'; did you mean 'costly'"):
        select_scenarios(scenarios, ["crash+cosly"])


@pytest.mark.parametrize("step, needle, message", [
    ("{transform: price_shok, at: 2013-08-15, bps: -100}", "price_shok", "unknown transform 'price_shok'; did you mean 'price_shock'"),
    ("{transform: price_shock, at: 2013-08-15, bps: -100, half_life: 2d}", "half_life: ^2d", "unknown key 'half_life'; did you mean 'halflife'"),
    ("{transform: price_shock, at: 15/08/2013, bps: -100}", "15/08/2013", "not a date"),
    ("{transform: feed_outage, start: 2013-08-15, end: 2013-08-15T00:00:00Z}", "{transform: feed_outage", "must be after start"),
    ("{transform: node_params, source: bars, node: sim, with: {cash: 1}}", "bars", "not a source: remove 'source'"),
    ("{at: 2013-08-15, bps: -100}", "{at:", "missing required key 'transform'"),
])
def test_scenario_file_errors_name_file_line_and_column(write_yaml, step, needle, message):
    written = write_yaml(f"tickloom: 1\nkind: stress\nscenarios:\n  broken:\n    - {{transform: price_shock, at: 2013-01-01, "
                         f"bps: 10}}\n    - {step}\n")
    with pytest.raises(SpecError) as error:
        load_scenarios(written.path)
    assert str(error.value).startswith(f"{written.at(needle)}: "), str(error.value)
    assert message in str(error.value)


def test_a_file_that_is_not_a_scenario_file_says_so(write_yaml):
    with pytest.raises(SpecError, match="kind: Input should be 'stress'"):
        load_scenarios(write_yaml(SMA_CROSS.read_text()).path)


def test_run_time_errors_point_at_the_step(write_yaml, tmp_path):
    scenarios = write_yaml(SCENARIOS + "  wrong_source:\n    - {transform: feed_outage, source: fast, start: 2013-01-01, "
                           "end: 2013-01-02}\n", "scenarios.yaml")
    with pytest.raises(SpecError) as error:
        run_stress(SMA_CROSS, scenarios.path, ["wrong_source"], write=False)
    assert str(error.value).startswith(f"{scenarios.at('{transform: feed_outage')}: feed_outage: 'fast' is not a source")
    spec = write_yaml(f"""\
        tickloom: 1
        name: mbo
        kind: research
        nodes:
          md: {{op: source.dbn, with: {{path: {SAMPLES / 'dbn' / 'test_data.mbo.dbn'}, schema: orders}}}}
        """, "mbo.yaml")
    l3 = write_yaml("tickloom: 1\nkind: stress\nscenarios:\n  crash:\n    - {transform: price_shock, at: 0, bps: -5}\n",
                    "l3.yaml")
    with pytest.raises(SpecError) as error:
        run_stress(spec.path, l3.path, [], write=False)
    assert str(error.value).startswith(f"{l3.at('{transform: price_shock')}: price_shock on source 'md': ")
    assert "L3" in str(error.value)


def test_a_node_override_the_op_rejects_is_located(write_yaml):
    scenarios = write_yaml("tickloom: 1\nkind: stress\nscenarios:\n  bad:\n"
                           "    - {transform: node_params, node: sim, with: {comission: 0.1}}\n")
    with pytest.raises(SpecError) as error:
        run_stress(SMA_CROSS, scenarios.path, [], write=False)
    assert str(error.value).startswith(f"{scenarios.at('{transform: node_params')}: node 'sim': unknown key 'comission'")


def test_the_command_prints_the_comparison_and_writes_the_report(tmp_path, capsys, write_yaml):
    scenarios = write_yaml(SCENARIOS, "scenarios.yaml")
    parser = argparse.ArgumentParser(prog="tickloom")
    add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["stress", str(SMA_CROSS), "--scenarios", str(scenarios.path), "--scenario", "late",
                              "--scenario", "crash+costly", "--monte-carlo", "50", "--block-len", "5",
                              "--out", str(tmp_path / "out")])
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "crash+costly" in printed and "late" in printed and "Monte Carlo (block: 50 paths" in printed
    assert f"wrote {tmp_path / 'out'}/" in printed
    assert (tmp_path / "out" / "crash+costly" / "report.html").is_file()
    described = json.loads((tmp_path / "out" / "stress.json").read_text())
    assert described["monte_carlo"][1]["block_len"] == 5
    args = parser.parse_args(["stress", str(SMA_CROSS), "--monte-carlo", "-1"])
    assert args.handler(args) == 2



def test_scenario_files_are_told_apart_from_specs():
    assert is_scenario_file(DEFAULT_SCENARIOS) and is_scenario_file(DEFAULT_SCENARIOS.with_name("binance.yaml"))
    assert not is_scenario_file(SMA_CROSS)


MARKET_MAKING = SMA_CROSS.parent / "market_making_binance.yaml"
BINANCE_SCENARIOS = DEFAULT_SCENARIOS.with_name("binance.yaml")


def _needs_tick_venue():
    from nodes.contract import default_registry

    if default_registry().get("backtest.tick_venue") is None:
        pytest.skip("backtest.tick_venue is not in the op library yet (being written)")


def test_a_reject_burst_becomes_the_tick_venues_first_reject_window():
    _needs_tick_venue()
    spec = load_spec(MARKET_MAKING)
    rejects = select_scenarios(load_scenarios(BINANCE_SCENARIOS), ["rejects"])[0]
    changed = with_node_params(spec, node_overrides(spec, list(rejects.steps)))
    window = changed.nodes["venue"].params.reject_windows[0]
    assert (window.start, window.end, window.rate) == (1_723_161_260 * 10**9, 1_723_161_266 * 10**9, 1.0)
    assert changed.spec_hash != spec.spec_hash
    assert changed.nodes["venue"].params.seed == spec.nodes["venue"].params.seed  # the rest as the spec says


def test_tick_market_making_under_a_crash_and_a_reject_burst():
    _needs_tick_venue()
    result = run_stress(MARKET_MAKING, BINANCE_SCENARIOS, ["flash_crash", "rejects"], write=False)
    crash, rejects = result.runs
    assert crash.output.replay.events > result.base.output.replay.events  # the book re-published as it fades
    orders, base_orders = rejects.output.replay.logs["venue"]["orders"], result.base.output.replay.logs["venue"]["orders"]
    assert orders.filter(pl.col("event") == "rejected").height > base_orders.filter(pl.col("event") == "rejected").height
