"""``latency_spike``: for a while the feed is late: rows arrive ``extra_latency`` after they used to."""

from collections.abc import Iterator

import numpy as np
from pydantic import Field

from nodes.stress.contract import Chunk, Duration, StreamTransform, WindowParams
from nodes.stress.streams import INT64_MIN, rows_count


class LatencySpikeParams(WindowParams):
    extra_latency: Duration = Field(description="delay added to rows received in [start, end), e.g. 250ms")


class LatencySpike(StreamTransform):
    """Add ``extra_latency`` to the ``ts_recv`` of rows received (originally) in ``[start, end)``.

    A feed delivers in order, so a row received after the window cannot overtake a delayed one: every row's
    new ``ts_recv`` is at least the previous row's (a running maximum, carried across chunks), and the queue
    drains after the window. ``ts_event`` and every value are unchanged; rows are neither dropped nor
    reordered. Works on any stream.

    Example::

        slow_feed:
          - {transform: latency_spike, source: deltas, start: "2024-08-08T23:54:20Z",
             end: "2024-08-08T23:54:25Z", extra_latency: 250ms}
    """

    name = "latency_spike"
    Params = LatencySpikeParams

    @classmethod
    def transform(cls, params: LatencySpikeParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        last = INT64_MIN
        for chunk in chunks:
            if rows_count(chunk) == 0:
                yield chunk
                continue
            ts_recv = chunk["ts_recv"]
            inside = (ts_recv >= params.start) & (ts_recv < params.end)
            delayed = np.where(inside, ts_recv + params.extra_latency, ts_recv)
            delayed = np.maximum(np.maximum.accumulate(delayed), last)
            last = int(delayed[-1])
            yield {**chunk, "ts_recv": delayed.astype(ts_recv.dtype, copy=False)}
