"""Real sample series for the FPGA tests: daily closes (data/samples) and Binance books (data/samples/binance).

Everything here is real data; where a test needs an input a feed never sends (a NaN gap, a side of 0.5, a
quantity past 2^32), it is written into a copy of a real column at a few fixed places, and said so.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np

from nodes.marketdata.binance import read_capture
from tests.support import SAMPLE_INSTRUMENTS, _rolling_mean, read_bars

REPO = Path(__file__).resolve().parents[3]
BINANCE = REPO / "data" / "samples" / "binance"
DELTA_FIELDS = ("side", "price", "size", "action", "flags")


@lru_cache(maxsize=None)
def closes(with_gaps: bool = True) -> np.ndarray:
    """The four sample instruments' daily closes back to back (3,016 values); NaN at a few places (a gap)."""
    x = np.concatenate([read_bars(name)["close"] for name in SAMPLE_INSTRUMENTS])
    if with_gaps:
        x = x.copy()
        x[[5, 6, 400, 1999]] = np.nan
    return x


def aapl_closes() -> np.ndarray:
    return read_bars("AAPL")["close"]


def moving_averages(x: np.ndarray, fast: int = 5, slow: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Trailing means of ``x`` (NaN during warm-up): the fast and slow inputs of a crossover."""
    return _rolling_mean(x, fast), _rolling_mean(x, slow)


@lru_cache(maxsize=None)
def book_deltas(name: str = "spot_btcusdt_20240808.head2000.gz") -> tuple[np.ndarray, ...]:
    """The normalized ``book_deltas`` of a vendored Binance capture, as int64 columns (side ... flags)."""
    frames, _ = read_capture(BINANCE / name, clock_policy="shift")
    deltas = frames["book_deltas"]
    return tuple(deltas[field].cast(int).to_numpy().astype(np.int64) for field in DELTA_FIELDS)


def risk_feed(book_outputs: list[np.ndarray], imbalance_side: np.ndarray) -> list[np.ndarray]:
    """Inputs of ``risk.order_limits`` from a real book: the imbalance's side, with a flip every 7th event so the
    position moves often, and a bad side (0.5) every 97th; best bid and ask as the book gave them, but for a
    fat-finger ask (ten times the real one, past the datapath's 2^48 range) every 211th event."""
    side = imbalance_side.copy()
    i = np.arange(len(side))
    side[i % 7 == 3] = np.where((i[i % 7 == 3] // 7) % 2 == 0, 1.0, -1.0)
    side[i % 97 == 50] = 0.5
    ask = book_outputs[1].copy()
    fat = (i % 211 == 100) & (ask < (1 << 50))
    ask[fat] *= 10
    return [side, book_outputs[0], ask]


def encoder_feed(order_qty: np.ndarray, order_price: np.ndarray, book_price: np.ndarray) -> list[np.ndarray]:
    """Inputs of ``order.encode``: a risk check's orders, plus an order at the book's price on every 11th event
    (both sides, and a few quantities past the u32 field) so many events carry a message."""
    qty = order_qty.copy()
    i = np.arange(len(qty))
    extra = i % 11 == 4
    qty[extra] = np.where(i[extra] % 2 == 0, 1, -1) * (1 + i[extra] * 37)
    qty[i % 331 == 7] = 1 << 33
    price = np.where(order_price != 0, order_price, book_price)
    return [qty, price]
