"""Real market data for the tick venue tests: the shipped Binance capture (L2 + trades) and DBN MBO files.

Strategy inputs are derived causally from the data itself (quotes at the touch of the book after each event,
a target from the top-of-book imbalance), so every input at event i depends on events up to i only.
"""

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from nodes.contract import default_registry
from nodes.marketdata.book import BookL2, BookL3
from nodes.marketdata.book.replay import run_op
from nodes.marketdata.schemas import UNDEF_PRICE
from tests.support import REPO, SAMPLES

BINANCE = SAMPLES / "binance" / "spot_btcusdt_20240808.head2000.gz"
DBN_MBO = SAMPLES / "dbn" / "test_data.mbo.dbn"
SHARED_DBN = REPO.parent / "shared" / "data" / "dbn"
ESH4 = SHARED_DBN / "esh4-glbx-mdp3-20231224.mbo.dbn.zst"
ESM4 = SHARED_DBN / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"
L2_MARKET = ("side", "price", "size", "action", "flags")
L3_MARKET = ("order_id", *L2_MARKET)


def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs ../shared/data/dbn/{path.name}: not in a fresh clone")
    return path


@cache
def binance_stream() -> dict[str, np.ndarray]:
    """The shipped capture as one book_and_trades stream (depth rows and trades in receive order)."""
    op = default_registry().get("source.binance_capture")
    params = op.Params.model_validate({"path": str(BINANCE), "schema": "book_and_trades"})
    chunks = list(op.open(params, REPO).chunks(1 << 20))
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    columns["key"] = columns["instrument"].astype(np.int64)
    return columns


@cache
def mbo_stream(path: Path) -> dict[str, np.ndarray]:
    """The orders (MBO) records of a DBN file, as int64 columns."""
    op = default_registry().get("source.dbn")
    params = op.Params.model_validate({"path": str(path), "schema": "orders"})
    chunks = list(op.open(params, REPO).chunks(1 << 20))
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    columns["key"] = columns["instrument"].astype(np.int64)
    return columns


def touch(stream: dict[str, np.ndarray], l3: bool = False) -> tuple[np.ndarray, ...]:
    """Best bid, best ask and their sizes after each event, from the library's own book op (numba)."""
    op = BookL3 if l3 else BookL2
    c = op.constants(op.Params())
    names = L3_MARKET if l3 else L2_MARKET
    outputs, _ = run_op(op, c, [np.ascontiguousarray(stream[n], dtype=np.int64) for n in names], "numba")
    named = dict(zip(op.outputs, outputs))
    return named["best_bid"], named["best_ask"], named["bid_size"], named["ask_size"]


def quote_inputs(stream: dict[str, np.ndarray], qty_units: int, l3: bool = False) -> dict[str, np.ndarray]:
    """Quotes joining the touch on both sides (no quote while a side is empty or the book is crossed)."""
    bid, ask, _, _ = touch(stream, l3)
    live = (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE) & (bid < ask)
    qty = np.where(live, qty_units, 0).astype(np.int64)
    return {"bid_px": np.where(live, bid, UNDEF_PRICE), "bid_qty": qty,
            "ask_px": np.where(live, ask, UNDEF_PRICE), "ask_qty": qty}


def imbalance_target(stream: dict[str, np.ndarray], qty_units: int, l3: bool = False) -> dict[str, np.ndarray]:
    """Long ``qty`` when the top of book leans to the bid, short when it leans to the ask, flat otherwise."""
    _, _, bid_size, ask_size = touch(stream, l3)
    total = (bid_size + ask_size).astype(np.float64)
    lean = np.divide(bid_size - ask_size, total, out=np.zeros(len(total)), where=total > 0)
    return {"target": np.where(lean > 0.5, qty_units, np.where(lean < -0.5, -qty_units, 0)).astype(np.int64)}


def venue_columns(stream: dict[str, np.ndarray], inputs: dict[str, np.ndarray], l3: bool = False) -> dict:
    """The columns ``venue_driver.drive_columns`` takes."""
    columns = {"key": stream["key"], "ts_event": stream["ts_event"], "ts_recv": stream["ts_recv"]}
    for name in L3_MARKET if l3 else L2_MARKET:
        columns[name] = np.ascontiguousarray(stream[name], dtype=np.int64)
    columns.update(inputs)
    return columns


def cut(columns: dict[str, np.ndarray], stop: int) -> dict[str, np.ndarray]:
    return {k: v[:stop] for k, v in columns.items()}
