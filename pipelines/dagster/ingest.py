"""Ingest specs as Dagster definitions: one daily-partitioned asset per ``ingest.files`` node, with its checks,
schedule and landing-folder sensor.

**Asset** ``[spec, node]`` (group = the spec): materializing it runs ``pipelines.ingest.ingest_spec`` for that
node only (the same run ``tickloom ingest`` makes, recorded in ``ingest_runs``), writing the catalog's
Parquet partitions; nothing is pickled, the asset returns metadata only.

- **Partitions**: ``DailyPartitionsDefinition`` from the node's ``partition_start`` (UTC days, the catalog's
  ``date``; ``end_offset=1`` so today's partition exists for data that lands today). A partition run decodes
  the node's files and writes only the rows whose ``ts_recv`` falls in the run's days, replacing exactly those
  days. One node is one feed of one venue, so partitions are days alone: a venue × date grid would be 1 × N,
  and symbol × hour grids would blow past the UI's comfortable partition counts. A node without
  ``partition_start`` is an unpartitioned asset that ingests everything, like ``tickloom ingest``.
- **Backfills**: ``BackfillPolicy.single_run()``: a range backfill is one run over the whole range, so each
  input file is decoded once (files are not split by day); the UI still shows per-partition status.
- **Run config**: the spec's params, as for strategies; overridden values are recorded in the metadata.
- **Concurrency**: every catalog writer is in the ``tickloom_catalog`` pool (see ``common.CATALOG_POOL``).

**Checks**: see ``pipelines/dagster/checks.py``.

**Schedule** (``schedule: "<cron>"``, UTC): at each tick, ingest the previous UTC day's partition.

**Sensor** (``landing: <folder or glob>`` relative to the spec): each tick lists the landing folder and asks for
**one run per new file** of the job ``<spec>__<node>__landing``, which ingests exactly that file. Why one run
per file: a bad file fails its own run only (a run is atomic: one bad input publishes nothing), each run shows
which file it took, and a re-delivered file (new size or mtime) is taken again. The cursor is the JSON map
``path → [size, mtime_ns]`` of the files present at the last tick, so every file that arrived between two ticks
gets its request, however many arrived; ``run_key`` = path + size + mtime makes a request that Dagster has
already launched a no-op. At most ``MAX_RUNS_PER_TICK`` requests per tick; the rest wait for the next tick (their
cursor entry is not advanced). Hidden files and ``*.tmp``/``*.part``/``*.partial`` are skipped: deliver files
by writing them under such a name and renaming. Files must not share partitions with one another (one file per
day, or per symbol): a catalog partition holds the rows of one run, so a later file replaces what an earlier one
wrote for the same day and symbol. The landing run reports a materialization for every day partition it wrote
and evaluates the node's checks on its ingest run.
"""

import datetime as dt
import glob
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from nodes.catalog.ingest_files import IngestFilesParams
from pipelines.dagster.checks import RUN_ID_KEY, SERIES_KEY, enabled_rules, evaluate, node_checks, series_of
from pipelines.dagster.common import (
    CATALOG_POOL, as_sets, asset_key, config_schema, markdown_table, overrides, safe_name,
)
from pipelines.ingest import IngestResult, ingest_spec
from pipelines.spec import LoadedSpec

MAX_RUNS_PER_TICK = 50
SENSOR_INTERVAL_S = 30
_SKIPPED_SUFFIXES = (".tmp", ".part", ".partial")
# the schemas a format can write, where the format fixes them (for lineage and which checks apply)
FORMAT_SCHEMAS: dict[str, tuple[str, ...]] = {
    "bars_csv": ("bars",),
    "binance": ("book_deltas", "trades", "quotes"),
    "tardis": ("book_deltas", "trades", "quotes"),
    "bybit": ("book_deltas",),
    "fix": ("book_deltas", "trades", "quotes"),
}  # dbn: whatever schema each file holds
_PARTITIONS: dict[dt.date, dg.DailyPartitionsDefinition] = {}


@dataclass
class IngestNodeDefs:
    """Everything one ingest node contributes to the definitions."""

    key: dg.AssetKey
    asset: dg.AssetsDefinition
    checks: list = field(default_factory=list)
    jobs: list = field(default_factory=list)
    schedules: list = field(default_factory=list)
    sensors: list = field(default_factory=list)
    writes: dict | None = None  # {"schemas": (...), "venue": str | None, "symbols": set | None} for lineage


def ingest_defs(spec: LoadedSpec, catalog_dir: Path) -> list[IngestNodeDefs]:
    """The definitions of every ``ingest.files`` node of an ingest spec."""
    return [_node_defs(spec, node_id, catalog_dir) for node_id in spec.nodes]


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    if start not in _PARTITIONS:  # shared: identical definitions are one object, cheaper to resolve
        _PARTITIONS[start] = dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC")
    return _PARTITIONS[start]


def _node_defs(spec: LoadedSpec, node_id: str, catalog_dir: Path) -> IngestNodeDefs:
    params: IngestFilesParams = spec.nodes[node_id].params
    key = asset_key(spec.name, node_id)
    prefix = "__".join(key.path)
    partitions = daily_partitions(params.partition_start) if params.partition_start else None
    schemas = FORMAT_SCHEMAS.get(params.format)
    rules = enabled_rules(params.checks, schemas)
    asset = _ingest_asset(spec, node_id, key, catalog_dir, partitions)
    defs = IngestNodeDefs(key, asset, writes=_writes(spec, params, schemas))
    if rules:
        defs.checks.append(node_checks(key, catalog_dir, params.checks, rules))
    if params.schedule:
        job = dg.define_asset_job(f"{prefix}__ingest", selection=dg.AssetSelection.assets(key),
                                  description=f"ingest {key.to_user_string()} (with its checks)")
        defs.jobs.append(job)
        defs.schedules.append(_schedule(f"{prefix}__schedule", params.schedule, job, params.partition_start))
    if params.landing:
        landing_job = _landing_job(spec, node_id, key, catalog_dir, partitions, rules)
        defs.jobs.append(landing_job)
        defs.sensors.append(landing_sensor(f"{prefix}__landing_sensor", landing_pattern(spec, params), landing_job))
    return defs


def _ingest_asset(spec: LoadedSpec, node_id: str, key: dg.AssetKey, catalog_dir: Path,
                  partitions: dg.DailyPartitionsDefinition | None) -> dg.AssetsDefinition:
    params: IngestFilesParams = spec.nodes[node_id].params
    path, spec_params = spec.path, dict(spec.model.params)
    where = f"{params.venue} " if params.venue else ""
    schedule = f"; schedule `{params.schedule}` (UTC)" if params.schedule else ""
    landing = f"; sensor on `{params.landing}`" if params.landing else ""
    partitioned = (f"Daily partitions from {params.partition_start} (UTC date of ts_recv)" if partitions
                   else "Unpartitioned: add `partition_start` to the node to partition it by day")

    def _ingest(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        changed = overrides(context.op_execution_context.op_config, spec_params)
        start = end = None
        if partitions is not None:  # a run of a partitioned asset has one partition or a range of them
            window = context.partition_time_window
            start, end = window.start, window.end
        result = ingest_spec(path, catalog=catalog_dir, sets=as_sets(changed), nodes=[node_id], start=start, end=end)
        context.log.info(f"ingest run {result.run_id}: {result.rows} rows, {len(result.partitions)} partitions, "
                         f"{sum(result.outside_range.values())} rows outside {start}..{end}")
        return dg.MaterializeResult(metadata=ingest_metadata(result, changed, start, end))

    with warnings.catch_warnings():
        # BackfillPolicy is beta in Dagster 1.13: it warns once per asset (and would fail `pytest -W error`)
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.asset(
            key=key,
            group_name=safe_name(spec.name),
            partitions_def=partitions,
            backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
            config_schema=config_schema(spec_params),
            pool=CATALOG_POOL,
            kinds={"parquet", "duckdb"},
            description=f"Ingest {where}{params.format} files ({', '.join(params.paths)}) into the catalog. "
                        f"{partitioned}{schedule}{landing}.",
            metadata={"spec_file": str(path), "node": node_id, "format": params.format, "catalog": str(catalog_dir)},
        )(_ingest)


def ingest_metadata(result: IngestResult, changed: dict, start=None, end=None) -> dict:
    partitions = [
        {"schema": p.key.schema, "venue": p.key.venue, "symbol": p.key.symbol, "date": p.key.date} for p in result.partitions
    ]
    dates = sorted({p["date"] for p in partitions})
    bad = sum(int(r.get("bad_records", 0)) for r in result.reports)
    return {
        RUN_ID_KEY: result.run_id,
        "spec_hash": result.spec_hash or "",
        "catalog": dg.MetadataValue.path(str(Path(result.catalog).resolve())),
        "rows_written": sum(result.rows.values()),
        "rows_outside_range": sum(result.outside_range.values()),
        "rows_by_schema": dg.MetadataValue.json(dict(result.rows)),
        "partitions_written": len(result.partitions),
        "outcomes": dg.MetadataValue.json(result.outcomes()),
        "first_date": dates[0].isoformat() if dates else "",
        "last_date": dates[-1].isoformat() if dates else "",
        "range": f"{start.date() if start else '-'}..{end.date() if end else '-'} (end exclusive)",
        "inputs": dg.MetadataValue.md(markdown_table(
            [{"file": Path(i["path"]).name, "bytes": i["bytes"], "sha256": i["sha256"][:12]} for i in result.inputs])),
        "bad_records": bad,
        SERIES_KEY: dg.MetadataValue.json(series_of(partitions)),
        "overrides": dg.MetadataValue.json(changed),
        "seconds": round(result.seconds, 3),
    }


def _writes(spec: LoadedSpec, params: IngestFilesParams, schemas: tuple[str, ...] | None) -> dict | None:
    """What the node writes, where the spec says it: schemas (by format), venue and symbols (bars_csv: the
    ``symbol`` option or the file names). None when unknown (e.g. DBN: venue and symbols are in the files)."""
    if schemas is None:
        return None
    options = params.decoder_options()
    symbols = None
    if options.get("symbol"):
        symbols = {options["symbol"]}
    elif params.format == "bars_csv":
        from nodes.catalog.formats.bars_csv import symbol_from_path

        names = {symbol_from_path(p) for p in params.files(spec.path.parent)}
        symbols = names or None
    return {"schemas": schemas, "venue": options.get("venue"), "symbols": symbols}


# --- schedule ----------------------------------------------------------------------------------------------


def _schedule(name: str, cron: str, job, start: dt.date | None) -> dg.ScheduleDefinition:
    @dg.schedule(name=name, cron_schedule=cron, job=job, execution_timezone="UTC",
                 description=f"at `{cron}` UTC, ingest the previous UTC day's partition")
    def _previous_day(context: dg.ScheduleEvaluationContext):
        if start is None:
            return dg.RunRequest()
        day = context.scheduled_execution_time.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)
        if day < start:
            return dg.SkipReason(f"{day} is before the first partition {start}")
        return dg.RunRequest(partition_key=day.isoformat())

    return _previous_day


# --- landing folder: sensor and job -----------------------------------------------------------------------


def landing_pattern(spec: LoadedSpec, params: IngestFilesParams) -> str:
    """The glob the sensor lists: ``landing`` relative to the spec's folder; a folder means every file in it."""
    target = os.path.normpath(os.path.abspath(spec.path.parent / params.landing))
    return target if glob.has_magic(params.landing) else os.path.join(target, "*")


def landed_files(pattern: str) -> dict[str, list[int]]:
    """Regular files matching ``pattern`` (hidden and temporary names skipped) → [size, mtime_ns]."""
    found = {}
    for name in glob.glob(pattern):
        base = os.path.basename(name)
        if base.startswith(".") or base.endswith(_SKIPPED_SUFFIXES):
            continue
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            continue  # moved away while listing
        if os.path.isfile(name):
            found[os.path.abspath(name)] = [stat.st_size, stat.st_mtime_ns]
    return found


def landing_sensor(name: str, pattern: str, job) -> dg.SensorDefinition:
    op_name = landing_op_name(job.name)

    @dg.sensor(name=name, job=job, minimum_interval_seconds=SENSOR_INTERVAL_S,
               description=f"one run of {job.name} per new file in {pattern}")
    def _watch(context: dg.SensorEvaluationContext):
        seen: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
        if not glob.has_magic(os.path.dirname(pattern)) and not os.path.isdir(os.path.dirname(pattern)):
            return dg.SkipReason(f"landing folder {os.path.dirname(pattern)} does not exist")
        present = landed_files(pattern)
        new = [path for path in sorted(present) if seen.get(path) != present[path]]
        requested, deferred = new[:MAX_RUNS_PER_TICK], set(new[MAX_RUNS_PER_TICK:])
        cursor = {p: s for p, s in present.items() if p not in deferred}
        cursor.update({p: seen[p] for p in deferred if p in seen})
        requests = [
            dg.RunRequest(
                run_key=f"{path}:{present[path][0]}:{present[path][1]}",
                run_config={"ops": {op_name: {"config": {"files": [path]}}}},
                tags={"tickloom/file": path[-255:]},
            )
            for path in requested
        ]
        skip = None if requests else f"no new files in {pattern} ({len(present)} seen)"
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True), skip_reason=skip)

    return _watch


def landing_op_name(job_name: str) -> str:
    return f"{job_name}_op"


def _landing_job(spec: LoadedSpec, node_id: str, key: dg.AssetKey, catalog_dir: Path,
                 partitions: dg.DailyPartitionsDefinition | None, rules) -> dg.JobDefinition:
    params: IngestFilesParams = spec.nodes[node_id].params
    path, spec_params = spec.path, dict(spec.model.params)
    job_name = "__".join(key.path) + "__landing"
    names = [r.name for r in rules]

    @dg.op(
        name=landing_op_name(job_name),
        config_schema={"files": dg.Field([str], description="the files to ingest (absolute, or relative to the run's folder)"),
                       **config_schema(spec_params)},
        pool=CATALOG_POOL,
        description=f"ingest given files as node {node_id} of {spec.name}; report the days written as partitions of "
                    f"{key.to_user_string()} and evaluate its checks",
    )
    def _ingest_landed(context: dg.OpExecutionContext):
        config = dict(context.op_config)
        files = config.pop("files")
        changed = overrides(config, spec_params)
        result = ingest_spec(path, catalog=catalog_dir, sets=as_sets(changed), nodes=[node_id], files=files)
        metadata = {**ingest_metadata(result, changed), "landed_files": dg.MetadataValue.json(files)}
        days = sorted({p.key.date.isoformat() for p in result.partitions})
        if partitions is None:
            context.log_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))
        else:
            valid = [d for d in days if partitions.has_partition_key(d)]
            outside = sorted(set(days) - set(valid))
            if outside:
                context.log.warning(f"{len(outside)} day(s) outside the partitions of {key.to_user_string()}: "
                                    f"{', '.join(outside[:10])}")
            for day in valid:
                context.log_event(dg.AssetMaterialization(asset_key=key, partition=day, metadata=metadata))
        if names:
            series = series_of([{"schema": p.key.schema, "venue": p.key.venue, "symbol": p.key.symbol} for p in result.partitions])
            for outcome in evaluate(catalog_dir, result.run_id, params.checks, names, series):
                context.log_event(dg.AssetCheckEvaluation(
                    asset_key=key, check_name=outcome.name, passed=outcome.passed, metadata=outcome.metadata,
                    description=outcome.description,
                ))

    @dg.job(name=job_name, executor_def=dg.in_process_executor,
            description=f"ingest files that landed for {key.to_user_string()} (started by its sensor)")
    def _landing():
        _ingest_landed()

    return _landing
