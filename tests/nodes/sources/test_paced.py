"""``paced(reader, speed)``: a recorded source released at the pace of its receive times.

Exact properties: the rows and their order are the source's; no row is released before its due time; rows
with one ``ts_recv`` leave together; sources sharing a ``PaceClock`` keep their relative timing. Timing
accuracy is measured (``PacingStats``) and checked only loosely: this is a shared 2-core machine.
"""

import math
import time
from pathlib import Path

import numpy as np
import pytest

from nodes.marketdata.binance.source import BinanceCapture
from nodes.sources.paced import PaceClock, paced

REPO = Path(__file__).resolve().parents[3]
SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
ETH = REPO / "data" / "samples" / "binance" / "spot_ethusdt_20240808.head2000.gz"


def _reader(path: Path = SPOT, schema: str = "book_and_trades"):
    params = BinanceCapture.Params.model_validate({"path": path.name, "schema": schema})
    return BinanceCapture.open(params, path.parent)


def _all(chunks) -> dict[str, np.ndarray]:
    parts = list(chunks)
    return {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}


def test_rows_and_order_are_the_sources_and_chunks_are_small():
    source = _all(_reader().chunks(1 << 20))
    reader = paced(_reader(), speed=math.inf)
    chunks = list(reader.chunks(50))
    assert max(len(c["ts_recv"]) for c in chunks) == 50
    released = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert released.keys() == source.keys()
    for name in source:
        np.testing.assert_array_equal(released[name], source[name], err_msg=name)
    assert reader.stats.rows == len(source["ts_recv"]) and reader.report is not None


def test_no_row_is_released_before_its_time_and_lateness_is_small():
    speed = 100.0  # 18.6 s of capture in 0.19 s
    reader = paced(_reader(), speed=speed)
    releases = []
    for chunk in reader.chunks(64):
        releases.append((time.monotonic_ns(), chunk["ts_recv"]))
    origin_wall, origin_ts = reader.clock.origin_wall_ns, reader.clock.origin_ts_ns
    late = []
    for wall_ns, ts in releases:
        due = origin_wall + ((ts - origin_ts) / speed).astype(np.int64)
        assert np.all(wall_ns >= due), "a row was released before its time"
        late.append(wall_ns - int(due[0]))
    span_ns = (releases[-1][1][-1] - releases[0][1][0]) / speed
    assert releases[-1][0] >= origin_wall + span_ns  # the whole replay took at least the recorded span / speed
    # loose: the median release is within 20 ms of its time (typically ~0.1 ms), the stats agree with us
    assert np.median(late) < 20e6
    assert reader.stats.releases == len(releases) and reader.stats.late_ns_max <= max(late)


def test_rows_of_one_receive_time_leave_together():
    reader = paced(_reader(), speed=200.0)
    chunks = list(reader.chunks(1 << 20))
    for before, after in zip(chunks, chunks[1:]):
        assert before["ts_recv"][-1] < after["ts_recv"][0], "a receive time was split across releases"


def test_sources_sharing_a_clock_keep_their_relative_timing():
    clock = PaceClock(100.0)
    btc, eth = paced(_reader(SPOT, "trades"), clock=clock), paced(_reader(ETH, "trades"), clock=clock)
    btc_chunks = list(btc.chunks(1 << 20))  # anchors the clock at BTC's first trade
    eth_chunks = list(eth.chunks(1 << 20))
    assert clock.origin_ts_ns == btc_chunks[0]["ts_recv"][0]
    last_eth = eth_chunks[-1]["ts_recv"][-1]
    # ETH's last trade is due at its offset from BTC's first one, not from ETH's own first one
    assert time.monotonic_ns() >= clock.origin_wall_ns + (last_eth - clock.origin_ts_ns) / 100.0


def test_restamp_gives_wall_receive_times():
    before = time.time_ns()
    chunks = list(paced(_reader(schema="trades"), speed=math.inf, restamp=True).chunks(32))
    stamps = np.concatenate([c["ts_recv"] for c in chunks])
    assert stamps[0] >= before and stamps[-1] <= time.time_ns() and np.all(np.diff(stamps) >= 0)


def test_spin_brings_releases_closer_to_their_time():
    reader = paced(_reader(schema="trades"), speed=200.0, spin_us=300)
    list(reader.chunks(8))
    assert reader.stats.releases > 100 and reader.stats.late_ns_mean < 20e6  # loose: typically a few µs


def test_bad_speed_is_refused():
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            paced(_reader(), speed=bad)
    with pytest.raises(ValueError):
        paced(_reader(), spin_us=-1)
