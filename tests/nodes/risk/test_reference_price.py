"""risk.reference_price: last trade, mid, last trade else mid; parity on the real capture."""

import numpy as np

from nodes.marketdata.schemas import ACTION_ADD, ACTION_TRADE, UNDEF_PRICE
from tests.nodes.op_examples import docstring_example
from tests.nodes.risk.driver import assert_cpu_numba_identical, op
from tests.nodes.strategies.real_book import btcusdt_tops

NAME = "risk.reference_price"
U = UNDEF_PRICE


def _ref(use: str) -> list[int]:
    events = {"price": [5, 7, 900, 8, 0], "action": [ACTION_ADD, ACTION_TRADE, ACTION_ADD, ACTION_TRADE, ACTION_TRADE],
              "best_bid": [U, 100, 100, 104, 104], "best_ask": [U, 103, 100, 108, 108]}
    out, _ = assert_cpu_numba_identical(NAME, {"use": use}, events)
    return out["ref_px"].tolist()


def test_each_reference():
    # trades at 7 and 8 (a trade at price 0 is not a price); mids 101 (rounded down), then a locked book keeps
    # it, then 106
    assert _ref("last_trade") == [U, 7, 7, 8, 8]
    assert _ref("mid") == [U, 101, 101, 106, 106]
    assert _ref("last_trade_else_mid") == [U, 7, 7, 8, 8]
    out, _ = assert_cpu_numba_identical(NAME, {}, {"price": [1, 1], "action": [ACTION_ADD] * 2,
                                                   "best_bid": [U, 100], "best_ask": [U, 102]})
    assert out["ref_px"].tolist() == [U, 101]  # no trade yet: the mid


def test_on_the_real_capture_the_reference_is_a_traded_price_within_the_book():
    tops = btcusdt_tops()
    from nodes.marketdata.binance.source import BinanceCapture
    from tests.nodes.strategies.real_book import CAPTURE

    params = BinanceCapture.Params.model_validate({"path": CAPTURE.name, "schema": "book_and_trades"})
    chunks = list(BinanceCapture.open(params, CAPTURE.parent).chunks(65_536))
    price = np.concatenate([c["price"] for c in chunks])
    events = {"price": price, "action": tops["action"], "best_bid": tops["best_bid"], "best_ask": tops["best_ask"]}
    out, _ = assert_cpu_numba_identical(NAME, {"use": "last_trade"}, events)
    traded = set(price[tops["action"] == ACTION_TRADE].tolist())
    known = out["ref_px"] != U
    assert known.sum() > 5_000 and set(out["ref_px"][known].tolist()) <= traded


def test_docstring_example_names_this_op_with_valid_params():
    node = docstring_example(NAME)["ref"]
    assert set(node["in"]) == set(op(NAME, **node["with"])[0].inputs)
