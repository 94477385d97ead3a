"""The DBN decoder against databento-dbn's own decoder, on every sample; bad input; the source.dbn op.

The vendored ``data/samples/dbn/test_data.*.dbn`` (one tiny file per schema) run on a fresh clone; the GLBX
samples in ``../shared/data/dbn`` run where that folder exists and skip otherwise.
"""

import io
import json
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from nodes.contract import F64, I64, OpRegistry
from nodes.errors import DataQualityError
from nodes.marketdata.dbn import DBN_TABLES, EXTRA_SCHEMAS, check_dbn, decode_dbn, read_dbn_frames
from nodes.marketdata.dbn.source import TABLE_PORTS, DbnSource
from nodes.marketdata.schemas import F_LAST, F_SNAPSHOT, SIZE_SCALE, UNDEF_PRICE

dbn = pytest.importorskip("databento_dbn")
zstandard = pytest.importorskip("zstandard")

REPO = Path(__file__).resolve().parents[3]
VENDORED = REPO / "data" / "samples" / "dbn"
SHARED = REPO.parent / "shared" / "data"
SHARED_DBN = SHARED / "dbn"
VENDORED_FILES = sorted(p.name for p in VENDORED.glob("test_data.*.dbn"))
SHARED_FILES = [
    "esh4-glbx-mdp3-20231224.mbo.dbn.zst",
    "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst",
    "futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst",
    "futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst",
    "futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst",
    "futures_definition.dbn.zst",
    "definition-glbx-es-fut.dbn.zst",
    "orderbooks_definition.dbn.zst",
]


def sample(name: str) -> Path:
    if name.startswith("test_data."):
        return VENDORED / name
    if not SHARED.exists():
        pytest.skip("../shared/data not present (fresh clone)")
    return SHARED_DBN / name


ALL_FILES = VENDORED_FILES + SHARED_FILES


# -- reference: databento-dbn's own decoder ------------------------------------------------------------------


def dbn_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True).read()
    return raw


def header_length(raw: bytes) -> int:
    return 8 + int.from_bytes(raw[4:8], "little")


def reference_records(path: Path) -> list:
    decoder = dbn.DBNDecoder()
    decoder.write(dbn_bytes(path))
    return [r for r in decoder.decode() if not isinstance(r, dbn.Metadata)]


def letter(value) -> str:
    return value if isinstance(value, str) else value.value


def side(value) -> int:
    return {"B": 1, "A": -1}.get(letter(value), 0)


def frames(path: Path, chunk_records: int = 65_536):
    return read_dbn_frames(path, chunk_records=chunk_records)


QUOTE_RECORDS = (dbn.MBP1Msg, dbn.MBP10Msg, dbn.BBOMsg, dbn.CBBOMsg, dbn.CMBP1Msg)


def expected_tables(records: list) -> dict[str, list[dict]]:
    """What each table must hold, built record by record from databento-dbn's objects (an independent path)."""
    out: dict[str, list[dict]] = {}
    for r in records:
        if isinstance(r, dbn.MBOMsg):
            out.setdefault("orders", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "sequence": r.sequence, "order_id": r.order_id,
                "side": side(r.side), "price": r.price, "size": r.size * SIZE_SCALE,
                "action": ord(letter(r.action)), "flags": int(r.flags),
            })
        elif isinstance(r, dbn.TradeMsg):
            out.setdefault("trades", []).append(_trade(r))
        elif isinstance(r, QUOTE_RECORDS):
            out.setdefault("quotes", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "bid_px": r.levels[0].bid_px,
                "ask_px": r.levels[0].ask_px, "bid_sz": r.levels[0].bid_sz * SIZE_SCALE,
                "ask_sz": r.levels[0].ask_sz * SIZE_SCALE,
            })
            if not isinstance(r, (dbn.BBOMsg, dbn.CBBOMsg)) and letter(r.action) == "T":
                out.setdefault("trades", []).append(_trade(r))
        elif isinstance(r, dbn.OHLCVMsg):
            out.setdefault("bars", []).append({
                "ts_event": r.ts_event, "open": r.open / 1e9, "high": r.high / 1e9, "low": r.low / 1e9,
                "close": r.close / 1e9, "volume": float(r.volume),
            })
        elif isinstance(r, dbn.InstrumentDefMsg):
            out.setdefault("definitions", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "symbol": r.raw_symbol,
                "instrument_id": r.instrument_id, "instrument_class": letter(r.instrument_class),
                "currency": r.currency,
                "tick_size": None if r.min_price_increment == UNDEF_PRICE else r.min_price_increment,
            })
        elif isinstance(r, dbn.ImbalanceMsg):
            out.setdefault("imbalance", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "ref_price": r.ref_price,
                "paired_qty": r.paired_qty * SIZE_SCALE, "side": side(r.side),
                "auction_type": letter(r.auction_type), "significant_imbalance": letter(r.significant_imbalance),
            })
        elif isinstance(r, dbn.StatMsg):
            out.setdefault("statistics", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "sequence": r.sequence,
                "stat_type": int(r.stat_type), "price": r.price,
                "quantity": None if r.quantity == dbn.UNDEF_STAT_QUANTITY else r.quantity * SIZE_SCALE,
                "update_action": int(r.update_action),
            })
        elif isinstance(r, dbn.StatusMsg):
            out.setdefault("status", []).append({
                "ts_event": r.ts_event, "ts_recv": r.ts_recv, "action": int(r.action), "reason": int(r.reason),
                "is_trading": r.is_trading, "is_quoting": r.is_quoting,
                "is_short_sell_restricted": r.is_short_sell_restricted,
            })
    return out


def _trade(r) -> dict:
    return {"ts_event": r.ts_event, "ts_recv": r.ts_recv, "sequence": r.sequence, "price": r.price,
            "size": r.size * SIZE_SCALE, "side": side(r.side)}


# -- every sample against databento-dbn ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_counts_and_values_match_databento_dbn(name):
    path = sample(name)
    records = reference_records(path)
    tables, report = frames(path)
    assert report.records == len(records)
    assert report.complete, report.to_dict()
    expected = expected_tables(records)
    if "book_deltas" in tables:  # an MBP-10 file: the snapshot rule is checked on its own below
        expected.setdefault("book_deltas", [])
    assert set(tables) == set(expected)
    for table, rows in expected.items():
        if table == "book_deltas":
            continue
        frame = tables[table]
        assert frame.height == len(rows), table
        assert report.rows[table] == len(rows)
        for column in rows[0]:
            assert frame[column].to_list() == [row[column] for row in rows], f"{table}.{column}"


@pytest.mark.parametrize("name", ALL_FILES)
def test_frames_have_the_normalized_schemas(name):
    tables, _ = frames(sample(name))
    for table, frame in tables.items():
        assert dict(frame.schema) == DBN_TABLES[table], table
    assert set(EXTRA_SCHEMAS) == {"imbalance", "statistics", "status"}


@pytest.mark.parametrize("name", ALL_FILES)
def test_symbols_and_venue_resolve_from_the_metadata(name):
    path = sample(name)
    records = reference_records(path)
    raw = dbn_bytes(path)
    metadata = dbn.Metadata.decode(raw[: header_length(raw)])
    by_id = {int(i["symbol"]): symbol for symbol, intervals in metadata.mappings.items() for i in intervals}
    tables, _ = frames(path)
    for table, frame in tables.items():
        assert frame["venue"].unique().to_list() == [metadata.dataset]
        if table in ("definitions", "book_deltas"):
            continue
        ids = [r.instrument_id for r in records if _feeds(r, table)]
        assert frame["symbol"].to_list() == [by_id.get(i, str(i)) for i in ids], table


def _feeds(record, table: str) -> bool:
    if table == "trades":
        return isinstance(record, dbn.TradeMsg) or (
            isinstance(record, (dbn.MBP1Msg, dbn.MBP10Msg, dbn.CMBP1Msg)) and letter(record.action) == "T")
    kinds = {"orders": dbn.MBOMsg, "quotes": QUOTE_RECORDS, "bars": dbn.OHLCVMsg, "imbalance": dbn.ImbalanceMsg,
             "statistics": dbn.StatMsg, "status": dbn.StatusMsg}
    return isinstance(record, kinds[table])


def test_known_symbols_and_fallback():
    tables, _ = frames(sample("futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst"))
    assert set(tables["bars"]["symbol"]) == {"ESU4", "NQU4"}
    stats, _ = frames(VENDORED / "test_data.statistics.dbn")  # no mappings in the metadata: the id as text
    assert stats["statistics"]["symbol"].to_list() == ["146945", "146945"]
    definitions, _ = frames(VENDORED / "test_data.definition.dbn")
    assert definitions["definitions"]["symbol"].to_list() == ["MSFT", "MSFT"]
    assert definitions["definitions"]["venue"][0] == "XNAS.ITCH"


def test_mbp10_snapshot_rule():
    path = VENDORED / "test_data.mbp-10.dbn"
    records = reference_records(path)
    deltas = frames(path)[0]["book_deltas"]
    start = 0
    for r in records:
        levels = [(1, lv.bid_px, lv.bid_sz) for lv in r.levels if lv.bid_px != UNDEF_PRICE]
        levels += [(-1, lv.ask_px, lv.ask_sz) for lv in r.levels if lv.ask_px != UNDEF_PRICE]
        group = deltas.slice(start, 1 + len(levels))
        start += 1 + len(levels)
        assert group["action"].to_list() == [ord("R")] + [ord("A")] * len(levels)
        assert group["price"].to_list()[1:] == [p for _, p, _ in levels]
        assert group["size"].to_list()[1:] == [s * SIZE_SCALE for _, _, s in levels]
        assert group["side"].to_list() == [0] + [s for s, _, _ in levels]
        assert all(f & F_SNAPSHOT for f in group["flags"])
        last = [bool(f & F_LAST) for f in group["flags"]]
        assert last == [False] * len(levels) + [bool(int(r.flags) & F_LAST)]
        assert set(group["ts_recv"]) == {r.ts_recv} and set(group["sequence"]) == {r.sequence}
    assert start == deltas.height


@pytest.mark.parametrize("name,interval_ns", [
    ("test_data.ohlcv-1s.dbn", 10**9), ("test_data.ohlcv-1m.dbn", 60 * 10**9),
    ("test_data.ohlcv-1h.dbn", 3600 * 10**9), ("futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst", 60 * 10**9),
])
def test_bars_are_known_at_their_close(name, interval_ns):
    bars = frames(sample(name))[0]["bars"]
    assert (bars["ts_recv"] - bars["ts_event"]).unique().to_list() == [interval_ns]


# -- streaming: plain = zstd, chunking, memory ---------------------------------------------------------------


def assert_same_decoding(a: Path, b: Path, chunk_a: int = 65_536, chunk_b: int = 65_536) -> None:
    tables_a, report_a = frames(a, chunk_a)
    tables_b, report_b = frames(b, chunk_b)
    assert set(tables_a) == set(tables_b)
    for table in tables_a:
        assert tables_a[table].equals(tables_b[table]), table
    da, db_ = report_a.to_dict(), report_b.to_dict()
    for key in ("file", "compressed"):
        da.pop(key), db_.pop(key)
    for q in da["quarantined"] + db_["quarantined"]:
        q.pop("file")
    assert da == db_


def test_zstd_and_plain_give_the_same_result(tmp_path):
    plain = VENDORED / "test_data.mbp-10.dbn"
    compressed = tmp_path / "mbp-10.dbn.zst"
    compressed.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(plain.read_bytes()))
    assert_same_decoding(plain, compressed)
    assert check_dbn(compressed).compressed and not check_dbn(plain).compressed


def test_zstd_and_plain_give_the_same_result_on_glbx(tmp_path):
    compressed = sample("orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst")
    plain = tmp_path / "orderbooks.mbo.dbn"
    plain.write_bytes(dbn_bytes(compressed))
    assert_same_decoding(compressed, plain)


def repeated(path: Path, times: int, target: Path, compress: bool = False) -> Path:
    """A DBN file whose records are ``path``'s records repeated ``times`` times (a bigger real-shaped file)."""
    raw = dbn_bytes(path)
    head = header_length(raw)
    data = raw[:head] + raw[head:] * times
    target.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    return target


def sorted_repeat(name: str, times: int, target: Path, compress: bool = False, dtype=None) -> Path:
    """Like ``repeated`` for an MBO-like file, each repetition one second later: sorted by ts_recv."""
    raw = dbn_bytes(VENDORED / name)
    head = header_length(raw)
    dtype = dtype or np.dtype(dbn.v2.MBOMsg._dtypes)
    records = np.frombuffer(raw[head:] * times, dtype=dtype).copy()
    per = len(records) // times
    shift = (np.arange(len(records)) // per).astype(np.uint64) * np.uint64(10**9)
    records["ts_event"] += shift
    records["ts_recv"] += shift
    data = raw[:head] + records.tobytes()
    target.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(data) if compress else data)
    return target


@pytest.mark.parametrize("name", ["test_data.mbp-10.dbn", "test_data.tbbo.dbn", "test_data.status.dbn",
                                  "futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"])
def test_chunking_does_not_change_the_result(tmp_path, name):
    path = sample(name)
    if name.startswith("test_data."):  # 2-4 records: repeat them to cross many chunk boundaries
        path = repeated(path, 20, tmp_path / "repeated.dbn")
    assert_same_decoding(path, path, chunk_a=7, chunk_b=65_536)
    chunks = list(decode_dbn(path, chunk_records=7))
    assert all(c.record_count == 7 for c in chunks[:-1])
    assert [c.first_record for c in chunks] == list(range(0, chunks[-1].first_record + 1, 7))


def peak_bytes(path: Path, chunk_records: int) -> int:
    tracemalloc.start()
    try:
        for _ in decode_dbn(path, chunk_records=chunk_records):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("compress", [False, True])
def test_memory_is_flat_in_the_file_size(tmp_path, compress):
    mbo = VENDORED / "test_data.mbo.dbn"
    peak_bytes(mbo, 1024)  # warm up: first-call allocations (imports, caches) are not the decoder's
    small = repeated(mbo, 10_000, tmp_path / "small.dbn", compress)  # 20,000 records, 1.1 MB of records
    large = repeated(mbo, 50_000, tmp_path / "large.dbn", compress)  # 100,000 records, 5.6 MB
    peak_small, peak_large = peak_bytes(small, 1024), peak_bytes(large, 1024)
    assert peak_large < 1.25 * peak_small + 256 * 1024, (peak_small, peak_large)
    assert peak_large < 100_000 * 56 / 4  # well under the decompressed records


def test_memory_grows_with_the_chunk_not_the_file(tmp_path):
    large = repeated(VENDORED / "test_data.mbo.dbn", 25_000, tmp_path / "large.dbn")
    small_chunks, big_chunks = peak_bytes(large, 512), peak_bytes(large, 16_384)
    assert small_chunks < 50_000 * 56 / 4 and small_chunks < big_chunks  # the chunk, not the file, sets it


# -- quality findings ----------------------------------------------------------------------------------------


def records_section(path: Path) -> tuple[bytes, bytes, int]:
    raw = dbn_bytes(path)
    head = header_length(raw)
    return raw[:head], raw[head:], len(bytes(reference_records(path)[0]))


def test_report_is_json_and_counts_the_glbx_sequence_steps():
    path = sample("futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst")
    report = check_dbn(path)
    json.dumps(report.to_dict())
    records = reference_records(path)
    steps = np.diff([r.sequence for r in records])  # one instrument in this file
    assert report.sequence_gaps.count == int((steps > 1).sum()) == 538
    assert report.sequence_backwards.count == 0
    first = report.sequence_gaps.first[0]
    row = int(np.flatnonzero(steps > 1)[0]) + 1
    assert first["record"] == row and first["sequence"] == records[row].sequence
    assert first["byte"] == header_length(dbn_bytes(path)) + row * 80
    assert report.ts_recv_backwards.count == report.ts_recv_before_event.count == report.crossed_quotes.count == 0
    latency = [r.ts_recv - r.ts_event for r in records if not int(r.flags) & F_SNAPSHOT]
    assert report.recv_minus_event_ns["min"] == min(latency) and report.recv_minus_event_ns["max"] == max(latency)
    p50 = float(np.percentile(latency, 50))
    assert abs(report.recv_minus_event_ns["p50"] - p50) <= 0.02 * p50


def test_snapshot_records_are_left_out_of_sequence_checks():
    report = check_dbn(sample("esh4-glbx-mdp3-20231224.mbo.dbn.zst"))  # one big snapshot, sequences unordered
    assert report.sequence_backwards.count == 0 and report.bad_ts_recv_flag == 8725


def test_crossed_quotes_backwards_time_and_early_receive_are_found(tmp_path):
    mbp1 = np.dtype(dbn.v2.MBP1Msg._dtypes)
    path = sorted_repeat("test_data.mbp-1.dbn", 3, tmp_path / "sorted.dbn", dtype=mbp1)
    head, body, size = records_section(path)
    records = np.frombuffer(body, dtype=mbp1).copy()
    records["bid_px_00"][1] = records["ask_px_00"][1]  # locked: counted as crossed
    records["ts_recv"][3] = records["ts_recv"][2] - 1  # backwards
    records["ts_event"][3] = records["ts_recv"][3] - 10
    records["ts_recv"][4] = records["ts_event"][4] - 5  # received before the event
    path = tmp_path / "bad.dbn"
    path.write_bytes(head + records.tobytes())
    report = check_dbn(path)
    assert report.crossed_quotes.count == 1 and report.crossed_quotes.first[0]["record"] == 1
    assert report.crossed_quotes.first[0]["byte"] == len(head) + size
    assert [f["record"] for f in report.ts_recv_backwards.first] == [3]
    assert report.ts_recv_before_event.count == 1 and report.ts_recv_before_event.first[0]["record"] == 4
    assert report.recv_minus_event_ns["min"] == -5


# -- bad input -----------------------------------------------------------------------------------------------


def test_truncated_file_keeps_what_came_before(tmp_path):
    source = repeated(VENDORED / "test_data.mbo.dbn", 50, tmp_path / "whole.dbn")  # 100 records of 56 bytes
    head = header_length(source.read_bytes())
    cut = tmp_path / "cut.dbn"
    cut.write_bytes(source.read_bytes()[: head + 56 * 61 + 20])
    tables, report = frames(cut)
    whole, _ = frames(source)
    assert tables["orders"].equals(whole["orders"].head(61))
    assert report.records == 61 and not report.complete
    [region] = report.quarantined
    assert region.byte_start == head + 56 * 61 and region.byte_end == head + 56 * 61 + 20
    assert region.reason.startswith(f"truncated at byte {head + 56 * 61}") and region.record_index == 61
    assert region.file == str(cut)


def test_truncated_zstd_file_keeps_what_came_before(tmp_path):
    whole = sorted_repeat("test_data.mbo.dbn", 2000, tmp_path / "whole.dbn.zst", compress=True)
    cut = tmp_path / "cut.dbn.zst"
    cut.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) * 6 // 10])
    tables, report = frames(cut)
    reference, _ = frames(whole)
    n = tables["orders"].height
    assert 0 < n < 4000 and tables["orders"].equals(reference["orders"].head(n))
    assert any(q.reason.startswith("truncated at byte") for q in report.quarantined)


def test_corrupt_record_header_is_quarantined_and_decoding_resumes(tmp_path):
    source = repeated(VENDORED / "test_data.mbo.dbn", 50, tmp_path / "whole.dbn")
    data = bytearray(source.read_bytes())
    head = header_length(bytes(data))
    data[head + 56 * 30] = 0xFF  # record 30's length byte
    data[head + 56 * 30 + 1] ^= 0x5A  # and its rtype
    bad = tmp_path / "bad.dbn"
    bad.write_bytes(bytes(data))
    tables, report = frames(bad)
    whole, _ = frames(source)
    expected = pl.concat([whole["orders"].head(30), whole["orders"].slice(31)])
    assert tables["orders"].equals(expected)
    [region] = report.quarantined
    assert (region.byte_start, region.byte_end) == (head + 56 * 30, head + 56 * 31)
    assert region.record_index == 30 and "invalid record header" in region.reason
    assert report.records == 99


def test_flipped_bytes_in_a_real_zstd_sample_do_not_crash(tmp_path):
    original = sample("orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst")
    data = bytearray(original.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 8] = bytes(b ^ 0xFF for b in data[middle: middle + 8])
    bad = tmp_path / "bad.dbn.zst"
    bad.write_bytes(bytes(data))
    tables, report = frames(bad)
    reference, _ = frames(original)
    n = tables["orders"].height
    assert 0 < n < reference["orders"].height and not report.complete
    same = tables["orders"]["price"].to_numpy() == reference["orders"]["price"].head(n).to_numpy()
    assert same[:1000].all()  # what precedes the flipped block decodes as it should
    reason = report.quarantined[-1].reason
    assert "corrupt zstd" in reason and "may hold corrupt values" in reason


def test_unknown_record_type_is_counted_not_fatal(tmp_path):
    head, body, size = records_section(VENDORED / "test_data.trades.dbn")
    unknown = bytes([4, 0xEE]) + bytes(14)  # a 16-byte record of an rtype nobody knows
    path = tmp_path / "unknown.dbn"
    path.write_bytes(head + body[:size] + unknown + body[size:])
    tables, report = frames(path)
    assert tables["trades"].height == 2
    assert report.unknown_records == {"0xee": 1} and report.records == 3 and not report.quarantined


def test_unknown_schema_code_is_read_as_mixed(tmp_path):
    data = bytearray((VENDORED / "test_data.trades.dbn").read_bytes())
    data[24:26] = (99).to_bytes(2, "little")
    path = tmp_path / "schema99.dbn"
    path.write_bytes(bytes(data))
    tables, report = frames(path)
    assert tables["trades"].height == 2 and report.schema is None
    assert "unknown schema code 99" in report.notes[0]


def test_not_a_dbn_file_is_a_data_quality_error(tmp_path):
    path = tmp_path / "junk.dbn"
    path.write_bytes(b"hello, world, this is not DBN")
    with pytest.raises(DataQualityError, match="not a DBN file"):
        decode_dbn(path)
    with pytest.raises(DataQualityError, match="no such DBN file"):
        decode_dbn(tmp_path / "missing.dbn")


# -- the source op -------------------------------------------------------------------------------------------


def test_source_is_registered_and_declares_ports_per_table():
    from nodes.marketdata.dbn import source  # the registry's scan of this module, without the whole library

    assert OpRegistry().scan(source).get("source.dbn") is DbnSource
    params = DbnSource.Params(path="x.dbn", schema="orders")
    assert DbnSource.outputs_for(params) == {p: I64 for p in ("order_id", "side", "price", "size", "action", "flags")}
    assert DbnSource.specialize(DbnSource.Params(path="x", schema="bars")).outputs == {
        p: F64 for p in ("open", "high", "low", "close", "volume")}
    assert set(TABLE_PORTS) == set(DBN_TABLES)


@pytest.mark.parametrize("name,table", [
    ("test_data.mbo.dbn", "orders"), ("test_data.mbp-10.dbn", "book_deltas"), ("test_data.tbbo.dbn", "trades"),
    ("test_data.bbo-1s.dbn", "quotes"), ("test_data.ohlcv-1m.dbn", "bars"), ("test_data.status.dbn", "status"),
    ("test_data.imbalance.dbn", "imbalance"), ("test_data.statistics.dbn", "statistics"),
    ("test_data.definition.dbn", "definitions"),
])
def test_source_chunks_follow_the_contract(name, table):
    params = DbnSource.Params(path=name, schema=table)
    instruments = DbnSource.instruments(params, VENDORED)
    reader = DbnSource.open(params, VENDORED)
    chunks = list(reader.chunks(max_rows=5))
    frame = frames(VENDORED / name)[0][table]
    assert sum(len(c["ts_recv"]) for c in chunks) == frame.height
    for chunk in chunks:
        assert list(chunk) == ["ts_event", "ts_recv", "instrument", *TABLE_PORTS[table]]
        assert len({len(v) for v in chunk.values()}) == 1 and len(chunk["ts_recv"]) <= 5
        assert chunk["instrument"].dtype == np.int32 and chunk["ts_recv"].dtype == np.int64
        for port, scalar in TABLE_PORTS[table].items():
            assert chunk[port].dtype == scalar.dtype
    ts = np.concatenate([c["ts_recv"] for c in chunks])
    assert (np.diff(ts) >= 0).all()
    symbols = [instruments[i] for c in chunks for i in c["instrument"]]
    assert symbols == frame["symbol"].to_list()


def test_source_reads_glbx_quotes_with_a_symbol_filter():
    path = sample("futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst")
    params = DbnSource.Params(path=path.name, schema="bars", symbols=["NQU4"])
    assert DbnSource.instruments(params) == ["NQU4"]
    chunks = list(DbnSource.open(params, path.parent).chunks(1000))
    bars = frames(path)[0]["bars"].filter(pl.col("symbol") == "NQU4")
    assert np.array_equal(chunks[0]["close"], bars["close"].to_numpy()) and set(chunks[0]["instrument"]) == {0}
    assert DbnSource.instruments(DbnSource.Params(path=str(path), schema="bars")) == ["ESU4", "NQU4"]
    with pytest.raises(DataQualityError, match="symbol.s. CLQ4 not in the file"):
        DbnSource.open(DbnSource.Params(path=str(path), schema="bars", symbols=["CLQ4"]), path.parent)


def test_source_raises_or_warns_on_damage(tmp_path):
    whole = sorted_repeat("test_data.mbo.dbn", 50, tmp_path / "whole.dbn")
    cut = tmp_path / "cut.dbn"
    cut.write_bytes(whole.read_bytes()[:-30])
    params = DbnSource.Params(path="cut.dbn", schema="orders")
    emitted = []
    with pytest.raises(DataQualityError, match=r"cut.dbn: bytes \d+-\d+ quarantined before record 99: truncated"):
        for chunk in DbnSource.open(params, tmp_path).chunks(10):
            emitted.append(chunk)
    assert sum(len(c["ts_recv"]) for c in emitted) == 99  # everything before the damage came out first
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = sum(len(c["ts_recv"]) for c in DbnSource.open(params.model_copy(update={"on_damage": "warn"}),
                                                               tmp_path).chunks(10))
    assert rows == 99 and "truncated" in str(caught[0].message)


def test_source_rejects_a_file_not_sorted_by_ts_recv(tmp_path):
    head, body, size = records_section(sorted_repeat("test_data.mbo.dbn", 3, tmp_path / "sorted.dbn"))
    records = np.frombuffer(body, dtype=np.dtype(dbn.v2.MBOMsg._dtypes)).copy()
    records["ts_recv"][4] = records["ts_recv"][3] - 1
    (tmp_path / "unsorted.dbn").write_bytes(head + records.tobytes())
    reader = DbnSource.open(DbnSource.Params(path="unsorted.dbn", schema="orders"), tmp_path)
    with pytest.raises(DataQualityError, match="ts_recv goes backwards 1 time.* first at record 4"):
        list(reader.chunks(100))


def test_the_docstring_example_runs():
    block = DbnSource.__doc__.split("Example::", 1)[1]
    example = yaml.safe_load(textwrap.dedent("\n".join(block.splitlines()[1:])))
    [(node_id, node)] = example.items()
    assert node["op"] == DbnSource.name
    params = DbnSource.Params.model_validate(node["with"])
    assert DbnSource.instruments(params, REPO) == ["ESH1"]
    chunks = list(DbnSource.open(params, REPO).chunks(65_536))
    assert len(chunks[0]["bid_px"]) == 2 and list(chunks[0])[3:] == list(DbnSource.outputs_for(params))
