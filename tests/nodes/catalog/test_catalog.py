"""The catalog: layout and escaping, the partition writer (atomic, idempotent, streaming), the reader."""

import datetime as dt
import hashlib
import string
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes.catalog import Catalog, CatalogError, CatalogLayout, PartitionKey, PartitionWriter, escape, unescape, write_partitioned
from nodes.catalog import writer as writer_module
from nodes.catalog.layout import resolve_root
from nodes.errors import DataQualityError
from nodes.marketdata.schemas import SCHEMAS

REPO = Path(__file__).resolve().parents[3]
NS = 1_000_000_000
DAY = 86_400 * NS
T0 = 1_704_153_600 * NS  # 2024-01-02T00:00:00Z


def trades(rows) -> pl.DataFrame:
    """Trades from (ts_recv, venue, symbol, price) tuples; ts_event is 1 µs earlier, trade_id the row."""
    return pl.DataFrame(
        {
            "ts_event": [r[0] - 1_000 for r in rows],
            "ts_recv": [r[0] for r in rows],
            "venue": [r[1] for r in rows],
            "symbol": [r[2] for r in rows],
            "sequence": [None] * len(rows),
            "price": [r[3] for r in rows],
            "size": [1 * NS] * len(rows),
            "side": [1] * len(rows),
            "trade_id": list(range(len(rows))),
        },
        schema=SCHEMAS["trades"],
    )


def files_digest(root) -> dict[str, str]:
    """Every data file under ``root`` (relative path → sha256)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("part-0.parquet"))}


def hidden_files(root) -> list:
    return [p for p in root.rglob(".*") if p.is_file() and p.name != ".lock"]


# --- layout ---------------------------------------------------------------------------------------------


# a fixed alphabet of the characters that matter (no unicode table to build: fast and deterministic)
NAME_CHARS = st.sampled_from(list(string.printable) + ["€", "é", "中", "\x00", "\u2028", "\U0001F600"])


@given(st.text(NAME_CHARS, min_size=1, max_size=60))
def test_escape_is_reversible_and_a_single_safe_path_component(name):
    escaped = escape(name)
    assert unescape(escaped) == name
    assert "/" not in escaped and "\\" not in escaped and "=" not in escaped and "\x00" not in escaped
    assert not escaped.startswith(".")


def test_escape_examples_and_limits():
    assert escape("AAPL") == "AAPL"
    assert escape("ES.c.0") == "ES.c.0"
    assert escape("BTC/USDT") == "BTC%2FUSDT"
    assert escape("..") == "%2E."
    assert escape("100%") == "100%25"
    assert escape("a b+c") == "a%20b%2Bc"
    assert escape("€") == "%E2%82%AC"
    with pytest.raises(CatalogError, match="non-empty"):
        escape("")
    with pytest.raises(CatalogError, match="255-byte"):
        escape("/" * 90)


def test_root_comes_from_the_argument_then_the_environment_then_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv("TICKLOOM_CATALOG", raising=False)
    assert str(resolve_root(None)) == "catalog"
    monkeypatch.setenv("TICKLOOM_CATALOG", str(tmp_path / "env"))
    assert resolve_root(None) == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"


# --- writer ---------------------------------------------------------------------------------------------


def test_partitions_are_hive_paths_by_utc_date_of_ts_recv_sorted_with_stable_ties(tmp_path):
    frame = trades([
        (T0 + DAY - 1, "BINANCE", "BTC/USDT", 3),  # last ns of 2024-01-02
        (T0 + DAY, "BINANCE", "BTC/USDT", 4),  # first ns of 2024-01-03
        (T0 + 5, "XNAS", "AAPL", 2),
        (T0 + 1, "XNAS", "AAPL", 1),
        (T0 + 5, "XNAS", "AAPL", 9),  # same ts_recv as the 2: keeps its place after it
    ])
    written = write_partitioned(tmp_path, "trades", frame)
    assert [(str(w.key), w.rows, w.outcome) for w in written] == [
        ("trades/BINANCE/BTC/USDT/2024-01-02", 1, "new"),
        ("trades/BINANCE/BTC/USDT/2024-01-03", 1, "new"),
        ("trades/XNAS/AAPL/2024-01-02", 3, "new"),
    ]
    assert sorted(files_digest(tmp_path)) == [
        "schema=trades/venue=BINANCE/symbol=BTC%2FUSDT/date=2024-01-02/part-0.parquet",
        "schema=trades/venue=BINANCE/symbol=BTC%2FUSDT/date=2024-01-03/part-0.parquet",
        "schema=trades/venue=XNAS/symbol=AAPL/date=2024-01-02/part-0.parquet",
    ]
    aapl = pl.read_parquet(tmp_path / "schema=trades/venue=XNAS/symbol=AAPL/date=2024-01-02/part-0.parquet")
    assert aapl["price"].to_list() == [1, 2, 9]
    assert aapl.schema == pl.Schema(SCHEMAS["trades"])
    assert hidden_files(tmp_path) == []  # no temp or staging file left behind


def test_writing_the_same_input_twice_leaves_the_same_bytes_and_replaces_a_changed_day(tmp_path):
    day1 = [(T0 + i, "XNAS", "AAPL", i) for i in range(5)]
    day2 = [(T0 + DAY + i, "XNAS", "AAPL", i) for i in range(5)]
    write_partitioned(tmp_path, "trades", trades(day1 + day2))
    before = files_digest(tmp_path)
    again = write_partitioned(tmp_path, "trades", trades(day1 + day2))
    assert [w.outcome for w in again] == ["unchanged", "unchanged"]
    assert files_digest(tmp_path) == before

    revised = write_partitioned(tmp_path, "trades", trades([(T0 + DAY + i, "XNAS", "AAPL", 100 + i) for i in range(3)]))
    assert [(str(w.key), w.outcome) for w in revised] == [("trades/XNAS/AAPL/2024-01-03", "replaced")]
    after = files_digest(tmp_path)
    first_day = "schema=trades/venue=XNAS/symbol=AAPL/date=2024-01-02/part-0.parquet"
    assert after[first_day] == before[first_day]  # a day the input does not cover is untouched
    assert Catalog(tmp_path).read("trades", start=T0 + DAY)["price"].to_list() == [100, 101, 102]  # replaced, not appended


def test_chunks_spill_to_disk_and_give_the_same_files_as_one_frame(tmp_path):
    rows = [(T0 + (i * 7919) % (3 * DAY), "XNAS", s, i) for i in range(300) for s in ("AAPL", "MSFT")]
    frame = trades(rows)
    write_partitioned(tmp_path / "whole", "trades", frame)

    with PartitionWriter(tmp_path / "chunked", buffer_rows=50) as writer:
        for start in range(0, frame.height, 37):
            writer.write("trades", frame.slice(start, 37))
        spill_files = sorted(p.name for p in writer.staging_dir.iterdir())
        assert writer.spilled_files > 0 and spill_files
        writer.commit()
    assert files_digest(tmp_path / "chunked") == files_digest(tmp_path / "whole")
    assert hidden_files(tmp_path / "chunked") == []


def test_a_crash_while_publishing_leaves_every_partition_whole_and_no_temp_file(tmp_path, monkeypatch):
    days = [[(T0 + d * DAY + i, "XNAS", "AAPL", i) for i in range(4)] for d in range(6)]
    write_partitioned(tmp_path, "trades", trades([r for day in days for r in day]))
    old = files_digest(tmp_path)

    published = []

    def publish_then_crash(temp, final):
        assert temp.exists()  # the crash comes after the temp file is fully written
        if len(published) == 3:
            raise RuntimeError("simulated crash")
        writer_module.os.replace(temp, final)
        published.append(final)

    monkeypatch.setattr(writer_module, "_publish", publish_then_crash)
    revised = trades([(T0 + d * DAY + i, "XNAS", "AAPL", 1000 + i) for d in range(6) for i in range(2)])
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_partitioned(tmp_path, "trades", revised)

    new = files_digest(tmp_path)
    assert sorted(new) == sorted(old)  # no partition vanished or appeared
    changed = [path for path in new if new[path] != old[path]]
    assert len(changed) == 3
    frame = Catalog(tmp_path).read("trades")
    per_day = frame.group_by((pl.col("ts_recv") // DAY).alias("day")).agg(pl.len(), pl.col("price").min()).sort("day")
    # each day is entirely old (4 rows, prices from 0) or entirely new (2 rows, prices from 1000)
    assert per_day.select("len", "price").rows() == [(2, 1000)] * 3 + [(4, 0)] * 3
    assert hidden_files(tmp_path) == []  # the failed writer removed its temp and spill files


def test_files_left_by_a_killed_writer_are_invisible_and_removed_by_the_next(tmp_path, monkeypatch):
    write_partitioned(tmp_path, "trades", trades([(T0, "XNAS", "AAPL", 1)]))

    def killed(temp, final):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module, "_publish", killed)
    monkeypatch.setattr(PartitionWriter, "abort", lambda self: None)  # killed: no chance to clean up
    with pytest.raises(KeyboardInterrupt):
        write_partitioned(tmp_path, "trades", trades([(T0, "XNAS", "AAPL", 2), (T0 + DAY, "XNAS", "MSFT", 3)]))
    monkeypatch.undo()
    temps = [p for p in hidden_files(tmp_path) if p.name.startswith(".part-0.parquet.") and p.name.endswith(".tmp")]
    assert len(temps) == 2  # one beside AAPL's published day, one in a MSFT day that has no data file yet

    catalog = Catalog(tmp_path)
    assert catalog.read("trades")["price"].to_list() == [1]
    assert catalog.ls()[["symbol", "dates", "rows"]].rows() == [("AAPL", 1, 1)]
    assert catalog.query("select price from trades").rows() == [(1,)]

    write_partitioned(tmp_path, "trades", trades([(T0 + 2 * DAY, "XNAS", "KO", 4)]))
    assert hidden_files(tmp_path) == []


def test_the_writer_refuses_what_it_cannot_place(tmp_path):
    with pytest.raises(CatalogError, match="unknown schema 'trade'; did you mean 'trades'"):
        write_partitioned(tmp_path, "trade", trades([(T0, "X", "A", 1)]))
    with pytest.raises(CatalogError, match="does not fit the quotes schema"):
        write_partitioned(tmp_path, "quotes", trades([(T0, "X", "A", 1)]))
    with pytest.raises(DataQualityError, match="1 without symbol"):
        write_partitioned(tmp_path, "trades", trades([(T0, "X", None, 1)]))
    with pytest.raises(CatalogError, match="non-empty"):
        write_partitioned(tmp_path, "trades", trades([(T0, "", "A", 1)]))
    assert files_digest(tmp_path) == {}


def test_one_writer_at_a_time(tmp_path):
    with PartitionWriter(tmp_path) as writer:
        other = subprocess.run(
            [sys.executable, "-c", f"from nodes.catalog import PartitionWriter\nwith PartitionWriter({str(tmp_path)!r}): pass"],
            capture_output=True, text=True, cwd=REPO,
        )
        assert other.returncode != 0 and "being written by another ingest" in other.stderr
        writer.write("trades", trades([(T0, "X", "A", 1)]))
        writer.commit()


# --- reader ---------------------------------------------------------------------------------------------


@pytest.fixture
def filled(tmp_path) -> Catalog:
    rows = [(T0 + d * DAY + h * 3_600 * NS, venue, symbol, 100 * d + h)
            for d in range(4) for h in range(0, 24, 6)
            for venue, symbol in (("XNAS", "AAPL"), ("XNAS", "MSFT"), ("BINANCE", "BTC/USDT"))]
    write_partitioned(tmp_path, "trades", trades(rows))
    return Catalog(tmp_path)


def test_scan_prunes_partitions_and_filters_by_ts_recv(filled):
    frame = filled.read("trades", venue="XNAS", symbols=["MSFT"], start="2024-01-03T06:00:00Z", end=dt.date(2024, 1, 4))
    assert frame.columns == list(SCHEMAS["trades"])
    assert set(frame["symbol"]) == {"MSFT"} and frame["price"].to_list() == [106, 112, 118]

    # prove pruning: a corrupt partition outside the asked dates or symbols is never opened
    corrupt = filled.layout.partition_file(PartitionKey("trades", "XNAS", "AAPL", dt.date(2024, 1, 6)))
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not parquet")
    assert filled.read("trades", symbols="AAPL", end="2024-01-06").height == 16
    assert filled.read("trades", venue="XNAS", symbols="MSFT").height == 16
    assert filled.read("trades", symbols="AAPL", start=dt.datetime(2024, 1, 7)).height == 0
    with pytest.raises(pl.exceptions.PolarsError):
        filled.read("trades", symbols="AAPL")  # without pruning the corrupt file is read

    btc = filled.scan("trades", venue="BINANCE", symbols="BTC/USDT", start=T0, end=T0 + DAY).collect()
    assert btc["price"].to_list() == [0, 6, 12, 18]
    assert filled.read("quotes").height == 0 and filled.read("quotes").columns == list(SCHEMAS["quotes"])
    with pytest.raises(CatalogError, match="not an ISO date"):
        filled.scan("trades", start="yesterday")


def test_query_runs_sql_over_views_with_the_original_names(filled):
    counts = filled.query("select venue, symbol, count(*) as n from trades where date = '2024-01-03' group by all order by all")
    assert counts.rows() == [("BINANCE", "BTC/USDT", 4), ("XNAS", "AAPL", 4), ("XNAS", "MSFT", 4)]
    assert filled.query("select * from trades limit 0").columns == [*SCHEMAS["trades"], "date"]
    assert filled.query("select count(*) from orders").item() == 0  # a schema without data has an empty view
    assert filled.query("select count(*) from ingest_runs").item() == 0
    with pytest.raises(CatalogError, match="query failed"):
        filled.query("select * from trade")


def test_ls_lists_series_with_dates_rows_and_bytes(filled):
    listing = filled.ls()
    assert listing.columns == ["schema", "venue", "symbol", "dates", "first_date", "last_date", "rows", "bytes"]
    assert listing.select("venue", "symbol", "dates", "first_date", "last_date", "rows").rows() == [
        ("BINANCE", "BTC/USDT", 4, dt.date(2024, 1, 2), dt.date(2024, 1, 5), 16),
        ("XNAS", "AAPL", 4, dt.date(2024, 1, 2), dt.date(2024, 1, 5), 16),
        ("XNAS", "MSFT", 4, dt.date(2024, 1, 2), dt.date(2024, 1, 5), 16),
    ]
    assert (listing["bytes"] > 0).all()
    assert Catalog(filled.root / "nothing").ls().is_empty()


def test_views_read_by_duckdb_directly_agree_with_polars(filled):
    # the hive values DuckDB decodes from the paths are the original names
    glob = CatalogLayout(filled.root).schema_glob("trades")
    names = duckdb.sql(f"select distinct venue, symbol from read_parquet('{glob}', hive_partitioning = true) order by all").fetchall()
    assert names == [("BINANCE", "BTC/USDT"), ("XNAS", "AAPL"), ("XNAS", "MSFT")]


def test_a_schema_added_to_the_normalized_schemas_needs_no_catalog_change(tmp_path, monkeypatch):
    status = {"ts_event": pl.Int64, "ts_recv": pl.Int64, "venue": pl.String, "symbol": pl.String,
              "sequence": pl.Int64, "action": pl.UInt16, "is_trading": pl.Boolean}
    monkeypatch.setitem(SCHEMAS, "status", status)
    catalog = Catalog(tmp_path)
    assert catalog.query("select * from status").schema == pl.Schema({**status, "date": pl.Date})  # empty view
    frame = pl.DataFrame({"ts_event": [T0], "ts_recv": [T0], "venue": ["GLBX.MDP3"], "symbol": ["ESH4"],
                          "sequence": [None], "action": [7], "is_trading": [True]}, schema=status)
    write_partitioned(tmp_path, "status", frame)
    assert catalog.read("status").equals(frame)
    assert catalog.query("select symbol, action, is_trading, date from status").rows() == [("ESH4", 7, True, dt.date(2024, 1, 2))]
