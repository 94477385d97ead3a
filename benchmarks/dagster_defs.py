"""Dagster definitions from 200 generated specs: how long the code location takes to build, and its memory.

Run from the repository root with the dev venv:

    /work/venv/bin/python benchmarks/dagster_defs.py              # 200 specs: 150 strategies, 50 ingest
    /work/venv/bin/python benchmarks/dagster_defs.py --specs 1000 --ingest-share 0.5

Goal: under 2 s for 200 specs (the UI reloads the code location on demand; a slow factory is a slow reload).

What is timed, in one process:

* **import**: ``import dagster``, tickloom's definitions module and the op library (``default_registry()``
  imports every op module once); a code server pays it once per start;
* **build**: ``build_definitions(folder)``: read and validate every spec with the spec loader (YAML with
  locations, pydantic, graph), then make its Dagster objects: a multi-asset per strategy; per ingest node a
  daily-partitioned asset, its checks, an asset job + schedule and a landing job + sensor;
* **resolve**: ``Definitions.validate_loadable``: Dagster resolves the repository (asset graph, jobs,
  schedules, sensors), which the code server does when it loads the location.

**cold** is the first build + resolve in the process (what a code server does when it starts or reloads:
``dagster dev`` reloads by starting a new code server); **warm** is the best of ``--runs`` more rounds (this
machine is shared and its load comes and goes). The goal applies to cold. ``cpu`` is the process's CPU time for
the same work: on a busy machine the wall time grows, the CPU time much less.

Memory: ``peak traced`` is the peak of Python allocations (tracemalloc) during one extra build + resolve
(traced separately: tracing slows Python down ~3x); ``max RSS`` is the process's peak resident size (mostly
the imports: Dagster alone is ~250 MB).

Generated specs: strategies are SMA crossovers of 6-8 nodes over varying windows, a third of them reading the
catalog (so lineage to the ingest assets is computed); ingest specs have two ``ingest.files`` nodes with
``partition_start``, ``schedule``, ``landing`` and ``checks``. Inputs are not read (building never reads data).
"""

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STRATEGY = """\
tickloom: 1
name: gen_strategy_{i}
kind: strategy
description: generated crossover {i}
params: {{fast: {fast}, slow: {slow}, fraction: 0.9}}
defaults: {{place: {place}}}
nodes:
  bars: {source}
  fast: {{op: indicator.{ma}, in: bars.close, with: {{window: "${{fast}}"}}}}
  slow: {{op: indicator.{ma}, in: bars.close, with: {{window: "${{slow}}"}}}}
  cross: {{op: signal.crossover, in: [fast, slow]}}
  target:
    op: sizing.fraction_of_equity
    in: {{side: cross, price: bars.close, equity: prev(sim.equity)}}
    with: {{fraction: "${{fraction}}"}}
  sim: {{op: backtest.bar_venue, in: {{market: bars, target: target}}, with: {{cash: 10000, commission: 0.001}}}}
"""
CSV_SOURCE = "{op: source.bars_csv, with: {path: ../data/samples/AAPL.csv.gz, instrument: AAPL, timezone: America/New_York}}"
CATALOG_SOURCE = "{{op: source.catalog_bars, with: {{venue: V{v}, symbols: [S{v}A, S{v}B]}}}}"
INGEST = """\
tickloom: 1
name: gen_ingest_{i}
kind: ingest
params: {{landing: ../landing/{i}}}
nodes:
  a:
    op: ingest.files
    with:
      format: bars_csv
      paths: [../data/S{i}A.csv.gz]
      venue: V{i}
      options: {{timezone: UTC}}
      partition_start: "2020-01-0{d}"
      schedule: "{minute} 6 * * *"
      landing: "${{landing}}"
      checks: {{min_rows: 1, max_rows: 100000, freshness_hours: 48}}
  b:
    op: ingest.files
    with:
      format: dbn
      paths: [../data/{i}.dbn]
      partition_start: "2021-06-01"
      checks: {{max_sequence_gaps: 10}}
"""


def generate(folder: Path, count: int, ingest_share: float) -> tuple[int, int]:
    specs = folder / "specs"
    specs.mkdir(parents=True)
    ingest = round(count * ingest_share)
    for i in range(ingest):
        (specs / f"ingest_{i:04d}.yaml").write_text(INGEST.format(i=i, d=1 + i % 9, minute=i % 60))
    for i in range(count - ingest):
        source = CATALOG_SOURCE.format(v=i % max(ingest, 1)) if i % 3 == 0 and ingest else CSV_SOURCE
        (specs / f"strategy_{i:04d}.yaml").write_text(STRATEGY.format(
            i=i, fast=3 + i % 10, slow=20 + i % 30, place="numba" if i % 2 else "cpu", ma="sma" if i % 4 else "ema",
            source=source))
    return ingest, count - ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--specs", type=int, default=200)
    parser.add_argument("--ingest-share", type=float, default=0.25, help="fraction of ingest specs (default 0.25)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    clock = time.perf_counter()
    import dagster as dg

    from nodes.contract import default_registry
    from pipelines.dagster import build_definitions

    default_registry()
    imported = time.perf_counter() - clock

    def build_and_resolve(folder: Path):
        clock, cpu = time.perf_counter(), time.process_time()
        defs = build_definitions(folder / "specs", folder / "catalog")
        built = time.perf_counter()
        dg.Definitions.validate_loadable(defs)
        return defs, built - clock, time.perf_counter() - built, time.process_time() - cpu

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ingest, strategies = generate(folder, args.specs, args.ingest_share)
        defs, cold_build, cold_resolve, cold_cpu = build_and_resolve(folder)
        warm = [build_and_resolve(folder)[1:] for _ in range(args.runs)]
        tracemalloc.start()
        build_and_resolve(folder)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        repo = defs.get_repository_def()
        broken = [a for a in defs.assets if getattr(a, "group_name", None) == "broken_specs"]
        if broken:
            sys.exit(f"{len(broken)} generated specs are broken, e.g.:\n{broken[0].description}")
        counts = (f"{len(repo.asset_graph.get_all_asset_keys())} assets, {len(repo.asset_graph.asset_check_keys)} checks, "
                  f"{len(repo.get_all_jobs())} jobs, {len(repo.schedule_defs)} schedules, {len(repo.sensor_defs)} sensors")
    cold = cold_build + cold_resolve
    warm_build, warm_resolve, warm_cpu = (min(w[i] for w in warm) for i in range(3))
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.specs} specs ({strategies} strategy, {ingest} ingest) → {counts}")
    print(f"  import           {imported:5.2f} s   dagster, tickloom, the op library (once per process)")
    print(f"  cold  build      {cold_build:5.2f} s   + resolve {cold_resolve:.2f} s = {cold:.2f} s  "
          f"({'under' if cold < 2 else 'OVER'} the 2 s goal; {cold / args.specs * 1000:.1f} ms per spec; cpu {cold_cpu:.2f} s)")
    print(f"  warm  build      {warm_build:5.2f} s   + resolve {warm_resolve:.2f} s = {warm_build + warm_resolve:.2f} s  "
          f"(best of {args.runs}; cpu {warm_cpu:.2f} s)")
    print(f"  memory           peak traced {peak / 2**20:.1f} MiB for build + resolve; max RSS {max_rss_mb:.0f} MiB")


if __name__ == "__main__":
    main()
