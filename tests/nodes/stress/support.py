"""Sample streams for the stress transforms: AAPL daily bars and the Binance BTCUSDT capture, cut into chunks."""

from pathlib import Path

import numpy as np

from nodes.contract import default_registry

REPO = Path(__file__).resolve().parents[3]
BINANCE = "data/samples/binance/spot_btcusdt_20240808.head2000.gz"
DAY_NS = 86_400 * 10**9
APR_15_2013 = 1_365_984_000_000_000_000  # midnight UTC
APR_15_ROW = 320  # the AAPL bar of 2013-04-15 (opens 13:30 UTC)


def bars(chunk_rows: int = 65_536):
    """The AAPL sample's bar chunks."""
    op = default_registry().get("source.bars_csv")
    params = op.Params.model_validate({"path": "data/samples/AAPL.csv.gz", "instrument": "AAPL",
                                       "timezone": "America/New_York"})
    return op.open(params, REPO).chunks(chunk_rows)


def ticks(schema: str, chunk_rows: int = 65_536):
    """The Binance sample's chunks of one schema (book_deltas, trades, quotes)."""
    op = default_registry().get("source.binance_capture")
    params = op.Params.model_validate({"path": BINANCE, "schema": schema})
    return op.open(params, REPO).chunks(chunk_rows)


def joined(chunks) -> dict[str, np.ndarray]:
    """Every chunk's rows in one dict of arrays."""
    chunks = list(chunks)
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def run(transform, params: dict, chunks) -> dict[str, np.ndarray]:
    """``transform`` with ``params`` (as written in a scenario file) over ``chunks``, joined."""
    return joined(transform.transform(transform.Params.model_validate(params), chunks))


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for column in a:
        assert a[column].dtype == b[column].dtype, column
        np.testing.assert_array_equal(a[column], b[column], err_msg=column)
