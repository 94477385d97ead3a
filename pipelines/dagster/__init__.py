"""Dagster definitions built from the specs folder: adding a YAML file adds assets, no Python per spec.

Why a plain ``Definitions`` factory and not Dagster Components: Components (``defs.yaml``, ``dg check``) read
YAML written for Dagster; our specs are written for tickloom and are also read by the streaming runtime and the
command line. A factory (``build_definitions``) maps our own validated specs onto assets, keeps the spec
loader free of Dagster (unit tests stay fast, the runtime does not import Dagster), and builds 200 specs within
the UI's reload budget (``benchmarks/dagster_defs.py``: about 1.1 s of CPU, goal 2 s). Dagster never runs a second implementation of a
node: every asset calls the same ``pipelines.run.run_spec`` (strategy, research) or
``pipelines.ingest.ingest_spec`` (ingest) that the command line uses, and IO goes through the catalog (Parquet
partitions, DuckDB metadata, run folders under ``<catalog>/runs``), never through an IO manager's pickles.

Modules: ``definitions`` (the factory, broken-spec isolation, lineage), ``ingest`` (partitioned ingest assets,
schedule, landing sensor), ``checks`` (data-quality asset checks), ``strategy`` (backtest and research
multi-assets), ``common`` (names, run config), ``location`` (the code location of ``tickloom ui``).
"""

from pipelines.dagster.definitions import build_definitions

__all__ = ["build_definitions"]
