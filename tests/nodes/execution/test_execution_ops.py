"""The execution ops (book imbalance, pre-trade risk, order encoder): rules, message bytes, cpu/numba parity,
and their docstring examples chained through the plan on a real Binance book."""

import struct
import textwrap
import zlib

import numpy as np
import pytest
import yaml

from nodes.contract import default_registry
from nodes.execution.book_imbalance import BookImbalance
from nodes.execution.order_encoder import OrderEncode
from nodes.execution.order_limits import (
    BAD_SIDE,
    CROSSED,
    NO_MARKET,
    NOTIONAL,
    ORDER_LIMIT,
    POSITION,
    PRICE_RANGE,
    WIDE_SPREAD,
    OrderLimits,
)
from nodes.marketdata.schemas import UNDEF_PRICE
from tests.support import REPO, assert_bit_identical, drive

BINANCE = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
BID, ASK = 61_837_630_000_000, 61_837_640_000_000  # a real BTCUSDT touch, 1e-9 units


def _run(op, raw: dict, *columns, target: str = "cpu") -> list[np.ndarray]:
    return drive(op, op.Params(**raw), [], [np.asarray(c) for c in columns], target)


def test_imbalance_compares_sizes_exactly_and_emits_changes():
    bid = np.array([300, 299, 100, 100, 0, 0, 2**62], np.int64)
    ask = np.array([100, 100, 301, 100, 5, 0, 2**62 - 1], np.int64)
    side = _run(BookImbalance, {"ratio": 3.0, "mode": "state"}, bid, ask)[0]
    assert side.tolist() == [0.0, 0.0, -1.0, 0.0, -1.0, 0.0, 0.0]  # strictly above 3×; sizes clamped at 2^50
    changes = _run(BookImbalance, {"ratio": 2.0}, np.array([5, 5, 1, 1]), np.array([1, 2, 1, 5]))[0]
    assert np.array_equal(changes, [1.0, np.nan, 0.0, -1.0], equal_nan=True)
    with pytest.raises(ValueError, match="multiple of 1/256"):
        BookImbalance.Params(ratio=1.3)


RISK = {"lots": 2, "max_position_lots": 2, "max_notional": 10_000, "lot_size": 0.01, "collar_bps": 5,
        "max_orders": 3}


def _risk(sides, bids, asks, **override):
    n = len(sides)
    bids = np.broadcast_to(np.asarray(bids, np.int64), n).copy()
    asks = np.broadcast_to(np.asarray(asks, np.int64), n).copy()
    return _run(OrderLimits, {**RISK, **override}, np.asarray(sides, float), bids, asks)


def test_risk_turns_sides_into_orders_for_the_difference():
    qty, price, reject, position = _risk([1.0, np.nan, 1.0, -1.0, 0.0], BID, ASK)
    assert qty.tolist() == [2, 0, 0, -4, 2]  # buy 2, no wish, already long, flip, back to flat
    assert price.tolist() == [ASK, 0, 0, BID, ASK]
    assert reject.tolist() == [0] * 5 and position.tolist() == [2, 2, 2, -2, 0]


@pytest.mark.parametrize("sides, bids, asks, override, reason", [
    ([1.0], UNDEF_PRICE, ASK, {}, NO_MARKET),
    ([1.0], BID, 1 << 48, {}, PRICE_RANGE),
    ([1.0], ASK, ASK, {}, CROSSED),
    ([1.0], BID, BID + BID // 1000, {}, WIDE_SPREAD),  # 10 bps > 5
    ([1.0], BID, ASK, {"max_position_lots": 1}, POSITION),
    ([1.0, -1.0], BID, ASK, {"max_notional": 2_000}, NOTIONAL),  # 2 lots pass (1,237), the 4-lot flip does not
    ([1.0, -1.0, 1.0, -1.0], BID, ASK, {}, ORDER_LIMIT),
    ([0.5], BID, ASK, {}, BAD_SIDE),
])
def test_each_rule_refuses_and_keeps_the_position(sides, bids, asks, override, reason):
    qty, price, reject, position = _risk(sides, bids, asks, **override)
    assert reject[-1] == reason and qty[-1] == 0 and price[-1] == 0
    assert position[-1] == (position[-2] if len(sides) > 1 else 0)


def test_reasons_combine():
    _, _, reject, _ = _risk([1.0], ASK, ASK, max_position_lots=0)
    assert reject[0] == CROSSED | POSITION


def test_encoder_writes_the_documented_bytes_with_a_zlib_crc():
    qty = np.array([3, 0, -7, 1 << 32, -(1 << 63)], np.int64)
    price = np.array([BID, 0, -5, ASK, ASK], np.int64)
    w0, w1, w2, w3, sent, invalid = _run(OrderEncode, {"instrument_id": 7, "client_id_base": 1000}, qty, price)
    assert sent.tolist() == [1, 1, 2, 2, 2] and invalid.tolist() == [0, 0, 0, 1, 2]
    for i, (side, client_id, lots) in ((0, (1, 1000, 3)), (2, (2, 1001, 7))):
        message = struct.pack("<4q", w0[i], w1[i], w2[i], w3[i])
        assert message[:2] == b"NO" and message[2] == side and message[3] == 3
        assert struct.unpack("<IQqI", message[4:28]) == (7, client_id, price[i], lots)
        assert struct.unpack("<I", message[28:])[0] == zlib.crc32(message[:28])
    assert [w0[1], w1[1], w2[1], w3[1]] == [0, 0, 0, 0]


@pytest.mark.parametrize("op", [BookImbalance, OrderLimits, OrderEncode])
def test_cpu_and_numba_agree(op):
    rng = np.random.default_rng(5)
    n = 3000
    columns = {
        BookImbalance: lambda: [rng.integers(0, 10**10, n), rng.integers(0, 10**10, n)],
        OrderLimits: lambda: [rng.choice([np.nan, -1.0, 0.0, 1.0, 0.5], n), BID + rng.integers(-10**9, 10**9, n),
                               ASK + rng.integers(-10**9, 10**10, n)],
        OrderEncode: lambda: [rng.integers(-5, 6, n), rng.integers(-(1 << 62), 1 << 62, n)],
    }[op]()
    raw = {BookImbalance: {"ratio": 1.5, "mode": "state"}, OrderLimits: {**RISK, "max_orders": 500},
           OrderEncode: {"instrument_id": 2**31 - 1, "client_id_base": 2**62}}[op]
    for a, b in zip(_run(op, raw, *columns), _run(op, raw, *columns, target="numba")):
        assert_bit_identical(a, b, op.name)


def _example(op) -> dict:
    return yaml.safe_load(textwrap.dedent(op.__doc__.split("Example::")[1]))


@pytest.mark.parametrize("place", ["cpu", "numba"])
def test_examples_chain_through_the_plan_on_a_real_book(tmp_path, place):
    """deltas → book.l2 → the three examples, as a spec: orders come out, and they are what the steps give."""
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    nodes = {
        "deltas": {"op": "source.binance_capture", "with": {"path": str(BINANCE), "schema": "book_deltas",
                                                            "clock_policy": "shift"}},
        "book": {"op": "book.l2", "in": {f: f"deltas.{f}" for f in ("side", "price", "size", "action", "flags")},
                 "with": {"max_levels": 64}},
        **_example(BookImbalance), **_example(OrderLimits), **_example(OrderEncode),
    }
    nodes["pressure"]["with"] = {"ratio": 2.0, "mode": "state"}
    spec = {"tickloom": 1, "name": "execution_examples", "kind": "research", "nodes": nodes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    places = [f"{n}={place}" for n in ("book", "pressure", "risk", "order")]
    plan = compile_plan(load_spec(path, places=places), record=["book", "pressure", "risk", "order"])
    recorded = replay(plan).recorded
    book, pressure, risk, order = (recorded[n] for n in ("book", "pressure", "risk", "order"))
    expected_risk = _run(OrderLimits, nodes["risk"]["with"], pressure["side"].to_numpy(),
                         book["best_bid"].to_numpy(), book["best_ask"].to_numpy())
    assert np.array_equal(risk["order_qty"].to_numpy(), expected_risk[0])
    assert (risk["order_qty"].to_numpy() != 0).sum() > 5
    assert order["sent"].to_numpy()[-1] == (risk["order_qty"].to_numpy() != 0).sum()


def test_the_ops_are_in_the_library():
    registry = default_registry()
    for op in (BookImbalance, OrderLimits, OrderEncode):
        assert registry.get(op.name) is op
        assert {"cpu", "numba"} <= set(op.describe()["targets"])
