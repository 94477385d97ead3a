"""Definitions built from spec folders: every spec appears, a broken one is isolated with its file:line:col."""

import datetime as dt
import shutil

import dagster as dg
import pytest

from pipelines.dagster import build_definitions
from pipelines.dagster.definitions import BROKEN_GROUP
from pipelines.spec import load_spec, spec_files
from tests.pipelines.dagster.support import INGEST_BARS, ROOT, STRATEGY_ON_CATALOG, assets_by_key, checks_of

BROKEN = """\
tickloom: 1
name: broken
kind: strategy
nodes:
  bars: {op: source.bars_csv, with: {path: x.csv, instrument: X, timezone: UTC}}
  fast: {op: indicator.smaa, in: bars.close, with: {window: 3}}
"""


@pytest.fixture
def shipped(tmp_path):
    """The project's specs/ copied beside a link to its data/ (relative paths resolve as in the project)."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    (tmp_path / "data").symlink_to(ROOT / "data")
    return tmp_path / "specs"


def test_shipped_specs_load_beside_a_broken_one_which_shows_its_location(shipped, tmp_path):
    broken = shipped / "zz_broken" / "typo.yaml"
    broken.parent.mkdir()
    broken.write_text(BROKEN)
    defs = build_definitions(shipped, tmp_path / "catalog")
    dg.Definitions.validate_loadable(defs)

    assets = assets_by_key(defs)
    broken_keys = [k for k in assets if k.path[0] == BROKEN_GROUP]
    assert broken_keys == [dg.AssetKey([BROKEN_GROUP, "zz_broken__typo"])], [assets[k].description for k in broken_keys]
    description = assets[broken_keys[0]].description
    line = BROKEN.splitlines().index(next(x for x in BROKEN.splitlines() if "smaa" in x)) + 1
    column = BROKEN.splitlines()[line - 1].index("indicator.smaa") + 1
    assert f"{broken}:{line}:{column}" in description and "indicator.sma" in description

    groups = {k.path[0] for k in assets}
    for path in spec_files(ROOT / "specs"):
        assert load_spec(path).name in groups, path  # every shipped spec is there, and none is broken


def test_ingest_nodes_are_daily_partitioned_with_checks_schedule_sensor_and_lineage(shipped, tmp_path):
    defs = build_definitions(shipped, tmp_path / "catalog")
    repo = defs.get_repository_def()
    assets = assets_by_key(defs)
    nasdaq, nyse = dg.AssetKey(["sample_bars", "nasdaq"]), dg.AssetKey(["sample_bars", "nyse"])
    for key in (nasdaq, nyse):
        partitions = assets[key].partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition)
        assert partitions.start.date() == dt.date(2012, 1, 3) and partitions.timezone == "UTC"
        assert assets[key].backfill_policy == dg.BackfillPolicy.single_run()
        assert assets[key].group_names_by_key[key] == "sample_bars"
    assert {c.name for d in checks_of(defs, nasdaq) for c in d.check_keys} == {"monotonic_time", "row_count"}
    # the nasdaq node has a schedule and a landing folder; nyse has neither
    assert {s.name for s in repo.schedule_defs} >= {"sample_bars__nasdaq__schedule"}
    assert {s.name for s in repo.sensor_defs} >= {"sample_bars__nasdaq__landing_sensor"}
    assert not any("nyse" in s.name for s in [*repo.schedule_defs, *repo.sensor_defs])

    graph = repo.asset_graph
    assert graph.get(dg.AssetKey(["sma_cross_catalog", "bars"])).parent_keys == {nasdaq}  # XNAS AAPL: not nyse
    assert dg.AssetKey(["sma_cross_catalog", "bars"]) in graph.get(dg.AssetKey(["sma_cross_catalog", "fast"])).parent_keys
    assert graph.get(dg.AssetKey(["sma_cross", "bars"])).parent_keys == set()  # reads a CSV: no ingest upstream


def test_specs_that_clash_or_break_in_any_way_are_isolated(write_spec, project):
    write_spec("ingest/a.yaml", INGEST_BARS)
    write_spec("ingest/b.yaml", INGEST_BARS)  # the same name: the later file is the broken one
    write_spec("strategies/s.yaml", STRATEGY_ON_CATALOG)
    write_spec("strategies/t.yaml", STRATEGY_ON_CATALOG.replace("name: cross_on_catalog", "name: cross-on-catalog"))
    write_spec("bad/syntax.yaml", "tickloom: 1\nname: [unclosed\n")
    write_spec("bad/mixed.yaml", """
        tickloom: 1
        name: mixed
        kind: ingest
        nodes:
          bars: {op: source.bars_csv, with: {path: x.csv, instrument: X, timezone: UTC}}
    """)
    defs = build_definitions(project / "specs", project / "catalog")
    dg.Definitions.validate_loadable(defs)
    assets = assets_by_key(defs)
    broken = {k.path[1]: assets[k].description for k in assets if k.path[0] == BROKEN_GROUP}
    assert set(broken) == {"ingest__b", "strategies__t", "bad__syntax", "bad__mixed"}
    assert "already uses" in broken["ingest__b"] and str(project / "specs" / "ingest" / "a.yaml") in broken["ingest__b"]
    assert "already uses" in broken["strategies__t"]
    assert f"{project / 'specs' / 'bad' / 'syntax.yaml'}:3:1: YAML syntax error" in broken["bad__syntax"]
    assert "starts at line 2, column 7" in broken["bad__syntax"]
    assert f"{project / 'specs' / 'bad' / 'mixed.yaml'}:5:" in broken["bad__mixed"] and "ingest.files" in broken["bad__mixed"]
    assert dg.AssetKey(["bars_in", "xnas"]) in assets and dg.AssetKey(["cross_on_catalog", "sim"]) in assets


def test_a_node_without_partition_start_is_an_unpartitioned_asset(write_spec, project):
    write_spec("ingest/plain.yaml", INGEST_BARS.replace('      partition_start: "2012-01-01"\n', ""))
    defs = build_definitions(project / "specs", project / "catalog")
    dg.Definitions.validate_loadable(defs)
    asset = assets_by_key(defs)[dg.AssetKey(["bars_in", "xnas"])]
    assert asset.partitions_def is None and asset.backfill_policy is None
    assert "add `partition_start`" in asset.descriptions_by_key[asset.key]


def test_params_are_run_config_with_the_spec_defaults(write_spec, project):
    write_spec("ingest/a.yaml", INGEST_BARS)
    write_spec("strategies/s.yaml", STRATEGY_ON_CATALOG)
    defs = build_definitions(project / "specs", project / "catalog")
    assets = assets_by_key(defs)
    strategy = assets[dg.AssetKey(["cross_on_catalog", "sim"])].op.config_schema.config_type.fields
    assert {k: v.default_value for k, v in strategy.items()} == {"fast": 3, "slow": 8}
    ingest = assets[dg.AssetKey(["bars_in", "xnas"])].op.config_schema.config_type.fields
    assert ingest["samples"].default_value == "../../data/samples" and not ingest["samples"].is_required


def test_ui_refuses_a_missing_specs_folder(tmp_path, capsys):
    from runtime.cli import main

    assert main(["ui", "--specs", str(tmp_path / "nope"), "--home", str(tmp_path / "home")]) == 2
    assert "no specs folder" in capsys.readouterr().err


@pytest.mark.parametrize("bad, message", [
    ('schedule: "0 6 * * *"', "is not a 5-field cron"),
    ("checks: {min_rows: 1, max_rows: 1, freshness_hours: 1000000}", "min_rows 5 is above max_rows 1"),
])
def test_bad_scheduling_fields_fail_at_load_with_their_location(write_spec, project, bad, message):
    from nodes.errors import SpecError

    replacement = {"schedule": 'schedule: "every day"', "checks": "checks: {min_rows: 5, max_rows: 1}"}[bad.split(":")[0]]
    path = write_spec("ingest/bad.yaml", INGEST_BARS.replace(bad, replacement))
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if replacement in text)
    with pytest.raises(SpecError, match=message) as error:
        load_spec(path)
    assert f"{path}:{line}:" in str(error.value)
