"""Replay feed files through an order book and report its final state: how a data engineer checks a feed.

    book_state(["glbx.mbo.dbn.zst"], format="dbn", depth=5)

Files are decoded by the catalog's ingest formats (``nodes/catalog/formats``), so every format the catalog
ingests can be checked by eye the same way. Order-by-order data (``orders``) builds an L3 book; price-level
data (``book_deltas``) an L2 book. Rows of several files are merged in ``ts_recv`` order.
"""

from pathlib import Path

import polars as pl

from nodes.catalog.formats import get_decoder, prepare_options
from nodes.errors import DataQualityError
from nodes.marketdata.book.replay import replay_book


def guess_format(path: Path) -> str | None:
    """The ingest format a file name implies (DBN by extension), or None when it must be given."""
    name = path.name.lower()
    return "dbn" if name.endswith((".dbn", ".dbn.zst")) else None


def book_state(files: list[Path], format: str | None = None, depth: int = 10, options: dict | None = None) -> dict:
    """Decode ``files``, replay them through a book and return the final state (see ``replay_book``).

    Raises:
        DataQualityError: a file holds no book data, or no format was given and none can be guessed.
    """
    frames: dict[str, list[pl.DataFrame]] = {"orders": [], "book_deltas": []}
    reports = []
    for path in map(Path, files):
        name = format or guess_format(path)
        if name is None:
            raise DataQualityError(f"{path}: cannot tell its format; give --format (e.g. binance, dbn)")
        decoder = get_decoder(name)
        rows, report = decoder(path, prepare_options(name, None, None, options or {}))
        for schema, frame in rows:
            if schema in frames:
                frames[schema].append(frame)
        reports.append(report.to_dict() if hasattr(report, "to_dict") else report)
    schema = "orders" if frames["orders"] else "book_deltas"
    if not frames[schema]:
        raise DataQualityError(f"{', '.join(map(str, files))}: no order-book records (orders or book_deltas) found")
    merged = pl.concat(frames[schema]).sort("ts_recv", maintain_order=True)
    state = replay_book(merged, kind="l3" if schema == "orders" else "l2", depth=depth)
    state["files"] = [str(f) for f in files]
    state["bad_records"] = sum(int(r.get("bad_records", 0) or 0) for r in reports)
    return state
