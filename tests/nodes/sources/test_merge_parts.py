"""``merge_parts``: one batch of several streams' rows, in the order ``merge_chunks`` gives them."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.sources.merge import merge_chunks, merge_parts

COLUMNS = {"ts_recv": np.int64, "tag": np.int64}

sorted_times = st.lists(st.integers(0, 20), max_size=30).map(lambda xs: np.array(sorted(xs), dtype=np.int64))


def _events(batch) -> list[tuple[int, int, int]]:
    return [(int(batch.parts[s]["ts_recv"][r]), int(s), int(batch.parts[s]["tag"][r]))
            for s, r in zip(batch.stream, batch.row)]


@settings(max_examples=150, deadline=None)
@given(st.lists(sorted_times, min_size=1, max_size=4))
def test_one_batch_of_parts_is_in_the_merge_order(streams):
    parts = [{"ts_recv": ts, "tag": np.arange(len(ts), dtype=np.int64)} if len(ts) else None for ts in streams]
    batch = merge_parts(parts, [COLUMNS] * len(streams))
    expected = [e for b in merge_chunks([iter([p]) if p is not None else iter([]) for p in parts],
                                        [COLUMNS] * len(streams)) for e in _events(b)]
    assert _events(batch) == expected
    assert [len(p["ts_recv"]) for p in batch.parts] == [len(ts) for ts in streams]
    assert all(p["tag"].dtype == np.int64 for p in batch.parts)
