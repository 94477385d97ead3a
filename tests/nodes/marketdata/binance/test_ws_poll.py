"""``source.binance_ws`` driven by ``poll`` (the live runtime's event loop), against a loopback feed server.

The socket is read in the polling thread: ``fileno`` is what the loop sleeps on, ``poll`` never blocks, and
the rows are those ``chunks`` (and ``source.binance_capture``) give.
"""

import select
import time

import numpy as np

from nodes.marketdata.binance.live import BinanceWs
from runtime.feed_server import FeedServer
from tests.nodes.marketdata.binance.test_live import SPOT, _assert_same_rows, _offline, _params, _rows


def test_polling_gives_the_capture_rows_and_never_blocks():
    with FeedServer(SPOT, speed=40.0, snapshot_wait_s=10.0) as server:
        reader = BinanceWs.open(_params(server, SPOT))
        parts, slowest_poll_s, sockets = [], 0.0, set()
        deadline = time.monotonic() + 60
        while not reader.ended and time.monotonic() < deadline:
            began = time.monotonic()
            chunk = reader.poll()
            slowest_poll_s = max(slowest_poll_s, time.monotonic() - began)
            if chunk is not None:
                parts.append(chunk)
                continue
            fd = reader.fileno()
            if fd is not None:
                sockets.add(fd)
                select.select([fd], [], [], 0.01)
            else:
                time.sleep(0.001)
    live = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
    assert np.all(np.diff(live["ts_recv"]) >= 0)
    offline = _offline(SPOT, "book_and_trades")
    _assert_same_rows(_rows(live, trades=False), _rows(offline, trades=False), "book rows")
    _assert_same_rows(_rows(live, trades=True), _rows(offline, trades=True), "trades")
    assert reader.report.ended == "server_gone" and reader.fileno() is None and sockets
    assert slowest_poll_s < 1.0  # loose: a poll decodes what arrived (the snapshot: thousands of rows), no waiting
