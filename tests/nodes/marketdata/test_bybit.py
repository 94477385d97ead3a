"""The Bybit order-book normalizer: Bybit's rules row by row, update-id gaps, bad lines, containers, times, the
source op and the catalog format.

Always-on tests use small files written by hand into ``tmp_path`` in Bybit's format (JSON lines in a zip). The
sample ``../shared/data/ticks/xrpusdt-ob500.data.zip`` (one snapshot and 49 deltas) is not ours to vendor:
its tests skip, with the reason, when it is absent.
"""

import gzip
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from nodes.catalog import Catalog
from nodes.errors import DataQualityError
from nodes.marketdata.book.replay import replay_book
from nodes.marketdata.bybit import normalize_bybit_orderbook, read_bybit_orderbook
from nodes.marketdata.bybit.source import BybitOrderbook, symbol_from_file_name
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
from pipelines.ingest import ingest_files

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO.parent / "shared" / "data" / "ticks" / "xrpusdt-ob500.data.zip"
NO_SHARED = f"the Bybit sample is not here ({SAMPLE}): it may not be vendored, and a fresh clone has none"
U = 1_000_000_000
MS = 1_000_000
TS0 = 1_733_011_200_000  # ms
COLUMNS = ("ts_event", "ts_recv", "symbol", "sequence", "side", "price", "size", "action", "flags")


def _sample() -> Path:
    if not SAMPLE.exists():
        pytest.skip(NO_SHARED)
    return SAMPLE


def _message(kind: str, u: int, bids=(), asks=(), ts: int | None = None, cts: int | None = None, seq: int | None = None,
             symbol: str = "XRPUSDT") -> str:
    ts = TS0 + u if ts is None else ts
    payload = {"topic": f"orderbook.500.{symbol}", "type": kind, "ts": ts,
               "data": {"s": symbol, "b": [list(b) for b in bids], "a": [list(a) for a in asks], "u": u,
                        "seq": 1000 + u if seq is None else seq},
               "cts": ts - 2 if cts is None else cts}
    return json.dumps(payload, separators=(",", ":"))


def _zip(path: Path, lines: list[str], member: str = "2024-12-01_XRPUSDT_ob500.data") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, "\n".join(lines) + "\n")
    return path


def _rows(frame: pl.DataFrame, columns=COLUMNS) -> list[tuple]:
    return frame.select(columns).rows()


SNAPSHOT = _message("snapshot", 1, bids=[("100", "1"), ("99.5", "2")], asks=[("101", "3")])
DELTA = _message("delta", 2, bids=[("100", "0"), ("98.25", "4")], asks=[("101", "2.5")])


def _t(u: int) -> tuple[int, int]:
    return (TS0 + u - 2) * MS, (TS0 + u) * MS


def test_a_snapshot_then_a_delta_row_by_row(tmp_path):
    frame, report = read_bybit_orderbook(_zip(tmp_path / "ob.data.zip", [SNAPSHOT, DELTA]))
    assert frame.columns == list(SCHEMAS["book_deltas"]) and set(frame["venue"]) == {"BYBIT"}
    s = "XRPUSDT"
    assert _rows(frame) == [
        (*_t(1), s, 1, 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_SNAPSHOT),
        (*_t(1), s, 1, 1, 100 * U, 1 * U, ACTION_ADD, F_SNAPSHOT),
        (*_t(1), s, 1, 1, 99_500_000_000, 2 * U, ACTION_ADD, F_SNAPSHOT),
        (*_t(1), s, 1, -1, 101 * U, 3 * U, ACTION_ADD, F_SNAPSHOT | F_LAST),
        (*_t(2), s, 2, 1, 100 * U, 0, ACTION_CANCEL, 0),
        (*_t(2), s, 2, 1, 98_250_000_000, 4 * U, ACTION_MODIFY, 0),
        (*_t(2), s, 2, -1, 101 * U, 2_500_000_000, ACTION_MODIFY, F_LAST),
    ]
    seq = report.sequence["XRPUSDT"]
    assert (seq["snapshots"], seq["deltas_applied"], seq["gaps"], seq["last_u"]) == (1, 1, 0, 2)
    assert report.depth == 500 and report.lines_total == 2 and report.problems() == []


def test_a_gap_clears_the_book_until_the_next_snapshot_which_resets_it(tmp_path):
    lines = [
        SNAPSHOT, DELTA,
        _message("delta", 4, bids=[("100", "9")]),  # u 3 is missing: a gap
        _message("delta", 5, asks=[("101", "1")]),  # dropped: the book is invalid
        _message("snapshot", 10, bids=[("97", "1")], asks=[("98", "1")]),
        _message("delta", 11, asks=[("98", "0")]),
    ]
    frame, report = read_bybit_orderbook(_zip(tmp_path / "ob.zip", lines))
    tail = _rows(frame, ("sequence", "side", "price", "size", "action", "flags"))[7:]
    assert tail == [
        (4, 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_LAST | F_MAYBE_BAD_BOOK),
        (10, 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_SNAPSHOT),
        (10, 1, 97 * U, 1 * U, ACTION_ADD, F_SNAPSHOT),
        (10, -1, 98 * U, 1 * U, ACTION_ADD, F_SNAPSHOT | F_LAST),
        (11, -1, 98 * U, 0, ACTION_CANCEL, F_LAST),
    ]
    seq = report.sequence["XRPUSDT"]
    assert seq["gap_list"] == [{"line": 3, "member": "2024-12-01_XRPUSDT_ob500.data", "expected_u": 3, "found_u": 4}]
    assert (seq["gaps"], seq["dropped_after_gap"], seq["snapshot_resets"], seq["state"]) == (1, 1, 1, "live")
    assert any("update-id gap" in p for p in report.problems())


def test_stale_and_unsynced_deltas_are_dropped_and_seq_going_back_is_counted(tmp_path):
    lines = [
        _message("delta", 0, bids=[("1", "1")]),  # before any snapshot
        SNAPSHOT, DELTA,
        _message("delta", 2, bids=[("5", "5")]),  # a repeat of u 2
        _message("delta", 3, bids=[("100", "3")], seq=900),  # seq below the last one: counted, still applied
        _message("delta", 4, ts=TS0 + 4),  # an empty delta
    ]
    frame, report = read_bybit_orderbook(_zip(tmp_path / "ob.zip", lines))
    assert frame["sequence"].unique(maintain_order=True).to_list() == [1, 2, 3]
    seq = report.sequence["XRPUSDT"]
    assert (seq["unsynced_dropped"], seq["stale_dropped"], seq["deltas_applied"], seq["empty_deltas"]) == (1, 1, 3, 1)
    assert (seq["seq_not_increasing"], seq["first_seq_not_increasing_line"]) == (2, 4)
    assert seq["last_u"] == 4


@pytest.mark.parametrize("chunk_messages", [1, 2, 10_000])
def test_containers_and_chunking_do_not_change_the_rows(tmp_path, chunk_messages):
    lines = [SNAPSHOT, DELTA, _message("delta", 3, asks=[("101.5", "7")])]
    expected, _ = read_bybit_orderbook(_zip(tmp_path / "a.zip", lines))
    text = ("\n".join(lines) + "\n").encode()
    (tmp_path / "b.data").write_bytes(text)
    (tmp_path / "c.data.gz").write_bytes(gzip.compress(text))
    for name in ("a.zip", "b.data", "c.data.gz"):
        frame, report = read_bybit_orderbook(tmp_path / name, chunk_messages=chunk_messages)
        assert frame.equals(expected), name
    assert report.capture["container"] == "gzip"


BAD_LINES = [
    ("{not json", "invalid_json"),
    ('["a list"]', "not_an_object"),
    (_message("partial", 3), "unknown_message"),
    (_message("delta", 3, bids=[("1.2.3", "1")]), "bad_decimal"),
    (_message("delta", 3, bids=[("1", "-2")]), "negative_size"),
    (_message("delta", 3).replace('"u":3', '"u":"3"'), "bad_field"),
    (_message("delta", 3).replace('"u":3,', ""), "missing_field"),
    (_message("delta", 3).replace("orderbook.500.XRPUSDT", "orderbook.500.BTCUSDT"), "symbol_mismatch"),
    (_message("delta", 3).replace('"ts":', '"ts_":'), "missing_field"),
    ("", "empty_line"),
]


def test_bad_lines_are_quarantined_with_their_line_and_leave_a_hole_the_rules_see(tmp_path):
    lines = [SNAPSHOT, DELTA, *[line for line, _ in BAD_LINES], _message("delta", 4, bids=[("100", "1")])]
    frame, report = read_bybit_orderbook(_zip(tmp_path / "ob.zip", lines), max_bad_fraction=1.0, chunk_messages=3)
    assert [(r.line, r.reason) for r in report.quarantine.records] == [(3 + i, reason) for i, (_, reason) in enumerate(BAD_LINES)]
    assert report.quarantine.records[0].member == "2024-12-01_XRPUSDT_ob500.data"
    assert report.lines_bad == len(BAD_LINES) and report.lines_good == 3
    assert "level 0" in report.quarantine.records[3].message and report.quarantine.records[3].raw.startswith("{")
    # u 3 never arrived intact: the delta with u 4 is a gap
    assert report.sequence["XRPUSDT"]["gaps"] == 1 and frame["flags"][-1] == F_LAST | F_MAYBE_BAD_BOOK


def test_too_many_bad_lines_fail_loudly_and_unreadable_files_fail_at_once(tmp_path):
    path = _zip(tmp_path / "ob.zip", [SNAPSHOT, "{oops"])
    with pytest.raises(DataQualityError, match=r"1 of 2 line\(s\) are bad") as error:
        read_bybit_orderbook(path)
    assert error.value.report.quarantine.records[0].line == 2
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(DataQualityError, match="not a readable zip"):
        normalize_bybit_orderbook(tmp_path / "broken.zip")
    with pytest.raises(FileNotFoundError):
        normalize_bybit_orderbook(tmp_path / "missing.zip")


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(tmp_path):
    lines = [SNAPSHOT] + [_message("delta", u, bids=[("100", str(u))]) for u in range(2, 3000)]
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) // 2])
    frame, report = read_bybit_orderbook(tmp_path / "cut.gz")
    assert report.capture["truncated"] and 0 < report.lines_total < 3000
    assert report.sequence["XRPUSDT"]["gaps"] == 0 and any("ends early" in p for p in report.problems())


def test_times_come_from_cts_and_ts_plus_the_assumed_latency(tmp_path):
    lines = [
        _message("snapshot", 1, bids=[("1", "1")], ts=TS0 + 10, cts=TS0 + 7),
        _message("delta", 2, bids=[("1", "2")], ts=TS0 + 5, cts=TS0 + 4),  # ts goes back
        _message("delta", 3, bids=[("1", "3")], ts=TS0 + 20, cts=TS0 + 30),  # cts after ts
    ]
    path = _zip(tmp_path / "ob.zip", lines)
    frame, report = read_bybit_orderbook(path, assumed_latency_ns=500_000)
    last = frame.filter(pl.col("flags") & F_LAST > 0)
    assert last["ts_recv"].to_list() == [(TS0 + 10) * MS + 500_000] * 2 + [(TS0 + 20) * MS + 500_000]
    assert last["ts_event"].to_list() == [(TS0 + 7) * MS, (TS0 + 4) * MS, (TS0 + 20) * MS + 500_000]
    assert [bool(f & F_BAD_TS_RECV) for f in last["flags"]] == [False, True, True]
    assert report.ts_recv_backwards == {"count": 1, "first_line": 2}
    assert report.clock["ts_event_after_ts_recv"] == 1 and report.clock["first_line"] == 3
    with pytest.raises(DataQualityError, match="line 3: cts is after"):
        read_bybit_orderbook(path, clock_policy="reject")


def test_symbols_filter_drops_or_fails(tmp_path):
    path = _zip(tmp_path / "ob.zip", [SNAPSHOT, _message("snapshot", 1, bids=[("2", "2")], symbol="BTCUSDT")])
    frame, report = read_bybit_orderbook(path, symbols=["BTCUSDT"])
    assert set(frame["symbol"]) == {"BTCUSDT"} and report.filtered_out == {"XRPUSDT": 1}
    with pytest.raises(DataQualityError, match="line 1: symbol 'XRPUSDT'"):
        read_bybit_orderbook(path, symbols=["BTCUSDT"], unlisted_symbols="error")


# -- the source op and the catalog format -------------------------------------------------------------------------------

def test_the_source_op_emits_book_deltas_on_the_shared_ports(tmp_path):
    assert symbol_from_file_name("data/2024-12-01_XRPUSDT_ob500.data.zip") == "XRPUSDT"
    assert symbol_from_file_name("capture.zip") is None
    _zip(tmp_path / "capture.zip", [SNAPSHOT, DELTA])
    params = BybitOrderbook.Params.model_validate({"path": "capture.zip"})
    assert BybitOrderbook.instruments(params, tmp_path) == ["XRPUSDT"]  # from a scan of the first lines
    reader = BybitOrderbook.open(params, tmp_path)
    chunks = list(reader.chunks(3))
    assert [len(c["ts_recv"]) for c in chunks] == [3, 3, 1]
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert set(columns) == {"ts_event", "ts_recv", "instrument", *PORTS}
    assert all(columns[p].dtype == np.int64 for p in PORTS)
    assert columns["sequence"].tolist() == [1, 1, 1, 1, 2, 2, 2] and (columns["trade_id"] == 0).all()
    assert reader.report.sequence["XRPUSDT"]["deltas_applied"] == 1
    with pytest.raises(ValueError, match="book_deltas"):
        BybitOrderbook.Params.model_validate({"path": "x.zip", "schema": "trades"})


def test_the_source_op_docstring_example_runs_as_a_spec(tmp_path):
    from pipelines.run import run_spec

    nodes = yaml.safe_load(BybitOrderbook.__doc__.split("Example::", 1)[1])
    (tmp_path / "data").mkdir()
    _zip(tmp_path / nodes["book"]["with"]["path"], [SNAPSHOT, DELTA])
    nodes["top"] = {"op": "book.l2", "in": {p: f"book.{p}" for p in ("side", "price", "size", "action", "flags")}}
    spec = tmp_path / "bybit.yaml"
    spec.write_text(yaml.safe_dump({"tickloom": 1, "name": "bybit", "kind": "research", "nodes": nodes}))
    recorded = run_spec(spec, record=["top"], write=False).replay.recorded["top"]
    assert recorded.height == 7
    assert (recorded["best_bid"][-1], recorded["best_ask"][-1]) == (99_500_000_000, 101 * U)


def test_ingest_into_a_catalog(tmp_path):
    path = _zip(tmp_path / "2024-12-01_XRPUSDT_ob500.data.zip", [SNAPSHOT, DELTA, "{bad"])
    with pytest.raises(DataQualityError, match="1 bad record"):
        ingest_files(tmp_path / "catalog", "bybit", [path])
    result = ingest_files(tmp_path / "catalog", "bybit", [path], max_bad_record_rate=0.5,
                          options={"venue": "BYBIT_LINEAR"})
    assert result.rows == {"book_deltas": 7} and result.reports[0]["records"] == 3
    stored = Catalog(tmp_path / "catalog").read("book_deltas", venue="BYBIT_LINEAR", symbols="XRPUSDT")
    assert stored["action"].to_list() == [ACTION_CLEAR, ACTION_ADD, ACTION_ADD, ACTION_ADD, ACTION_CANCEL,
                                          ACTION_MODIFY, ACTION_MODIFY]


# -- the real sample (../shared) --------------------------------------------------------------------------------------

def _naive_book(path: Path) -> tuple[dict[str, dict[Decimal, Decimal]], list[int]]:
    """Bybit's rules with plain dicts and Decimals: a snapshot replaces the book, size 0 deletes."""
    book = {"b": {}, "a": {}}
    ids = []
    with zipfile.ZipFile(path) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    for line in text.splitlines():
        message = json.loads(line)
        data = message["data"]
        if message["type"] == "snapshot":
            book = {"b": {}, "a": {}}
        ids.append(data["u"])
        for side in ("b", "a"):
            for price, size in data[side]:
                if Decimal(size) == 0:
                    book[side].pop(Decimal(price), None)
                else:
                    book[side][Decimal(price)] = Decimal(size)
    return book, ids


def test_the_sample_book_after_all_49_deltas_matches_a_naive_reference():
    path = _sample()
    frame, report = read_bybit_orderbook(path)
    reference, ids = _naive_book(path)
    assert len(ids) == 50 and ids == list(range(ids[0], ids[0] + 50))
    seq = report.sequence["XRPUSDT"]
    assert (seq["snapshots"], seq["deltas_applied"], seq["gaps"], report.lines_bad) == (1, 49, 0, 0)
    with zipfile.ZipFile(path) as archive:
        messages = [json.loads(line) for line in archive.read(archive.namelist()[0]).decode().splitlines()]
    assert frame.height == 1 + sum(len(m["data"]["b"]) + len(m["data"]["a"]) for m in messages)
    assert frame.filter(pl.col("flags") & F_LAST > 0).height == 50
    mine = {"b": {}, "a": {}}
    for side, price, size, action in frame.select("side", "price", "size", "action").iter_rows():
        key = "b" if side == 1 else "a"
        if action == ACTION_CLEAR:
            mine = {"b": {}, "a": {}}
        elif size == 0:
            mine[key].pop(price, None)
        else:
            mine[key][price] = size
    expected = {side: {int(p * U): int(s * U) for p, s in levels.items()} for side, levels in reference.items()}
    assert mine == expected
    book = replay_book(frame, kind="l2", target="cpu", depth=5)["books"]["XRPUSDT"]
    assert book["best_bid"] == max(expected["b"]) and book["best_ask"] == min(expected["a"])
    assert [(level["price"], level["size"]) for level in book["bids"]] == sorted(expected["b"].items(), reverse=True)[:5]
    assert (book["levels_bid"], book["levels_ask"]) == (len(expected["b"]), len(expected["a"]))
    assert not book["crossed"] and book["last_sequence"] == ids[-1]


def test_the_sample_ingests_into_a_catalog(tmp_path):
    result = ingest_files(tmp_path / "catalog", "bybit", [_sample()])
    assert result.rows == {"book_deltas": 3967} and result.reports[0]["records"] == 50
