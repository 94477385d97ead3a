"""``build_definitions``: every spec under a folder becomes Dagster definitions.

- ``kind: ingest`` → per ``ingest.files`` node a daily-partitioned asset with its checks, schedule and sensor
  (``pipelines/dagster/ingest.py``);
- ``kind: strategy`` / ``research`` → one multi-asset per spec (``pipelines/dagster/strategy.py``); a catalog
  source node depends on the ingest assets that write what it reads (same schema and venue, and a shared
  symbol where the ingest node's symbols are known; DBN nodes, whose venue and symbols are in the files, are
  not linked), so lineage runs from ingested data through features to the backtest.

A spec that fails to load does not take the code location down: it becomes an asset in the group
``broken_specs`` whose description is the error with its file:line:col, and the other specs load normally.
The same holds for a spec that loads but clashes with another one (two specs with one name): the later file
(in path order) is the broken one.

Runs use the in-process executor: a spec is one step (a strategy) or two (an ingest node and its checks), so
a process per step would only add ~15 s of start-up to every run.
"""

import os
from pathlib import Path

import dagster as dg

from nodes.catalog.ingest_files import IngestFiles
from nodes.catalog.layout import resolve_root
from nodes.errors import SpecError
from pipelines.dagster.common import safe_name
from pipelines.dagster.ingest import IngestNodeDefs, ingest_defs
from pipelines.dagster.strategy import spec_assets
from pipelines.spec import LoadedSpec, load_spec, spec_files

BROKEN_GROUP = "broken_specs"


def build_definitions(specs_dir: str | Path, catalog_dir: str | Path | None = None) -> dg.Definitions:
    """Build assets, checks, jobs, schedules and sensors from every ``*.yaml`` under ``specs_dir``.

    ``catalog_dir``: where ingest assets write and backtests land (``<catalog>/runs/``); default
    ``$TICKLOOM_CATALOG``, else ``./catalog``. Both folders are made absolute. Building reads the spec files
    (and lists the input files of ``bars_csv`` ingest nodes, for lineage); it never reads market data.
    """
    # absolute: runs execute in other processes (the run worker), whose current folder may differ
    specs_dir = Path(specs_dir).resolve()
    catalog_dir = (Path(catalog_dir) if catalog_dir else resolve_root(None)).resolve()
    out = _Collected()
    loaded: list[LoadedSpec] = []
    for path in spec_files(specs_dir):
        try:
            loaded.append(load_spec(path))
        except Exception as error:  # noqa: BLE001 - whatever breaks one spec must not break the location
            out.broken(path, specs_dir, error)
    ingest_nodes: list[IngestNodeDefs] = []
    for spec in (s for s in loaded if s.model.kind == "ingest"):
        try:
            nodes = _ingest_nodes(spec, catalog_dir)
            out.add(spec, [n.asset for n in nodes], [c for n in nodes for c in n.checks], [j for n in nodes for j in n.jobs],
                    [s for n in nodes for s in n.schedules], [s for n in nodes for s in n.sensors])
            ingest_nodes += nodes
        except Exception as error:  # noqa: BLE001
            out.broken(spec.path, specs_dir, error)
    for spec in (s for s in loaded if s.model.kind in ("strategy", "research")):
        try:
            upstream = _upstream(spec, ingest_nodes, catalog_dir)
            out.add(spec, [spec_assets(spec, catalog_dir / "runs", upstream, catalog_dir)])
        except Exception as error:  # noqa: BLE001
            out.broken(spec.path, specs_dir, error)
    return dg.Definitions(
        assets=out.assets, asset_checks=out.checks, jobs=out.jobs, schedules=out.schedules, sensors=out.sensors,
        executor=dg.in_process_executor,
    )


def _ingest_nodes(spec: LoadedSpec, catalog_dir: Path) -> list[IngestNodeDefs]:
    problems = [
        (spec.where("nodes", n.id, "op"), f"node {n.id!r}: op {n.op.name} cannot run in an ingest spec; its nodes are "
         f"{IngestFiles.name} nodes")
        for n in spec.nodes.values() if not issubclass(n.op, IngestFiles)
    ]
    if problems:
        raise SpecError(problems)
    return ingest_defs(spec, catalog_dir)


def _upstream(spec: LoadedSpec, ingest_nodes: list[IngestNodeDefs], catalog_dir: Path) -> dict[str, list[dg.AssetKey]]:
    """Source node id → the ingest assets that write what it reads from this catalog."""
    upstream = {}
    for node_id, node in spec.nodes.items():
        reads = getattr(node.op, "catalog_reads", None)
        if reads is None:
            continue
        own = getattr(node.params, "catalog", None)
        if own and (spec.path.parent / own).resolve() != catalog_dir.resolve():
            continue  # reads another catalog than the one these definitions write
        wanted = reads(node.params)
        keys = [
            n.key for n in ingest_nodes
            if n.writes is not None and wanted["schema"] in n.writes["schemas"] and n.writes["venue"] == wanted["venue"]
            and (n.writes["symbols"] is None or set(wanted["symbols"]) & n.writes["symbols"])
        ]
        if keys:
            upstream[node_id] = keys
    return upstream


class _Collected:
    """The definitions gathered so far; refuses a spec whose names another spec already took."""

    def __init__(self):
        self.assets, self.checks, self.jobs, self.schedules, self.sensors = [], [], [], [], []
        self._owners: dict[tuple, Path] = {}

    def add(self, spec: LoadedSpec, assets, checks=(), jobs=(), schedules=(), sensors=()) -> None:
        names = set()
        for a in assets:
            names |= {("asset", k) for k in a.keys} | {("op", a.node_def.name)}
        names |= {("op", c.node_def.name) for c in checks}
        names |= {("job", j.name) for j in jobs} | {("schedule", s.name) for s in schedules} | {("sensor", s.name) for s in sensors}
        taken = sorted({str(self._owners[n]) for n in names if n in self._owners})
        if taken:
            raise SpecError.at(spec.where("name"), f"spec {spec.name!r} uses names that {', '.join(taken)} already uses "
                               f"(spec names must be unique; '-' and '_' count as the same)")
        self._owners.update({n: spec.path for n in names})
        self.assets += assets
        self.checks += checks
        self.jobs += jobs
        self.schedules += schedules
        self.sensors += sensors

    def broken(self, path: Path, specs_dir: Path, error: Exception) -> None:
        asset = _broken_spec_asset(path, specs_dir, error)
        base, n = asset.key, 1
        while ("asset", asset.key) in self._owners:  # two broken files whose names only differ by '-' and '_'
            n += 1
            asset = asset.replace_attributes(key=dg.AssetKey([*base.path[:-1], f"{base.path[-1]}_{n}"]))
        self._owners[("asset", asset.key)] = path
        self.assets.append(asset)


def _broken_spec_asset(path: Path, specs_dir: Path, error: Exception) -> dg.AssetSpec:
    relative = path.relative_to(specs_dir).with_suffix("")
    name = "__".join(safe_name(part) for part in relative.parts)
    text = str(error) if str(error).startswith(str(path)) else f"{path}: {type(error).__name__}: {error}"
    if isinstance(error, SpecError):
        text = str(error)
    return dg.AssetSpec(
        dg.AssetKey([BROKEN_GROUP, name]),
        group_name=BROKEN_GROUP,
        description=f"This spec does not load:\n\n```\n{text}\n```",
        metadata={"spec_file": str(path), "error": dg.MetadataValue.md(f"```\n{text}\n```")},
    )


def specs_folder() -> Path:
    """The specs folder of ``pipelines/dagster/location.py``: ``$TICKLOOM_SPECS``, else ``./specs``."""
    return Path(os.environ.get("TICKLOOM_SPECS") or "specs")
