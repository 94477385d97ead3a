"""Strategy and research specs as Dagster assets: one multi-asset per spec, one asset per node.

A spec runs as one graph (the fused plan), so its nodes are one multi-asset that cannot be subset: a
materialization replays the whole spec once and reports every node. Lineage inside the spec follows its
edges; the backtest node carries the stats table, the equity plot, the trade count and the spec hash. Run
config exposes the spec's params (the launchpad shows them with their defaults); overridden values are
recorded in the result's metadata and in the run folder's ``spec.json``.

Files land in the catalog: ``<catalog>/runs/<spec>/<dagster run id>/`` (stats, trades, equity, report, every
recorded node). A source that reads the catalog (``source.catalog_bars``) without its own ``catalog`` reads the
catalog the definitions were built for, and its asset depends on the ingest assets that write what it reads
(``upstream``), so the UI shows lineage from ingested data through features to the backtest.
"""

import base64
from pathlib import Path

import dagster as dg
import polars as pl

from nodes.backtest.stats import format_stats_table
from pipelines.dagster.common import as_sets, asset_key, catalog_env, config_schema, overrides, safe_name
from pipelines.run import run_spec
from pipelines.spec import LoadedSpec


def spec_assets(
    spec: LoadedSpec,
    runs_root: Path,
    upstream: dict[str, dg.AssetKey | list[dg.AssetKey]],
    catalog_dir: Path | None = None,
) -> dg.AssetsDefinition:
    """Build the multi-asset of one strategy or research spec.

    ``upstream`` maps a source node id to the asset key(s) it reads (ingest assets), for lineage from ingested
    data; other sources appear as nodes of the spec. ``catalog_dir``: the catalog that catalog sources without
    their own ``catalog`` read during a materialization (default: ``$TICKLOOM_CATALOG`` as it is).
    """
    graph = spec.graph
    specs = []
    for node_id in graph.order:
        node = graph.nodes[node_id]
        deps = sorted({a.node for a in node.args if not a.delayed} | set(node.tables.values()))
        keys = [asset_key(spec.name, d) for d in deps]
        extra = upstream.get(node_id, [])
        keys += [extra] if isinstance(extra, dg.AssetKey) else list(extra)
        specs.append(
            dg.AssetSpec(
                asset_key(spec.name, node_id),
                deps=keys,
                group_name=safe_name(spec.name),
                description=f"{node.op.name}: {node.op.summary()}",
                kinds={node.definition.place if node.op.kind == "stream" else "polars"},
                metadata={"spec_file": str(spec.path), "op": node.op.name},
            )
        )
    path, params = spec.path, dict(spec.model.params)

    @dg.multi_asset(
        name=_op_name(spec.name),
        specs=specs,
        can_subset=False,
        config_schema=config_schema(params),
        description=spec.model.description or f"{spec.model.kind} spec {spec.name}",
    )
    def _materialize(context: dg.AssetExecutionContext):
        changed = overrides(context.op_execution_context.op_config, params)
        record = [n for n in graph.order if graph.nodes[n].op.kind == "stream"]
        # runs land in the catalog's runs folder, one per spec and Dagster run
        with catalog_env(catalog_dir):
            output = run_spec(path, sets=as_sets(changed), record=record, out_dir=runs_root / spec.name / context.run.run_id)
        yield from _results(output, changed)

    return _materialize


def _results(output, overrides: dict):
    spec = output.spec
    common = {
        "spec_hash": spec.spec_hash,
        "overrides": dg.MetadataValue.json(overrides),
        "params": dg.MetadataValue.json(spec.model.params),
        "run_folder": dg.MetadataValue.path(str(output.out_dir)),
    }
    recorded = output.replay.recorded
    for node_id in spec.graph.order:
        metadata = dict(common)
        frame = recorded.get(node_id)
        if frame is None and node_id in output.replay.tables:
            frame = output.replay.tables[node_id]["out"]
        if frame is not None:
            metadata["rows"] = frame.height
            metadata["preview"] = dg.MetadataValue.md(_markdown_table(frame.tail(5)))
            written = output.out_dir / f"{node_id}.parquet"
            if written.exists():
                metadata["path"] = dg.MetadataValue.path(str(written))
        if node_id in output.replay.summaries and output.backtest is not None:
            metadata.update(_backtest_metadata(output))
        yield dg.MaterializeResult(asset_key=asset_key(spec.name, node_id), metadata=metadata)


def _backtest_metadata(output) -> dict:
    bt = output.backtest
    png = (output.out_dir / "report.png").read_bytes()
    stats = bt.stats
    return {
        "stats": dg.MetadataValue.md("```\n" + format_stats_table(stats) + "\n```"),
        "equity_and_drawdown": dg.MetadataValue.md(f"![equity](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "trades": stats["# Trades"],
        "return_pct": _finite(stats["Return [%]"]),
        "sharpe": _finite(stats["Sharpe Ratio"]),
        "max_drawdown_pct": _finite(stats["Max. Drawdown [%]"]),
    }


def _finite(value) -> float | None:
    return None if value is None or value != value else float(value)


def _markdown_table(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return head + "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in frame.rows())


def _op_name(spec_name: str) -> str:
    return "spec_" + safe_name(spec_name)
