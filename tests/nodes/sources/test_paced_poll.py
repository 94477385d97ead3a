"""``PacedReader.poll``: a paced file as an event loop's feed: rows taken when due, without waiting.

Exact properties: the rows and their order are the source's (as ``chunks`` gives them); nothing is taken
before its due time; rows of one ``ts_recv`` leave together, also across the wrapped reader's chunks;
``next_poll_ns`` is the next row's due time; ``ended`` once every row was taken.
"""

import math
import time
from pathlib import Path

import numpy as np

from nodes.marketdata.binance.source import BinanceCapture
from nodes.sources.paced import PaceClock, PacedReader, paced

REPO = Path(__file__).resolve().parents[3]
SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"


def _reader(schema: str = "book_and_trades"):
    params = BinanceCapture.Params.model_validate({"path": SPOT.name, "schema": schema})
    return BinanceCapture.open(params, SPOT.parent)


def _poll_all(reader: PacedReader) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Poll until the reader ends, sleeping until each next due time; (monotonic time taken, chunk) each."""
    taken = []
    while not reader.ended:
        chunk = reader.poll()
        if chunk is not None:
            taken.append((time.monotonic_ns(), chunk))
            continue
        due = reader.next_poll_ns()
        if due is not None:
            time.sleep(max(due - time.monotonic_ns(), 0) / 1e9)
    return taken


def test_poll_takes_the_sources_rows_in_order_and_never_before_their_time():
    speed = 100.0
    reader = PacedReader(_reader(), PaceClock(speed), read_rows=1000)  # several wrapped chunks
    taken = _poll_all(reader)
    source = [c for c in _reader().chunks(1 << 20)]
    source = {k: np.concatenate([c[k] for c in source]) for k in source[0]}
    polled = {k: np.concatenate([c[k] for _, c in taken]) for k in taken[0][1]}
    for name in source:
        np.testing.assert_array_equal(polled[name], source[name], err_msg=name)
    origin_wall, origin_ts = reader.clock.origin_wall_ns, reader.clock.origin_ts_ns
    for wall_ns, chunk in taken:
        due = origin_wall + ((chunk["ts_recv"] - origin_ts) / speed).astype(np.int64)
        assert np.all(wall_ns >= due), "a row was taken before its time"
    for (_, before), (_, after) in zip(taken, taken[1:]):
        assert before["ts_recv"][-1] < after["ts_recv"][0], "a receive time was split across polls"
    assert reader.poll() is None and reader.next_poll_ns() is None and reader.stats.rows == len(source["ts_recv"])


def test_nothing_is_due_before_the_next_poll_time():
    reader = PacedReader(_reader("trades"), PaceClock(1.0))
    first = reader.poll()  # anchors the clock: the first row is due at once
    assert first is not None
    due = reader.next_poll_ns()
    assert due > time.monotonic_ns() and reader.poll() is None and not reader.ended


def test_poll_restamps_with_the_wall_clock_and_keeps_each_rows_feed_delay():
    source = next(_reader("trades").chunks(1 << 20))
    reader = paced(_reader("trades"), speed=math.inf, restamp=True)
    before = time.time_ns()
    chunk = reader.poll()
    assert reader.ended and len(chunk["ts_recv"]) == len(source["ts_recv"])
    assert (chunk["ts_recv"] >= before).all() and (chunk["ts_recv"] <= time.time_ns()).all()
    np.testing.assert_array_equal(chunk["ts_recv"] - chunk["ts_event"], source["ts_recv"] - source["ts_event"])
