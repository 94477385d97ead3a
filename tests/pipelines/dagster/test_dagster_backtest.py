"""A backtest asset materialized in process: its result in metadata, its files in the catalog, params overridden."""

import base64
import json

import dagster as dg
import pytest

from pipelines.dagster import build_definitions
from pipelines.spec import load_spec
from tests.pipelines.dagster.support import INGEST_BARS, STRATEGY_ON_CATALOG, assets_by_key

SIM = dg.AssetKey(["cross_on_catalog", "sim"])
INGEST = dg.AssetKey(["bars_in", "xnas"])


@pytest.fixture
def defs(write_spec, project, instance):
    """The strategy reads XNAS bars that its upstream ingest asset wrote (materialized through Dagster)."""
    write_spec("ingest/bars_in.yaml", INGEST_BARS)
    write_spec("strategies/cross.yaml", STRATEGY_ON_CATALOG)
    defs = build_definitions(project / "specs", project / "catalog")
    dg.materialize([assets_by_key(defs)[INGEST]], instance=instance,
                   tags={"dagster/asset_partition_range_start": "2012-01-01", "dagster/asset_partition_range_end": "2012-03-01"})
    return defs


def materialized(result) -> dict[dg.AssetKey, dict]:
    return {e.asset_key: {k: v.value for k, v in e.materialization.metadata.items()} for e in result.get_asset_materialization_events()}


def test_a_backtest_shows_stats_plot_trades_and_hash_and_writes_its_run_into_the_catalog(defs, project, instance):
    strategy = assets_by_key(defs)[SIM]
    assert INGEST in defs.get_repository_def().asset_graph.get(dg.AssetKey(["cross_on_catalog", "bars"])).parent_keys
    result = dg.materialize([strategy], instance=instance)
    metadata = materialized(result)
    assert set(metadata) == set(strategy.keys)  # every node of the spec is reported
    sim = metadata[SIM]

    run_folder = project / "catalog" / "runs" / "cross_on_catalog" / result.run_id
    assert sim["run_folder"] == str(run_folder)
    stats = json.loads((run_folder / "stats.json").read_text())
    assert "Return [%]" in sim["stats"] and "Sharpe Ratio" in sim["stats"]
    assert sim["trades"] == stats["# Trades"] > 0
    assert sim["spec_hash"] == stats["spec_hash"] == load_spec(project / "specs" / "strategies" / "cross.yaml").spec_hash
    prefix = "![equity](data:image/png;base64,"
    assert sim["equity_and_drawdown"].startswith(prefix)
    png = base64.b64decode(sim["equity_and_drawdown"][len(prefix):-1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == (run_folder / "report.png").read_bytes()
    assert {"trades.parquet", "equity.parquet", "spec.json", "fast.parquet"} <= {p.name for p in run_folder.iterdir()}
    assert metadata[dg.AssetKey(["cross_on_catalog", "fast"])]["rows"] == stats["events"]
    assert sim["overrides"] == {} and sim["params"] == {"fast": 3, "slow": 8}


def test_params_overridden_from_the_launchpad_are_recorded_with_the_result(defs, project, instance):
    strategy = assets_by_key(defs)[SIM]
    config = {"ops": {strategy.op.name: {"config": {"fast": 4}}}}
    result = dg.materialize([strategy], instance=instance, run_config=config)
    sim = materialized(result)[SIM]
    assert sim["overrides"] == {"fast": 4} and sim["params"] == {"fast": 4, "slow": 8}
    spec_path = project / "specs" / "strategies" / "cross.yaml"
    assert sim["spec_hash"] == load_spec(spec_path, sets=["fast=4"]).spec_hash != load_spec(spec_path).spec_hash
    written = json.loads((project / "catalog" / "runs" / "cross_on_catalog" / result.run_id / "spec.json").read_text())
    assert written["resolved"]["params"]["fast"] == 4 and written["spec_hash"] == sim["spec_hash"]
