"""Ingest market data into the catalog: run an ingest spec, or decode a few files without one.

    ingest_spec("specs/ingest/sample_bars.yaml", catalog="catalog")
    ingest_files("catalog", "bars_csv", ["data/samples/AAPL.csv.gz"], venue="XNAS",
                 options={"timezone": "America/New_York"})

Both go through one run, which the command line (``tickloom ingest``), notebooks and (later) Dagster share:

1. take the catalog's writer lock; mark runs a dead process left ``running`` as failed; record this run;
2. checksum every input (sha256, size);
3. decode each input with its format's decoder (``nodes/catalog/formats``), streaming its frames into one
   ``PartitionWriter`` (bounded memory); store the file's quality report; fail the run when its
   ``bad_records / records`` is above the threshold;
4. publish every partition (atomic per partition; a day that already exists is replaced, never appended);
5. update ``instruments`` from any ``definitions`` frames, refresh the views, record the run as succeeded.

Any error fails the run: it is recorded (``status = 'failed'`` with the error) and raised again. A run that
fails before step 4 changes no partition. Rows of the same partition from several inputs of one run are
combined (sorted by ``ts_recv``); the same file listed twice is refused, since it would duplicate its rows.

An ingest spec (``kind: ingest``) holds ``ingest.files`` nodes only; each names a format, its input paths
(relative to the spec, globs allowed), venue/symbol when the files do not carry them, the format's options
and ``max_bad_record_rate``. See ``specs/ingest/sample_bars.yaml``.

A run can be narrowed, as the orchestrator does (``pipelines/dagster``): ``nodes`` runs some nodes of a spec,
``files`` replaces one node's inputs (the files a sensor saw land), and ``start``/``end`` write only the rows
whose ``ts_recv`` falls in ``[start, end)``, so a daily partition run replaces exactly its days and leaves the
others alone (every input is still decoded whole: a file does not say which days it holds before it is read).
"""

import datetime as dt
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from nodes.catalog.formats import bad_record_rate, get_decoder, prepare_options, report_dict
from nodes.catalog.ingest_files import IngestFiles
from nodes.catalog.layout import as_layout
from nodes.catalog.lock import catalog_lock
from nodes.catalog.metadata import MetadataStore
from nodes.catalog.reader import to_ns
from nodes.catalog.writer import DEFAULT_BUFFER_ROWS, PartitionWrite, PartitionWriter, new_run_id
from nodes.errors import DataQualityError, SourceLocation, SpecError
from nodes.marketdata.schemas import conform
from pipelines.spec import load_spec

QUICK = "quick"
_COMMAND_LINE = SourceLocation("<command line>", 0, 0)


@dataclass(frozen=True)
class IngestJob:
    """One input file of a run: how to decode it and how many bad records it may have."""

    path: Path
    format: str
    options: dict[str, Any]
    max_bad_record_rate: float
    node: str | None = None  # the spec node it comes from; None for a quick ingest


@dataclass
class IngestResult:
    """A succeeded run: what went in (with checksums), what came out, and the quality reports."""

    run_id: str
    catalog: Path
    spec_name: str
    spec_hash: str | None
    inputs: list[dict]
    rows: dict[str, int]
    partitions: list[PartitionWrite]
    reports: list[dict]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    outside_range: dict[str, int] = field(default_factory=dict)  # rows decoded but not written: outside [start, end)

    def outcomes(self) -> dict[str, int]:
        """How many partitions were new, replaced or unchanged."""
        return dict(Counter(p.outcome for p in self.partitions))


def ingest_files(
    catalog,
    format: str,
    files: list[str | Path],
    venue: str | None = None,
    symbol: str | None = None,
    options: dict[str, Any] | None = None,
    max_bad_record_rate: float = 0.0,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
    durable: bool = True,
) -> IngestResult:
    """Decode ``files`` with the decoder of ``format`` into the catalog; recorded as a ``quick`` run.

    Args:
        catalog: the catalog root (path, ``Catalog`` or None for ``$TICKLOOM_CATALOG`` / ``./catalog``).
        format: a name in ``nodes.catalog.formats.FORMATS`` (``bars_csv``; ``dbn`` and ``binance`` to come).
        files: input files, relative to the current folder.
        venue, symbol: for formats whose files do not carry them (``bars_csv`` needs ``venue``; its symbol
            defaults to the file name).
        options: the format's own options (``bars_csv``: ``timezone``, ``bar_duration``, ...).
        max_bad_record_rate: fail when a file's ``bad_records / records`` is above it (default 0: none).
        buffer_rows: rows held in memory before spilling (see ``PartitionWriter``).
        durable: flush to disk before and after publishing (see ``PartitionWriter``).

    Raises:
        SpecError: an unknown format, options the format refuses, no files or a file given twice.
        DataQualityError: an input is missing or bad, or above the bad-record threshold (run recorded failed).
        CatalogError: another ingest is writing the catalog.
    """
    try:
        prepared = prepare_options(format, venue, symbol, options or {})
    except ValueError as error:
        raise SpecError.at(_COMMAND_LINE, str(error)) from None
    if not files:
        raise SpecError.at(_COMMAND_LINE, "no input files given")
    if not 0.0 <= max_bad_record_rate <= 1.0:
        raise SpecError.at(_COMMAND_LINE, f"max_bad_record_rate must be within [0, 1], got {max_bad_record_rate}")
    jobs = [IngestJob(Path(f).resolve(), format, prepared, max_bad_record_rate) for f in files]
    _refuse_duplicates(jobs, lambda job: _COMMAND_LINE)
    return _run(catalog, jobs, QUICK, None, buffer_rows, durable)


def ingest_spec(
    spec_path: str | Path,
    catalog=None,
    sets: list[str] | None = None,
    buffer_rows: int = DEFAULT_BUFFER_ROWS,
    durable: bool = True,
    nodes: list[str] | None = None,
    files: list[str | Path] | None = None,
    start: dt.date | dt.datetime | None = None,
    end: dt.date | dt.datetime | None = None,
) -> IngestResult:
    """Run the ingest spec at ``spec_path`` into the catalog; recorded with the spec's name and hash.

    ``sets`` are ``name=value`` param overrides, as for every spec. ``nodes`` runs only these nodes (default:
    all). ``files`` decodes these files instead of the node's ``paths`` (exactly one node must be selected;
    relative files resolve against the current folder). ``start``/``end`` (a date is midnight UTC, a naive
    datetime is UTC; ``end`` exclusive) keep only rows with ``start <= ts_recv < end``; the rest are counted
    in ``IngestResult.outside_range``.

    Raises:
        SpecError: the spec is invalid, is not ``kind: ingest``, has nodes other than ``ingest.files``, or
            ``nodes``/``files`` do not fit it.
        DataQualityError: an input is missing or bad, or above its node's threshold (run recorded failed).
        CatalogError: another ingest is writing the catalog.
    """
    spec = load_spec(spec_path, sets=sets)
    if spec.model.kind != "ingest":
        raise SpecError.at(spec.where("kind"), f"kind is {spec.model.kind!r}; `tickloom ingest` runs specs of kind: ingest")
    selected = _select_nodes(spec, nodes, files)
    problems, jobs = [], []
    for node in spec.nodes.values():
        if not issubclass(node.op, IngestFiles):
            problems.append((spec.where("nodes", node.id, "op"), f"node {node.id!r}: op {node.op.name} cannot run in an "
                             f"ingest spec; its nodes are {IngestFiles.name} nodes"))
            continue
        if node.id not in selected:
            continue
        params = node.params
        options = params.decoder_options()
        inputs = [Path(f) for f in files] if files is not None else params.files(spec.path.parent)
        for path in inputs:
            jobs.append(IngestJob(path.resolve(), params.format, options, params.max_bad_record_rate, node.id))
    if problems:
        raise SpecError(problems)
    _refuse_duplicates(jobs, lambda job: spec.where("nodes", job.node, "with", "paths"))
    window = _time_window(start, end)
    result = _run(catalog, jobs, spec.name, spec.spec_hash, buffer_rows, durable, window)
    result.warnings = list(spec.warnings)
    return result


def _select_nodes(spec, nodes: list[str] | None, files: list | None) -> set[str]:
    if nodes is None:
        selected = set(spec.nodes)
    else:
        unknown = [n for n in nodes if n not in spec.nodes]
        if unknown:
            raise SpecError.at(spec.where("nodes"), f"no node {', '.join(map(repr, unknown))} in spec {spec.name!r}; "
                               f"its nodes are {', '.join(spec.nodes)}")
        selected = set(nodes)
    if files is not None:
        if len(selected) != 1:
            raise SpecError.at(_COMMAND_LINE, f"files replace the inputs of one node; {len(selected)} nodes are selected")
        if not files:
            raise SpecError.at(_COMMAND_LINE, "no input files given")
    return selected


def _time_window(start, end) -> tuple[int | None, int | None] | None:
    if start is None and end is None:
        return None
    start_ns = None if start is None else to_ns(start, "start")
    end_ns = None if end is None else to_ns(end, "end")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise SpecError.at(_COMMAND_LINE, f"end {end} is not after start {start}")
    return start_ns, end_ns


def _refuse_duplicates(jobs: list[IngestJob], where) -> None:
    seen: dict[Path, IngestJob] = {}
    for job in jobs:
        key = job.path.resolve()
        if key in seen:
            nodes = f" (nodes {seen[key].node!r} and {job.node!r})" if job.node else ""
            raise SpecError.at(where(job), f"{job.path} is an input twice{nodes}: its rows would be written twice")
        seen[key] = job


def _run(catalog, jobs: list[IngestJob], spec_name: str, spec_hash: str | None, buffer_rows: int, durable: bool,
         window: tuple[int | None, int | None] | None = None) -> IngestResult:
    layout = as_layout(catalog)
    store = MetadataStore(layout)
    run_id = new_run_id()
    clock = time.perf_counter()
    run = _RunRecord(run_id, window=window)
    writer = PartitionWriter(layout, run_id, buffer_rows=buffer_rows, durable=durable)
    with catalog_lock(layout):
        store.begin_run(run_id, spec_name, spec_hash, _utc_now())
        try:
            run.inputs = [_describe_input(job) for job in jobs]
            with writer:
                for job in jobs:
                    _decode(job, writer, run)
                run.partitions = writer.commit()
            store.end_run(run_id, "succeeded", _utc_now(), time.perf_counter() - clock, run.inputs, dict(run.rows),
                          run.partition_records(), run.reports, _concat(run.definitions))
        except BaseException as error:
            run.partitions = writer.published  # some, if it died while publishing
            _record_failure(store, run, clock, error)
            raise
    return IngestResult(run_id, layout.root, spec_name, spec_hash, run.inputs, dict(run.rows), run.partitions,
                        [r["report"] for r in run.reports], time.perf_counter() - clock,
                        outside_range=dict(run.outside_range))


@dataclass
class _RunRecord:
    """What a run has done so far: recorded whether it succeeds or fails."""

    run_id: str
    window: tuple[int | None, int | None] | None = None  # [start, end) in ns; rows outside it are not written
    inputs: list[dict] = field(default_factory=list)
    rows: Counter = field(default_factory=Counter)
    outside_range: Counter = field(default_factory=Counter)
    partitions: list[PartitionWrite] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    definitions: list[pl.DataFrame] = field(default_factory=list)

    def partition_records(self) -> list[dict]:
        return [
            {"schema": p.key.schema, "venue": p.key.venue, "symbol": p.key.symbol, "date": p.key.date,
             "rows": p.rows, "outcome": p.outcome}
            for p in self.partitions
        ]


def _decode(job: IngestJob, writer: PartitionWriter, run: _RunRecord) -> None:
    frames, report = get_decoder(job.format)(job.path, job.options)
    for schema, frame in frames:
        if run.window is not None:
            kept = _in_window(frame, run.window)
            run.outside_range[schema] += frame.height - kept.height
            frame = kept
        written = writer.write(schema, frame)
        run.rows[schema] += written
        if schema == "definitions" and written:
            run.definitions.append(conform(frame, schema))
    report = report_dict(report)
    records, bad, rate = bad_record_rate(job.format, report)
    run.reports.append({"input": str(job.path), "format": job.format, "records": records, "bad_records": bad,
                        "bad_record_rate": rate, "report": report})
    if rate > job.max_bad_record_rate:
        node = f" (node {job.node})" if job.node else ""
        raise DataQualityError(
            f"{job.path}: {bad} bad record(s) of {records} ({rate:.4%}) is above max_bad_record_rate "
            f"{job.max_bad_record_rate:.4%}{node}; no partition was written (the report is in quality_reports)"
        )


def _in_window(frame: pl.DataFrame, window: tuple[int | None, int | None]) -> pl.DataFrame:
    start, end = window
    keep = pl.lit(True)
    if start is not None:
        keep = keep & (pl.col("ts_recv") >= start)
    if end is not None:
        keep = keep & (pl.col("ts_recv") < end)
    return frame.filter(keep)


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    return pl.concat(frames) if frames else None


def _describe_input(job: IngestJob) -> dict:
    if not job.path.is_file():
        raise DataQualityError(f"{job.path}: no such file")
    digest = hashlib.sha256()
    with open(job.path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return {"path": str(job.path.resolve()), "format": job.format, "sha256": digest.hexdigest(), "bytes": job.path.stat().st_size}


def _record_failure(store: MetadataStore, run: _RunRecord, clock: float, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    try:
        # a failed run's reports and published partitions are recorded; its definitions are not applied
        store.end_run(run.run_id, "failed", _utc_now(), time.perf_counter() - clock, run.inputs, dict(run.rows),
                      run.partition_records(), run.reports, error=message)
        error.add_note(f"ingest run {run.run_id} failed; recorded in {store.path} (table ingest_runs)")
    except Exception as recording:  # keep the original error; say why it is not recorded
        error.add_note(f"ingest run {run.run_id} failed and could not be recorded: {recording}")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
