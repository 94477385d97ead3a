"""Run a market transform over a stream of bars or ticks: epochs, price and size maps, book re-publishing.

A market transform is a ``Regime``: it puts each row in an **epoch** (an int per row, by the row's market time,
the running maximum of ``ts_event``; epoch 0 is the unchanged market) and maps prices and sizes. For ticks
the map must be constant within an epoch — a transform whose map varies continuously (a decaying shock)
quantizes it into epochs — because when the epoch changes the driver re-publishes the L2 book under the new
map (``nodes/stress/book.py``). For bars there is no book: a map may use each row's exact time.

The driver (``run_regime``) cuts each chunk where the epoch changes, and per piece: tells the regime it
enters a new epoch (with ``References``: what the original market looked like just before), re-publishes
the book (ticks), maps the piece, then lets ``References`` see the piece's original rows. Everything it
carries from chunk to chunk (time, epoch, book, references, the regime's own state) makes the output
independent of the chunk sizes.
"""

from collections.abc import Callable, Iterator

import numpy as np

from nodes.stress.book import LevelBook, republish_rows
from nodes.stress.streams import (
    BAR_PRICES,
    INT64_MIN,
    QUOTE_PRICES,
    QUOTE_SIZES,
    concat_chunks,
    last_per_key,
    price_directions,
    rounded_prices,
    rounded_sizes,
    rows_count,
    slice_chunk,
    stream_kind,
    trade_rows,
    valid_prices,
)


class References:
    """The original market just before now, per instrument: last close (bars), last trade, last quote mid and
    the L2 book (ticks). ``price(i)`` is the one reference price a regime anchors on."""

    def __init__(self):
        self.book = LevelBook()
        self.close: dict[int, float] = {}
        self.trade: dict[int, float] = {}
        self.quote_mid: dict[int, float] = {}

    def observe(self, kind: str, rows: dict[str, np.ndarray]) -> None:
        instrument = rows["instrument"].astype(np.int64)
        if kind == "bars":
            self.close.update(zip(*_lists(last_per_key(instrument, rows["close"]))))
            return
        self.book.apply(rows)
        traded = trade_rows(rows)
        self.trade.update(zip(*_lists(last_per_key(instrument[traded], rows["price"][traded].astype(float)))))
        if {"bid_px", "ask_px"} <= rows.keys():
            quoted = valid_prices(rows["bid_px"]) & valid_prices(rows["ask_px"])
            mids = (rows["bid_px"][quoted].astype(float) + rows["ask_px"][quoted].astype(float)) / 2.0
            self.quote_mid.update(zip(*_lists(last_per_key(instrument[quoted], mids))))

    def price(self, instrument: int) -> float:
        """Last close for bars; for ticks the book's mid, else the last trade, else the last quote mid; NaN when
        nothing has been seen."""
        if instrument in self.close:
            return self.close[instrument]
        mid = self.book.mid(instrument)
        if mid == mid:
            return mid
        return self.trade.get(instrument, self.quote_mid.get(instrument, float("nan")))


class Regime:
    """A market transform's maps over one stream of one ``kind`` (``"bars"`` or ``"ticks"``)."""

    def __init__(self, kind: str):
        self.kind = kind

    def epochs(self, t: np.ndarray) -> np.ndarray:
        """The epoch (int64) of rows at market times ``t``; 0 is the unchanged market."""
        raise NotImplementedError

    def enter(self, epoch: int, references: References) -> None:
        """Fix what the map of ``epoch`` needs from the market just before it (an anchor price)."""

    def begin(self, rows: dict[str, np.ndarray]) -> None:
        """See a piece's original rows before they are mapped (to anchor on instruments first seen now)."""

    def prices(self, epoch: int, t: np.ndarray, instrument: np.ndarray, price: np.ndarray,
               direction: np.ndarray) -> np.ndarray | None:
        """Mapped float prices of rows in ``epoch`` (None: unchanged)."""
        return None

    def sizes(self, epoch: int, t: np.ndarray, instrument: np.ndarray, size: np.ndarray) -> np.ndarray | None:
        """Mapped float sizes of rows in ``epoch`` (None: unchanged)."""
        return None


def run_regime(make_regime: Callable[[str], Regime], chunks: Iterator[dict[str, np.ndarray]],
               name: str) -> Iterator[dict[str, np.ndarray]]:
    """Rewrite ``chunks`` with the regime ``make_regime(kind)`` builds for the stream's kind."""
    regime: Regime | None = None
    references = References()
    epoch = 0
    carry = INT64_MIN
    for chunk in chunks:
        n = rows_count(chunk)
        if n == 0:
            yield chunk
            continue
        if regime is None:
            regime = make_regime(stream_kind(chunk, name))
        t = np.maximum(np.maximum.accumulate(chunk["ts_event"]), carry)
        carry = int(t[-1])
        epochs = regime.epochs(t)
        cuts = np.flatnonzero(np.diff(epochs, prepend=epoch) != 0)
        bounds = sorted({0, *cuts.tolist()}) + [n]
        parts = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            piece = slice_chunk(chunk, start, stop)
            piece_epoch = int(epochs[start])
            if piece_epoch != epoch:
                regime.enter(piece_epoch, references)
                if regime.kind == "ticks" and len(references.book):
                    parts.append(_republished(regime, piece_epoch, t[start], references.book, piece))
                epoch = piece_epoch
            regime.begin(piece)
            parts.append(map_rows(regime, epoch, t[start:stop], piece))
            references.observe(regime.kind, piece)
        yield concat_chunks(parts)


def map_rows(regime: Regime, epoch: int, t: np.ndarray, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``rows`` (all in ``epoch``) with their prices and sizes mapped; columns not changed are not copied."""
    out = dict(rows)
    if epoch == 0:
        return out  # the unchanged market, by the contract of epochs
    instrument = rows["instrument"]
    if regime.kind == "bars":
        for column, direction in BAR_PRICES.items():
            mapped = regime.prices(epoch, t, instrument, rows[column], np.full(len(t), direction, np.int8))
            if mapped is not None:
                out[column] = mapped
        volume = regime.sizes(epoch, t, instrument, rows["volume"])
        if volume is not None:
            out["volume"] = volume
        return out
    if "price" in rows:
        _map_tick_prices(regime, epoch, t, rows, out, "price", price_directions(rows))
    for column, direction in QUOTE_PRICES.items():
        if column in rows:
            _map_tick_prices(regime, epoch, t, rows, out, column, np.full(len(t), direction, np.int8))
    for column in ("size", *QUOTE_SIZES):
        if column in rows:
            there = rows[column] > 0
            mapped = regime.sizes(epoch, t[there], instrument[there], rows[column][there].astype(float))
            if mapped is not None:
                out[column] = rows[column].copy()
                out[column][there] = rounded_sizes(mapped, rows[column][there])
    return out


def _map_tick_prices(regime: Regime, epoch: int, t: np.ndarray, rows: dict, out: dict, column: str,
                     direction: np.ndarray) -> None:
    there = valid_prices(rows[column])
    if not there.any():
        return
    mapped = regime.prices(epoch, t[there], rows["instrument"][there], rows[column][there].astype(float),
                           direction[there])
    if mapped is not None:
        out[column] = rows[column].copy()
        out[column][there] = rounded_prices(mapped)


def _republished(regime: Regime, epoch: int, t: int, book: LevelBook, piece: dict) -> dict[str, np.ndarray]:
    times = np.full(len(book), t, np.int64)
    prices = sizes = None  # epoch 0: the levels as they are
    if epoch != 0:
        prices = regime.prices(epoch, times, book.instrument, book.price.astype(float), (-book.side).astype(np.int8))
        sizes = regime.sizes(epoch, times, book.instrument, book.size.astype(float))
    prices = book.price if prices is None else rounded_prices(prices)
    sizes = book.size if sizes is None else rounded_sizes(sizes, book.size)
    return republish_rows(book, prices, sizes, int(piece["ts_event"][0]), int(piece["ts_recv"][0]), piece)


def _lists(pair: tuple[np.ndarray, np.ndarray]) -> tuple[list, list]:
    return pair[0].tolist(), pair[1].tolist()
