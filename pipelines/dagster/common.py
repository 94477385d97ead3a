"""What the strategy and ingest definitions share: names, run config from spec params, catalog access.

Names: Dagster accepts ``[A-Za-z0-9_]`` in op, job, group and asset-key names; spec and node ids may also hold
``-``, which becomes ``_`` (a clash of two specs that only differ there is reported as a broken spec).
"""

import json
import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from nodes.catalog.layout import CATALOG_ENV

CATALOG_POOL = "tickloom_catalog"
"""Concurrency pool of every step that writes the catalog: the catalog has one writer at a time (its lock
refuses a second one), so ``tickloom ui`` limits the pool to one step (``dagster.yaml``) and runs queue."""

_DAGSTER_TYPES = {bool: dg.Bool, int: dg.Int, float: dg.Float, str: dg.String}


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


def asset_key(spec_name: str, node_id: str) -> dg.AssetKey:
    return dg.AssetKey([safe_name(spec_name), safe_name(node_id)])


def config_schema(params: dict) -> dict[str, dg.Field]:
    """One optional run-config field per spec param, defaulting to the YAML value (the launchpad shows them)."""
    return {name: _config_field(value) for name, value in params.items()}


def overrides(op_config: dict | None, params: dict) -> dict:
    """The params whose run-config value differs from the spec's."""
    return {k: v for k, v in (op_config or {}).items() if k in params and v != params.get(k)}


def as_sets(values: dict) -> list[str]:
    """Param overrides as ``--set name=value`` strings (JSON is YAML, so types survive)."""
    return [f"{k}={json.dumps(v)}" for k, v in values.items()]


def _config_field(value) -> dg.Field:
    kind = _DAGSTER_TYPES.get(type(value), dg.Any)
    return dg.Field(kind, default_value=value, is_required=False, description="spec param; overrides the YAML value")


@contextmanager
def catalog_env(catalog_dir: Path | None):
    """Make ``catalog_dir`` the default catalog (``$TICKLOOM_CATALOG``) for the block: catalog sources without
    their own ``catalog`` read the catalog the definitions were built for. Runs execute in their own process
    (one step at a time with the in-process executor), so the change is local to the run."""
    if catalog_dir is None:
        yield
        return
    before = os.environ.get(CATALOG_ENV)
    os.environ[CATALOG_ENV] = str(Path(catalog_dir).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CATALOG_ENV, None)
        else:
            os.environ[CATALOG_ENV] = before


def markdown_table(rows: list[dict], limit: int = 20) -> str:
    if not rows:
        return "(none)"
    columns = list(rows[0])
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "\n".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows[:limit])
    more = f"\n\n… and {len(rows) - limit} more" if len(rows) > limit else ""
    return head + body + more
