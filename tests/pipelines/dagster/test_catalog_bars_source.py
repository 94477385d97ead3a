"""``source.catalog_bars``: bars read back from the catalog in ts_recv order, equal to reading the CSVs."""

import json
from pathlib import Path

import numpy as np
import pytest

from nodes.errors import DataQualityError, SpecError
from nodes.sources.bars_csv import BarsCsv, BarsCsvParams
from nodes.sources.catalog_bars import CatalogBars, CatalogBarsParams
from pipelines.ingest import ingest_files
from pipelines.run import run_spec
from tests.pipelines.dagster.support import ROOT

SYMBOLS = ["MSFT", "AAPL", "KO"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    samples = ROOT / "data" / "samples"
    options = {"timezone": "America/New_York"}
    ingest_files(root, "bars_csv", [samples / f"{s}.csv.gz" for s in ("AAPL", "MSFT")], venue="XNAS", options=options)
    ingest_files(root, "bars_csv", [samples / "KO.csv.gz"], venue="XNAS", options=options)
    return root


def read(params: CatalogBarsParams, max_rows: int = 1000) -> dict[str, np.ndarray]:
    chunks = list(CatalogBars.open(params, Path("/")).chunks(max_rows))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def test_bars_come_merged_in_ts_recv_order_like_the_csv_source(catalog):
    params = CatalogBarsParams(venue="XNAS", symbols=SYMBOLS, catalog=str(catalog))
    from_catalog = read(params)
    csv = BarsCsvParams(path=str(ROOT / "data" / "samples" / "{instrument}.csv.gz"), instruments=SYMBOLS,
                        timezone="America/New_York")
    chunks = list(BarsCsv.open(csv, Path("/")).chunks(10_000))
    from_csv = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert set(from_catalog) == set(from_csv)
    for name, values in from_csv.items():
        np.testing.assert_array_equal(from_catalog[name], values, err_msg=name)


def test_batches_and_chunks_do_not_change_what_is_read(catalog):
    span = {"start": "2013-01-01", "end": "2013-07-01T12:00:00"}
    whole = read(CatalogBarsParams(venue="XNAS", symbols=SYMBOLS, catalog=str(catalog), **span))
    small = read(CatalogBarsParams(venue="XNAS", symbols=SYMBOLS, catalog=str(catalog), batch_bytes=1, **span), max_rows=7)
    assert len(whole["ts_recv"]) == 3 * 124  # 124 sessions in 2013H1; one batch per day, 7-row chunks across days
    for name in whole:
        np.testing.assert_array_equal(whole[name], small[name], err_msg=name)


def test_start_and_end_bound_ts_recv_and_missing_data_says_how_to_ingest_it(catalog):
    params = CatalogBarsParams(venue="XNAS", symbols=["AAPL"], start="2013-01-01", end="2013-02-01", catalog=str(catalog))
    bars = read(params)
    assert len(bars["ts_recv"]) == 21 and bars["ts_recv"].min() >= 1357000000 * 10**9
    with pytest.raises(DataQualityError, match="no bars of IBM at XNAS.*tickloom ingest"):
        CatalogBars.open(CatalogBarsParams(venue="XNAS", symbols=["IBM"], catalog=str(catalog)), Path("/"))
    with pytest.raises(ValueError, match="is not after start"):
        CatalogBarsParams(venue="XNAS", symbols=["AAPL"], start="2013-02-01", end="2013-01-01")


def test_a_backtest_on_catalog_bars_equals_the_same_backtest_on_the_csv(catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLOOM_CATALOG", str(catalog))
    on_catalog = run_spec(ROOT / "specs" / "strategies" / "sma_cross_catalog.yaml", out_dir=tmp_path / "catalog_run")
    on_csv = run_spec(ROOT / "specs" / "strategies" / "sma_cross.yaml", out_dir=tmp_path / "csv_run")
    stats = [json.loads((o.out_dir / "stats.json").read_text()) for o in (on_catalog, on_csv)]
    for s in stats:
        s.pop("spec_hash")
    assert stats[0] == stats[1] and stats[0]["# Trades"] > 0


def test_a_spec_with_a_bad_catalog_source_fails_at_load_with_its_location(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("tickloom: 1\nname: s\nkind: strategy\nnodes:\n  bars: {op: source.catalog_bars, with: {venue: X, symbols: []}}\n")
    from pipelines.spec import load_spec

    with pytest.raises(SpecError, match=rf"{spec}:5:"):
        load_spec(spec)
