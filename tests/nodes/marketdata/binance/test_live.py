"""``source.binance_ws`` against a real websocket server on loopback (``runtime.feed_server``) playing the captures.

What must hold: the live stream of a capture played at speed equals ``source.binance_capture``'s on the same
file (same rows, receive times aside); after a disconnect mid-stream the reader reconnects, finds the gap by
update ids, resyncs from a fresh snapshot, and its book then equals the offline replay's at the same update
id, and at the end; ``stop()`` and the end of the feed leave no thread behind. No external network.
"""

import gzip
import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.marketdata.binance.live import BinanceWs
from nodes.marketdata.binance.source import BinanceCapture
from nodes.marketdata.book.replay import replay_book
from nodes.marketdata.schemas import ACTION_CLEAR, ACTION_TRADE, F_MAYBE_BAD_BOOK, F_SNAPSHOT
from nodes.marketdata.stream_ports import PORTS
from runtime.feed_server import FeedServer

REPO = Path(__file__).resolve().parents[4]
SAMPLES = REPO / "data" / "samples" / "binance"
SPOT = SAMPLES / "spot_btcusdt_20240808.head2000.gz"
COINM = SAMPLES / "cm_btcusd_perp_20240808.head2000.gz"
SPEED = 40.0  # the 13-19 s captures in well under a second


@pytest.fixture(autouse=True)
def no_threads_left_behind():
    yield
    deadline = time.monotonic() + 5
    names = ("tickloom-binance-ws", "tickloom-feed-server")
    while time.monotonic() < deadline and any(t.name in names for t in threading.enumerate()):
        time.sleep(0.02)
    assert not [t.name for t in threading.enumerate() if t.name in names]


def _market(path: Path) -> tuple[str, str]:
    """The market and symbol of a capture named like ``cm_btcusd_perp_20240808.gz``."""
    return ("coinm", "BTCUSD_PERP") if path.name.startswith("cm_") else ("spot", "BTCUSDT")


def _params(server: FeedServer, path: Path, **extra) -> BinanceWs.Params:
    market, symbol = _market(path)
    return BinanceWs.Params.model_validate({
        "url": server.url, "rest_url": server.rest_url, "market": market, "symbols": [symbol],
        "schema": "book_and_trades", "depth_update_ms": 0 if market == "coinm" else 100, "snapshot_limit": 5000,
        "reconnect_backoff_ms": 50, "max_reconnects": 3, **extra,
    })


def _collect(chunks, max_rows: int) -> dict[str, np.ndarray]:
    parts = []
    for chunk in chunks:
        assert 0 < len(chunk["ts_recv"]) <= max_rows
        assert np.all(np.diff(chunk["ts_recv"]) >= 0)
        parts.append(chunk)
    stream = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
    assert np.all(np.diff(stream["ts_recv"]) >= 0), "the live stream is sorted by ts_recv"
    return stream


def _offline(path: Path, schema: str) -> dict[str, np.ndarray]:
    params = BinanceCapture.Params.model_validate({"path": path.name, "schema": schema, "clock_policy": "report"})
    return _collect(BinanceCapture.open(params, path.parent).chunks(65_536), 65_536)


def _live(path: Path, max_rows: int = 512, speed: float = SPEED,
          **server_options) -> tuple[dict[str, np.ndarray], object, FeedServer]:
    with FeedServer(path, speed=speed, snapshot_wait_s=10.0, **server_options) as server:
        reader = BinanceWs.open(_params(server, path))
        stream = _collect(reader.chunks(max_rows), max_rows)
    return stream, reader.report, server


def _rows(stream: dict[str, np.ndarray], trades: bool) -> dict[str, np.ndarray]:
    """Book rows or trade rows, with ts_event zeroed where the message had no venue time (it is then ts_recv)."""
    mask = (stream["action"] == ACTION_TRADE) == trades
    rows = {k: stream[k][mask] for k in ("instrument", *PORTS)}
    ts_event, ts_recv = stream["ts_event"][mask], stream["ts_recv"][mask]
    rows["ts_event"] = np.where(ts_event == ts_recv, 0, ts_event)
    return rows


def _assert_same_rows(live: dict, offline: dict, what: str) -> None:
    n_live, n_offline = len(live["price"]), len(offline["price"])
    assert n_live == n_offline, f"{what}: {n_live} rows live, {n_offline} offline"
    for name in offline:
        np.testing.assert_array_equal(live[name], offline[name], err_msg=f"{what}: column {name}")


@pytest.mark.parametrize("path", [SPOT, COINM], ids=["spot", "coinm"])
def test_the_live_stream_equals_the_capture_source_on_the_same_file(path):
    live, report, server = _live(path)
    offline = _offline(path, "book_and_trades")
    _assert_same_rows(_rows(live, trades=False), _rows(offline, trades=False), "book rows")
    _assert_same_rows(_rows(live, trades=True), _rows(offline, trades=True), "trades")
    assert report.ended == "server_gone" and report.last_close == "1000 end of replay"
    assert (report.connects, report.reconnects, report.gaps, report.snapshots) == (1, 0, 0, 1)
    assert report.rows == len(live["ts_recv"])
    assert report.quality.lines_bad == 0 and report.quality.sequence[_market(path)[1]]["state_at_end"] == "live"
    # live times: stamped on receipt, within the run, not the recorded ones
    assert live["ts_recv"][0] > offline["ts_recv"][-1] and live["ts_recv"][-1] <= time.time_ns()


def test_quotes_stream_equals_the_capture_source():
    with FeedServer(COINM, speed=math.inf) as server:
        reader = BinanceWs.open(_params(server, COINM, schema="quotes"))
        live = _collect(reader.chunks(100), 100)
    offline = _offline(COINM, "quotes")
    for name in ("instrument", "ts_event", *PORTS):
        np.testing.assert_array_equal(live[name], offline[name], err_msg=name)
    assert reader.report.snapshots == 0, "no book asked, no snapshot fetched"


def _book(rows: dict[str, np.ndarray], upto: int) -> dict:
    book = replay_book({k: rows[k][:upto] for k in ("side", "price", "size", "action", "flags")},
                       kind="l2", depth=100_000, target="cpu")
    return book["books"][""]


@pytest.mark.parametrize("path,drop_mode", [(SPOT, "close"), (COINM, "abort")], ids=["spot-close", "coinm-reset"])
def test_a_drop_mid_stream_reconnects_finds_the_gap_and_resyncs_to_the_offline_book(path, drop_mode):
    live, report, server = _live(path, speed=SPEED / 2, drop_after=150, drop_mode=drop_mode)  # time to come back
    assert server.stats.drops == 1
    assert report.reconnects == 1 and report.disconnects >= 1
    assert report.gaps == 1 and report.resyncs == 1 and report.snapshots == 2, report
    book = _rows(live, trades=False)
    clears = np.flatnonzero(book["action"] == ACTION_CLEAR)
    flags = book["flags"][clears]
    # the first snapshot, the gap's clear (drop the book), the fresh snapshot
    assert [bool(f & F_SNAPSHOT) for f in flags] == [True, False, True]
    assert flags[1] & F_MAYBE_BAD_BOOK
    resync = clears[2]
    snapshot_rows = np.flatnonzero((book["flags"] & F_SNAPSHOT) != 0)
    after = int(snapshot_rows[snapshot_rows >= resync][-1]) + 1  # the end of the fresh snapshot's levels
    last_update_id = int(book["sequence"][resync])
    # offline: the capture's book up to the same update id (spot: the diff with u = lastUpdateId included;
    # futures: every diff before the one with U <= lastUpdateId <= u)
    offline = _rows(_offline(path, "book_and_trades"), trades=False)
    start = int(np.flatnonzero(offline["action"] == ACTION_CLEAR)[0])
    sequence = offline["sequence"]
    past = sequence > last_update_id if _market(path)[0] == "spot" else sequence >= last_update_id
    upto = int(np.flatnonzero(past & (np.arange(len(sequence)) > start))[0])
    resynced, reference = _book(book, after), _book(offline, upto)
    assert resynced["levels_bid"] > 10 and resynced["levels_ask"] > 10
    assert (resynced["bids"], resynced["asks"]) == (reference["bids"], reference["asks"])
    # and the book it then keeps up equals the offline one to the end
    final, reference = _book(book, len(book["side"])), _book(offline, len(offline["side"]))
    assert (final["bids"], final["asks"]) == (reference["bids"], reference["asks"])


def test_stop_ends_the_stream_and_its_thread():
    with FeedServer(SPOT, speed=1.0, loop=True) as server:
        reader = BinanceWs.open(_params(server, SPOT))
        got = []
        timer = threading.Timer(1.0, reader.stop)
        timer.start()
        began = time.monotonic()
        for chunk in reader.chunks(64):
            got.append(len(chunk["ts_recv"]))
        timer.join()
    assert sum(got) > 0 and time.monotonic() - began < 5
    assert reader.report.ended == "stopped"


def test_the_source_ends_after_max_reconnects_when_nobody_listens():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: connections are refused
    params = BinanceWs.Params.model_validate({
        "url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}", "symbols": ["BTCUSDT"],
        "reconnect_backoff_ms": 10, "reconnect_backoff_max_ms": 20, "max_reconnects": 2,
    })
    reader = BinanceWs.open(params)
    assert list(reader.chunks(10)) == []
    assert reader.report.ended == "max_reconnects" and reader.report.failed_attempts == 3
    assert "connect" in reader.report.last_error


def test_params_name_streams_like_binance_and_refuse_bad_values():
    params = BinanceWs.Params.model_validate({"symbols": ["BTCUSDT", "ETHUSDT"], "schema": "book_and_trades"})
    assert params.stream_names() == ["btcusdt@depth@100ms", "btcusdt@trade", "ethusdt@depth@100ms", "ethusdt@trade"]
    assert params.stream_url().startswith("wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/")
    assert BinanceWs.instruments(params) == ["BTCUSDT", "ETHUSDT"]
    for bad in ({"symbols": []}, {"symbols": ["A", "A"]}, {"symbols": ["A"], "url": "http://x"},
                {"symbols": ["A"], "rest_url": "ws://x"}, {"symbols": ["A"], "depth_update_ms": 7},
                {"symbols": ["A"], "surprise": 1}):
        with pytest.raises(ValidationError):
            BinanceWs.Params.model_validate(bad)


def test_ports_are_those_of_the_capture_source():
    assert BinanceWs.outputs == BinanceCapture.outputs
    assert all(field.description for field in BinanceWs.Params.model_fields.values())


def _two_symbol_capture(folder: Path) -> Path:
    """BTCUSDT and ETHUSDT spot captures merged by receive time (snapshots given their symbol, as the futures' have)."""
    lines = []
    for path, symbol in ((SPOT, b"BTCUSDT"), (SAMPLES / "spot_ethusdt_20240808.head2000.gz", b"ETHUSDT")):
        with gzip.open(path, "rb") as file:
            for line in file.read().splitlines():
                stamp, _, payload = line.partition(b" ")
                if payload.startswith(b'{"lastUpdateId"'):
                    payload = b'{"symbol":"%s",%s' % (symbol, payload[1:])
                lines.append((int(stamp), stamp + b" " + payload))
    lines.sort(key=lambda item: item[0])
    merged = folder / "spot_two_symbols.txt"
    merged.write_bytes(b"\n".join(line for _, line in lines) + b"\n")
    return merged


@pytest.mark.parametrize("drop_after", [None, 300], ids=["whole", "drop"])
def test_two_symbols_keep_their_own_books_snapshots_and_resyncs(tmp_path, drop_after):
    path = _two_symbol_capture(tmp_path)
    symbols = ["BTCUSDT", "ETHUSDT"]
    with FeedServer(path, speed=SPEED, snapshot_wait_s=10.0, drop_after=drop_after) as server:
        params = BinanceWs.Params.model_validate({
            "url": server.url, "rest_url": server.rest_url, "symbols": symbols, "schema": "book_and_trades",
            "snapshot_limit": 5000, "reconnect_backoff_ms": 50,
        })
        reader = BinanceWs.open(params)
        live = _collect(reader.chunks(256), 256)
    report = reader.report
    offline_params = BinanceCapture.Params.model_validate(
        {"path": path.name, "schema": "book_and_trades", "clock_policy": "report", "symbols": symbols})
    offline = _collect(BinanceCapture.open(offline_params, path.parent).chunks(65_536), 65_536)
    for instrument in (0, 1):
        mine = {k: v[live["instrument"] == instrument] for k, v in live.items()}
        theirs = {k: v[offline["instrument"] == instrument] for k, v in offline.items()}
        if drop_after is None:
            _assert_same_rows(_rows(mine, False), _rows(theirs, False), f"{symbols[instrument]} book rows")
            _assert_same_rows(_rows(mine, True), _rows(theirs, True), f"{symbols[instrument]} trades")
        book, reference = _rows(mine, False), _rows(theirs, False)
        final, expected = _book(book, len(book["side"])), _book(reference, len(reference["side"]))
        assert (final["bids"], final["asks"]) == (expected["bids"], expected["asks"]), symbols[instrument]
        assert final["levels_bid"] > 10
    if drop_after is None:
        assert (report.snapshots, report.gaps, report.reconnects) == (2, 0, 0)
    else:
        assert report.reconnects == 1 and report.gaps == 2 and report.resyncs == 2 and report.snapshots == 4, report


def test_a_spec_swaps_the_capture_source_for_the_live_one(tmp_path):
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec
    from tests.support import write_spec

    book_inputs = {port: f"md.{port}" for port in ("side", "price", "size", "action", "flags")}
    outputs = {}
    with FeedServer(COINM, speed=math.inf, snapshot_wait_s=10.0) as server:
        sources = {
            "capture": {"op": "source.binance_capture", "with": {"path": str(COINM), "schema": "book_and_trades",
                                                                  "clock_policy": "report"}},
            "live": {"op": "source.binance_ws", "with": {"url": server.url, "rest_url": server.rest_url,
                                                          "market": "coinm", "symbols": ["BTCUSD_PERP"],
                                                          "schema": "book_and_trades", "depth_update_ms": 0}},
        }
        for name, source in sources.items():
            nodes = {"md": source, "book": {"op": "book.l2", "in": book_inputs, "place": "numba"}}
            plan = compile_plan(load_spec(write_spec(tmp_path, name, nodes)), record=["book", "md"])
            recorded = replay(plan).recorded
            # the book after each book row: trades may interleave differently with the first snapshot, which
            # the live reader fetches when it is ready, not at the line the capture recorded it
            outputs[name] = recorded["book"].filter(recorded["md"]["action"] != ACTION_TRADE)
    live, capture = outputs["live"], outputs["capture"]
    assert live.height == capture.height > 10_000
    columns = ["best_bid", "best_ask", "bid_size", "ask_size", "levels_bid", "levels_ask", "crossed"]
    assert live.select(columns).equals(capture.select(columns))


def test_a_whole_day_capture_unpaced_equals_the_capture_source():
    path = REPO.parent / "shared" / "data" / "binance" / "cm_btcusd_perp_20240808.gz"
    if not path.exists():
        pytest.skip("needs ../shared/data/binance/cm_btcusd_perp_20240808.gz: not in a fresh clone")
    with FeedServer(path, speed=math.inf, snapshot_wait_s=10.0) as server:
        reader = BinanceWs.open(_params(server, path))
        live = _collect(reader.chunks(4096), 4096)
    offline = _offline(path, "book_and_trades")
    assert len(live["ts_recv"]) > 250_000
    _assert_same_rows(_rows(live, trades=False), _rows(offline, trades=False), "book rows")
    _assert_same_rows(_rows(live, trades=True), _rows(offline, trades=True), "trades")
    assert reader.report.gaps == 0 and reader.report.snapshots == 1


@pytest.mark.parametrize("path", [SPOT, COINM], ids=["spot", "coinm"])
def test_lines_fed_in_any_batches_normalize_as_the_file_does(path):
    from nodes.marketdata.binance.normalize import normalize_lines, read_capture

    venue_kind = "spot" if _market(path)[0] == "spot" else "futures"
    frames, _ = read_capture(path, clock_policy="report", venue_kind=venue_kind)
    with gzip.open(path, "rb") as file:
        lines = file.read().splitlines(keepends=True)
    run = normalize_lines("fed", clock_policy="report", venue_kind=venue_kind)
    parts: dict[str, list[dict]] = {"book_deltas": [], "trades": [], "quotes": []}
    sizes = np.random.default_rng(7).integers(1, 40, len(lines))
    start = 0
    for size in sizes:
        if start >= len(lines):
            break
        for schema, cols in run.feed(b"".join(lines[start : start + size])).items():
            if cols is not None:
                parts[schema].append(cols)
        start += size
    for schema, cols in run.close().items():
        if cols is not None:
            parts[schema].append(cols)
    assert run.report.lines_total == len(lines) and run.gaps == 0
    for schema, frame in frames.items():
        assert frame.height > 0
        for column in frame.columns:
            if column in ("symbol", "venue") or (schema, column) == ("trades", "sequence"):  # names; trades: null
                continue
            fed = np.concatenate([p[column] for p in parts[schema]])
            np.testing.assert_array_equal(fed, frame[column].to_numpy(), err_msg=f"{schema}.{column}")
