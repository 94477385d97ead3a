"""Data-quality rules of an ingest node as Dagster asset checks, computed from the catalog.

Each rule that a node's ``checks`` turns on (``nodes/catalog/ingest_files.py``: ``IngestChecks``) is one asset
check of the node's asset. A check judges one **ingest run** (a row of ``ingest_runs``): the partitions it
wrote (read back with polars from their Parquet files) and the quality reports the decoders stored for its
inputs (``quality_reports``). Which run: the one the asset wrote in the same Dagster run, else the asset's
latest materialization (checks executed on their own from the UI). A range backfill is one run, so its
checks cover every partition of the range.

Rules (a check's metadata says what it counted and where):

- ``monotonic_time``: ``ts_recv`` never decreases within a written partition, and no input had records going
  backwards (``ts_recv_backwards`` in its report; the writer sorts partitions, so the input is where a feed's
  disorder shows).
- ``sequence_gaps``: steps > 1 of ``sequence`` per series (schema, venue, symbol) in ``ts_recv`` order over the
  rows that carry one; fails above ``max_sequence_gaps``.
- ``crossed_books``: quotes with ``bid_px >= ask_px`` (both defined) in written ``quotes`` partitions, plus
  ``crossed_quotes`` of the inputs' reports (DBN books). Only for formats that can write quotes or books.
- ``row_count``: every written catalog partition (a day of one symbol) has ``min_rows..max_rows`` rows.
- ``freshness``: the newest ``ts_recv`` in the catalog of every series the run wrote is at most
  ``freshness_hours`` old (series of earlier materializations when this run wrote none).

Severity is ``ERROR`` for every rule: a node turns on only the rules it means. Checks are not blocking: a
strategy asset is not part of an ingest run, so there is nothing downstream in the same run to hold back.
"""

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl

from nodes.catalog.ingest_files import IngestChecks
from nodes.catalog.layout import CatalogLayout, PartitionKey
from nodes.catalog.metadata import metadata_connection
from nodes.marketdata.schemas import UNDEF_PRICE
from pipelines.dagster.common import markdown_table, safe_name

RUN_ID_KEY = "ingest_run_id"
SERIES_KEY = "series"
BOOK_SCHEMAS = ("quotes", "book_deltas", "orders")
_RUN_ID = re.compile(r"^[0-9A-Za-z_\-]+$")


@dataclass(frozen=True)
class Rule:
    name: str
    description: str


@dataclass
class Outcome:
    """One rule's verdict on one ingest run."""

    name: str
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def enabled_rules(rules: IngestChecks, schemas: tuple[str, ...] | None) -> list[Rule]:
    """The checks a node has: every rule it turns on that can apply to the schemas its format writes
    (``schemas`` None: unknown, any)."""
    out = []
    if rules.monotonic_time:
        out.append(Rule("monotonic_time", "ts_recv never goes backwards (written partitions and input reports)"))
    if rules.max_sequence_gaps is not None:
        out.append(Rule("sequence_gaps", f"at most {rules.max_sequence_gaps} sequence gaps (steps > 1) per run"))
    if rules.no_crossed_books and (schemas is None or any(s in BOOK_SCHEMAS for s in schemas)):
        out.append(Rule("crossed_books", "no quote with bid >= ask"))
    if rules.min_rows is not None or rules.max_rows is not None:
        low = rules.min_rows if rules.min_rows is not None else 0
        high = rules.max_rows if rules.max_rows is not None else "∞"
        out.append(Rule("row_count", f"every written partition has {low}..{high} rows"))
    if rules.freshness_hours is not None:
        out.append(Rule("freshness", f"newest ts_recv of every series at most {rules.freshness_hours:g} h old"))
    return out


def evaluate(
    catalog_dir: Path,
    run_id: str,
    rules: IngestChecks,
    names: list[str],
    series_fallback: list[str] | None = None,
    now: dt.datetime | None = None,
) -> list[Outcome]:
    """Judge ingest run ``run_id`` of the catalog at ``catalog_dir`` by the rules in ``names``."""
    layout = CatalogLayout(catalog_dir)
    run = _load_run(layout, run_id)
    if run is None:
        return [Outcome(n, False, f"ingest run {run_id} is not in {layout.metadata_path}") for n in names]
    partitions, reports = run
    files = {}
    for p in partitions:
        files.setdefault(p["schema"], []).append(layout.partition_file(PartitionKey(p["schema"], p["venue"], p["symbol"], p["date"])))
    context = {"ingest_run_id": run_id, "partitions_checked": len(partitions)}
    judges = {
        "monotonic_time": lambda: _monotonic(files, reports),
        "sequence_gaps": lambda: _sequence_gaps(files, rules.max_sequence_gaps),
        "crossed_books": lambda: _crossed(files, reports),
        "row_count": lambda: _row_count(partitions, rules.min_rows, rules.max_rows),
        "freshness": lambda: _freshness(layout, partitions, series_fallback or [], rules.freshness_hours, now),
    }
    outcomes = []
    for name in names:
        outcome = judges[name]()
        outcome.metadata = {**context, **outcome.metadata}
        outcomes.append(outcome)
    return outcomes


def series_of(partitions: list[dict]) -> list[str]:
    return sorted({f"{p['schema']}/{p['venue']}/{p['symbol']}" for p in partitions})


def _load_run(layout: CatalogLayout, run_id: str) -> tuple[list[dict], list[dict]] | None:
    if not _RUN_ID.match(run_id) or not layout.metadata_path.exists():
        return None
    with metadata_connection(layout) as connection:
        found = connection.execute("SELECT partitions FROM ingest_runs WHERE run_id = ?", [run_id]).fetchall()
        if not found:
            return None
        reports = connection.execute("SELECT input, report FROM quality_reports WHERE run_id = ?", [run_id]).fetchall()
    partitions = found[0][0] or []
    return list(partitions), [{"input": i, **json.loads(r)} for i, r in reports]


def _finding(report: dict, name: str) -> int:
    value = report.get(name)
    if isinstance(value, dict):
        return int(value.get("count", 0) or 0)
    return int(value or 0)


def _monotonic(files: dict[str, list[Path]], reports: list[dict]) -> Outcome:
    backwards = []
    for schema, paths in files.items():
        per_file = (
            pl.scan_parquet(paths, include_file_paths="file")
            .group_by("file")
            .agg((pl.col("ts_recv").diff() < 0).sum().alias("backwards"))
            .filter(pl.col("backwards") > 0)
            .collect()
        )
        backwards += [{"partition": _short(Path(f)), "backwards": int(n)} for f, n in per_file.iter_rows()]
    in_inputs = [{"input": Path(r["input"]).name, "backwards": _finding(r, "ts_recv_backwards")} for r in reports]
    in_inputs = [r for r in in_inputs if r["backwards"]]
    passed = not backwards and not in_inputs
    description = "ts_recv is monotonic" if passed else (
        f"ts_recv goes backwards in {len(backwards)} partition(s) and {len(in_inputs)} input(s)")
    return Outcome("monotonic_time", passed, description, {
        "partitions_backwards": len(backwards), "inputs_backwards": len(in_inputs),
        "where": dg.MetadataValue.md(markdown_table(backwards + in_inputs)),
    })


def _sequence_gaps(files: dict[str, list[Path]], limit: int | None) -> Outcome:
    limit = limit or 0
    rows = []
    for schema, paths in files.items():
        gaps = (
            pl.scan_parquet(paths)
            .select("venue", "symbol", "sequence")
            .filter(pl.col("sequence").is_not_null())
            .with_columns((pl.col("sequence").diff().over(["venue", "symbol"]) > 1).alias("gap"))
            .group_by(["venue", "symbol"], maintain_order=True)
            .agg(pl.col("gap").sum().alias("gaps"), pl.len().alias("sequenced_rows"))
            .collect()
        )
        rows += [{"series": f"{schema}/{v}/{s}", "gaps": int(g), "sequenced_rows": int(n)} for v, s, g, n in gaps.iter_rows()]
    total = sum(r["gaps"] for r in rows)
    passed = total <= limit
    return Outcome("sequence_gaps", passed, f"{total} sequence gap(s), at most {limit} allowed", {
        "gaps": total, "max_sequence_gaps": limit,
        "series": dg.MetadataValue.md(markdown_table([r for r in rows if r["gaps"]] or rows)),
    })


def _crossed(files: dict[str, list[Path]], reports: list[dict]) -> Outcome:
    crossed_rows = 0
    if files.get("quotes"):
        crossed_rows = int(
            pl.scan_parquet(files["quotes"])
            .filter(
                pl.col("bid_px").is_not_null() & pl.col("ask_px").is_not_null()
                & (pl.col("bid_px") != UNDEF_PRICE) & (pl.col("ask_px") != UNDEF_PRICE)
                & (pl.col("bid_px") >= pl.col("ask_px"))
            )
            .select(pl.len())
            .collect()
            .item()
        )
    in_inputs = sum(_finding(r, "crossed_quotes") for r in reports)
    passed = crossed_rows == 0 and in_inputs == 0
    return Outcome("crossed_books", passed, f"{crossed_rows} crossed quote row(s), {in_inputs} crossed book record(s) in inputs",
                   {"crossed_quote_rows": crossed_rows, "crossed_in_inputs": in_inputs})


def _row_count(partitions: list[dict], low: int | None, high: int | None) -> Outcome:
    bad = [
        {"partition": f"{p['schema']}/{p['venue']}/{p['symbol']}/{p['date']}", "rows": int(p["rows"])}
        for p in partitions
        if (low is not None and p["rows"] < low) or (high is not None and p["rows"] > high)
    ]
    counts = [int(p["rows"]) for p in partitions]
    bounds = f"{low if low is not None else 0}..{high if high is not None else '∞'}"
    description = (f"{len(bad)} of {len(partitions)} partition(s) outside {bounds} rows" if bad
                   else f"all {len(partitions)} partition(s) within {bounds} rows")
    return Outcome("row_count", not bad, description, {
        "outside_bounds": len(bad), "min_rows_seen": min(counts, default=0), "max_rows_seen": max(counts, default=0),
        "where": dg.MetadataValue.md(markdown_table(bad)),
    })


def _freshness(layout: CatalogLayout, partitions: list[dict], fallback: list[str], hours: float | None,
               now: dt.datetime | None) -> Outcome:
    series = series_of(partitions) or list(fallback)
    if not series:
        return Outcome("freshness", False, "no series to judge: nothing has been ingested by this node yet")
    now = now or dt.datetime.now(dt.timezone.utc)
    now_ns = int(now.timestamp() * 1e9)
    rows = []
    for name in series:
        schema, venue, symbol = name.split("/", 2)
        newest_file = None
        for _, path in layout.partitions(schema, venue, [symbol]):
            newest_file = path  # date order: the last one is the newest day
        if newest_file is None:
            rows.append({"series": name, "newest_ts_recv": None, "age_hours": None})
            continue
        newest = pl.scan_parquet(newest_file).select(pl.col("ts_recv").max()).collect().item()
        rows.append({"series": name, "newest_ts_recv": _iso(newest), "age_hours": round((now_ns - newest) / 3.6e12, 2)})
    stale = [r for r in rows if r["age_hours"] is None or r["age_hours"] > hours]
    oldest = max((r["age_hours"] for r in rows if r["age_hours"] is not None), default=None)
    description = (f"{len(stale)} of {len(rows)} series older than {hours:g} h" if stale
                   else f"all {len(rows)} series within {hours:g} h")
    return Outcome("freshness", not stale, description, {
        "freshness_hours": hours, "oldest_age_hours": oldest, "stale_series": len(stale),
        "series": dg.MetadataValue.md(markdown_table(stale or rows)),
    })


def _iso(ns: int) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)).isoformat() + "Z"


def _short(path: Path) -> str:
    return "/".join(path.parts[-5:-1])


# --- Dagster ---------------------------------------------------------------------------------------------


def check_specs(key: dg.AssetKey, rules: list[Rule]) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(r.name, asset=key, description=r.description) for r in rules]


def node_checks(key: dg.AssetKey, catalog_dir: Path, rules: IngestChecks, enabled: list[Rule]) -> dg.AssetChecksDefinition:
    """One multi-asset check (one op) that evaluates every enabled rule of an ingest node; subsettable, so a
    single check can be executed from the UI."""

    @dg.multi_asset_check(
        name="checks__" + "__".join(safe_name(p) for p in key.path),
        specs=check_specs(key, enabled),
        can_subset=True,
        description=f"data-quality rules of {key.to_user_string()}, computed from the catalog",
    )
    def _checks(context: dg.AssetCheckExecutionContext):
        names = [c.name for c in context.selected_asset_check_keys if c.asset_key == key]
        order = [r.name for r in enabled if r.name in names]
        run_id, fallback = checked_ingest_run(context.instance, context.run.run_id, key)
        if run_id is None:
            for name in order:
                yield dg.AssetCheckResult(asset_key=key, check_name=name, passed=False,
                                          description="nothing to check: the asset has no materialization yet")
            return
        for outcome in evaluate(catalog_dir, run_id, rules, order, fallback):
            yield dg.AssetCheckResult(asset_key=key, check_name=outcome.name, passed=outcome.passed,
                                      description=outcome.description, metadata=outcome.metadata)

    return _checks


def checked_ingest_run(instance: dg.DagsterInstance, dagster_run_id: str, key: dg.AssetKey) -> tuple[str | None, list[str]]:
    """The ingest run to judge (this Dagster run's, else the asset's latest) and series of earlier
    materializations (for freshness when that run wrote none)."""
    run_id = None
    records = instance.get_records_for_run(dagster_run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == key and RUN_ID_KEY in materialization.metadata:
            run_id = materialization.metadata[RUN_ID_KEY].value
    fallback: list[str] = []
    for record in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=20).records:
        metadata = record.asset_materialization.metadata if record.asset_materialization else {}
        if run_id is None and RUN_ID_KEY in metadata:
            run_id = metadata[RUN_ID_KEY].value
        if not fallback and SERIES_KEY in metadata:
            fallback = list(metadata[SERIES_KEY].value or [])
        if run_id is not None and fallback:
            break
    return run_id, fallback
