"""Ingest assets materialized in process: a partition, a range as one run, run config, the ingest API under them."""

import datetime as dt

import dagster as dg
import pytest

from nodes.catalog import Catalog
from nodes.errors import SpecError
from pipelines.dagster import build_definitions
from pipelines.ingest import ingest_spec
from pipelines.spec import load_spec
from tests.pipelines.dagster.support import DAYS, INGEST_BARS, assets_by_key, checks_of

KEY = dg.AssetKey(["bars_in", "xnas"])
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture
def spec_path(write_spec):
    return write_spec("ingest/bars_in.yaml", INGEST_BARS)


@pytest.fixture
def defs(spec_path, project):
    return build_definitions(project / "specs", project / "catalog")


def metadata(event) -> dict:
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_one_partition_writes_exactly_its_day_and_passes_its_checks(defs, project, instance):
    asset = assets_by_key(defs)[KEY]
    result = dg.materialize([asset, *checks_of(defs, KEY)], instance=instance, partition_key="2012-01-04")
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.partition == "2012-01-04"
    md = metadata(event)
    assert md["rows_written"] == 2 and md["partitions_written"] == 2  # AAPL and MSFT, one bar each
    assert md["rows_outside_range"] == 2 * DAYS - 2 and md["first_date"] == md["last_date"] == "2012-01-04"
    assert md["series"] == ["bars/XNAS/AAPL", "bars/XNAS/MSFT"]

    catalog = Catalog(project / "catalog")
    listing = catalog.ls()
    assert listing["dates"].to_list() == [1, 1] and listing["first_date"].to_list() == [dt.date(2012, 1, 4)] * 2
    runs = catalog.query("select run_id, spec_name, status from ingest_runs")
    assert runs.rows() == [(md["ingest_run_id"], "bars_in", "succeeded")]
    assert md["spec_hash"] == load_spec(project / "specs" / "ingest" / "bars_in.yaml").spec_hash

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"monotonic_time", "row_count", "freshness"}
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items()}
    assert checks["row_count"].metadata["partitions_checked"].value == 2


def test_a_range_is_one_run_that_decodes_once_and_marks_every_partition(defs, project, instance):
    asset = assets_by_key(defs)[KEY]
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    result = dg.materialize([asset, *checks_of(defs, KEY)], instance=instance,
                            tags={RANGE_START: "2012-01-09", RANGE_END: "2012-01-22"})
    assert result.success
    events = result.get_asset_materialization_events()
    days = [f"2012-01-{d:02d}" for d in range(9, 23)]
    assert [e.partition for e in events] == days  # per-partition status, weekends included (ingested, empty)
    ingest_runs = {metadata(e)["ingest_run_id"] for e in events}
    assert len(ingest_runs) == 1  # one ingest run: each file decoded once for the whole range
    assert instance.get_materialized_partitions(KEY) == set(days)
    dates = Catalog(project / "catalog").read("bars", symbols="AAPL")["ts_recv"]
    written = sorted({dt.datetime.fromtimestamp(t / 1e9, dt.timezone.utc).date().isoformat() for t in dates})
    assert written == [d for d in days if dt.date.fromisoformat(d).weekday() < 5 and d != "2012-01-16"]  # MLK day
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_run_config_overrides_a_param_and_is_recorded(defs, project, instance, tmp_path):
    moved = tmp_path / "elsewhere"
    (project / "data" / "samples").rename(moved)
    asset = assets_by_key(defs)[KEY]
    config = {"ops": {asset.op.name: {"config": {"samples": str(moved)}}}}
    result = dg.materialize([asset], instance=instance, partition_key="2012-01-05", run_config=config)
    md = metadata(result.get_asset_materialization_events()[0])
    assert md["overrides"] == {"samples": str(moved)} and md["rows_written"] == 2
    assert md["spec_hash"] == load_spec(project / "specs" / "ingest" / "bars_in.yaml", sets=[f"samples={moved}"]).spec_hash


def test_ingest_spec_can_run_one_node_on_given_files_within_a_range(spec_path, project):
    catalog = project / "catalog"
    files = [project / "data" / "samples" / "KO.csv.gz"]
    result = ingest_spec(spec_path, catalog=catalog, nodes=["xnas"], files=files,
                         start=dt.date(2012, 1, 5), end=dt.datetime(2012, 1, 7))
    assert result.rows == {"bars": 2} and result.outside_range == {"bars": DAYS - 2}
    assert Catalog(catalog).ls()["symbol"].to_list() == ["KO"]
    with pytest.raises(SpecError, match="no node 'nope'"):
        ingest_spec(spec_path, catalog=catalog, nodes=["nope"])
    with pytest.raises(SpecError, match="is not after start"):
        ingest_spec(spec_path, catalog=catalog, start=dt.date(2012, 1, 5), end=dt.date(2012, 1, 5))
