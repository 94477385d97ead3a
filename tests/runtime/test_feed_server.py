"""``tickloom feed-server`` / ``FeedServer``: a real websocket + HTTP server on loopback playing the sample captures.

Checked with an independent client (websockets' own threaded client, urllib): the Binance stream formats and
subscription paths, pacing (never faster than asked), REST snapshots (as recorded before the replay passes
the recorded one, the book as of the replay point after it, consistent with the diffs that follow),
``drop_after`` once / every time / as a TCP reset, ``loop`` keeping ids increasing, the end of the feed (close
1000, then HTTP 410), bad requests, and the command line printing its port.
"""

import gzip
import json
import math
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import orjson
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from nodes.marketdata.binance.source import BinanceCapture
from nodes.marketdata.book.replay import replay_book
from nodes.marketdata.schemas import ACTION_CLEAR
from runtime.feed_server import FeedServer, stream_key

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "data" / "samples" / "binance"
SPOT = SAMPLES / "spot_btcusdt_20240808.head2000.gz"
COINM = SAMPLES / "cm_btcusd_perp_20240808.head2000.gz"


@pytest.fixture(autouse=True)
def no_server_thread_left():
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name == "tickloom-feed-server" for t in threading.enumerate()):
        time.sleep(0.02)
    assert not [t for t in threading.enumerate() if t.name == "tickloom-feed-server"]


def _lines(path: Path) -> list[tuple[int, dict]]:
    with gzip.open(path, "rb") as file:
        return [(int(a), orjson.loads(b)) for a, _, b in (line.partition(b" ") for line in file)]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _receive_all(ws, limit: int = 1_000_000) -> list[dict]:
    out = []
    try:
        while len(out) < limit:
            out.append(orjson.loads(ws.recv(timeout=10)))
    except ConnectionClosed:
        pass
    return out


def test_before_the_replay_reaches_it_the_recorded_snapshot_is_served_as_recorded():
    recorded = next(line for line in _raw_lines(SPOT) if b"lastUpdateId" in line)
    with FeedServer(SPOT) as server:
        status, body = _get(f"{server.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=5000")
        assert status == 200 and body == recorded.partition(b" ")[2].strip()
        status, body = _get(f"{server.rest_url}/api/v3/depth?symbol=btcusdt&limit=3")
        snapshot = json.loads(body)
        assert status == 200 and len(snapshot["bids"]) == 3 and len(snapshot["asks"]) == 3
        assert server.stats.snapshots_recorded == 2 and not server.stats.started


def _raw_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as file:
        return file.read().splitlines()


def test_subscribe_messages_on_ws_get_bare_payloads_in_recorded_order():
    trades = [m["data"] for _, m in _lines(SPOT) if m.get("stream") == "btcusdt@trade"]
    with FeedServer(SPOT, speed=50.0) as server, connect(f"{server.url}/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}))
        assert json.loads(ws.recv(timeout=10)) == {"result": None, "id": 7}
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
        answers = _receive_all(ws)
    assert {"result": ["btcusdt@trade"], "id": 8} in answers
    received = [m for m in answers if "id" not in m or "e" in m]
    assert received == trades and len(trades) == 297


def test_combined_streams_are_the_recorded_envelopes_and_pacing_is_never_faster_than_asked():
    recorded = [(ts, m) for ts, m in _lines(SPOT) if stream_key(m.get("stream", "x@x")) in
                ("btcusdt@depth", "btcusdt@bookTicker")]
    speed = 25.0
    with FeedServer(SPOT, speed=speed) as server:
        with connect(server.stream_url(["btcusdt@depth", "btcusdt@bookTicker"]), open_timeout=10) as ws:
            got = []
            try:
                while True:
                    got.append((time.monotonic(), orjson.loads(ws.recv(timeout=10))))
            except ConnectionClosed:
                pass
    assert [m for _, m in got] == [m for _, m in recorded]
    # the server never sends early; a message can arrive late (a loaded machine), hence the slack. Unpaced, the
    # whole stream takes a few ms; paced, 0.74 s
    span_s = (recorded[-1][0] - recorded[1][0]) / 1e9 / speed
    assert got[-1][0] - got[1][0] >= span_s - 0.1


def test_max_rate_paces_evenly():
    with FeedServer(COINM, max_rate=5_000) as server, connect(server.stream_url(["btcusd_perp@bookTicker"])) as ws:
        began = time.monotonic()
        got = _receive_all(ws)
        elapsed = time.monotonic() - began
    assert len(got) == 848 and server.stats.messages_played == 1999
    assert elapsed >= 1998 / 5_000 - 0.1  # 0.4 s paced (a few ms unpaced); slack for a loaded machine


def _offline_book_rows(path: Path) -> dict[str, np.ndarray]:
    params = BinanceCapture.Params.model_validate(
        {"path": path.name, "schema": "book_deltas", "clock_policy": "report"})
    chunks = list(BinanceCapture.open(params, path.parent).chunks(1 << 20))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _units(levels: list) -> list[tuple[int, int]]:
    from nodes.marketdata.binance import decimal_to_units

    return [(decimal_to_units(p), decimal_to_units(q)) for p, q in levels]


@pytest.mark.parametrize("path,rest,symbol,stream", [
    (SPOT, "/api/v3/depth", "BTCUSDT", "btcusdt@depth@100ms"),
    (COINM, "/dapi/v1/depth", "BTCUSD_PERP", "btcusd_perp@depth@0ms"),
], ids=["spot", "coinm"])
def test_a_snapshot_mid_stream_is_the_book_at_the_replay_point_and_continues_into_the_next_diff(path, rest, symbol,
                                                                                               stream):
    with FeedServer(path, speed=20.0) as server, connect(server.stream_url([stream])) as ws:
        before = [orjson.loads(ws.recv(timeout=10))["data"] for _ in range(60)]
        status, body = _get(f"{server.rest_url}{rest}?symbol={symbol}&limit=5000")
        after = [m["data"] for m in _receive_all(ws)]
    assert status == 200 and server.stats.snapshots_recorded == 0
    snapshot = json.loads(body)
    last_update_id = snapshot["lastUpdateId"]
    diffs = before + after
    following = next(d for d in diffs if d["u"] >= last_update_id + (path == SPOT))
    if path == SPOT:
        assert following["U"] <= last_update_id + 1 <= following["u"]
    else:
        assert following["U"] <= last_update_id <= following["u"] and snapshot["symbol"] == symbol
        assert snapshot["T"] <= following["T"]
    # the levels: the offline book over the capture's rows up to that update id
    rows = _offline_book_rows(path)
    start = int(np.flatnonzero(rows["action"] == ACTION_CLEAR)[0])
    sequence = rows["sequence"]
    past = sequence > last_update_id if path == SPOT else sequence >= last_update_id
    upto = int(np.flatnonzero(past & (np.arange(len(sequence)) > start))[0])
    book = replay_book({k: rows[k][:upto] for k in ("side", "price", "size", "action", "flags")}, kind="l2",
                       depth=100_000, target="cpu")["books"][""]
    assert _units(snapshot["bids"]) == [(b["price"], b["size"]) for b in book["bids"]]
    assert _units(snapshot["asks"]) == [(a["price"], a["size"]) for a in book["asks"]]
    assert len(snapshot["bids"]) > 10


@pytest.mark.parametrize("repeat", [False, True])
def test_drop_after_closes_the_first_connection_or_every_one(repeat):
    with FeedServer(COINM, speed=20.0, drop_after=5, drop_repeat=repeat) as server:
        counts, codes = [], []
        for _ in range(2):
            with connect(server.stream_url(["btcusd_perp@depth@0ms", "btcusd_perp@bookTicker"])) as ws:
                counts.append(len(_receive_all(ws, limit=40)))
                codes.append(ws.close_code)
    assert counts[0] == 5 and codes[0] == 1001
    if repeat:
        assert counts[1] == 5 and server.stats.drops == 2
    else:
        assert counts[1] == 40 and server.stats.drops == 1


def test_drop_mode_abort_resets_without_a_close_frame():
    with FeedServer(COINM, speed=20.0, drop_after=3, drop_mode="abort") as server:
        with connect(server.stream_url(["btcusd_perp@bookTicker"])) as ws:
            got = _receive_all(ws)
            assert len(got) == 3 and ws.protocol.close_rcvd is None


def test_the_end_of_the_replay_closes_for_good():
    with FeedServer(SPOT, speed=math.inf) as server:
        with connect(server.stream_url(["btcusdt@trade"])) as ws:
            assert len(_receive_all(ws)) == 297
            assert (ws.close_code, ws.close_reason) == (1000, "end of replay")
        assert server.wait_finished(5)
        with pytest.raises(InvalidStatus) as refused:
            connect(server.stream_url(["btcusdt@trade"]), open_timeout=5)
        assert refused.value.response.status_code == 410
        status, body = _get(f"{server.rest_url}/status")
        assert status == 200 and json.loads(body)["ended"] is True
        status, body = _get(f"{server.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=10")
        assert status == 200 and json.loads(body)["lastUpdateId"] == 50093247361  # the capture's last diff


def test_loop_shifts_ids_and_times_so_they_keep_increasing():
    depth = [m["data"] for _, m in _lines(SPOT) if m.get("stream") == "btcusdt@depth@100ms"]
    with FeedServer(SPOT, speed=200.0, loop=True) as server, connect(server.stream_url(["btcusdt@depth"])) as ws:
        got = [orjson.loads(ws.recv(timeout=10))["data"] for _ in range(2 * len(depth) + 3)]
    assert got[: len(depth)] == depth
    second = got[len(depth)]
    assert second["U"] > got[len(depth) - 1]["u"] and second["E"] > got[len(depth) - 1]["E"]
    assert second["U"] - depth[0]["U"] == second["u"] - depth[0]["u"]  # one offset per pass
    assert all(b["u"] > a["u"] for a, b in zip(got, got[1:]))


def test_bad_requests_get_binance_like_errors():
    with FeedServer(SPOT) as server:
        status, body = _get(f"{server.rest_url}/api/v3/depth?symbol=ETHUSDT")
        assert status == 400 and json.loads(body)["code"] == -1121
        status, body = _get(f"{server.rest_url}/api/v3/depth?symbol=BTCUSDT&limit=0")
        assert status == 400 and json.loads(body)["code"] == -1100
        status, _ = _get(f"{server.rest_url}/nothing/here")
        assert status == 404
        with connect(f"{server.url}/ws") as ws:
            ws.send("not json")
            assert "error" in json.loads(ws.recv(timeout=10))


def test_bad_parameters_are_refused(tmp_path):
    for bad in ({"speed": 0}, {"speed": -1.0}, {"max_rate": 0}, {"drop_after": 0}, {"drop_mode": "rude"},
                {"snapshot_wait_s": -1}):
        with pytest.raises(ValueError):
            FeedServer(SPOT, **bad)
    with pytest.raises(FileNotFoundError):
        FeedServer(tmp_path / "missing.gz")


def test_the_command_line_prints_its_port_and_exits_at_the_end():
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli_feed", str(SPOT), "--speed", "inf"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first + process.stderr.read()
        port = int(first.rsplit(":", 1)[1])
        with connect(f"ws://127.0.0.1:{port}/stream?streams=btcusdt@trade") as ws:
            assert len(_receive_all(ws)) == 297
        assert process.wait(timeout=30) == 0
        assert "played 1999 messages" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
