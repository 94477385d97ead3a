"""The Tardis CSV normalizer: exact decimals, the four data types row by row, bad lines, time checks, chunking,
the source op and the catalog format.

Always-on tests use small files written by hand into ``tmp_path`` in Tardis' formats. The Tardis samples in
``../shared/data/ticks`` are not ours to vendor: the tests on them skip, with the reason, when it is absent.
"""

import gzip
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yaml

from nodes.catalog import Catalog
from nodes.errors import DataQualityError
from nodes.marketdata.binance.source import BinanceCapture
from nodes.marketdata.book.replay import replay_book
from nodes.marketdata.decimal_units import BAD, MISSING, parse_units
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_MODIFY,
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    SCHEMAS,
    UNDEF_PRICE,
)
from nodes.marketdata.stream_ports import PORTS
from nodes.marketdata.tardis import normalize_tardis, read_tardis
from nodes.marketdata.tardis.source import Tardis
from pipelines.ingest import ingest_files

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data" / "ticks"
NO_SHARED = f"the Tardis samples are not here ({SHARED}): they may not be vendored, and a fresh clone has none"
U = 1_000_000_000  # one unit in 1e-9
INCREMENTAL_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
SNAPSHOT_HEADER = ("exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,"
                   "bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount")
TRADES_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
QUOTES_HEADER = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"
COLUMNS = ("ts_event", "ts_recv", "venue", "symbol", "side", "price", "size", "action", "flags")


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(NO_SHARED)
    return path


def _write(path: Path, header: str, rows: list[str], compress: bool = False) -> Path:
    data = ("\n".join([header, *rows]) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def _units(text: str) -> int:
    return int(Decimal(text) * U)


def _rows(frame: pl.DataFrame, columns=COLUMNS) -> list[tuple]:
    return frame.select(columns).rows()


# -- exact decimals --------------------------------------------------------------------------------------------------

DECIMALS_OK = ["61773.6", "0.00000001", "123", "1.123456789", "1.1234567890000", "0", "007.50", "9223372036.854775807",
               "0.00002853", "1e-05", "2.5E3", "-3.5", "8531.5", "1.10000000000000000000000000", "0e-30", "12e-9"]
DECIMALS_REFUSED = ["1.1234567891", "+2", ".5", "5.", " 1.5", "1,5", "0x10", "١٢", "1.5e-10", "9223372036.854775808",
                    "99999999999", "nan", "inf", "-", "1e", "1e+", "--1", "1.2.3", "1e400"]


def test_decimals_convert_exactly_or_are_refused_never_rounded():
    values, status = parse_units(pl.Series(DECIMALS_OK + DECIMALS_REFUSED + ["", None]))
    n = len(DECIMALS_OK)
    assert values[:n].tolist() == [int(Decimal(text) * U) for text in DECIMALS_OK]
    assert (status[:n] == 0).all() and (status[n:-2] == BAD).all() and (values[n:] == 0).all()
    assert status[-2:].tolist() == [MISSING, MISSING]
    from_list, _ = parse_units(DECIMALS_OK)
    assert from_list.tolist() == values[:n].tolist()


# -- the data types, row by row ---------------------------------------------------------------------------------------

INCREMENTAL = [
    "deribit,BTC-PERPETUAL,1000,1100,true,ask,101.5,10",
    "deribit,BTC-PERPETUAL,1000,1100,true,bid,100,5",
    "deribit,BTC-PERPETUAL,2000,2100,false,bid,100,0",
    "deribit,BTC-PERPETUAL,2000,2100,false,bid,99.5,7",
    "deribit,BTC-PERPETUAL,3000,3100,false,ask,101.5,12.25",
    "deribit,BTC-PERPETUAL,4000,4100,true,ask,102,1",
    "deribit,BTC-PERPETUAL,4000,4100,true,bid,99,2",
]


def _expected_incremental():
    t = lambda us: us * 1000  # noqa: E731
    v, s = "DERIBIT", "BTC-PERPETUAL"
    return [
        (t(1000), t(1100), v, s, 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_SNAPSHOT),
        (t(1000), t(1100), v, s, -1, 101_500_000_000, 10 * U, ACTION_ADD, F_SNAPSHOT),
        (t(1000), t(1100), v, s, 1, 100 * U, 5 * U, ACTION_ADD, F_SNAPSHOT | F_LAST),
        (t(2000), t(2100), v, s, 1, 100 * U, 0, ACTION_CANCEL, 0),
        (t(2000), t(2100), v, s, 1, 99_500_000_000, 7 * U, ACTION_MODIFY, F_LAST),
        (t(3000), t(3100), v, s, -1, 101_500_000_000, 12_250_000_000, ACTION_MODIFY, F_LAST),
        (t(4000), t(4100), v, s, 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_SNAPSHOT),
        (t(4000), t(4100), v, s, -1, 102 * U, 1 * U, ACTION_ADD, F_SNAPSHOT),
        (t(4000), t(4100), v, s, 1, 99 * U, 2 * U, ACTION_ADD, F_SNAPSHOT | F_LAST),
    ]


@pytest.mark.parametrize("chunk_lines", [1, 2, 3, 65_536])
@pytest.mark.parametrize("compress", [False, True])
def test_incremental_book_clears_when_a_snapshot_starts_and_marks_each_message_end(tmp_path, chunk_lines, compress):
    path = _write(tmp_path / "deribit_incremental_book_L2_BTC-PERPETUAL.csv", INCREMENTAL_HEADER, INCREMENTAL, compress)
    frame, report = read_tardis(path, chunk_lines=chunk_lines)
    assert frame.columns == list(SCHEMAS["book_deltas"])
    assert _rows(frame) == _expected_incremental()
    assert frame["sequence"].null_count() == frame.height
    assert report.data_type == "incremental_book_L2" and report.lines_total == 7 and report.lines_bad == 0
    assert report.book["BTC-PERPETUAL"] == {"snapshots": 2, "rows_before_first_snapshot": 0}
    assert report.problems() == []


def test_updates_before_the_first_snapshot_are_flagged_and_symbols_keep_their_own_state(tmp_path):
    rows = [
        "bitmex,XBTUSD,1,10,false,bid,100,1",  # no snapshot of XBTUSD yet
        "bitmex,ETHUSD,2,20,true,bid,10,1",
        "bitmex,XBTUSD,3,30,true,ask,101,2",
        "bitmex,ETHUSD,4,40,true,ask,11,3",  # ETHUSD's previous line was a snapshot line: same snapshot goes on
        "bitmex,XBTUSD,5,50,false,ask,101,0",
    ]
    frame, report = read_tardis(_write(tmp_path / "book.csv", INCREMENTAL_HEADER, rows))
    assert _rows(frame, ("symbol", "action", "flags")) == [
        ("XBTUSD", ACTION_MODIFY, F_LAST | F_MAYBE_BAD_BOOK),
        ("ETHUSD", ACTION_CLEAR, F_SNAPSHOT),
        ("ETHUSD", ACTION_ADD, F_SNAPSHOT | F_LAST),
        ("XBTUSD", ACTION_CLEAR, F_SNAPSHOT),
        ("XBTUSD", ACTION_ADD, F_SNAPSHOT | F_LAST),
        ("ETHUSD", ACTION_ADD, F_SNAPSHOT | F_LAST),
        ("XBTUSD", ACTION_CANCEL, F_LAST),
    ]
    assert report.book["XBTUSD"]["rows_before_first_snapshot"] == 1 and report.symbols == ["XBTUSD", "ETHUSD"]
    assert any("before the first snapshot" in p for p in report.problems())


@pytest.mark.parametrize("chunk_lines", [1, 65_536])
def test_book_snapshot_lines_become_a_clear_then_bids_then_asks(tmp_path, chunk_lines):
    rows = [
        "binance-futures,BTCUSDT,1000,1500,101,1,100,2,102,3,99,4",
        "binance-futures,BTCUSDT,2000,2500,101,1.5,100,2,,,99,4",  # one ask level only
    ]
    frame, report = read_tardis(_write(tmp_path / "snap.csv", SNAPSHOT_HEADER, rows), chunk_lines=chunk_lines)
    v, s = "BINANCE_FUTURES", "BTCUSDT"
    clear = (0, UNDEF_PRICE, 0, ACTION_CLEAR, F_SNAPSHOT)
    assert _rows(frame) == [
        (1_000_000, 1_500_000, v, s, *clear),
        (1_000_000, 1_500_000, v, s, 1, 100 * U, 2 * U, ACTION_ADD, F_SNAPSHOT),
        (1_000_000, 1_500_000, v, s, 1, 99 * U, 4 * U, ACTION_ADD, F_SNAPSHOT),
        (1_000_000, 1_500_000, v, s, -1, 101 * U, 1 * U, ACTION_ADD, F_SNAPSHOT),
        (1_000_000, 1_500_000, v, s, -1, 102 * U, 3 * U, ACTION_ADD, F_SNAPSHOT | F_LAST),
        (2_000_000, 2_500_000, v, s, *clear),
        (2_000_000, 2_500_000, v, s, 1, 100 * U, 2 * U, ACTION_ADD, F_SNAPSHOT),
        (2_000_000, 2_500_000, v, s, 1, 99 * U, 4 * U, ACTION_ADD, F_SNAPSHOT),
        (2_000_000, 2_500_000, v, s, -1, 101 * U, 1_500_000_000, ACTION_ADD, F_SNAPSHOT | F_LAST),
    ]
    assert report.data_type == "book_snapshot_2" and report.depth == 2 and report.rows == 9


def test_trades_sides_and_ids(tmp_path):
    rows = [
        "binance,BTCUSDT,1000,1200,123456789,buy,61773.6,0.001",
        "bitmex,XBTUSD,1000,1300,ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf,sell,8531.5,2152",
        "ftx,BTC-PERP,1000,1400,,unknown,100,1",
    ]
    frame, report = read_tardis(_write(tmp_path / "trades.csv", TRADES_HEADER, rows))
    assert _rows(frame, ("venue", "symbol", "side", "price", "size", "trade_id", "ts_recv")) == [
        ("BINANCE", "BTCUSDT", 1, 61_773_600_000_000, 1_000_000, 123456789, 1_200_000),
        ("BITMEX", "XBTUSD", -1, 8_531_500_000_000, 2152 * U, None, 1_300_000),
        ("FTX", "BTC-PERP", 0, 100 * U, 1 * U, None, 1_400_000),
    ]
    assert report.trades == {"ids_not_integer": 2, "first_line": 3}


def test_quotes_with_an_empty_side_and_a_crossed_quote(tmp_path):
    rows = [
        "huobi-dm-swap,BTC-USD,1000,1100,5494,8629.3,8629.2,806",
        "huobi-dm-swap,BTC-USD,2000,2100,,,8629.2,806",
        "huobi-dm-swap,BTC-USD,3000,3100,1,8629.2,8629.2,1",
    ]
    frame, report = read_tardis(_write(tmp_path / "quotes.csv", QUOTES_HEADER, rows), venue="HUOBI")
    assert _rows(frame, ("venue", "bid_px", "ask_px", "bid_sz", "ask_sz")) == [
        ("HUOBI", 8_629_200_000_000, 8_629_300_000_000, 806 * U, 5494 * U),
        ("HUOBI", 8_629_200_000_000, UNDEF_PRICE, 806 * U, 0),
        ("HUOBI", 8_629_200_000_000, 8_629_200_000_000, 1 * U, 1 * U),
    ]
    assert report.quotes == {"crossed": 1, "first_crossed_line": 4, "one_sided": 1}


# -- bad input --------------------------------------------------------------------------------------------------------

BAD_ROWS = [
    ("deribit,BTC-PERPETUAL,1000,1100,true,ask,101.5", "field_count"),
    ("deribit,BTC-PERPETUAL,1000,1100,true,ask,1.2.3,1", "bad_decimal"),
    ("deribit,BTC-PERPETUAL,1000,1100,true,up,100,1", "bad_side"),
    ("deribit,BTC-PERPETUAL,abc,1100,true,ask,100,1", "bad_timestamp"),
    ("deribit,BTC-PERPETUAL,1000,1100,true,ask,100,-1", "negative_size"),
    ("deribit,BTC-PERPETUAL,1000,1100,maybe,ask,100,1", "bad_field"),
    ("deribit,BTC-PERPETUAL,1000,1100,true,ask,100.0000000001,1", "bad_decimal"),
    ("", "empty_line"),
    ("deribit,,1000,1100,true,ask,100,1", "missing_field"),
]


def test_bad_lines_are_quarantined_with_their_line_and_reason_and_the_rest_goes_on(tmp_path):
    good = "deribit,BTC-PERPETUAL,1000,1100,true,bid,100,1"
    lines = [good]
    for row, _ in BAD_ROWS:
        lines += [row, good]
    data = ("\n".join([INCREMENTAL_HEADER, *lines]) + "\n").encode()
    data += b"deribit,BTC-PERPETUAL,1000,1100,true,ask,\xff\xfe,1\n" + good.encode() + b"\n"
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    frame, report = read_tardis(path, max_bad_fraction=0.5, chunk_lines=4)
    expected = [(3 + 2 * i, reason) for i, (_, reason) in enumerate(BAD_ROWS)] + [(3 + 2 * len(BAD_ROWS), "bad_encoding")]
    assert [(r.line, r.reason) for r in report.quarantine.records] == expected
    assert report.lines_bad == len(expected) and report.lines_good == len(expected) + 1
    assert frame.filter(pl.col("action") != ACTION_CLEAR).height == len(expected) + 1
    assert "-1 is negative" in report.quarantine.records[4].message
    assert report.quarantine.records[0].raw == BAD_ROWS[0][0]


def test_too_many_bad_lines_fail_loudly_after_the_report_is_complete(tmp_path):
    path = _write(tmp_path / "bad.csv", INCREMENTAL_HEADER, ["deribit,X,1,2,true,bid,100,1", "deribit,X,1,2,true,bid,oops,1"])
    with pytest.raises(DataQualityError, match=r"line\(s\) 3") as error:
        read_tardis(path)
    assert error.value.report.lines_bad == 1 and error.value.report.lines_total == 2
    frame, report = read_tardis(path, max_bad_fraction=0.5)
    assert frame.height == 2 and report.bad_fraction == 0.5


def test_files_that_are_not_tardis_csv_fail_at_once(tmp_path):
    with pytest.raises(DataQualityError, match="missing exchange"):
        normalize_tardis(_write(tmp_path / "a.csv", "timestamp,bid,ask", ["1,2,3"]))
    with pytest.raises(DataQualityError, match="derivative_ticker files are not decoded"):
        normalize_tardis(_write(tmp_path / "b.csv", "exchange,symbol,timestamp,local_timestamp,funding_rate", []))
    with pytest.raises(DataQualityError, match="liquidations"):
        normalize_tardis(_write(tmp_path / "deribit_liquidations_2020-01-01_X.csv", TRADES_HEADER, []))
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataQualityError, match="empty file"):
        normalize_tardis(tmp_path / "empty.csv")
    with pytest.raises(FileNotFoundError):
        normalize_tardis(tmp_path / "missing.csv")


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path):
    rows = [f"binance,BTCUSDT,{1000 + i},{1100 + i},{i},buy,100.5,1" for i in range(2000)]
    whole = _write(tmp_path / "t.csv.gz", TRADES_HEADER, rows, compress=True).read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    frame, report = read_tardis(cut, max_bad_fraction=1.0)
    assert report.capture["truncated"] and 0 < frame.height < 2000
    assert frame["trade_id"].to_list() == list(range(frame.height))
    assert any("truncated" in p for p in report.problems())


# -- time -------------------------------------------------------------------------------------------------------------

def test_receive_time_going_back_is_raised_and_flagged(tmp_path):
    rows = ["deribit,X,1000,5000,true,bid,100,1", "deribit,X,1000,4000,false,bid,100,2", "deribit,X,6000,7000,false,bid,100,3"]
    frame, report = read_tardis(_write(tmp_path / "b.csv", INCREMENTAL_HEADER, rows))
    assert frame["ts_recv"].to_list() == [5_000_000, 5_000_000, 5_000_000, 7_000_000]
    assert frame["flags"][2] & F_BAD_TS_RECV and not frame["flags"][3] & F_BAD_TS_RECV
    assert report.ts_recv_backwards == {"count": 1, "first_line": 3}


@pytest.mark.parametrize("policy", ["clamp", "report", "reject"])
def test_lines_received_before_their_exchange_time_follow_the_clock_policy(tmp_path, policy):
    rows = ["binance,BTCUSDT,1000,1100,1,buy,1,1", "binance,BTCUSDT,1500,1200,2,buy,1,1"]
    path = _write(tmp_path / "t.csv", TRADES_HEADER, rows)
    if policy == "reject":
        with pytest.raises(DataQualityError, match="line 3: received 300000 ns before"):
            read_tardis(path, clock_policy=policy)
        return
    frame, report = read_tardis(path, clock_policy=policy)
    assert frame["ts_event"][1] == (1_200_000 if policy == "clamp" else 1_500_000)
    assert report.clock["ts_event_after_ts_recv"] == 1 and report.clock["first_line"] == 3
    assert report.clock["max_excess_ns"] == 300_000


def test_symbols_filter_drops_or_fails(tmp_path):
    rows = ["binance,BTCUSDT,1,2,1,buy,1,1", "binance,ETHUSDT,1,2,2,buy,1,1"]
    path = _write(tmp_path / "t.csv", TRADES_HEADER, rows)
    frame, report = read_tardis(path, symbols=["ETHUSDT"])
    assert frame["symbol"].to_list() == ["ETHUSDT"] and report.filtered_out == {"BTCUSDT": 1}
    with pytest.raises(DataQualityError, match="line 2: symbol 'BTCUSDT'"):
        read_tardis(path, symbols=["ETHUSDT"], unlisted_symbols="error")


# -- the source op and the catalog format -------------------------------------------------------------------------------

def test_the_source_op_has_the_shared_ports_and_emits_sorted_int64_chunks(tmp_path):
    assert tuple(Tardis.outputs) == PORTS == tuple(BinanceCapture.outputs)
    path = _write(tmp_path / "book.csv.gz", INCREMENTAL_HEADER, INCREMENTAL, compress=True)
    params = Tardis.Params.model_validate({"path": path.name})
    assert Tardis.instruments(params, tmp_path) == ["BTC-PERPETUAL"]
    reader = Tardis.open(params, tmp_path)
    chunks = list(reader.chunks(4))
    assert all(len(c["ts_recv"]) <= 4 for c in chunks)
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert set(columns) == {"ts_event", "ts_recv", "instrument", *PORTS}
    assert all(columns[p].dtype == np.int64 for p in PORTS) and (columns["instrument"] == 0).all()
    assert (np.diff(columns["ts_recv"]) >= 0).all()
    expected = _expected_incremental()
    assert columns["price"].tolist() == [row[5] for row in expected]
    assert columns["flags"].tolist() == [row[8] for row in expected]
    assert (columns["bid_px"] == 0).all() and (columns["sequence"] == 0).all() and reader.report.lines_bad == 0
    with pytest.raises(DataQualityError, match="holds book_deltas, not trades"):
        Tardis.open(Tardis.Params.model_validate({"path": path.name, "schema": "trades"}), tmp_path)


def test_the_source_op_refuses_a_symbol_the_prefix_scan_did_not_see(tmp_path):
    rows = ["binance,BTCUSDT,1,2,1,buy,1,1", "binance,ETHUSDT,1,3,2,buy,1,1"]
    path = _write(tmp_path / "t.csv", TRADES_HEADER, rows)
    params = Tardis.Params.model_validate({"path": path.name, "prefix_scan_lines": 1})
    assert Tardis.instruments(params, tmp_path) == ["BTCUSDT"]
    with pytest.raises(DataQualityError, match="line 3: symbol 'ETHUSDT'"):
        list(Tardis.open(params, tmp_path).chunks(10))
    listed = Tardis.Params.model_validate({"path": path.name, "symbols": ["ETHUSDT", "BTCUSDT"]})
    chunk = next(Tardis.open(listed, tmp_path).chunks(10))
    assert chunk["instrument"].tolist() == [1, 0]


def test_the_source_op_docstring_example_runs_as_a_spec(tmp_path):
    from pipelines.run import run_spec

    nodes = yaml.safe_load(Tardis.__doc__.split("Example::", 1)[1])
    (tmp_path / "data").mkdir()
    rows = [f"bitmex,XBTUSD,{1000 + i},{1100 + i},id-{i},sell,8531.5,{i + 1}" for i in range(5)]
    _write(tmp_path / nodes["trades"]["with"]["path"], TRADES_HEADER, rows, compress=True)
    spec = tmp_path / "tardis.yaml"
    spec.write_text(yaml.safe_dump({"tickloom": 1, "name": "tardis", "kind": "research", "nodes": nodes}))
    recorded = run_spec(spec, record=["trades"], write=False).replay.recorded["trades"]
    assert recorded.height == 5 and recorded["size"].to_list() == [(i + 1) * U for i in range(5)]


def test_ingest_into_a_catalog_and_the_bad_record_threshold(tmp_path):
    book = _write(tmp_path / "book.csv", INCREMENTAL_HEADER, INCREMENTAL)
    trades = _write(tmp_path / "trades.csv", TRADES_HEADER, ["binance,BTCUSDT,1000,1200,7,buy,61773.6,0.001"])
    result = ingest_files(tmp_path / "catalog", "tardis", [book, trades])
    assert result.rows == {"book_deltas": 9, "trades": 1}
    assert [r["records"] for r in result.reports] == [7, 1] and all(r["bad_records"] == 0 for r in result.reports)
    stored = Catalog(tmp_path / "catalog").read("book_deltas", venue="DERIBIT")
    assert _rows(stored) == _expected_incremental()
    bad = _write(tmp_path / "bad.csv", TRADES_HEADER, ["binance,BTCUSDT,1000,1200,7,buy,x,1", "binance,BTCUSDT,1,2,8,buy,1,1"])
    with pytest.raises(DataQualityError, match="1 bad record"):
        ingest_files(tmp_path / "catalog", "tardis", [bad])
    kept = ingest_files(tmp_path / "catalog2", "tardis", [bad], max_bad_record_rate=0.5, options={"venue": "BN"})
    assert kept.rows == {"trades": 1} and kept.reports[0]["quarantine"]["records"][0]["line"] == 2


# -- the real samples (../shared) -----------------------------------------------------------------------------------------

SAMPLES = {
    "deribit_incremental_book_L2_BTC-PERPETUAL.csv": "incremental_book_L2",
    "binance-futures_book_snapshot_5_BTCUSDT.csv": "book_snapshot_5",
    "binance-futures_book_snapshot_25_BTCUSDT.csv": "book_snapshot_25",
    "bitmex_trades_XBTUSD.csv": "trades",
    "huobi-dm-swap_quotes_BTC-USD.csv": "quotes",
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_row_counts_and_values_match_a_naive_pandas_read(name):
    path = _shared(name)
    naive = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame, report = read_tardis(path)
    assert report.data_type == SAMPLES[name] and report.lines_total == len(naive) and report.lines_bad == 0
    assert frame["ts_recv"].is_sorted()
    if SAMPLES[name].startswith("book_snapshot"):
        levels = [c for c in naive.columns if c.endswith(".price")]
        assert frame.height == len(naive) + int((naive[levels] != "").to_numpy().sum())
        best_bids = frame.filter(pl.col("side") == 1).group_by("ts_recv", maintain_order=True).agg(pl.col("price").first())
        assert best_bids["price"].to_list() == [_units(p) for p in naive["bids[0].price"]]
    elif SAMPLES[name] == "trades":
        assert frame["price"].to_list() == [_units(p) for p in naive["price"]]
        assert frame["size"].to_list() == [_units(a) for a in naive["amount"]]
        assert frame["side"].to_list() == [1 if s == "buy" else -1 for s in naive["side"]]
    elif SAMPLES[name] == "quotes":
        assert frame["ask_px"].to_list() == [_units(p) for p in naive["ask_price"]]
        assert frame["bid_sz"].to_list() == [_units(a) for a in naive["bid_amount"]]
    assert frame["ts_event"][0] == int(naive["timestamp"].iloc[0]) * 1000
    assert frame["ts_recv"][-1] == int(naive["local_timestamp"].iloc[-1]) * 1000


def _naive_tardis_book(path: Path) -> dict[str, dict[Decimal, Decimal]]:
    """Tardis' rule with plain dicts: a snapshot line after a non-snapshot line discards the book."""
    book = {"bid": {}, "ask": {}}
    previous_snapshot = False
    for row in pd.read_csv(path, dtype=str).itertuples():
        snapshot = row.is_snapshot == "true"
        if snapshot and not previous_snapshot:
            book = {"bid": {}, "ask": {}}
        previous_snapshot = snapshot
        if Decimal(row.amount) == 0:
            book[row.side].pop(Decimal(row.price), None)
        else:
            book[row.side][Decimal(row.price)] = Decimal(row.amount)
    return book


def _apply_rows(frame: pl.DataFrame) -> dict[str, dict[int, int]]:
    book = {"bid": {}, "ask": {}}
    for side, price, size, action in frame.select("side", "price", "size", "action").iter_rows():
        if action == ACTION_CLEAR:
            book = {"bid": {}, "ask": {}}
        elif size == 0:
            book["bid" if side == 1 else "ask"].pop(price, None)
        else:
            book["bid" if side == 1 else "ask"][price] = size
    return book


def _in_units(book: dict[str, dict[Decimal, Decimal]]) -> dict[str, dict[int, int]]:
    return {side: {int(p * U): int(s * U) for p, s in levels.items()} for side, levels in book.items()}


def test_sample_incremental_book_matches_a_naive_reference_after_every_line():
    path = _shared("deribit_incremental_book_L2_BTC-PERPETUAL.csv")
    frame, _ = read_tardis(path)
    reference = _in_units(_naive_tardis_book(path))
    assert _apply_rows(frame) == reference
    book = replay_book(frame, kind="l2", target="cpu", depth=50)["books"]["BTC-PERPETUAL"]
    assert book["best_ask"] == min(reference["ask"]) and book["best_bid"] is None
    assert [(level["price"], level["size"]) for level in book["asks"]] == sorted(reference["ask"].items())


def test_hand_made_incremental_book_matches_the_naive_reference_and_the_l2_book(tmp_path):
    path = _write(tmp_path / "book.csv", INCREMENTAL_HEADER, INCREMENTAL[:5])
    frame, _ = read_tardis(path)
    reference = _in_units(_naive_tardis_book(path))
    assert _apply_rows(frame) == reference == {"bid": {99_500_000_000: 7 * U}, "ask": {101_500_000_000: 12_250_000_000}}
    book = replay_book(frame, kind="l2", target="cpu")["books"]["BTC-PERPETUAL"]
    assert (book["best_bid"], book["best_ask"]) == (99_500_000_000, 101_500_000_000)


def test_the_samples_ingest_into_a_catalog(tmp_path):
    files = [_shared(name) for name in sorted(SAMPLES)]
    result = ingest_files(tmp_path / "catalog", "tardis", files)
    assert result.rows == {"book_deltas": 16 + 110 + 510, "trades": 10, "quotes": 10}
    assert sorted(Catalog(tmp_path / "catalog").ls()["venue"].unique().to_list()) == [
        "BINANCE_FUTURES", "BITMEX", "DERIBIT", "HUOBI_DM_SWAP"]
