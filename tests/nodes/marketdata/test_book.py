"""Order books: ``book.l2``, ``book.l3`` and ``book.l3_mbp`` — rules, invariants, cpu/numba parity, real data.

The reference for the MBO rules is a plain-Python book written here from Databento's documented rules (dicts
and lists, nothing shared with the ops); the reference for real data is NautilusTrader 1.221.0's L3 book over
the same DBN files (its full-depth digest and top of book, recorded below).
"""

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.targets import step_function
from nodes.contract import default_registry
from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.book.l3 import BookL3, queue_ahead
from nodes.marketdata.book.l3_mbp import BookL3Mbp
from nodes.marketdata.book.order_table import PRICE, SIZE, TAG, delete_row, find_row, new_table, store, tag_row
from nodes.marketdata.book.replay import book_levels, mbo_to_mbp, replay_book, run_op
from nodes.marketdata.schemas import F_LAST, F_TOB, UNDEF_PRICE

A, C, M, R, T, F, N = (ord(x) for x in "ACMRTFN")
L3_INPUTS = list(BookL3.inputs)
L2_INPUTS = list(BookL2.inputs)
TICK = 250_000_000  # ES: 0.25 in 1e-9 units
LOT = 1_000_000_000
INT64_MIN = -(2**63)

REPO = Path(__file__).resolve().parents[3]
SHIPPED_DBN = REPO / "data" / "samples" / "dbn"
SHARED_DBN = REPO / ".." / "shared" / "data" / "dbn"
ESH4 = SHARED_DBN / "esh4-glbx-mdp3-20231224.mbo.dbn.zst"
ESM4 = SHARED_DBN / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"

# NautilusTrader 1.221.0 (nautilus_trader.model.book.OrderBook, BookType.L3_MBO) fed the same files through its
# DatabentoDataLoader: every level "bid|ask,price×1e9,size×1e9,orders" best first, one per line, SHA-256'd.
NAUTILUS_L3 = {
    "ESH4": {
        "file": ESH4, "levels_bid": 892, "levels_ask": 559, "best_bid": 4_799_000_000_000,
        "best_ask": 4_799_500_000_000, "top_bid": (16, 4), "top_ask": (23, 4), "orders": 8725,
        "digest": "da5046c1bba0a8a1798d441f885a3833ee6987ed9f6a5fd88911c67f7c2327d1",
    },
    "ESM4": {
        "file": ESM4, "levels_bid": 976, "levels_ask": 571, "best_bid": 5_214_000_000_000,
        "best_ask": 5_214_250_000_000, "top_bid": (28, 22), "top_ask": (17, 11), "orders": 13598,
        "digest": "51e90147fce9609e43d9d4eec87e4649c6dcbc99a055fedc4d45a083308069d1",
    },
}


# -- helpers ---------------------------------------------------------------------------------------------


def events(rows: list[tuple], names=L3_INPUTS) -> dict[str, np.ndarray]:
    """Columns from rows of ``names`` values (flags default 0)."""
    width = len(names)
    rows = [tuple(r) + (0,) * (width - len(r)) for r in rows]
    return {name: np.array([r[i] for r in rows], dtype=np.int64) for i, name in enumerate(names)}


def drive(op, c: tuple, columns: dict, target: str, state=None):
    """Run ``op.step`` event by event through ``hardware.targets.step_function``: (outputs by port, state)."""
    step = step_function(op.step, target)
    s = op.init(c, 1) if state is None else state
    n = len(next(iter(columns.values())))
    out = {port: np.empty(n, dtype=t.dtype) for port, t in op.outputs.items()}
    inputs = [columns[name] for name in op.inputs]
    for i in range(n):
        returned = step(c, s, *(col[i] for col in inputs))
        s = returned[0]
        for port, value in zip(op.outputs, returned[1:]):
            out[port][i] = value
    return out, s


def assert_same_outputs(a: dict, b: dict, what: str) -> None:
    for port in a:
        assert a[port].dtype == b[port].dtype and np.array_equal(a[port], b[port]), (
            f"{what}: port {port!r} differs at {np.flatnonzero(a[port] != b[port])[:5]}"
        )


def levels(kind: str, state) -> dict:
    return book_levels(kind, state)


def table_orders(state) -> dict[int, tuple]:
    """The resting orders of an L3 state: order id → (row, price, size)."""
    table = state[9]
    live = np.flatnonzero(table[:, TAG] != 0)
    return {int(table[i, 0]): (int(tag_row(table[i, TAG])), int(table[i, PRICE]), int(table[i, SIZE])) for i in live}


def check_l3_invariants(state) -> None:
    """Sizes and counts positive, levels sorted, and every level the exact sum of the orders at its price."""
    book = levels("l3", state)
    orders = table_orders(state)
    assert state[0] == len(orders), "n_orders disagrees with the order table"
    assert sum(lv["orders"] for side in book.values() for lv in side) == len(orders)
    expected: dict[tuple, list] = {}
    for row, price, size in orders.values():
        assert size > 0
        total = expected.setdefault((row, price), [0, 0])
        total[0] += size
        total[1] += 1
    seen = {}
    for row, name in ((0, "bids"), (1, "asks")):
        prices = [lv["price"] for lv in book[name]]
        assert prices == sorted(prices, reverse=(row == 0)) and len(set(prices)) == len(prices)
        for lv in book[name]:
            assert lv["size"] > 0 and lv["orders"] > 0, f"empty level kept: {lv}"
            seen[(row, lv["price"])] = [lv["size"], lv["orders"]]
    assert seen == expected, "levels are not the sum of their orders"


def l2_deltas(mbp_outputs: dict) -> dict[str, np.ndarray]:
    """The ``book_deltas`` rows implied by ``book.l3_mbp`` outputs, in order (R rows for clears)."""
    rows = []
    for i in range(len(mbp_outputs["cleared"])):
        if mbp_outputs["cleared"][i]:
            rows.append((0, UNDEF_PRICE, 0, R))
        for k in range(1, int(mbp_outputs["levels_changed"][i]) + 1):
            rows.append(tuple(int(mbp_outputs[f"{f}_{k}"][i]) for f in ("side", "price", "size", "action")))
    return events(rows, L2_INPUTS)


class ShadowBook:
    """Databento's MBO rules with dicts and lists: the reference the L3 op is checked against."""

    def __init__(self):
        self.orders: dict[int, list] = {}  # order id → [side, price, size]
        self.queues: dict[tuple, list] = {}  # (side, price) → order ids in FIFO order

    def apply(self, order_id, side, price, size, action):
        if action == R:
            self.orders.clear()
            self.queues.clear()
        elif action == A:
            self._join(order_id, side, price, size)
        elif action == C:
            order = self.orders[order_id]
            order[2] -= size
            if order[2] == 0:
                self._leave(order_id)
        elif action == M:
            order = self.orders.get(order_id)
            if order is None:
                self._join(order_id, side, price, size)  # modify of an unknown order: an add
            elif order[1] != price or size > order[2]:
                self._leave(order_id)  # a new price or more size: back of the queue
                self._join(order_id, side, price, size)
            else:
                order[2] = size  # less size at the same price: keeps its place

    def _join(self, order_id, side, price, size):
        self.orders[order_id] = [side, price, size]
        self.queues.setdefault((side, price), []).append(order_id)

    def _leave(self, order_id):
        side, price, _ = self.orders.pop(order_id)
        queue = self.queues[(side, price)]
        queue.remove(order_id)
        if not queue:
            del self.queues[(side, price)]

    def levels(self) -> dict:
        out = {"bids": [], "asks": []}
        for (side, price), queue in self.queues.items():
            out["bids" if side == 1 else "asks"].append(
                {"price": price, "size": sum(self.orders[o][2] for o in queue), "orders": len(queue)}
            )
        out["bids"].sort(key=lambda lv: -lv["price"])
        out["asks"].sort(key=lambda lv: lv["price"])
        return out

    def ahead(self, order_id) -> tuple[int, int]:
        side, price, _ = self.orders[order_id]
        queue = self.queues[(side, price)]
        before = queue[: queue.index(order_id)]
        return len(before), sum(self.orders[o][2] for o in before)


def scrambled_id(k: int) -> int:
    """A 64-bit order id with scattered bits, as int64 (DBN ids are uint64; the ports carry their bits)."""
    value = (k * 0x9E3779B97F4A7C15 + 6_400_000_000_000) & (2**64 - 1)
    return value - 2**64 if value >= 2**63 else value


@st.composite
def consistent_mbo(draw):
    """A stream a venue could send: bids at 90..99 ticks, asks at 100..109 (never crossed), valid ids only."""
    choices = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 10**6), st.integers(0, 10**6),
                                      st.integers(0, 10**6)), min_size=1, max_size=120))
    shadow = ShadowBook()
    rows = []
    next_id = 0
    for kind, a, b, c in choices:
        live = list(shadow.orders)
        if kind <= 3 or (kind <= 7 and not live):
            side = 1 if a % 2 else -1
            price = (90 + b % 10 if side == 1 else 100 + b % 10) * TICK
            action = M if kind == 7 else A  # a modify of an unknown order is an add
            row = (scrambled_id(next_id), side, price, (1 + c % 20) * LOT, action)
            next_id += 1
        elif kind <= 5:
            order_id = live[a % len(live)]
            side, price, size = shadow.orders[order_id]
            taken = size if b % 2 or size == LOT else (1 + c % (size // LOT - 1)) * LOT
            row = (order_id, side, price, taken, C)
        elif kind <= 7:
            order_id = live[a % len(live)]
            side, price, size = shadow.orders[order_id]
            how = b % 3
            if how == 0:
                price = (90 + c % 10 if side == 1 else 100 + c % 10) * TICK
            elif how == 1 or size == LOT:
                size += (1 + c % 5) * LOT
            else:
                size -= (1 + c % (size // LOT - 1)) * LOT
            row = (order_id, side, price, size, M)
        elif kind == 8:
            row = (scrambled_id(a), (1, -1, 0)[b % 3], (90 + c % 20) * TICK, LOT, (T, F, N)[a % 3])
        else:
            row = (0, 0, UNDEF_PRICE, 0, R if a % 4 == 0 else N)
        flags = F_LAST if c % 3 else 0
        shadow.apply(*row)
        rows.append((*row, flags))
    return rows


@st.composite
def arbitrary_mbo(draw):
    """Anything the ports can carry: unknown ids, bad sides and prices, negative sizes, stray codes, F_TOB."""
    row = st.tuples(
        st.integers(0, 12),
        st.sampled_from([1, -1, 1, -1, 0, 2, -7]),
        st.one_of(st.integers(95, 105).map(lambda p: p * TICK), st.sampled_from([UNDEF_PRICE, INT64_MIN, -TICK])),
        st.one_of(st.integers(0, 6).map(lambda s: s * LOT), st.integers(-3, 3)),
        st.sampled_from([A, A, A, C, C, M, M, R, T, F, N, 0, 88]),
        st.sampled_from([0, F_LAST, F_TOB, F_LAST | F_TOB]),
    )
    return draw(st.lists(row, min_size=1, max_size=80))


# -- L2 --------------------------------------------------------------------------------------------------


def test_l2_sets_levels_removes_at_zero_and_clears():
    c = (16,)
    out, s = drive(BookL2, c, events([
        (1, 100, 5, A), (1, 101, 3, A), (-1, 103, 2, A), (-1, 102, 4, M),
        (1, 101, 0, C),        # removes 101
        (1, 100, 7, M),        # sets 100 to 7 (a level total, not a delta)
        (1, 99, 0, C),         # removing an absent level: a no-op, not an error
        (-1, 102, 1, T), (1, 100, 1, F), (0, 0, 0, N),  # T, F, N change nothing
        (0, 0, 0, R),
    ], L2_INPUTS), "cpu")
    assert list(out["best_bid"][:4]) == [100, 101, 101, 101]
    assert list(out["best_ask"][:4]) == [UNDEF_PRICE, UNDEF_PRICE, 103, 102]
    assert out["best_bid"][4] == 100 and out["bid_size"][5] == 7 and out["levels_bid"][6] == 1
    assert list(out["best_ask"][6:10]) == [102] * 4 and list(out["ask_size"][6:10]) == [4] * 4
    assert out["best_bid"][10] == UNDEF_PRICE and out["levels_bid"][10] == 0 and out["levels_ask"][10] == 0
    assert out["inconsistent"][-1] == 0 and out["overflow"][-1] == 0


def test_l2_counts_what_it_cannot_apply():
    out, _ = drive(BookL2, (16,), events([
        (0, 100, 5, A), (2, 100, 5, A), (1, UNDEF_PRICE, 5, A), (1, INT64_MIN, 5, A), (1, 100, -1, A), (1, 100, 5, 88),
        (1, 100, 5, A),
    ], L2_INPUTS), "cpu")
    assert list(out["inconsistent"]) == [1, 2, 3, 4, 5, 6, 6]
    assert out["best_bid"][-1] == 100 and out["levels_bid"][-1] == 1


def test_l2_crossed_flag():
    out, _ = drive(BookL2, (16,), events([(1, 100, 5, A), (-1, 101, 5, A), (-1, 100, 5, A), (-1, 100, 0, C)],
                                          L2_INPUTS), "cpu")
    assert list(out["crossed"]) == [0, 0, 1, 0]


def test_l2_capacity_pushes_out_the_worst_level_and_counts_it():
    out, s = drive(BookL2, (3,), events([
        (1, 100, 1, A), (1, 99, 1, A), (1, 98, 1, A),
        (1, 97, 1, A),   # worse than all on a full side: dropped
        (1, 101, 1, A),  # better: the worst (98) is pushed out
    ], L2_INPUTS), "cpu")
    assert list(out["overflow"]) == [0, 0, 0, 1, 2]
    assert [lv["price"] for lv in levels("l2", s)["bids"]] == [101, 100, 99]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(-200, 200), st.integers(0, 3)), max_size=200),
       capacity=st.sampled_from([1, 2, 3, 6, 40, 4096]))
def test_l2_matches_a_dict_book_with_the_same_capacity_rule(rows, capacity):
    """Random level sets: on tiny ladders windows hit the row ends (recentring) and sides fill (eviction); on
    deep ones levels far from the touch go through the binary search. Negative prices are valid prices."""
    reference = {1: {}, -1: {}}
    for side, price, size in rows:
        book = reference[side]
        if size == 0:
            book.pop(price, None)
        elif price in book or len(book) < capacity:
            book[price] = size
        else:
            worst = min(book, key=lambda p: p * side)
            if price * side > worst * side:
                del book[worst]
                book[price] = size
    columns = events([(side, price, size, A) for side, price, size in rows] or [(0, 0, 0, N)], L2_INPUTS)
    _, s = drive(BookL2, (capacity,), columns, "cpu")
    got = levels("l2", s)
    assert [(lv["price"], lv["size"]) for lv in got["bids"]] == sorted(reference[1].items(), reverse=True)
    assert [(lv["price"], lv["size"]) for lv in got["asks"]] == sorted(reference[-1].items())


# -- L3: the MBO rules -----------------------------------------------------------------------------------


def test_l3_add_cancel_partial_and_full():
    out, s = drive(BookL3, (16, 16), events([
        (1, 1, 100, 5, A), (2, 1, 100, 3, A), (3, -1, 101, 4, A),
        (1, 1, 100, 2, C),   # partial: order 1 keeps 3
        (2, 1, 100, 3, C),   # full: order 2 leaves
        (1, 1, 100, 3, C),   # full: the level goes
    ]), "cpu")
    assert list(out["bid_size"]) == [5, 8, 8, 6, 3, 0]
    assert list(out["bid_orders"]) == [1, 2, 2, 2, 1, 0]
    assert list(out["orders"]) == [1, 2, 3, 3, 2, 1]
    assert out["best_bid"][-1] == UNDEF_PRICE and out["best_ask"][-1] == 101 and out["ask_orders"][-1] == 1
    check_l3_invariants(s)


def test_l3_modify_priority_follows_databento():
    """A price change or a size increase sends the order to the back; a size decrease keeps its place."""
    c = (16, 16)
    step = step_function(BookL3.step, "cpu")
    s = BookL3.init(c, 1)
    for row in [(1, 1, 100, 5, A, 0), (2, 1, 100, 3, A, 0), (3, 1, 100, 2, A, 0)]:
        s = step(c, s, *row)[0]
    assert [queue_ahead(s, k) for k in (1, 2, 3)] == [(0, 0), (1, 5), (2, 8)]
    s = step(c, s, 1, 1, 100, 4, M, 0)[0]  # decrease: stays first
    assert [queue_ahead(s, k) for k in (1, 2, 3)] == [(0, 0), (1, 4), (2, 7)]
    s = step(c, s, 1, 1, 100, 6, M, 0)[0]  # increase: to the back
    assert [queue_ahead(s, k) for k in (2, 3, 1)] == [(0, 0), (1, 3), (2, 5)]
    s = step(c, s, 2, 1, 99, 3, M, 0)[0]   # new price: leaves 100, back of 99
    assert queue_ahead(s, 3) == (0, 0) and queue_ahead(s, 2) == (0, 0)
    s = step(c, s, 2, 1, 100, 3, M, 0)[0]  # and back to 100: behind everyone there
    assert queue_ahead(s, 2) == (2, 8)
    assert queue_ahead(s, 42) == (-1, -1)
    check_l3_invariants(s)


def test_l3_trades_and_fills_do_not_touch_the_book():
    rows = [(1, 1, 100, 5, A), (1, 1, 100, 5, F), (0, -1, 100, 5, T), (0, 0, 0, 0, N)]
    out, s = drive(BookL3, (16, 16), events(rows), "cpu")
    assert list(out["bid_size"]) == [5, 5, 5, 5] and out["inconsistent"][-1] == 0


def test_l3_clear_empties_the_book():
    out, s = drive(BookL3, (16, 16), events([(1, 1, 100, 5, A), (2, -1, 101, 5, A), (0, 0, UNDEF_PRICE, 0, R),
                                             (1, 1, 99, 1, A)]), "cpu")
    cleared = (out["best_bid"][2], out["best_ask"][2], out["orders"][2], out["levels_bid"][2])
    assert cleared == (UNDEF_PRICE, UNDEF_PRICE, 0, 0)
    assert out["best_bid"][3] == 99 and out["orders"][3] == 1  # the id is free again after a clear
    check_l3_invariants(s)


def test_l3_modify_of_an_unknown_order_is_an_add():
    out, _ = drive(BookL3, (16, 16), events([(7, -1, 101, 2, M)]), "cpu")
    assert (out["best_ask"][0], out["ask_size"][0], out["inconsistent"][0]) == (101, 2, 0)


def test_l3_counts_records_that_contradict_the_book():
    out, s = drive(BookL3, (16, 16), events([
        (9, 1, 100, 1, C),            # cancel of an unknown order: ignored
        (1, 1, 100, 5, A),
        (1, 1, 100, 9, C),            # more than rests: the order goes
        (2, 1, 100, 5, A),
        (2, 1, 101, 4, A),            # duplicate add: replaces the order
        (2, -1, 102, 4, M),           # side change: removed, then added on the other side
        (2, -1, 102, 0, M),           # modify to nothing: removed
        (3, 1, UNDEF_PRICE, 1, A), (3, 0, 100, 1, A), (3, 1, 100, -1, A), (3, 1, 100, 1, 88),
        (3, 1, 100, 1, A, F_TOB),     # top-of-book-only records are not orders
    ]), "cpu")
    assert list(out["inconsistent"]) == [1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert list(out["best_bid"][3:6]) == [100, 101, UNDEF_PRICE] and out["best_ask"][5] == 102
    assert out["orders"][-1] == 0
    check_l3_invariants(s)


def test_l3_overflow_drops_orders_and_pushes_out_levels_with_their_orders():
    out, s = drive(BookL3, (2, 3), events([
        (1, 1, 100, 1, A), (2, 1, 99, 1, A), (3, 1, 98, 1, A),   # 98: a third level on a 2-level side, dropped
        (4, 1, 101, 1, A),                                         # pushes out 99 and order 2 with it
        (5, 1, 101, 1, A), (6, 1, 101, 1, A),                      # order 6: the table holds 3 orders
        (2, 1, 99, 1, C),                                          # order 2 is gone: inconsistent
    ]), "cpu")
    assert list(out["overflow"]) == [0, 0, 1, 2, 2, 3, 3]
    assert out["inconsistent"][-1] == 1 and out["orders"][-1] == 3
    assert [(lv["price"], lv["orders"]) for lv in levels("l3", s)["bids"]] == [(101, 2), (100, 1)]
    check_l3_invariants(s)


def test_order_table_survives_heavy_collisions():
    """Backward-shift deletion in a tiny table: every surviving id stays reachable."""
    rng = np.random.default_rng(3)
    table = new_table(8)  # 16 rows
    alive: dict[int, int] = {}
    for _ in range(3000):
        order_id = int(rng.integers(-20, 20)) * 1_000_003
        row = find_row(table, order_id)
        if row >= 0:
            assert alive.pop(order_id) == table[row, SIZE]
            delete_row(table, row)
        elif len(alive) < 15:
            size = int(rng.integers(1, 100))
            store(table, -1 - row, order_id, 0, size, 5)
            alive[order_id] = size
        for known, size in alive.items():
            assert table[find_row(table, known), SIZE] == size


# -- L3: properties --------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=consistent_mbo())
def test_l3_on_consistent_streams_matches_the_reference_and_l2(rows):
    columns = events(rows)
    c = (64, 256)
    shadow = ShadowBook()
    step = step_function(BookL3.step, "cpu")
    mbp = step_function(BookL3Mbp.step, "cpu")
    l2 = step_function(BookL2.step, "cpu")
    s, s_mbp, s_l2 = BookL3.init(c, 1), BookL3Mbp.init(c, 1), BookL2.init((64,), 1)
    for row in rows:
        shadow.apply(*row[:5])
        s, *out = step(c, s, *row)
        s_mbp, *derived = mbp(c, s_mbp, *row)
        derived = dict(zip(BookL3Mbp.outputs, derived))
        deltas = l2_deltas({k: np.array([v]) for k, v in derived.items()})
        for i in range(len(deltas["side"])):
            s_l2, *l2_out = l2((64,), s_l2, *(deltas[name][i] for name in L2_INPUTS))
        out = dict(zip(BookL3.outputs, out))
        expected = shadow.levels()
        got = levels("l3", s)
        assert got == expected
        assert out["crossed"] == 0 and out["inconsistent"] == 0 and out["overflow"] == 0
        assert out["orders"] == len(shadow.orders)
        top_bid = expected["bids"][0] if expected["bids"] else {"price": UNDEF_PRICE, "size": 0, "orders": 0}
        assert (out["best_bid"], out["bid_size"], out["bid_orders"]) == (top_bid["price"], top_bid["size"],
                                                                        top_bid["orders"])
        # MBO → MBP: an L2 book fed the derived deltas holds the same levels, and l3_mbp's own book agrees
        assert levels("l2", s_l2) == {side: [{**lv, "orders": None} for lv in lvs] for side, lvs in got.items()}
        assert levels("l3", s_mbp) == got
    check_l3_invariants(s)
    for order_id in list(shadow.orders)[:10]:
        assert queue_ahead(s, order_id) == shadow.ahead(order_id)
    # parity: the same events on numba give the same bits on every port
    for op in (BookL3, BookL3Mbp):
        on_cpu, _ = drive(op, c, columns, "cpu")
        on_numba, _ = drive(op, c, columns, "numba")
        assert_same_outputs(on_cpu, on_numba, f"{op.name} cpu vs numba")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=arbitrary_mbo(), max_levels=st.integers(1, 4), max_orders=st.integers(1, 6))
def test_l3_stays_valid_on_arbitrary_input(rows, max_levels, max_orders):
    """Garbage in (and tiny capacities): the book stays a valid book, and cpu and numba agree bit for bit."""
    columns = events(rows)
    c = (max_levels, max_orders)
    on_cpu, s = drive(BookL3, c, columns, "cpu")
    check_l3_invariants(s)
    assert all(lv["size"] > 0 for side in levels("l3", s).values() for lv in side)
    on_numba, s_numba = drive(BookL3, c, columns, "numba")
    assert_same_outputs(on_cpu, on_numba, "book.l3 cpu vs numba")
    assert levels("l3", s_numba) == levels("l3", s)
    mbp_cpu, s_mbp = drive(BookL3Mbp, c, columns, "cpu")
    mbp_numba, _ = drive(BookL3Mbp, c, columns, "numba")
    assert_same_outputs(mbp_cpu, mbp_numba, "book.l3_mbp cpu vs numba")
    # even with overflow, an L2 book of the same capacity fed the derived deltas ends with the same levels
    deltas = l2_deltas(mbp_cpu)
    if len(deltas["side"]):
        l2_cpu, s_l2 = drive(BookL2, (max_levels,), deltas, "cpu")
        l2_numba, _ = drive(BookL2, (max_levels,), deltas, "numba")
        assert_same_outputs(l2_cpu, l2_numba, "book.l2 cpu vs numba")
        assert levels("l2", s_l2) == {k: [{**lv, "orders": None} for lv in v] for k, v in levels("l3", s).items()}


# -- real data -------------------------------------------------------------------------------------------


def _real(name: str) -> dict[str, np.ndarray]:
    """A real sample's MBO records (the project's DBN decoder) as int64 columns; skips where there is none."""
    if not SHARED_DBN.is_dir():
        pytest.skip(f"real DBN samples not found at {SHARED_DBN} (../shared/data is only on developer/CI machines)")
    pytest.importorskip("databento_dbn", reason="reading DBN needs the databento-dbn package")
    from nodes.marketdata.dbn import read_dbn_frames

    orders = read_dbn_frames(NAUTILUS_L3[name]["file"])[0]["orders"]
    columns = {}
    for column in L3_INPUTS:
        values = orders[column].to_numpy()
        columns[column] = values.view(np.int64) if values.dtype == np.uint64 else values.astype(np.int64)
    return columns


def _digest(book: dict) -> str:
    rows = [f"bid,{lv['price']},{lv['size']},{lv['orders']}" for lv in book["bids"]]
    rows += [f"ask,{lv['price']},{lv['size']},{lv['orders']}" for lv in book["asks"]]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


@pytest.mark.parametrize("name", ["ESH4", "ESM4"])
def test_real_mbo_matches_nautilus_l3_book(name):
    columns = _real(name)
    ref = NAUTILUS_L3[name]
    out, s = drive(BookL3, (4096, 65_536), columns, "cpu")
    book = levels("l3", s)
    assert _digest(book) == ref["digest"], "full depth differs from NautilusTrader's L3 book"
    assert (len(book["bids"]), len(book["asks"]), out["orders"][-1]) == (ref["levels_bid"], ref["levels_ask"],
                                                                         ref["orders"])
    assert (out["best_bid"][-1], out["best_ask"][-1]) == (ref["best_bid"], ref["best_ask"])
    assert (out["bid_size"][-1] // 10**9, out["bid_orders"][-1]) == ref["top_bid"]
    assert (out["ask_size"][-1] // 10**9, out["ask_orders"][-1]) == ref["top_ask"]
    assert out["inconsistent"][-1] == 0 and out["overflow"][-1] == 0
    last = (columns["flags"] & F_LAST) != 0
    # these samples are never crossed once an event is complete (the data itself is not crossed)
    assert int(out["crossed"][last].sum()) == 0
    check_l3_invariants(s)


def test_real_mbo_cpu_numba_and_mbp_derivation():
    columns = _real("ESM4")
    c = (4096, 65_536)
    on_cpu, s = drive(BookL3, c, columns, "cpu")
    on_numba, _ = drive(BookL3, c, columns, "numba")
    assert_same_outputs(on_cpu, on_numba, "book.l3 on ESM4")
    mbp_cpu, s_mbp = drive(BookL3Mbp, c, columns, "cpu")
    mbp_numba, _ = drive(BookL3Mbp, c, columns, "numba")
    assert_same_outputs(mbp_cpu, mbp_numba, "book.l3_mbp on ESM4")
    deltas = l2_deltas(mbp_cpu)
    l2_cpu, s_l2 = drive(BookL2, (4096,), deltas, "cpu")
    l2_numba, _ = drive(BookL2, (4096,), deltas, "numba")
    assert_same_outputs(l2_cpu, l2_numba, "book.l2 on ESM4's derived deltas")
    assert levels("l2", s_l2) == {k: [{**lv, "orders": None} for lv in v] for k, v in levels("l3", s).items()}


def test_real_fills_are_followed_by_the_cancel_or_modify_that_updates_the_book():
    """Why F changes nothing: in DBN every fill of a resting order is followed by its C (full) or M (partial)."""
    columns = _real("ESM4")
    action, order_id, size = columns["action"], columns["order_id"], columns["size"]
    fills = np.flatnonzero(action == F)
    assert len(fills) > 0
    for i in fills:
        later = np.flatnonzero(order_id[i + 1:] == order_id[i])
        assert len(later), "a fill with no later record for its order"
        assert action[i + 1 + later[0]] in (C, M)


# -- the Python API --------------------------------------------------------------------------------------


def test_replay_book_returns_the_json_shape_on_both_targets():
    rows = [(1, 1, 100, 5, A, 0), (2, 1, 99, 5, A, 0), (3, -1, 101, 2, A, F_LAST), (2, 1, 99, 5, C, F_LAST)]
    frame = pl.DataFrame({**events(rows), "ts_recv": np.arange(4) + 10, "sequence": np.arange(4) + 100,
                          "symbol": ["ESZ5"] * 4})
    on_cpu = replay_book(frame, kind="l3", depth=1, target="cpu")
    on_numba = replay_book(frame, kind="l3", depth=1, target="numba")
    assert on_cpu == on_numba
    assert json.loads(json.dumps(on_cpu)) == on_cpu
    book = on_cpu["books"]["ESZ5"]
    assert book == {
        "events": 4, "levels_bid": 1, "levels_ask": 1, "best_bid": 100, "best_ask": 101,
        "bids": [{"price": 100, "size": 5, "orders": 1}], "asks": [{"price": 101, "size": 2, "orders": 1}],
        "orders": 2, "crossed": False, "crossed_at_f_last": 0, "overflow": 0, "inconsistent": 0,
        "last_ts_recv": 13, "last_sequence": 103,
    }
    assert on_cpu["kind"] == "l3" and on_cpu["depth"] == 1 and on_cpu["events"] == 4


def test_replay_book_splits_instruments_and_accepts_chunks():
    rows = [(1, 1, 100, 5, A), (1, 1, 200, 5, A), (2, -1, 101, 1, A), (2, -1, 201, 1, A), (1, 1, 100, 5, C)]
    columns = {**events(rows), "symbol": np.array(["X", "Y", "X", "Y", "X"], dtype=object)}
    whole = replay_book(columns, kind="l3", target="cpu")
    chunks = [{k: v[:2] for k, v in columns.items()}, {k: v[2:] for k, v in columns.items()}]
    assert replay_book(chunks, kind="l3", target="cpu") == whole
    assert whole["books"]["X"]["best_bid"] is None and whole["books"]["X"]["best_ask"] == 101
    assert whole["books"]["Y"]["best_bid"] == 200 and whole["books"]["Y"]["events"] == 2


def test_mbo_to_mbp_replays_as_the_same_l2_book():
    rows = [(1, 1, 100, 5, A), (2, 1, 100, 3, A), (3, -1, 102, 4, A), (2, 1, 101, 3, M), (1, 1, 100, 5, C),
            (0, 0, UNDEF_PRICE, 0, R), (4, -1, 103, 1, A), (5, 1, 99, 2, A)]
    frame = pl.DataFrame({**events(rows), "ts_recv": np.arange(len(rows)), "symbol": ["ES"] * len(rows)})
    deltas = mbo_to_mbp(frame, target="cpu")
    assert deltas["action"].to_list() == [A, M, A, M, A, C, R, A, A]
    assert deltas["size"].to_list()[:4] == [5, 8, 4, 5]
    l2 = replay_book(deltas, kind="l2", target="cpu")["books"]["ES"]
    l3 = replay_book(frame, kind="l3", target="cpu")["books"]["ES"]
    assert [(lv["price"], lv["size"]) for lv in l2["bids"] + l2["asks"]] == [
        (lv["price"], lv["size"]) for lv in l3["bids"] + l3["asks"]]


def test_mbo_to_mbp_puts_f_last_on_the_last_delta_of_each_event():
    rows = [(1, 1, 100, 5, A, 0), (9, -1, 100, 1, T, F_LAST),  # the event's last record is a trade
            (2, 1, 99, 5, A, 0), (3, 1, 98, 5, A, F_LAST), (4, 1, 97, 5, A, 0)]  # the data stops mid-event
    deltas = mbo_to_mbp(pl.DataFrame(events(rows)), target="cpu")
    assert deltas["price"].to_list() == [100, 99, 98, 97]
    assert deltas["flags"].to_list() == [F_LAST, 0, F_LAST, 0]


def test_replay_book_reads_a_dbn_file():
    _real("ESH4")
    summary = replay_book(ESH4, kind="l3", depth=3)
    book = summary["books"]["ESH4"]
    assert (book["best_bid"], book["best_ask"], book["orders"]) == (4_799_000_000_000, 4_799_500_000_000, 8725)
    assert [lv["orders"] for lv in book["bids"]] == [4, 4, 4] and book["last_sequence"] == 691


def test_replay_book_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="kind"):
        replay_book({}, kind="l4")
    with pytest.raises(ValueError, match="order_id"):
        replay_book(events([(1, 100, 5, A)], L2_INPUTS), kind="l3", target="cpu")
    with pytest.raises(ValueError, match="kind='l3'"):
        replay_book("file.mbo.dbn.zst", kind="l2")


def test_run_op_returns_outputs_and_final_state():
    outputs, state = run_op(BookL2, (8,), [events([(1, 100, 5, A)], L2_INPUTS)[n] for n in L2_INPUTS], "cpu")
    assert outputs[0][0] == 100 and levels("l2", state)["bids"] == [{"price": 100, "size": 5, "orders": None}]


def _run_example(tmp_path: Path, op, source: dict, place: str):
    """The op's docstring example as a spec node fed by ``source``, run through the plan on ``place``."""
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    example = yaml.safe_load(textwrap.dedent(op.__doc__.split("Example::")[1]))
    (node_id,) = example
    spec = {"tickloom": 1, "name": f"example_{place}", "kind": "research", "nodes": {**source, **example}}
    path = tmp_path / f"{op.name}_{place}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return replay(compile_plan(load_spec(path, places=[f"{node_id}={place}"]), record=[node_id])).recorded[node_id]


def test_l2_docstring_example_rebuilds_the_mbp10_top_through_the_plan(tmp_path):
    """``book.l2``'s example on the shipped MBP-10 sample (snapshots normalized to R + level adds): at each
    F_LAST the book's top is the record's own top level (3720.25 × 24 / 3720.50 × 10), on cpu and numba."""
    source = {"deltas": {"op": "source.dbn", "with": {"path": str(SHIPPED_DBN / "test_data.mbp-10.dbn"),
                                                      "schema": "book_deltas"}}}
    on_cpu = _run_example(tmp_path, BookL2, source, "cpu")
    on_numba = _run_example(tmp_path, BookL2, source, "numba")
    assert on_cpu.equals(on_numba)
    tops = on_cpu.select("best_bid", "bid_size", "best_ask", "ask_size", "levels_bid", "levels_ask").to_numpy()
    assert tops[[20, 41]].tolist() == [[3_720_250_000_000, 24 * LOT, 3_720_500_000_000, 10 * LOT, 10, 10]] * 2


@pytest.mark.parametrize("op", [BookL3, BookL3Mbp])
def test_l3_docstring_examples_run_through_the_plan(tmp_path, op):
    """The examples on the shipped two-record MBO sample, and on ESM4 where ../shared is: the plan's generated
    loop gives what the step gives record by record."""
    from nodes.marketdata.dbn import read_dbn_frames

    files = [SHIPPED_DBN / "test_data.mbo.dbn"] + ([ESM4] if SHARED_DBN.is_dir() else [])
    for file in files:
        source = {"mbo": {"op": "source.dbn", "with": {"path": str(file), "schema": "orders"}}}
        recorded = _run_example(tmp_path, op, source, "cpu")
        if op is BookL3 and file == files[-1]:
            assert recorded.equals(_run_example(tmp_path, op, source, "numba")), "the plan on cpu vs numba"
        orders = read_dbn_frames(file)[0]["orders"]
        columns = {c: orders[c].to_numpy().astype(np.int64) if orders[c].dtype != pl.UInt64
                   else orders[c].to_numpy().view(np.int64) for c in L3_INPUTS}
        expected, _ = drive(op, tuple(op.constants(op.Params())), columns, "cpu")
        for port in op.outputs:
            assert np.array_equal(recorded[port].to_numpy(), expected[port]), f"{op.name} {file.name}: {port}"


def test_books_are_in_the_op_library():
    registry = default_registry()
    for name, op in (("book.l2", BookL2), ("book.l3", BookL3), ("book.l3_mbp", BookL3Mbp)):
        assert registry.get(name) is op
        assert op.describe()["params"]["max_levels"]["default"] == 4096
