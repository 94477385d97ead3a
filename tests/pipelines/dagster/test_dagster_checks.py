"""Data-quality rules as asset checks: they pass on good data and fail on deliberately bad data."""

import dagster as dg
import polars as pl
import pytest

from nodes.catalog.layout import CatalogLayout, PartitionKey
from pipelines.dagster import build_definitions
from tests.pipelines.dagster.support import INGEST_BARS, assets_by_key, checks_of

DBN_SPEC = """
tickloom: 1
name: futures
kind: ingest
nodes:
  glbx:
    op: ingest.files
    with:
      format: dbn
      paths: [../../data/samples/dbn/test_data.mbp-1.dbn]
      partition_start: "2020-12-01"
      checks: {monotonic_time: true, max_sequence_gaps: MAX_GAPS, no_crossed_books: true, min_rows: 1, max_rows: 10}
"""
KEY = dg.AssetKey(["futures", "glbx"])
DAY = "2020-12-28"


def run(defs, key, instance, checks_only=False, partition_key=None):
    asset = assets_by_key(defs)[key]
    selection = dg.AssetSelection.checks_for_assets(key) if checks_only else None
    result = dg.materialize([asset, *checks_of(defs, key)], instance=instance, partition_key=partition_key,
                            selection=selection)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def outcome(checks) -> dict:
    return {name: e.passed for name, e in checks.items()}


@pytest.fixture
def futures(write_spec, project):
    def build(max_gaps: int):
        write_spec("ingest/futures.yaml", DBN_SPEC.replace("MAX_GAPS", str(max_gaps)))
        return build_definitions(project / "specs", project / "catalog")

    return build


def test_book_data_passes_every_rule_it_keeps(futures, instance):
    checks = run(futures(5), KEY, instance, partition_key=DAY)
    assert outcome(checks) == {"monotonic_time": True, "sequence_gaps": True, "crossed_books": True, "row_count": True}
    assert checks["sequence_gaps"].metadata["gaps"].value == 1  # the sample's sequence steps 1170362 → 1170364


def test_sequence_gaps_over_the_threshold_fail(futures, instance):
    checks = run(futures(0), KEY, instance, partition_key=DAY)
    assert outcome(checks)["sequence_gaps"] is False
    assert "1 sequence gap(s), at most 0 allowed" == checks["sequence_gaps"].description


def test_a_crossed_and_disordered_partition_fails_when_checked_again(futures, instance, project):
    defs = futures(5)
    assert all(outcome(run(defs, KEY, instance, partition_key=DAY)).values())
    # damage the written partition behind the catalog's back: time backwards, bid above ask, an extra row
    layout = CatalogLayout(project / "catalog")
    [(key, path)] = list(layout.partitions("quotes"))
    good = pl.read_parquet(path)
    bad = pl.concat([good, good.head(1)]).with_columns(
        pl.Series("ts_recv", good["ts_recv"].to_list()[::-1] + [good["ts_recv"][0]]),
        pl.Series("bid_px", [good["ask_px"][0] + 1, *good["bid_px"].to_list()[1:], good["bid_px"][0]]),
    )
    bad.write_parquet(path)
    checks = run(defs, KEY, instance, checks_only=True)  # executed alone: judges the latest materialization
    assert outcome(checks) == {"monotonic_time": False, "sequence_gaps": True, "crossed_books": False, "row_count": True}
    assert checks["crossed_books"].metadata["crossed_quote_rows"].value == 1
    assert checks["monotonic_time"].metadata["partitions_backwards"].value == 1
    assert key == PartitionKey("quotes", "GLBX.MDP3", "ESH1", key.date)


def test_row_bounds_and_freshness_fail_on_daily_bars_that_break_them(write_spec, project, instance):
    write_spec("ingest/bars_in.yaml", INGEST_BARS.replace("min_rows: 1, max_rows: 1", "min_rows: 2, max_rows: 5").replace(
        "freshness_hours: 1000000", "freshness_hours: 24"))
    defs = build_definitions(project / "specs", project / "catalog")
    checks = run(defs, dg.AssetKey(["bars_in", "xnas"]), instance, partition_key="2012-01-04")
    assert outcome(checks) == {"monotonic_time": True, "row_count": False, "freshness": False}
    assert checks["row_count"].description == "2 of 2 partition(s) outside 2..5 rows"
    assert checks["freshness"].metadata["stale_series"].value == 2


def test_checks_without_any_materialization_say_so(futures, instance):
    checks = run(futures(5), KEY, instance, checks_only=True)
    assert not any(outcome(checks).values())
    assert all("no materialization" in e.description for e in checks.values())
