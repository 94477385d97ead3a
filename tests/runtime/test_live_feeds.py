"""runtime/feeds.py: a live session's sources polled without waiting, merged in receive order, and its input log.

What must hold: a batch is whatever every feed has ready, in ``ts_recv`` / source / row order; batches never go
back in time (a late stamp is moved past the previous batch), so merging the recorded inputs by ``ts_recv`` as a
replay does gives exactly the live order; a silent feed holds nothing back; the loop sleeps until a feed's
thread, a socket or a due time wakes it; the input log writes Arrow streams that read back as written (the
session recorder's files).
"""

import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from nodes.marketdata.binance.source import BinanceCapture
from nodes.sources.merge import MergedBatch, merge_chunks
from nodes.sources.paced import PaceClock, PacedReader
from runtime.feeds import LiveBatches, ThreadedFeed, Wakeup, live_feed
from runtime.session import InputLog, recorded_inputs
from tests.support import SAMPLES

SPOT = SAMPLES / "binance" / "spot_btcusdt_20240808.head2000.gz"
COLUMNS = {"ts_event": np.int64, "ts_recv": np.int64, "instrument": np.int32, "value": np.int64}


class ScriptedFeed:
    """A feed that returns the chunks it is given, one per poll (None when there is none), and ends when told."""

    def __init__(self, chunks=(), endless: bool = False):
        self.chunks = list(chunks)
        self.endless = endless
        self.finished = False

    def poll(self):
        return self.chunks.pop(0) if self.chunks else None

    @property
    def ended(self) -> bool:
        return self.finished and not self.chunks


def _chunk(ts: list[int], first_value: int = 0) -> dict[str, np.ndarray]:
    n = len(ts)
    return {"ts_event": np.array(ts, np.int64), "ts_recv": np.array(ts, np.int64),
            "instrument": np.zeros(n, np.int32), "value": np.arange(first_value, first_value + n, dtype=np.int64)}


def _events(batch: MergedBatch) -> list[tuple[int, int, int]]:
    return [(int(batch.parts[s]["ts_recv"][r]), int(s), int(batch.parts[s]["value"][r]))
            for s, r in zip(batch.stream, batch.row)]


def test_a_batch_is_what_every_feed_has_ready_in_receive_then_source_then_row_order():
    feeds = [ScriptedFeed([_chunk([5, 7, 7], 0)]), ScriptedFeed([_chunk([7, 9], 100)])]
    live = LiveBatches(feeds, [COLUMNS, COLUMNS])
    batch = live.take()
    assert _events(batch) == [(5, 0, 0), (7, 0, 1), (7, 0, 2), (7, 1, 100), (9, 1, 101)]
    assert live.take() is None
    live.close()


def test_a_late_stamp_moves_past_the_previous_batch_so_a_replay_merge_gives_the_live_order():
    # feed 1's row stamped 9 arrives after a batch that ended at 10 (a read stamped while that batch was taken)
    feeds = [ScriptedFeed([_chunk([10], 0), None, _chunk([12], 1)]), ScriptedFeed([None, _chunk([9, 11], 100)])]
    live = LiveBatches(feeds, [COLUMNS, COLUMNS])
    batches = [live.take() for _ in range(3)]
    live_order = [event[1:] for b in batches for event in _events(b)]
    assert live_order == [(0, 0), (1, 100), (1, 101), (0, 1)]
    assert [int(t) for b in batches for t in b.ts_recv] == [10, 11, 11, 12] and live.clamped_rows == 1
    # the recorded parts, merged as shadow_check's replay merges them, run in the same order
    recorded = [[b.parts[s] for b in batches if len(b.parts[s]["ts_recv"])] for s in (0, 1)]
    merged = merge_chunks([iter(r) for r in recorded], [COLUMNS, COLUMNS])
    replayed = [event[1:] for b in merged for event in _events(b)]
    assert replayed == live_order
    live.close()


def test_a_silent_feed_holds_nothing_back_and_an_endless_one_does_not_keep_the_session_alive():
    market = ScriptedFeed([_chunk([1]), _chunk([2]), _chunk([3])])
    market.finished = True
    silent = ScriptedFeed(endless=True)
    live = LiveBatches([market, silent], [COLUMNS, COLUMNS], idle_s=0.01)
    started = time.monotonic()
    batches = list(live.batches())
    assert [int(b.ts_recv[0]) for b in batches] == [1, 2, 3]
    assert time.monotonic() - started < 1.0
    live.close()


def test_stop_ends_a_session_whose_feeds_never_end():
    stop = threading.Event()
    live = LiveBatches([ScriptedFeed(endless=True)], [COLUMNS], idle_s=0.01)
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    assert list(live.batches(stop)) == []
    assert time.monotonic() - started < 2.0
    live.close()


def test_a_feed_thread_wakes_the_sleeping_loop():
    class Reader:
        instruments = ["X"]

        def chunks(self, max_rows):
            time.sleep(0.3)
            yield _chunk([time.time_ns()])

    feed = live_feed(Reader())
    assert isinstance(feed, ThreadedFeed)
    live = LiveBatches([feed], [COLUMNS], idle_s=30.0)  # only the wake-up can end the wait in time
    started = time.monotonic()
    batches = list(live.batches())
    assert len(batches) == 1 and time.monotonic() - started < 5.0
    live.close()


def test_a_wakeup_set_before_the_wait_is_not_lost():
    wakeup = Wakeup()
    wakeup.set()
    started = time.monotonic()
    wakeup.wait(10.0)
    assert time.monotonic() - started < 1.0
    wakeup.close()


def test_a_paced_file_feed_releases_rows_when_due_and_says_when_the_next_one_is():
    params = BinanceCapture.Params.model_validate({"path": SPOT.name, "schema": "trades"})
    reader = PacedReader(BinanceCapture.open(params, SPOT.parent), PaceClock(50.0), restamp=True)
    live = LiveBatches([reader], [dict(COLUMNS)], idle_s=1.0)
    rows, releases = 0, 0
    for batch in live.batches():
        rows += len(batch)
        releases += 1
        assert np.all(np.diff(batch.ts_recv) >= 0)
    source = sum(len(c["ts_recv"]) for c in BinanceCapture.open(params, SPOT.parent).chunks(1 << 20))
    assert rows == source and releases > 10 and reader.ended
    assert reader.stats.late_ns_max < 1e9  # loose: the loop slept until each due time, not idle_s
    live.close()


class _PyarrowStream:
    """The reference: pyarrow's own IPC stream writer, a record batch per batch with rows (as the log writes)."""

    def __init__(self, folder: Path, sources: list[str]):
        folder.mkdir(parents=True)
        self.folder, self.sources, self.writer = folder, sources, None

    def write(self, merged: MergedBatch) -> None:
        part = merged.parts[0]
        batch = pa.record_batch({k: pa.array(v) for k, v in part.items()})
        if self.writer is None:
            self.sink = pa.OSFile(str(self.folder / f"{self.sources[0]}.0.arrows"), "wb")
            self.writer = ipc.new_stream(self.sink, batch.schema)
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def test_the_input_log_writes_what_pyarrows_stream_writer_writes_and_recorded_inputs_reads_it(tmp_path):
    parts = [_chunk([1, 2, 3]), _chunk([4]), _chunk([5, 6, 7, 8, 9], 10)]
    read = {}
    for name, recorder in (("log", InputLog), ("recorder", _PyarrowStream)):
        writer = recorder(tmp_path / name / "inputs", ["md", "quiet"])
        for part in parts:
            n = len(part["ts_recv"])
            empty = {c: np.empty(0, d) for c, d in COLUMNS.items()}
            writer.write(MergedBatch(np.zeros(n, np.int32), np.arange(n), part["ts_recv"], [part, empty]))
        writer.close()
        assert sorted(p.name for p in (tmp_path / name / "inputs").iterdir()) == ["md.0.arrows"]
        read[name] = recorded_inputs(tmp_path / name)["md"]
    for logged, recorded, part in zip(read["log"], read["recorder"], parts, strict=True):
        assert list(logged) == list(recorded) == list(part)
        for name, values in part.items():
            np.testing.assert_array_equal(logged[name], values)
            assert logged[name].dtype == recorded[name].dtype == values.dtype


def test_a_log_cut_by_a_kill_keeps_its_whole_batches(tmp_path):
    (tmp_path / "inputs").mkdir()
    log = InputLog(tmp_path / "inputs", ["md"])
    for ts in ([1, 2], [3], [4, 5, 6]):
        log.write(MergedBatch(np.zeros(len(ts), np.int32), np.arange(len(ts)), np.array(ts), [_chunk(ts)]))
    path = tmp_path / "inputs" / "md.0.arrows"
    data = path.read_bytes()  # no end-of-stream marker: the process was killed here, and mid-way through a write
    path.write_bytes(data[:-20])
    read = recorded_inputs(tmp_path)["md"]
    assert [list(p["ts_recv"]) for p in read] == [[1, 2], [3]]


def test_column_order_and_dtypes_come_from_the_first_part_and_later_parts_are_cast(tmp_path):
    (tmp_path / "inputs").mkdir()
    log = InputLog(tmp_path / "inputs", ["md"])
    first = _chunk([1])
    later = {k: v.astype(np.int64) for k, v in reversed(list(_chunk([2, 3]).items()))}  # other order, int64
    for part in (first, later):
        n = len(part["ts_recv"])
        log.write(MergedBatch(np.zeros(n, np.int32), np.arange(n), part["ts_recv"], [part]))
    log.close()
    with pa.OSFile(str(tmp_path / "inputs" / "md.0.arrows"), "rb") as source:
        batches = list(ipc.open_stream(source))
    assert batches[1].schema.names == list(COLUMNS) and batches[1].column("instrument").type == pa.int32()
    assert batches[1].column("value").to_pylist() == [0, 1]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 3000])
def test_every_batch_size_reads_back_as_written(tmp_path, n):
    log = InputLog(tmp_path / "inputs", ["md"])
    parts = [_chunk(list(range(n)), 7), _chunk(list(range(n, n + 3))), _chunk(list(range(n + 3, 2 * n + 3)), 1)]
    for part in parts:
        rows = len(part["ts_recv"])
        log.write(MergedBatch(np.zeros(rows, np.int32), np.arange(rows), part["ts_recv"], [part]))
    log.close()
    with pa.OSFile(str(tmp_path / "inputs" / "md.0.arrows"), "rb") as source:
        reader = ipc.open_stream(source)
        batches = list(reader)
    assert [b.num_rows for b in batches] == [n, 3, n]
    for batch, part in zip(batches, parts):
        for name, values in part.items():
            np.testing.assert_array_equal(batch.column(name).to_numpy(), values)


def test_a_second_log_in_a_folder_starts_the_next_segment(tmp_path):
    for ts in ([1, 2], [3]):  # a session, then its resumption
        log = InputLog(tmp_path / "inputs", ["md"])
        log.write(MergedBatch(np.zeros(len(ts), np.int32), np.arange(len(ts)), np.array(ts), [_chunk(ts)]))
        log.close()
    assert sorted(p.name for p in (tmp_path / "inputs").iterdir()) == ["md.0.arrows", "md.1.arrows"]
    assert [list(p["ts_recv"]) for p in recorded_inputs(tmp_path)["md"]] == [[1, 2], [3]]
