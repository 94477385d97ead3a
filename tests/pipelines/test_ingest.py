"""Ingestion end to end: the shipped sample bars into tmp catalogs, through the API, the spec and the CLI.

The samples are cut to their first days (one partition per symbol and day, so three years of four symbols would
be 3,016 files per run); the shipped spec reads them through its ``samples`` param.
"""

import gzip
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from nodes.catalog import Catalog
from nodes.catalog import writer as writer_module
from nodes.catalog.formats import FORMATS
from nodes.errors import DataQualityError, InvariantError, SpecError
from nodes.marketdata.schemas import SCHEMAS
from pipelines.ingest import ingest_files, ingest_spec
from pipelines.spec import load_spec
from runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
SPEC = ROOT / "specs" / "ingest" / "sample_bars.yaml"
SYMBOLS = ("AAPL", "MSFT", "IBM", "KO")
DAYS = 20
NY = {"timezone": "America/New_York"}


@pytest.fixture
def samples(tmp_path) -> Path:
    """The shipped sample bars, each cut to its first ``DAYS`` rows, gzipped under their own names."""
    folder = tmp_path / "samples"
    folder.mkdir()
    for symbol in SYMBOLS:
        lines = gzip.decompress((SAMPLES / f"{symbol}.csv.gz").read_bytes()).decode().splitlines(keepends=True)
        (folder / f"{symbol}.csv.gz").write_bytes(gzip.compress("".join(lines[: DAYS + 1]).encode(), mtime=0))
    return folder


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("part-0.parquet"))}


def runs(catalog: Path) -> pl.DataFrame:
    return Catalog(catalog).query("select * from ingest_runs order by started_utc, run_id")


def test_ingesting_the_samples_twice_gives_the_same_catalog_and_two_recorded_runs(tmp_path, samples):
    catalog = tmp_path / "catalog"
    files = [samples / f"{s}.csv.gz" for s in ("AAPL", "MSFT")]
    first = ingest_files(catalog, "bars_csv", files, venue="XNAS", options=NY)
    before = digests(catalog)
    second = ingest_files(catalog, "bars_csv", files, venue="XNAS", options=NY)
    assert first.rows == second.rows == {"bars": 2 * DAYS}
    assert first.outcomes() == {"new": 2 * DAYS} and second.outcomes() == {"unchanged": 2 * DAYS}
    assert digests(catalog) == before

    bars = Catalog(catalog).read("bars")
    assert bars.height == 2 * DAYS and bars.select("symbol", "ts_recv").n_unique() == 2 * DAYS  # no day twice
    source = pl.read_csv(files[0]).head(DAYS)
    aapl = Catalog(catalog).read("bars", symbols="AAPL")
    assert aapl["close"].to_list() == source["close"].to_list()
    assert aapl["symbol"].unique().to_list() == ["AAPL"] and aapl["venue"].unique().to_list() == ["XNAS"]

    recorded = runs(catalog)
    assert recorded["run_id"].to_list() == [first.run_id, second.run_id]
    assert recorded["status"].to_list() == ["succeeded"] * 2 and recorded["error"].to_list() == [None, None]
    assert recorded["spec_name"].to_list() == ["quick"] * 2 and recorded["spec_hash"].to_list() == [None, None]
    assert (recorded["duration_s"] > 0).all() and (recorded["finished_utc"] >= recorded["started_utc"]).all()
    inputs = recorded["inputs"][0].to_list()
    assert inputs == [
        {"path": str(f), "format": "bars_csv", "sha256": hashlib.sha256(f.read_bytes()).hexdigest(), "bytes": f.stat().st_size}
        for f in files
    ]
    assert recorded["rows"][0] == {"bars": 2 * DAYS}
    partitions = recorded["partitions"][1].to_list()
    assert len(partitions) == 2 * DAYS and {p["outcome"] for p in partitions} == {"unchanged"}

    reports = Catalog(catalog).query("select run_id, input, records, bad_records, bad_record_rate, report from quality_reports")
    assert reports.height == 4 and set(reports["records"]) == {DAYS} and set(reports["bad_record_rate"]) == {0.0}
    report = json.loads(reports["report"][0])
    assert report["format"] == "bars_csv" and report["symbol"] in ("AAPL", "MSFT") and report["records"] == DAYS


def test_the_shipped_spec_ingests_every_sample_and_records_its_hash(tmp_path, samples):
    catalog = tmp_path / "catalog"
    result = ingest_spec(SPEC, catalog=catalog, sets=[f"samples={samples}"])
    assert result.spec_name == "sample_bars"
    assert result.spec_hash == load_spec(SPEC, sets=[f"samples={samples}"]).spec_hash
    listing = Catalog(catalog).ls()
    assert listing.select("venue", "symbol", "dates", "rows").sort("symbol").rows() == sorted(
        [("XNAS", "AAPL", DAYS, DAYS), ("XNAS", "MSFT", DAYS, DAYS), ("XNYS", "IBM", DAYS, DAYS), ("XNYS", "KO", DAYS, DAYS)],
        key=lambda r: r[1],
    )
    assert runs(catalog).select("spec_name", "spec_hash", "status").rows() == [("sample_bars", result.spec_hash, "succeeded")]

    # the first bar of 2012 closed at 16:00 New York = 21:00 UTC and is in that UTC date's partition
    first = Catalog(catalog).query("select ts_recv, date from bars where symbol = 'KO' order by ts_recv limit 1").row(0)
    assert first[0] == 1_325_624_400_000_000_000 and str(first[1]) == "2012-01-03"


def test_scan_prunes_to_the_asked_symbols_and_days(tmp_path, samples):
    ingest_spec(SPEC, catalog=tmp_path, sets=[f"samples={samples}"])
    catalog = Catalog(tmp_path)
    week = catalog.read("bars", venue="XNYS", symbols=["KO"], start="2012-01-09", end="2012-01-14")
    assert week["symbol"].unique().to_list() == ["KO"]
    expected = pl.read_csv(samples / "KO.csv.gz").filter(pl.col("date").is_between(pl.lit("2012-01-09"), pl.lit("2012-01-13")))
    assert week["close"].to_list() == expected["close"].to_list() and week.height == 5
    assert catalog.query("select count(*) from bars where venue = 'XNYS' and date between '2012-01-09' and '2012-01-13'").item() == 10


def test_a_bad_input_fails_the_run_records_the_error_and_changes_nothing(tmp_path, samples):
    catalog = tmp_path / "catalog"
    ingest_files(catalog, "bars_csv", [samples / "AAPL.csv.gz"], venue="XNAS", options=NY)
    before = digests(catalog)
    bad = tmp_path / "AAPL.csv"
    text = gzip.decompress((samples / "AAPL.csv.gz").read_bytes()).decode().splitlines()
    text[5] = "2012-01-10,58.0,59.0,57.0,,1000,0.0,1.0"  # no close on line 6
    bad.write_text("\n".join(text) + "\n")

    with pytest.raises(DataQualityError, match="missing or non-numeric close: 1 row.*line.* 6") as raised:
        ingest_files(catalog, "bars_csv", [samples / "MSFT.csv.gz", bad], venue="XNAS", options=NY)
    assert any("recorded in" in note for note in raised.value.__notes__)
    assert digests(catalog) == before  # MSFT decoded fine, but a failed run publishes nothing

    failed = runs(catalog).row(1, named=True)
    assert failed["status"] == "failed" and failed["error"].startswith("DataQualityError: ")
    assert str(bad) in failed["error"] and "line(s) 6" in failed["error"]
    assert [i["path"] for i in failed["inputs"]] == [str(samples / "MSFT.csv.gz"), str(bad)]
    assert all(len(i["sha256"]) == 64 for i in failed["inputs"])
    assert failed["partitions"] == []

    with pytest.raises(DataQualityError, match="no such file"):
        ingest_files(catalog, "bars_csv", [tmp_path / "missing.csv"], venue="XNAS", options=NY)
    assert runs(catalog)["status"].to_list() == ["succeeded", "failed", "failed"]


def test_a_crash_while_publishing_is_recorded_and_each_day_stays_whole(tmp_path, samples, monkeypatch):
    catalog = tmp_path / "catalog"
    ingest_files(catalog, "bars_csv", [samples / "KO.csv.gz"], venue="XNYS", options=NY)
    revised = tmp_path / "revised" / "KO.csv"
    revised.parent.mkdir()
    revised.write_text(pl.read_csv(samples / "KO.csv.gz").with_columns(pl.col("close") + 1000).write_csv())

    published = []

    def crash_after_five(temp, final):
        if len(published) == 5:
            raise OSError("disk vanished")
        writer_module.os.replace(temp, final)
        published.append(final)

    monkeypatch.setattr(writer_module, "_publish", crash_after_five)
    with pytest.raises(OSError, match="disk vanished"):
        ingest_files(catalog, "bars_csv", [revised], venue="XNYS", options=NY)
    closes = Catalog(catalog).read("bars")["close"]
    assert closes.len() == DAYS and (closes > 1000).sum() == 5  # five new days, the rest old, none half
    assert not [p for p in catalog.rglob("*.tmp")]
    failed = runs(catalog).row(1, named=True)
    assert failed["status"] == "failed" and failed["error"] == "OSError: disk vanished"
    assert [(p["outcome"], p["rows"]) for p in failed["partitions"]] == [("replaced", 1)] * 5  # what it did publish


class _FakeReport:
    def __init__(self):
        self.records = 0
        self.bad = 0

    def to_dict(self):
        return {"records": self.records, "bad_records": self.bad, "crossed_books": 0}


def _fake_decoder(bad_records: int):
    """A decoder like the DBN/Binance ones will be: trades and definitions of a crypto pair, a report object."""

    def decode(path, options):
        report = _FakeReport()

        def frames():
            for chunk in range(2):
                ts = [1_704_153_600_000_000_000 + (chunk * 50 + i) * 1_000_000_000 for i in range(50)]
                yield "trades", pl.DataFrame({
                    "ts_event": ts, "ts_recv": ts, "venue": "BINANCE", "symbol": "BTC/USDT", "sequence": None,
                    "price": [61_773_600_000_000] * 50, "size": [1_000_000] * 50, "side": [1] * 50, "trade_id": None,
                }, schema=SCHEMAS["trades"])
                report.records += 50
            yield "definitions", pl.DataFrame({
                "ts_event": [ts[0]], "ts_recv": [ts[0]], "venue": ["BINANCE"], "symbol": ["BTC/USDT"],
                "instrument_id": [1], "instrument_class": ["spot"], "currency": ["USDT"], "tick_size": [10_000_000],
                "lot_size": [10_000], "multiplier": [1.0], "expiration": [None],
            }, schema=SCHEMAS["definitions"])
            report.bad = bad_records
            report.records += bad_records

        return frames(), report

    return decode


def test_a_bad_record_rate_above_the_threshold_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "fake", _fake_decoder(bad_records=3))
    capture = tmp_path / "capture.gz"
    capture.write_bytes(b"whatever the decoder reads")
    with pytest.raises(DataQualityError, match=r"3 bad record\(s\) of 103 \(2.9126%\) is above max_bad_record_rate 1.0000%"):
        ingest_files(tmp_path, "fake", [capture], max_bad_record_rate=0.01)
    catalog = Catalog(tmp_path)
    assert catalog.ls().is_empty()
    assert runs(tmp_path)["status"].to_list() == ["failed"]
    assert catalog.query("select records, bad_records from quality_reports").rows() == [(103, 3)]
    assert catalog.query("select count(*) from instruments").item() == 0  # a failed run defines nothing

    result = ingest_files(tmp_path, "fake", [capture], max_bad_record_rate=0.05)
    assert result.rows == {"trades": 100, "definitions": 1}
    assert catalog.query("select symbol, count(*) from trades group by symbol").rows() == [("BTC/USDT", 100)]
    assert catalog.query("select venue, symbol, instrument_class, currency, tick_size, lot_size, multiplier from instruments").rows() == [
        ("BINANCE", "BTC/USDT", "spot", "USDT", 10_000_000, 10_000, 1.0)
    ]
    assert (tmp_path / "schema=trades" / "venue=BINANCE" / "symbol=BTC%2FUSDT").is_dir()


def test_a_report_without_counts_is_a_wiring_bug(tmp_path, monkeypatch):
    monkeypatch.setitem(FORMATS, "uncounted", lambda path, options: (iter(()), {"rows": 0}))
    capture = tmp_path / "x.bin"
    capture.write_bytes(b"")
    with pytest.raises(InvariantError, match="no integer 'records' and 'bad_records'"):
        ingest_files(tmp_path / "catalog", "uncounted", [capture])


def test_a_run_whose_process_died_is_marked_abandoned_by_the_next(tmp_path, samples):
    from nodes.catalog.layout import CatalogLayout
    from nodes.catalog.metadata import MetadataStore

    MetadataStore(CatalogLayout(tmp_path)).begin_run("dead-run", "quick", None, "2024-01-02 00:00:00")
    ingest_files(tmp_path, "bars_csv", [samples / "IBM.csv.gz"], venue="XNYS", options=NY)
    dead = runs(tmp_path).filter(pl.col("run_id") == "dead-run").row(0, named=True)
    assert dead["status"] == "failed" and dead["error"].startswith("abandoned")


def test_requests_that_are_wrong_before_any_run_are_spec_errors(tmp_path, samples):
    with pytest.raises(SpecError, match="unknown format 'bars_cvs' \\(did you mean 'bars_csv'\\?\\)"):
        ingest_files(tmp_path, "bars_cvs", [samples / "KO.csv.gz"], venue="XNYS")
    with pytest.raises(SpecError, match="venue: Field required"):
        ingest_files(tmp_path, "bars_csv", [samples / "KO.csv.gz"], options=NY)
    with pytest.raises(SpecError, match="unknown time zone"):
        ingest_files(tmp_path, "bars_csv", [samples / "KO.csv.gz"], venue="XNYS", options={"timezone": "Mars/Base"})
    with pytest.raises(SpecError, match="is an input twice"):
        ingest_files(tmp_path, "bars_csv", [samples / "KO.csv.gz"] * 2, venue="XNYS", options=NY)
    with pytest.raises(SpecError, match="kind: ingest"):
        ingest_spec(ROOT / "specs" / "strategies" / "sma_cross.yaml", catalog=tmp_path)
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(SPEC.read_text().replace("samples: ../../data/samples", f"samples: {SAMPLES}") + (
        "  smooth: {op: indicator.sma, in: nyse, with: {window: 3}}\n"))
    with pytest.raises(SpecError):
        ingest_spec(mixed, catalog=tmp_path)
    assert not (tmp_path / "catalog.duckdb").exists()  # nothing ran, nothing recorded


def test_spec_paths_may_be_globs_relative_to_the_spec(tmp_path, samples):
    spec = tmp_path / "ingest.yaml"
    spec.write_text(
        "tickloom: 1\nname: glob\nkind: ingest\nnodes:\n"
        "  all: {op: ingest.files, with: {format: bars_csv, paths: ['samples/*.csv.gz'], venue: XNAS,"
        " options: {timezone: America/New_York, chunk_rows: 7}}}\n"
    )
    result = ingest_spec(spec, catalog=tmp_path / "catalog")
    assert [Path(i["path"]).name for i in result.inputs] == ["AAPL.csv.gz", "IBM.csv.gz", "KO.csv.gz", "MSFT.csv.gz"]
    assert result.rows == {"bars": 4 * DAYS}


# --- command line ---------------------------------------------------------------------------------------


def test_cli_ingest_ls_and_query(tmp_path, samples, capsys, monkeypatch):
    catalog = tmp_path / "catalog"
    argv = ["ingest", "--format", "bars_csv", str(samples / "AAPL.csv.gz"), str(samples / "KO.csv.gz"),
            "--venue", "XNAS", "--option", "timezone=America/New_York", "--catalog", str(catalog)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "succeeded  (quick)" in out and f"{2 * DAYS} bars" in out and f"{2 * DAYS} new" in out

    monkeypatch.setenv("TICKLOOM_CATALOG", str(catalog))  # ls and query find it without --catalog
    assert main(["catalog", "ls"]) == 0
    out = capsys.readouterr().out
    assert "AAPL" in out and "KO" in out and "2012-01-03" in out and f"{2 * DAYS} rows" in out
    assert main(["catalog", "query", "select symbol, count(*) as n from bars group by symbol order by symbol"]) == 0
    aapl_line = next(line for line in capsys.readouterr().out.splitlines() if "AAPL" in line)
    assert aapl_line.split()[-2] == str(DAYS)

    assert main(["catalog", "query", "select * from nope"]) == 1
    assert "query failed" in capsys.readouterr().err
    assert main(["catalog", "ls", "--catalog", str(tmp_path / "typo")]) == 1
    assert "no catalog at" in capsys.readouterr().err


def test_cli_ingest_spec_and_failures(tmp_path, samples, capsys):
    catalog = tmp_path / "catalog"
    assert main(["ingest", str(SPEC), "--set", f"samples={samples}", "--catalog", str(catalog)]) == 0
    assert "sample_bars  spec" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("when,open\n1,2\n")
    assert main(["ingest", "--format", "bars_csv", str(bad), "--venue", "X", "--option", "timezone=UTC", "--catalog", str(catalog)]) == 1
    err = capsys.readouterr().err
    assert "failed; recorded in" in err and "expected a time column" in err
    assert Catalog(catalog).query("select status from ingest_runs order by started_utc, run_id")["status"].to_list()[-1] == "failed"

    assert main(["ingest", str(SPEC), "--venue", "X"]) == 2  # quick-ingest options need --format
    assert main(["ingest", "--format", "bars_csv", str(bad), "--option", "timezone"]) == 1
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_cli_validates_ingest_specs_and_refuses_to_replay_them(tmp_path, capsys):
    assert main(["validate", str(SPEC)]) == 0
    assert main(["run", str(SPEC), "--out", str(tmp_path / "run")]) == 1
    assert "tickloom ingest SPEC" in capsys.readouterr().err

