"""The Binance capture normalizer: exact decimals, stream counts, the clock, update-id rules, bad input, chunking.

Always-on tests run on the cuts vendored in ``data/samples/binance`` (first 2,000 lines of each capture) and on
hand-made captures written into ``tmp_path``; the full captures in ``../shared/data/binance`` are used when
present (skipped otherwise, with the reason).
"""

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nodes.errors import DataQualityError
from nodes.marketdata.binance import BinanceQualityReport, decimal_to_units, normalize_capture, read_capture
from nodes.marketdata.binance import reference as R
from nodes.marketdata.binance import scan as S
from nodes.marketdata.binance.source import BinanceCapture, symbol_from_file_name
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

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "samples" / "binance"
SHARED = REPO.parent / "shared" / "data" / "binance"
SAMPLE_FILES = sorted(SAMPLES.glob("*.gz"))
FULL_FILES = ["spot_btcusdt_20240808.gz", "spot_ethusdt_20240808.gz", "cm_btcusd_perp_20240808.gz"]
NO_SHARED = f"the full captures are not here ({SHARED}): a fresh clone has only the vendored cuts"
T0 = 1_723_161_254_000_000_000  # a receive time, ns
E0 = 1_723_161_255_270  # venue ms, about 1.27 s after T0 as in the real captures


def _shared(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(NO_SHARED)
    return path


def _write(path: Path, lines: list[str | bytes], compress: bool = True) -> Path:
    data = b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _depth(ts: int, first: int, last: int, bids=(), asks=(), prev: int | None = None, symbol="BTCUSDT", e_ms=None):
    data = {"e": "depthUpdate", "E": e_ms or E0 + (ts - T0) // 1_000_000, "s": symbol, "U": first, "u": last}
    if prev is not None:
        data["pu"] = prev
        data["T"] = data["E"] - 5
    data["b"] = [list(level) for level in bids]
    data["a"] = [list(level) for level in asks]
    return f"{ts} " + json.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data}, separators=(",", ":"))


def _snapshot(ts: int, last_id: int, bids=(("100.0", "1"),), asks=(("101.0", "2"),), futures=False):
    body = {"lastUpdateId": last_id}
    if futures:
        body.update({"E": E0 + (ts - T0) // 1_000_000, "T": E0 + (ts - T0) // 1_000_000 - 3, "symbol": "BTCUSDT"})
    body["bids"] = [list(b) for b in bids]
    body["asks"] = [list(a) for a in asks]
    return f"{ts} " + json.dumps(body, separators=(",", ":"))


def _trade(ts: int, trade_id: int, price="100.5", qty="0.25", maker=True):
    data = {"e": "trade", "E": E0 + (ts - T0) // 1_000_000, "s": "BTCUSDT", "t": trade_id, "p": price, "q": qty,
            "T": E0 + (ts - T0) // 1_000_000, "m": maker, "M": True}
    return f"{ts} " + json.dumps({"stream": "btcusdt@trade", "data": data}, separators=(",", ":"))


def _ms(k: int) -> int:
    return T0 + k * 1_000_000


# -- exact decimals -----------------------------------------------------------------------------------------------

DECIMALS_OK = ["61773.6", "0.00000001", "123", "1.123456789", "1.1234567890000", "0", "0.0", "007.50",
               "9223372036.854775807", "2683.80000000", "352.90500000"]
DECIMALS_REFUSED = ["1.1234567891", "-1.5", "+2", "1e5", "", ".5", "5.", " 1.5", "1.5 ", "9223372036.854775808",
                    "99999999999", "1,5", "0x10", "١٢"]


@pytest.mark.parametrize("text", DECIMALS_OK)
def test_decimals_convert_exactly_in_both_parsers(text):
    expected = int(Decimal(text) * 10**9)
    assert decimal_to_units(text) == expected
    raw = np.frombuffer(text.encode(), np.uint8)
    assert S.parse_decimal(raw, 0, len(raw)) == expected


@pytest.mark.parametrize("text", DECIMALS_REFUSED)
def test_decimals_that_do_not_fit_are_refused_not_rounded(text):
    with pytest.raises(R.BadLine) as caught:
        decimal_to_units(text)
    assert caught.value.category == R.BAD_DECIMAL
    raw = np.frombuffer(text.encode(), np.uint8)
    assert S.parse_decimal(raw, 0, len(raw)) == S.MISSING


def test_prices_equal_a_decimal_oracle_on_every_trade_and_quote():
    path = SAMPLES / "spot_btcusdt_20240808.head2000.gz"
    frames, _ = read_capture(path)
    trades, quotes = [], []
    for line in gzip.open(path, "rt"):
        message = json.loads(line.split(" ", 1)[1])
        data = message.get("data", {})
        if message.get("stream", "").endswith("@trade"):
            trades.append((int(Decimal(data["p"]) * 10**9), int(Decimal(data["q"]) * 10**9), -1 if data["m"] else 1))
        elif message.get("stream", "").endswith("@bookTicker"):
            quotes.append(tuple(int(Decimal(data[k]) * 10**9) for k in ("b", "B", "a", "A")))
    assert list(frames["trades"].select("price", "size", "side").iter_rows()) == trades
    assert list(frames["quotes"].select("bid_px", "bid_sz", "ask_px", "ask_sz").iter_rows()) == quotes


# -- the scanner agrees with the reference parser -------------------------------------------------------------------

_KIND_FIELDS = {
    S.K_DEPTH: [S.M_E, S.M_T, S.M_FIRST_ID, S.M_LAST_ID, S.M_PREV_ID],
    S.K_TRADE: [S.M_E, S.M_T, S.M_TRADE_ID, S.M_PRICE, S.M_QTY, S.M_MAKER],
    S.K_QUOTE: [S.M_E, S.M_T, S.M_LAST_ID, S.M_BID_PX, S.M_BID_SZ, S.M_ASK_PX, S.M_ASK_SZ],
    S.K_SNAPSHOT: [S.M_E, S.M_T, S.M_LAST_ID],
}


def _assert_scanner_matches_reference(data: bytes) -> int:
    b = np.frombuffer(data, np.uint8)
    n = data.count(b"\n") + 1
    msgs = np.empty((n, S.N_FIELDS), np.int64)
    levels = np.empty((len(data) // 9 + 1, S.N_LEVEL_FIELDS), np.int64)
    starts, stops = np.empty(n, np.int64), np.empty(n, np.int64)
    table, lengths, count = np.zeros((64, S.MAX_SYMBOL_BYTES), np.uint8), np.zeros(64, np.int64), np.zeros(1, np.int64)
    rows, _, _ = S.scan_lines(b, 0, len(b), n, starts, stops, msgs, levels, table, lengths, count,
                              np.zeros(S.MAX_DEPTH, np.uint8))
    names = [table[i, : lengths[i]].tobytes().decode() for i in range(count[0])]
    accepted = 0
    for k in range(rows):
        raw = data[starts[k] : stops[k]]
        try:
            ref = R.parse_line(raw)
        except R.BadLine:
            assert msgs[k, S.M_STATUS] != S.OK, f"the scanner accepted a line the reference refuses: {raw[:200]!r}"
            continue
        if msgs[k, S.M_STATUS] != S.OK:
            continue  # refusing is always safe: the reference reads it
        accepted += 1
        assert msgs[k, S.M_KIND] == ref.kind, raw[:200]
        for column in _KIND_FIELDS[ref.kind]:
            assert msgs[k, column] == ref.fields.get(column, S.MISSING), (raw[:200], column)
        if ref.symbol is not None:
            assert names[msgs[k, S.M_SYMBOL]] == ref.symbol
        start, size = msgs[k, S.M_LEVEL_START], msgs[k, S.M_LEVEL_COUNT]
        assert [tuple(x) for x in levels[start : start + size].tolist()] == ref.levels
    return accepted


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_scanner_matches_reference_on_samples(path):
    data = gzip.decompress(path.read_bytes())
    assert _assert_scanner_matches_reference(data) == data.count(b"\n")


def test_scanner_refuses_what_the_reference_refuses():
    lines = [
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1.0","q":"2","T":5,"m":true}}',
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":1.0,"q":"2","T":5,"m":true}}',
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTC\\u0055SDT","t":1,"p":"1.0","q":"2","T":5,"m":true}}',
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":-1,"p":"1.0","q":"2","T":5,"m":true}}',
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1.0","q":"2","T":5,"m":1}}',
        b'1 {"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":1,"p":"1.0","q":"2","T":5,"m":true}',
        b'1 {"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT","a":1,"p":"1.0","q":"2","T":5,"m":true}}',
        b'1 {"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","2","x"]],"a":[]}}',
        b'1 {"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":5,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[],"b":[]}}',
        b'1  {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}} ',
        b'1 {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"},"x":1}',
        b'1\t{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}}',
        b'1 {"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTC\xff","b":"1","B":"1","a":"2","A":"1"}}',
        b'1 {"lastUpdateId":5,"bids":[["1.0","1"]],"asks":[]}\r',
        b'1 [1,2,3]',
        b'',
        b'12345678901234567890 {"lastUpdateId":5,"bids":[],"asks":[]}',
    ]
    _assert_scanner_matches_reference(b"\n".join(lines))


# -- counts per stream against a naive json.loads pass ---------------------------------------------------------------

def _naive_counts(path: Path, futures: bool) -> dict:
    counts = {"depth": 0, "trade": 0, "bookTicker": 0, "snapshot": 0, "book_rows": 0}
    snapshot_id = None
    pre_snapshot = []
    for line in gzip.open(path, "rt"):
        message = json.loads(line.split(" ", 1)[1])
        if "lastUpdateId" in message:
            counts["snapshot"] += 1
            snapshot_id = message["lastUpdateId"]
            counts["book_rows"] += 1 + len(message["bids"]) + len(message["asks"])
            for d in pre_snapshot:  # diffs received before the snapshot: replayed unless stale
                if (d["u"] >= snapshot_id) if futures else (d["u"] > snapshot_id):
                    counts["book_rows"] += len(d["b"]) + len(d["a"])
            continue
        kind = message["stream"].split("@")[1]
        counts[kind] += 1
        if kind == "depth":
            d = message["data"]
            if snapshot_id is None:
                pre_snapshot.append(d)
            elif (d["u"] >= snapshot_id) if futures else (d["u"] > snapshot_id):
                counts["book_rows"] += len(d["b"]) + len(d["a"])
    return counts


def _check_counts(path: Path, futures: bool) -> BinanceQualityReport:
    frames, report = read_capture(path)
    naive = _naive_counts(path, futures)
    assert report.lines_bad == 0 and report.lines_total == report.lines_good
    assert report.messages == {k: naive[k] for k in ("depth", "trade", "bookTicker", "snapshot")}
    assert frames["trades"].height == naive["trade"]
    assert frames["quotes"].height == naive["bookTicker"]
    assert frames["book_deltas"].height == naive["book_rows"]
    assert report.rows == {name: frame.height for name, frame in frames.items()}
    for name, frame in frames.items():
        assert frame.schema == pl.Schema(SCHEMAS[name]), name
    return report


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_counts_per_stream_match_a_naive_json_pass(path):
    report = _check_counts(path, futures=path.name.startswith("cm_"))
    assert report.venue_kind == ("futures" if path.name.startswith("cm_") else "spot")
    json.dumps(report.to_dict())  # JSON-serialisable as it is


@pytest.mark.parametrize("name", FULL_FILES)
def test_counts_per_stream_match_a_naive_json_pass_on_full_captures(name):
    path = _shared(name)
    report = _check_counts(path, futures=name.startswith("cm_"))
    (symbol, sequence), = report.sequence.items()
    assert sequence["gaps"] == 0 and sequence["state_at_end"] == "live"
    assert _assert_scanner_matches_reference(gzip.decompress(path.read_bytes())) == report.lines_total


# -- the clock -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_clock_behind_is_detected_and_shift_makes_every_event_received_after_it_happened(path):
    frames, report = read_capture(path, clock_policy="shift")
    clock = report.clock
    assert clock["verdict"] == "behind"
    assert -1.30e9 < clock["min_offset_ns"] < -1.25e9
    for streams in clock["offsets"].values():
        for summary in streams.values():
            assert summary["min_ns"] <= summary["p1_ns"] <= summary["p50_ns"] <= summary["p99_ns"] <= summary["max_ns"]
            assert -1.30e9 < summary["p50_ns"] < -1.0e9
    assert clock["shift_ns"] == 1_000_000 - clock["min_offset_ns"]
    assert clock["ts_recv_before_ts_event"] == 0 and clock["ts_event_clamped"] == 0
    for name, frame in frames.items():
        assert (frame["ts_recv"] >= frame["ts_event"]).all(), name
        assert frame["ts_recv"].is_sorted(), name
    latency = (frames["trades"]["ts_recv"] - frames["trades"]["ts_event"]).min()
    assert latency >= 1_000_000  # the floor


@pytest.mark.parametrize("name", FULL_FILES)
def test_clock_on_full_captures_is_about_1_27_s_behind(name):
    frames, report = read_capture(_shared(name), clock_policy="shift")
    assert -1.28e9 < report.clock["min_offset_ns"] < -1.26e9
    assert all((f["ts_recv"] >= f["ts_event"]).all() for f in frames.values())


def test_report_policy_keeps_times_and_says_so():
    path = SAMPLES / "cm_btcusd_perp_20240808.head2000.gz"
    frames, report = read_capture(path, clock_policy="report")
    early = sum(int((f["ts_recv"] < f["ts_event"]).sum()) for f in frames.values())
    assert early > 0 and report.clock["ts_recv_before_ts_event"] == early
    assert "policy 'report'" in report.clock["action"] and report.clock["shift_ns"] == 0
    assert any("clock behind" in p for p in report.problems())
    raw_first = int(gzip.open(path, "rt").readline().split(" ", 1)[0])
    assert frames["book_deltas"]["ts_recv"].min() >= raw_first  # as captured, not shifted


def test_reject_policy_fails_loudly():
    with pytest.raises(DataQualityError, match="behind"):
        read_capture(SAMPLES / "spot_ethusdt_20240808.head2000.gz", clock_policy="reject")


def test_events_without_venue_time_take_the_receive_time(tmp_path):
    quote = '{"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"1.5","B":"2","a":"1.6","A":"3"}}'
    path = _write(tmp_path / "q.gz", [_trade(T0, 1), f"{T0 + 5} {quote}"])
    frames, report = read_capture(path)
    quotes = frames["quotes"]
    assert quotes["ts_event"].to_list() == quotes["ts_recv"].to_list()
    assert quotes["ts_recv"][0] == T0 + 5 + report.clock["shift_ns"]
    assert report.clock["events_without_venue_time"] == 1


def test_receive_time_going_back_is_repaired_and_flagged(tmp_path):
    lines = [_depth(T0, 99, 100, bids=[("97.0", "1")]), _snapshot(T0 + 1, 100),
             _depth(T0 + 10, 101, 101, bids=[("99.0", "1")]),
             _depth(T0 + 5, 102, 102, bids=[("98.0", "1")]), _depth(T0 + 20, 103, 103, asks=[("102.0", "1")])]
    frames, report = read_capture(_write(tmp_path / "back.gz", lines))
    book = frames["book_deltas"]
    assert book["ts_recv"].is_sorted() and report.lines_bad == 0
    assert report.clock["ts_recv_backwards"] == 1 and report.clock["first_line_backwards"] == 4
    assert report.clock["max_step_back_ns"] == 5
    flagged = book.filter(pl.col("price") == 98_000_000_000)
    assert flagged["flags"][0] & F_BAD_TS_RECV


# -- update-id rules -----------------------------------------------------------------------------------------------

def test_spot_rules_drop_stale_apply_the_bridge_and_mark_a_gap_until_the_next_snapshot(tmp_path):
    lines = [
        _depth(_ms(0), 90, 95, bids=[("99.0", "1")]),  # 1: before the snapshot, stale once it comes
        _depth(_ms(1), 96, 101, bids=[("99.5", "1")]),  # 2: before the snapshot, bridges it (96 <= 101 <= 101)
        _snapshot(_ms(2), 100),  # 3
        _depth(_ms(3), 102, 104, asks=[("101.5", "3")]),  # 4: continues
        _depth(_ms(4), 100, 104, asks=[("101.5", "4")]),  # 5: stale (u <= 104)
        _depth(_ms(200), 110, 112, bids=[("99.0", "0")]),  # 6: gap: 105..109 missing
        _depth(_ms(400), 113, 115, bids=[("98.0", "1")]),  # 7: the gap is declared here (window 100 ms)
        _depth(_ms(401), 116, 118, bids=[("97.0", "1")]),  # 8: book invalid: held for a snapshot
        _snapshot(_ms(402), 116, bids=[("100.0", "5")]),  # 9: new snapshot: line 8 bridges it
        _depth(_ms(403), 119, 119, asks=[("101.0", "0")]),  # 10
    ]
    frames, report = read_capture(_write(tmp_path / "gap.gz", lines), clock_policy="report")
    seq = report.sequence["BTCUSDT"]
    assert seq["gaps"] == 1
    gap = seq["gap_list"][0]
    assert (gap["line"], gap["detected_line"], gap["expected"], gap["first_id"]) == (6, 7, 105, 110)
    assert seq["stale_dropped"] == 4  # lines 1 and 5, and 6 and 7 against the second snapshot
    assert seq["replayed_after_snapshot"] == 2 and seq["snapshots_applied"] == 2
    assert seq["state_at_end"] == "live" and seq["book_id_at_end"] == 119
    book = frames["book_deltas"]
    rows = list(book.select("sequence", "action", "flags", "price", "size").iter_rows())
    assert rows == [
        (100, ACTION_CLEAR, F_SNAPSHOT, UNDEF_PRICE, 0),
        (100, ACTION_ADD, F_SNAPSHOT, 100_000_000_000, 1_000_000_000),
        (100, ACTION_ADD, F_SNAPSHOT | F_LAST, 101_000_000_000, 2_000_000_000),
        (101, ACTION_MODIFY, F_LAST, 99_500_000_000, 1_000_000_000),  # line 2, replayed at the snapshot
        (104, ACTION_MODIFY, F_LAST, 101_500_000_000, 3_000_000_000),
        (104, ACTION_CLEAR, F_LAST | F_MAYBE_BAD_BOOK, UNDEF_PRICE, 0),  # the gap: drop the book
        (116, ACTION_CLEAR, F_SNAPSHOT, UNDEF_PRICE, 0),
        (116, ACTION_ADD, F_SNAPSHOT, 100_000_000_000, 5_000_000_000),
        (116, ACTION_ADD, F_SNAPSHOT | F_LAST, 101_000_000_000, 2_000_000_000),
        (118, ACTION_MODIFY, F_LAST, 97_000_000_000, 1_000_000_000),  # line 8, held through the gap
        (119, ACTION_CANCEL, F_LAST, 101_000_000_000, 0),
    ]
    ts = book["ts_recv"].to_list()
    assert ts[3] == _ms(2) and ts[5] == _ms(400) and ts[9] == _ms(402)  # known when the book could use them
    assert any("update-id gap" in p and "after line(s) 6" in p for p in report.problems())


def test_futures_rules_chain_on_pu(tmp_path):
    lines = [
        _snapshot(_ms(0), 1000, futures=True),
        _depth(_ms(1), 990, 999, prev=980, bids=[("1.0", "1")]),  # u < lastUpdateId: stale
        _depth(_ms(2), 995, 1005, prev=994, bids=[("2.0", "1")]),  # U <= 1000 <= u: first
        _depth(_ms(3), 1010, 1020, prev=1005, bids=[("3.0", "1")]),  # pu == previous u (ids may jump)
        _depth(_ms(300), 1030, 1040, prev=1025, bids=[("4.0", "1")]),  # pu != 1020: gap
    ]
    frames, report = read_capture(_write(tmp_path / "fut.gz", lines), clock_policy="report")
    seq = report.sequence["BTCUSDT"]
    assert report.venue_kind == "futures"
    assert (seq["stale_dropped"], seq["diffs_applied"], seq["gaps"]) == (1, 2, 1)
    gap = seq["gap_list"][0]
    assert (gap["line"], gap["expected"], gap["prev_id"]) == (5, 1020, 1025)
    assert frames["book_deltas"]["sequence"].to_list()[-3:] == [1005, 1020, 1020]
    assert frames["book_deltas"]["action"][-1] == ACTION_CLEAR


def test_out_of_order_diffs_within_the_window_are_reordered(tmp_path):
    lines = [
        _snapshot(_ms(0), 100),
        _depth(_ms(1), 101, 102, bids=[("1.0", "1")]),
        _depth(_ms(2), 105, 106, bids=[("3.0", "1")]),  # early: 103-104 not here yet
        _depth(_ms(3), 103, 104, bids=[("2.0", "1")]),  # the missing one, 1 ms later
    ]
    frames, report = read_capture(_write(tmp_path / "spot_btcusdt_20240801.gz", lines), clock_policy="report")
    seq = report.sequence["BTCUSDT"]
    assert (seq["reordered"], seq["gaps"], seq["diffs_applied"]) == (1, 0, 3)
    book = frames["book_deltas"].filter(pl.col("action") != ACTION_CLEAR).filter(~pl.col("flags").is_in([F_SNAPSHOT]))
    assert book["sequence"].to_list()[-3:] == [102, 104, 106]
    assert book["ts_recv"].to_list()[-2:] == [_ms(3), _ms(3)]


def test_repeated_messages_are_dropped(tmp_path):
    depth = _depth(_ms(1), 101, 101, bids=[("1.0", "1")]).split(" ", 1)[1]
    trade = _trade(_ms(2), 7).split(" ", 1)[1]
    lines = [_snapshot(_ms(0), 100), f"{_ms(1)} {depth}", f"{_ms(2)} {trade}",
             f"{_ms(3)} {depth}", f"{_ms(4)} {trade}", _trade(_ms(5), 8)]  # the same payloads again
    frames, report = read_capture(_write(tmp_path / "spot_btcusdt_20240802.gz", lines))
    assert report.duplicates["count"] == 2 and report.duplicates["first_lines"] == [4, 5]
    assert report.duplicates["by_stream"] == {"depth": 1, "trade": 1}
    assert frames["trades"]["trade_id"].to_list() == [7, 8]
    assert report.sequence["BTCUSDT"]["stale_dropped"] == 0


# -- bad input ------------------------------------------------------------------------------------------------------

def test_bad_lines_are_quarantined_with_line_numbers_and_reasons(tmp_path):
    good = [_snapshot(_ms(0), 100), _depth(_ms(1), 101, 101, bids=[("1.0", "1")]), _trade(_ms(2), 1)]
    bad = [
        f"{_ms(3)} " + '{"stream":"btcusdt@trade","data":{"e":"trade"',  # 4: garbled JSON
        f"{_ms(4)} " + '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}',  # 5: unknown stream
        "",  # 6
        f"{_ms(5)} " + '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":2,"p":"1e5","q":"1","T":1,"m":true}}',
        "not-a-time {}",  # 8
        b"\xff\xfe garbage",  # 9
    ]
    path = _write(tmp_path / "spot_btcusdt_20240803.gz", good + bad + [_trade(_ms(6), 3)])
    frames, report = read_capture(path, max_bad_fraction=1.0)
    assert report.lines_total == 10 and report.lines_bad == 6 and report.lines_good == 4
    assert [(q.line, q.reason) for q in report.quarantine] == [
        (4, R.INVALID_JSON), (5, R.UNKNOWN_STREAM), (6, R.EMPTY_LINE), (7, R.BAD_DECIMAL),
        (8, R.BAD_TIMESTAMP), (9, R.BAD_TIMESTAMP),
    ]
    assert "aggTrade" in report.quarantine[1].message and report.quarantine[0].raw.startswith(str(_ms(3)))
    assert frames["trades"]["trade_id"].to_list() == [1, 3]
    json.dumps(report.to_dict())


def test_quarantine_keeps_a_bounded_number_of_raw_lines(tmp_path):
    path = _write(tmp_path / "many.gz", [_trade(_ms(0), 1)] + [f"{_ms(1)} {{garbage {'x' * 1000}"] * 30)
    _, report = read_capture(path, max_bad_fraction=1.0, max_quarantine_lines=5, raw_bytes_cap=50)
    assert report.lines_bad == 30 and len(report.quarantine) == 5 and report.quarantine_left_out == 25
    assert all(len(q.raw) <= 51 for q in report.quarantine)


def test_truncated_gzip_keeps_what_was_read_and_quarantines_the_cut_line(tmp_path):
    data = (SAMPLES / "cm_btcusd_perp_20240808.head2000.gz").read_bytes()
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    frames, report = read_capture(path, max_bad_fraction=1.0)
    assert report.capture["truncated"] and report.capture["last_line_unterminated"]
    assert report.lines_bad == 1 and report.quarantine[0].reason == R.TRUNCATED
    assert report.quarantine[0].line == report.lines_total
    assert 500 < report.lines_good < 2000
    assert any("truncated" in p for p in report.problems())


def test_corrupt_gzip_is_reported_not_raised(tmp_path):
    data = bytearray((SAMPLES / "spot_ethusdt_20240808.head2000.gz").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    path = tmp_path / "corrupt.gz"
    path.write_bytes(bytes(data))
    _, report = read_capture(path, max_bad_fraction=1.0)
    assert report.capture["error"] and "corrupt" in report.capture["error"]
    assert report.lines_good > 100


def test_too_many_bad_lines_fail_the_run(tmp_path):
    lines = [_trade(_ms(k), k) for k in range(1, 91)] + ["junk"] * 10
    path = _write(tmp_path / "tenpct.gz", lines)
    with pytest.raises(DataQualityError, match=r"10 of 100 lines are bad") as caught:
        read_capture(path, max_bad_fraction=0.05)
    assert caught.value.report.bad_reasons == {R.BAD_TIMESTAMP: 10}
    _, report = read_capture(path, max_bad_fraction=0.10)
    assert report.lines_bad == 10


def test_plain_text_capture_reads_like_gzip(tmp_path):
    lines = gzip.decompress((SAMPLES / "spot_btcusdt_20240808.head2000.gz").read_bytes()).decode().splitlines()
    plain, _ = read_capture(_write(tmp_path / "plain.txt", lines, compress=False))
    zipped, _ = read_capture(SAMPLES / "spot_btcusdt_20240808.head2000.gz")
    for name in plain:
        assert plain[name].equals(zipped[name])


# -- chunking and threads change nothing ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_chunking_and_threads_do_not_change_the_rows(path):
    reference, report = read_capture(path, chunk_lines=65_536)
    for options in ({"chunk_lines": 97}, {"chunk_lines": 1000, "threads": False}, {"calibration_lines": 300}):
        frames, other = read_capture(path, **options)
        for name in reference:
            assert frames[name].equals(reference[name]), (options, name)
        assert other.sequence == report.sequence and other.messages == report.messages


def test_chunks_are_bounded_and_cover_every_line():
    path = SAMPLES / "spot_ethusdt_20240808.head2000.gz"
    run = normalize_capture(path, chunk_lines=300)
    spans = [(c.first_line, c.last_line) for c in run]
    assert spans[0][0] == 1 and all(b - a < 300 for a, b in spans)
    assert [a for a, _ in spans[1:]] == [b + 1 for _, b in spans[:-1]]
    assert run.report.lines_total == 2000


# -- the source op --------------------------------------------------------------------------------------------------

def test_source_op_emits_sorted_int64_chunks_of_one_schema():
    params = BinanceCapture.Params.model_validate(
        {"path": "cm_btcusd_perp_20240808.head2000.gz", "schema": "trades", "clock_policy": "shift"}
    )
    assert BinanceCapture.instruments(params, SAMPLES) == ["BTCUSD_PERP"]
    reader = BinanceCapture.open(params, SAMPLES)
    chunks = list(reader.chunks(10))
    assert all(len(c["ts_recv"]) <= 10 for c in chunks)
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert set(columns) == {"ts_event", "ts_recv", "instrument", *BinanceCapture.outputs}
    assert columns["instrument"].dtype == np.int32 and (columns["instrument"] == 0).all()
    assert all(columns[p].dtype == np.int64 for p in BinanceCapture.outputs)
    assert (np.diff(columns["ts_recv"]) >= 0).all() and (columns["ts_recv"] >= columns["ts_event"]).all()
    frames, _ = read_capture(SAMPLES / "cm_btcusd_perp_20240808.head2000.gz")
    assert columns["price"].tolist() == frames["trades"]["price"].to_list()
    assert (columns["bid_px"] == 0).all() and reader.report.lines_bad == 0


def test_source_op_instruments_come_from_params_file_name_or_a_prefix_scan(tmp_path):
    assert symbol_from_file_name("data/spot_btcusdt_20240808.gz") == "BTCUSDT"
    assert symbol_from_file_name("cm_btcusd_perp_20240808.head2000.gz") == "BTCUSD_PERP"
    assert symbol_from_file_name("capture.gz") is None
    params = BinanceCapture.Params.model_validate({"path": "capture.gz", "symbols": ["ETHUSDT"]})
    assert BinanceCapture.instruments(params, tmp_path) == ["ETHUSDT"]
    (tmp_path / "capture.gz").write_bytes((SAMPLES / "spot_ethusdt_20240808.head2000.gz").read_bytes())
    scanned = BinanceCapture.Params.model_validate({"path": "capture.gz", "schema": "quotes"})
    assert BinanceCapture.instruments(scanned, tmp_path) == ["ETHUSDT"]
    with pytest.raises(DataQualityError, match="no such capture file"):
        BinanceCapture.instruments(BinanceCapture.Params.model_validate({"path": "missing.gz"}), tmp_path)
    with pytest.raises(ValueError, match="without duplicates"):
        BinanceCapture.Params.model_validate({"path": "x.gz", "symbols": ["A", "A"]})


def test_source_op_fails_on_a_symbol_the_file_name_did_not_announce(tmp_path):
    path = _write(tmp_path / "spot_ethusdt_20240808.gz", [_trade(_ms(0), 1)])
    params = BinanceCapture.Params.model_validate({"path": path.name, "schema": "trades"})
    with pytest.raises(DataQualityError, match="'BTCUSDT'"):
        list(BinanceCapture.open(params, tmp_path).chunks(100))


def test_source_op_docstring_example_runs_as_a_spec(tmp_path):
    import yaml

    from pipelines.run import run_spec

    doc = BinanceCapture.__doc__
    nodes = yaml.safe_load(doc.split("Example::", 1)[1])
    node = nodes["trades"]
    node["with"]["path"] = str(REPO / node["with"]["path"])
    spec = tmp_path / "binance.yaml"
    spec.write_text(yaml.safe_dump({"tickloom": 1, "name": "binance", "kind": "research", "nodes": nodes}))
    output = run_spec(spec, record=["trades"], write=False)
    recorded = output.replay.recorded["trades"]
    assert recorded.height == 36 and recorded["price"].min() > 0
