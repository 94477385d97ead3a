"""The landing-folder sensor, the landing job and the daily schedule of an ingest node."""

import datetime as dt
import json
import os
import shutil

import dagster as dg
import pytest

from nodes.catalog import Catalog
from pipelines.dagster import build_definitions
from pipelines.dagster import ingest as dagster_ingest
from tests.pipelines.dagster.support import DAYS, INGEST_BARS

KEY = dg.AssetKey(["bars_in", "xnas"])
SENSOR, LANDING_JOB, SCHEDULE = "bars_in__xnas__landing_sensor", "bars_in__xnas__landing", "bars_in__xnas__schedule"


@pytest.fixture
def repo(write_spec, project):
    write_spec("ingest/bars_in.yaml", INGEST_BARS)  # landing: ../../landing → <project>/landing
    return build_definitions(project / "specs", project / "catalog").get_repository_def()


def tick(repo, instance, cursor):
    result = repo.get_sensor_def(SENSOR)(dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repo))
    if isinstance(result, dg.SkipReason):
        return [], cursor, result.skip_message
    skip = result.skip_reason.skip_message if result.skip_reason else None
    return result.run_requests, result.cursor, skip


def files_of(request) -> list[str]:
    [op] = request.run_config["ops"].values()
    return op["config"]["files"]


def land(project, *symbols):
    for symbol in symbols:
        shutil.copy(project / "data" / "samples" / f"{symbol}.csv.gz", project / "landing" / f"{symbol}.csv.gz")


def test_files_that_land_between_ticks_each_get_one_run_and_never_a_second(repo, project, instance):
    requests, cursor, skip = tick(repo, instance, None)
    assert requests == [] and "does not exist" in skip
    (project / "landing").mkdir()
    requests, cursor, skip = tick(repo, instance, cursor)
    assert requests == [] and "no new files" in skip

    land(project, "AAPL", "MSFT", "IBM")  # three files between two ticks
    (project / "landing" / ".KO.csv.gz.tmp").write_bytes(b"still copying")  # skipped: a temporary name
    requests, cursor, _ = tick(repo, instance, cursor)
    landed = sorted(str(project / "landing" / f"{s}.csv.gz") for s in ("AAPL", "IBM", "MSFT"))
    assert sorted(f for r in requests for f in files_of(r)) == landed
    assert all(len(files_of(r)) == 1 for r in requests) and len({r.run_key for r in requests}) == 3
    assert sorted(json.loads(cursor)) == landed

    requests, cursor, skip = tick(repo, instance, cursor)
    assert requests == [] and "3 seen" in skip  # the cursor holds them: no second request

    rewritten = project / "landing" / "IBM.csv.gz"
    shutil.copy(project / "data" / "samples" / "KO.csv.gz", rewritten)  # re-delivered with other content
    os.utime(rewritten, ns=(1, 1))
    requests, cursor, _ = tick(repo, instance, cursor)
    assert [files_of(r) for r in requests] == [[str(rewritten)]]

    (project / "landing" / "AAPL.csv.gz").unlink()
    _, cursor, _ = tick(repo, instance, cursor)
    assert str(project / "landing" / "AAPL.csv.gz") not in json.loads(cursor)  # the cursor only holds present files


def test_a_burst_over_the_per_tick_limit_is_spread_over_ticks_without_loss(repo, project, instance, monkeypatch):
    monkeypatch.setattr(dagster_ingest, "MAX_RUNS_PER_TICK", 2)
    (project / "landing").mkdir()
    _, cursor, _ = tick(repo, instance, None)
    land(project, "AAPL", "MSFT", "IBM")
    first, cursor, _ = tick(repo, instance, cursor)
    second, cursor, _ = tick(repo, instance, cursor)
    third, cursor, _ = tick(repo, instance, cursor)
    assert (len(first), len(second), len(third)) == (2, 1, 0)
    assert sorted(f for r in first + second for f in files_of(r)) == sorted(str(p) for p in (project / "landing").iterdir())


def test_the_landing_run_ingests_exactly_its_file_and_marks_the_days_it_wrote(repo, project, instance):
    (project / "landing").mkdir()
    _, cursor, _ = tick(repo, instance, None)
    land(project, "KO")
    [request], _, _ = tick(repo, instance, cursor)
    result = repo.get_job(LANDING_JOB).execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    assert result.success
    days = [e.partition for e in result.get_asset_materialization_events()]
    assert len(days) == DAYS and days[0] == "2012-01-03"
    assert instance.get_materialized_partitions(KEY) == set(days)
    assert Catalog(project / "catalog").ls()["symbol"].to_list() == ["KO"]  # only the landed file, not the spec's paths
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"monotonic_time": True, "row_count": True, "freshness": True}
    latest = instance.get_latest_materialization_event(KEY).asset_materialization.metadata
    assert latest["landed_files"].value == [str(project / "landing" / "KO.csv.gz")]


def test_the_schedule_asks_for_the_previous_utc_day(repo, instance):
    schedule = repo.get_schedule_def(SCHEDULE)
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "UTC"
    at = dt.datetime(2012, 1, 5, 6, 0, tzinfo=dt.timezone.utc)
    request = schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=at))
    assert request.partition_key == "2012-01-04"
    before = dt.datetime(2012, 1, 1, 6, 0, tzinfo=dt.timezone.utc)
    assert isinstance(schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=before)), dg.SkipReason)
    assert repo.get_job(schedule.job_name).asset_layer.executable_asset_keys == {KEY}
