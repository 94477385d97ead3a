"""``feed_outage``: for a while the feed is down; what happened meanwhile arrives when it comes back."""

from collections.abc import Iterator

import numpy as np

from nodes.stress.contract import Chunk, StreamTransform, WindowParams


class FeedOutage(StreamTransform):
    """Give every row received (originally) in ``[start, end)`` the ``ts_recv`` ``end``: nothing arrives during
    the outage and the backlog arrives at once when it ends, in its original order.

    Nothing is dropped, so a book rebuilt from the stream is whole again after the outage (as after a venue's
    replay of missed messages); ``ts_event`` and values are unchanged. Works on any stream.

    Example::

        outage:
          - {transform: feed_outage, source: bars, start: 2013-04-15, end: 2013-04-18}
    """

    name = "feed_outage"
    Params = WindowParams

    @classmethod
    def transform(cls, params: WindowParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        for chunk in chunks:
            ts_recv = chunk["ts_recv"]
            inside = (ts_recv >= params.start) & (ts_recv < params.end)
            if inside.any():
                chunk = {**chunk, "ts_recv": np.where(inside, params.end, ts_recv).astype(ts_recv.dtype, copy=False)}
            yield chunk
