"""Specs and helpers shared by the Dagster tests."""

from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "data" / "samples"
DAYS = 30  # sample rows kept per symbol by the ``project`` fixture: 2012-01-03 .. 2012-02-14

INGEST_BARS = """
tickloom: 1
name: bars_in
kind: ingest
params: {samples: ../../data/samples}
nodes:
  xnas:
    op: ingest.files
    with:
      format: bars_csv
      paths: ["${samples}/AAPL.csv.gz", "${samples}/MSFT.csv.gz"]
      venue: XNAS
      options: {timezone: America/New_York}
      partition_start: "2012-01-01"
      schedule: "0 6 * * *"
      landing: ../../landing
      checks: {min_rows: 1, max_rows: 1, freshness_hours: 1000000}
"""

STRATEGY_ON_CATALOG = """
tickloom: 1
name: cross_on_catalog
kind: strategy
params: {fast: 3, slow: 8}
nodes:
  bars: {op: source.catalog_bars, with: {venue: XNAS, symbols: [AAPL]}}
  fast: {op: indicator.sma, in: bars.close, with: {window: "${fast}"}}
  slow: {op: indicator.sma, in: bars.close, with: {window: "${slow}"}}
  cross: {op: signal.crossover, in: [fast, slow]}
  target: {op: sizing.fraction_of_equity, in: {side: cross, price: bars.close, equity: prev(sim.equity)}, with: {fraction: 0.9}}
  sim: {op: backtest.bar_venue, in: {market: bars, target: target}, with: {cash: 10000, commission: 0.001}}
"""


def assets_by_key(defs: dg.Definitions) -> dict[dg.AssetKey, object]:
    found = {}
    for a in defs.assets:
        for key in getattr(a, "keys", None) or [a.key]:
            found[key] = a
    return found


def checks_of(defs: dg.Definitions, key: dg.AssetKey) -> list:
    return [c for c in defs.asset_checks if any(k.asset_key == key for k in c.check_keys)]
