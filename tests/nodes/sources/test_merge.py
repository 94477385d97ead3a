"""merge_chunks: deterministic ts_recv order across streams, whatever the chunking."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.sources.merge import merge_chunks


def _chunks(ts: np.ndarray, size: int, tag: int):
    for start in range(0, len(ts), size):
        part = ts[start : start + size]
        yield {"ts_recv": part, "tag": np.full(len(part), tag), "row": np.arange(start, start + len(part))}


def _merged_order(streams: list[np.ndarray], sizes: list[int]) -> list[tuple[int, int, int]]:
    batches = merge_chunks([_chunks(ts, size, i) for i, (ts, size) in enumerate(zip(streams, sizes))],
                           [["ts_recv", "tag", "row"]] * len(streams))
    events = []
    for batch in batches:
        for stream, row in zip(batch.stream, batch.row):
            part = batch.parts[stream]
            events.append((int(part["ts_recv"][row]), int(part["tag"][row]), int(part["row"][row])))
    return events


sorted_times = st.lists(st.integers(0, 30), max_size=60).map(lambda xs: np.array(sorted(xs), dtype=np.int64))


@settings(max_examples=150, deadline=None)
@given(st.lists(sorted_times, min_size=1, max_size=4), st.data())
def test_order_is_ts_then_stream_then_row_for_any_chunking(streams, data):
    sizes = [data.draw(st.integers(1, 9)) for _ in streams]
    got = _merged_order(streams, sizes)
    expected = sorted((int(t), i, r) for i, ts in enumerate(streams) for r, t in enumerate(ts))
    assert got == expected


def test_equal_timestamps_longer_than_a_chunk_keep_stream_order():
    a = np.array([5] * 10, dtype=np.int64)
    b = np.array([5] * 3 + [6], dtype=np.int64)
    got = _merged_order([a, b], [3, 2])
    assert [tag for _, tag, _ in got] == [0] * 10 + [1] * 3 + [1]
