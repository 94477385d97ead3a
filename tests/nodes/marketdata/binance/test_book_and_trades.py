"""``source.binance_capture`` with ``schema: book_and_trades``: book deltas and trades in one stream.

The merged stream must be exactly the union of the two single-schema streams (same rows, each in its own
order), sorted by ``ts_recv`` with ties in the order the capture made rows known, whatever the chunk sizes.
Runs on the vendored cuts and hand-made captures; the full captures in ``../shared/data/binance`` when present.
"""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from nodes.marketdata.binance.source import BinanceCapture
from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.schemas import ACTION_ADD, ACTION_CLEAR, ACTION_MODIFY, ACTION_TRADE, F_LAST, F_SNAPSHOT
from nodes.marketdata.stream_ports import PORTS, SCHEMA_PORTS
from tests.support import drive

REPO = Path(__file__).resolve().parents[4]
SAMPLES = REPO / "data" / "samples" / "binance"
SHARED = REPO.parent / "shared" / "data" / "binance"
SAMPLE_FILES = ["spot_btcusdt_20240808.head2000.gz", "cm_btcusd_perp_20240808.head2000.gz"]
BOOK_PORTS = SCHEMA_PORTS["book_deltas"]
TRADE_PORTS = SCHEMA_PORTS["trades"]
T0 = 1_723_161_254_000_000_000
E0 = 1_723_161_255_270


def _stream(folder: Path, name: str, schema: str, max_rows: int = 65_536, **params) -> dict[str, np.ndarray]:
    """The whole stream of one schema, chunks concatenated."""
    validated = BinanceCapture.Params.model_validate({"path": name, "schema": schema, **params})
    chunks = list(BinanceCapture.open(validated, folder).chunks(max_rows))
    assert all(len(c["ts_recv"]) <= max_rows for c in chunks)
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _assert_union(folder: Path, name: str) -> dict[str, np.ndarray]:
    merged = _stream(folder, name, "book_and_trades")
    book = _stream(folder, name, "book_deltas")
    trades = _stream(folder, name, "trades")
    is_trade = merged["action"] == ACTION_TRADE
    assert len(merged["ts_recv"]) == len(book["ts_recv"]) + len(trades["ts_recv"])
    assert is_trade.sum() == len(trades["ts_recv"]) > 0
    assert (np.diff(merged["ts_recv"]) >= 0).all() and (merged["ts_recv"] >= merged["ts_event"]).all()
    for port in ("ts_event", "ts_recv", "instrument", *BOOK_PORTS):
        np.testing.assert_array_equal(merged[port][~is_trade], book[port], err_msg=f"{name}: book rows, {port}")
    for port in ("ts_event", "ts_recv", "instrument", *TRADE_PORTS):
        np.testing.assert_array_equal(merged[port][is_trade], trades[port], err_msg=f"{name}: trade rows, {port}")
    assert (merged["trade_id"][~is_trade] == 0).all()
    assert (merged["flags"][is_trade] == F_LAST).all() and (merged["sequence"][is_trade] == 0).all()
    assert set(np.unique(merged["side"][is_trade])) <= {-1, 1}
    for port in set(PORTS) - set(SCHEMA_PORTS["book_and_trades"]):
        assert (merged[port] == 0).all(), port
    return merged


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_merged_stream_is_the_union_of_book_deltas_and_trades(name):
    _assert_union(SAMPLES, name)


@pytest.mark.parametrize("name", ["spot_btcusdt_20240808.gz", "cm_btcusd_perp_20240808.gz"])
def test_merged_stream_is_the_union_on_full_captures(name):
    if not (SHARED / name).exists():
        pytest.skip(f"needs ../shared/data/binance/{name}: not in a fresh clone")
    merged = _assert_union(SHARED, name)
    assert (merged["action"] == ACTION_TRADE).sum() > 1000


def test_chunk_sizes_and_threads_do_not_change_the_stream():
    name = SAMPLE_FILES[0]
    reference = _stream(SAMPLES, name, "book_and_trades")
    for max_rows, params in ((1, {}), (7, {"chunk_lines": 97}), (1000, {"chunk_lines": 1})):
        other = _stream(SAMPLES, name, "book_and_trades", max_rows, **params)
        assert other.keys() == reference.keys()
        for port in reference:
            np.testing.assert_array_equal(other[port], reference[port], err_msg=f"max_rows {max_rows} {params}: {port}")


def _line(ts: int, body: dict, stream: str | None = None) -> str:
    payload = {"stream": stream, "data": body} if stream else body
    return f"{ts} " + json.dumps(payload, separators=(",", ":"))


def _depth(ts: int, first: int, last: int, bids=(), asks=()) -> str:
    body = {"e": "depthUpdate", "E": E0, "s": "BTCUSDT", "U": first, "u": last,
            "b": [list(b) for b in bids], "a": [list(a) for a in asks]}
    return _line(ts, body, "btcusdt@depth@100ms")


def _trade(ts: int, trade_id: int, maker: bool) -> str:
    body = {"e": "trade", "E": E0, "s": "BTCUSDT", "t": trade_id, "p": "100.5", "q": "0.25", "T": E0, "m": maker}
    return _line(ts, body, "btcusdt@trade")


def test_ties_on_receive_time_follow_the_line_that_made_each_row_known(tmp_path):
    """A diff buffered before the snapshot is known at the snapshot's line: a trade received in between, at the
    same nanosecond, comes before it; otherwise rows keep the capture's line order."""
    ts = T0
    lines = [
        _depth(ts, 96, 101, bids=[("99.5", "1")]),  # 1: buffered, replayed at line 3
        _trade(ts, 7, maker=True),  # 2: a sell (the buyer was the maker)
        _line(ts, {"lastUpdateId": 100, "bids": [["100.0", "1"]], "asks": [["101.0", "2"]]}),  # 3
        _trade(ts, 8, maker=False),  # 4: a buy
        _depth(ts, 102, 102, asks=[("101.0", "3")]),  # 5
        _trade(ts + 1, 9, maker=False),  # 6
    ]
    path = tmp_path / "spot_btcusdt_20240808.gz"
    path.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    merged = _stream(tmp_path, path.name, "book_and_trades", clock_policy="report")
    rows = list(zip(merged["action"].tolist(), merged["flags"].tolist(), merged["side"].tolist(),
                    merged["trade_id"].tolist(), merged["sequence"].tolist()))
    assert rows == [
        (ACTION_TRADE, F_LAST, -1, 7, 0),  # line 2
        (ACTION_CLEAR, F_SNAPSHOT, 0, 0, 100),  # line 3: the snapshot
        (ACTION_ADD, F_SNAPSHOT, 1, 0, 100),
        (ACTION_ADD, F_SNAPSHOT | F_LAST, -1, 0, 100),
        (ACTION_MODIFY, F_LAST, 1, 0, 101),  # line 1, known at line 3
        (ACTION_TRADE, F_LAST, 1, 8, 0),  # line 4
        (ACTION_MODIFY, F_LAST, -1, 0, 102),  # line 5
        (ACTION_TRADE, F_LAST, 1, 9, 0),  # line 6
    ]
    assert merged["size"][0] == 250_000_000 and merged["price"][0] == 100_500_000_000


def test_instruments_are_scanned_from_book_and_trade_messages(tmp_path):
    (tmp_path / "capture.gz").write_bytes((SAMPLES / SAMPLE_FILES[0]).read_bytes())
    params = BinanceCapture.Params.model_validate({"path": "capture.gz", "schema": "book_and_trades"})
    assert BinanceCapture.instruments(params, tmp_path) == ["BTCUSDT"]


def test_book_l2_reads_the_merged_stream_like_the_book_alone():
    """book.l2 leaves trade rows alone: its top after each book row is the same on both streams."""
    name = SAMPLE_FILES[0]
    merged = _stream(SAMPLES, name, "book_and_trades")
    book = _stream(SAMPLES, name, "book_deltas")
    params = BookL2.Params()
    inputs = list(BookL2.inputs)
    on_merged = drive(BookL2, params, [], [merged[p] for p in inputs], "cpu")
    on_book = drive(BookL2, params, [], [book[p] for p in inputs], "cpu")
    is_book = merged["action"] != ACTION_TRADE
    for port, a, b in zip(BookL2.outputs, on_merged, on_book):
        np.testing.assert_array_equal(a[is_book], b, err_msg=port)
    assert on_merged[-1][-1] == 0  # no row was inconsistent
    # after the snapshot every print is near the book as it stood then (the 100 ms depth stream lags fast
    # trades by a few dollars in a sell-off, not more)
    synced = ~is_book & (np.cumsum(merged["flags"] & F_SNAPSHOT) > 0)
    mid = (on_merged[0][synced] + on_merged[1][synced]) / 2
    assert synced.sum() > 200 and (np.abs(merged["price"][synced] / mid - 1) < 1e-3).all()
