"""Every stress transform on the Binance BTCUSDT sample: exact values, chunk-size invariance, order, and a book
rebuilt from the transformed stream that is the original book under the transform's map (no ghost levels)."""

import numpy as np
import pytest

from nodes.contract import default_registry
from nodes.errors import SpecError
from nodes.marketdata.schemas import ACTION_CLEAR, ACTION_TRADE, F_LAST, F_SNAPSHOT
from nodes.stress import TRANSFORMS
from nodes.stress.book import LevelBook
from tests.nodes.stress.support import REPO, assert_same, joined, run, ticks

START = 1_723_161_265_000_000_000  # 10 s into the capture (2024-08-08T23:54:25Z)
END = 1_723_161_270_000_000_000
AFTER_DATA = 1_723_161_300_000_000_000
BOOK = joined(ticks("book_and_trades"))
CASES = {
    "price_shock": {"at": START, "bps": -800, "halflife": "2s", "step_bps": 10},
    "spread_widening": {"start": START, "end": END, "bps": 25},
    "liquidity_drain": {"start": START, "end": END, "factor": 0.1},
    "latency_spike": {"start": START, "end": END, "extra_latency": "500ms"},
    "feed_outage": {"start": START, "end": END},
    "volatility_regime": {"start": START, "end": END, "factor": 3.0},
}


def original_rows(out: dict[str, np.ndarray]) -> np.ndarray:
    """Rows of a transformed book stream that came from the source: all but the re-published blocks (each clear
    after the capture's own, through the first row flagged snapshot + last)."""
    keep = np.ones(len(out["ts_recv"]), bool)
    assert (BOOK["action"] == ACTION_CLEAR).sum() == 1  # the capture's own snapshot: the first clear
    for start in np.flatnonzero(out["action"] == ACTION_CLEAR)[1:]:
        stop = start + int(np.argmax(out["flags"][start:] == F_SNAPSHOT | F_LAST))
        keep[start: stop + 1] = False
    return keep


def book_of(rows: dict[str, np.ndarray]) -> LevelBook:
    book = LevelBook()
    book.apply(rows)
    return book


@pytest.mark.parametrize("schema", ["book_and_trades", "quotes", "trades"])
@pytest.mark.parametrize("name", CASES)
def test_chunk_size_does_not_change_the_output_and_rows_stay_sorted(name, schema):
    small = run(TRANSFORMS[name], CASES[name], ticks(schema, 7))
    whole = run(TRANSFORMS[name], CASES[name], ticks(schema, 65_536))
    assert_same(small, whole)
    assert np.all(np.diff(whole["ts_recv"]) >= 0)


def test_spread_widening_moves_bids_down_asks_up_and_trades_with_their_aggressor():
    out = run(TRANSFORMS["spread_widening"], CASES["spread_widening"], ticks("book_and_trades"))
    kept = {k: v[original_rows(out)] for k, v in out.items()}
    np.testing.assert_array_equal(kept["ts_recv"], BOOK["ts_recv"])
    row = int(np.flatnonzero(BOOK["ts_event"] >= START)[0])
    assert (BOOK["side"][row], BOOK["price"][row], BOOK["size"][row]) == (1, 61_824_000_000_000, 260_180_000)
    assert kept["price"][row] == 61_824_000_000_000 * 9975 // 10_000  # a bid, 25 bps lower: 61,669.44
    assert kept["price"][row - 1] == BOOK["price"][row - 1]
    trade = int(np.flatnonzero((BOOK["action"] == ACTION_TRADE) & (BOOK["ts_event"] >= START))[0])
    assert (BOOK["side"][trade], BOOK["price"][trade]) == (1, 61_824_010_000_000)  # a buyer took the ask
    assert kept["price"][trade] == 61_824_010_000_000 * 10_025 // 10_000
    np.testing.assert_array_equal(kept["size"], BOOK["size"])


def test_quotes_widen_on_both_sides():
    original = joined(ticks("quotes"))
    out = run(TRANSFORMS["spread_widening"], CASES["spread_widening"], ticks("quotes"))
    row = int(np.flatnonzero(original["ts_event"] >= START)[0])
    assert (original["bid_px"][row], original["ask_px"][row]) == (61_824_000_000_000, 61_824_010_000_000)
    assert (out["bid_px"][row], out["ask_px"][row]) == (61_669_440_000_000, 61_978_570_025_000)
    inside = (original["ts_event"] >= START) & (original["ts_event"] < END)
    np.testing.assert_array_equal(out["bid_px"][~inside], original["bid_px"][~inside])
    assert np.all(out["ask_px"][inside] - out["bid_px"][inside] > original["ask_px"][inside] - original["bid_px"][inside])


@pytest.mark.parametrize("name", ["spread_widening", "liquidity_drain", "volatility_regime"])
def test_after_a_window_the_rebuilt_book_is_the_original_book_under_the_map_of_the_end(name):
    out = run(TRANSFORMS[name], CASES[name], ticks("book_and_trades", 7))
    rebuilt, original = book_of(out), book_of(BOOK)
    assert len(rebuilt) == len(original) > 1000  # no ghost level, none lost
    np.testing.assert_array_equal(rebuilt.size, original.size)
    if name == "volatility_regime":  # prices keep the level the regime left them at: one constant factor
        ratio = rebuilt.price / original.price
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)
        assert abs(ratio[0] - 1) > 1e-5
    else:
        np.testing.assert_array_equal(rebuilt.price, original.price)


def test_inside_a_window_the_rebuilt_book_is_the_mapped_original_book():
    params = {**CASES["spread_widening"], "end": AFTER_DATA}
    out = run(TRANSFORMS["spread_widening"], params, ticks("book_and_trades", 7))
    rebuilt, original = book_of(out), book_of(BOOK)
    np.testing.assert_array_equal(rebuilt.price, np.rint(original.price * (1 - original.side * 0.0025)).astype(np.int64))
    np.testing.assert_array_equal(rebuilt.size, original.size)
    assert (out["action"] == ACTION_CLEAR).sum() == 2  # the capture's snapshot and one re-publish


def test_liquidity_drain_thins_levels_and_trades_and_never_removes_a_level():
    out = run(TRANSFORMS["liquidity_drain"], {**CASES["liquidity_drain"], "end": AFTER_DATA}, ticks("book_and_trades"))
    kept = {k: v[original_rows(out)] for k, v in out.items()}
    row = int(np.flatnonzero(BOOK["ts_event"] >= START)[0])
    assert kept["size"][row] == 26_018_000  # 0.26018 BTC → a tenth
    inside = BOOK["ts_event"] >= START
    np.testing.assert_array_equal(kept["size"] == 0, BOOK["size"] == 0)
    tiny = inside & (BOOK["size"] > 0) & (BOOK["size"] < 10)
    assert np.all(kept["size"][tiny] >= 1)
    trade = int(np.flatnonzero((BOOK["action"] == ACTION_TRADE) & inside)[0])
    assert kept["size"][trade] == round(BOOK["size"][trade] * 0.1)
    np.testing.assert_array_equal(kept["price"], BOOK["price"])
    rebuilt, original = book_of(out), book_of(BOOK)
    np.testing.assert_array_equal(rebuilt.size, np.maximum(np.rint(original.size * 0.1), 1).astype(np.int64))


def test_price_shock_re_publishes_the_book_at_each_step_of_its_decay():
    out = run(TRANSFORMS["price_shock"], CASES["price_shock"], ticks("book_and_trades"))
    kept = {k: v[original_rows(out)] for k, v in out.items()}
    np.testing.assert_array_equal(kept["ts_recv"], BOOK["ts_recv"])
    t = np.maximum.accumulate(BOOK["ts_event"])
    steps = np.where(t >= START, np.rint(-80 * np.exp2(-(t - START) / 2e9)), 0)  # in 10 bps steps
    there = (BOOK["price"] > 0) & (BOOK["price"] < 2**63 - 1)
    np.testing.assert_array_equal(kept["price"][there], np.rint(BOOK["price"][there] * (1 + steps[there] * 1e-3)))
    changes = np.count_nonzero(np.diff(steps))
    assert (out["action"] == ACTION_CLEAR).sum() == 1 + changes  # one re-publish per step
    assert 20 < changes <= 80
    rebuilt, original = book_of(out), book_of(BOOK)
    np.testing.assert_array_equal(rebuilt.price, np.rint(original.price * (1 + steps[-1] * 1e-3)).astype(np.int64))


def test_volatility_regime_anchors_on_the_mid_before_it():
    out = run(TRANSFORMS["volatility_regime"], CASES["volatility_regime"], ticks("book_and_trades"))
    kept = {k: v[original_rows(out)] for k, v in out.items()}
    first = int(np.flatnonzero(np.maximum.accumulate(BOOK["ts_event"]) >= START)[0])
    anchor = book_of({k: v[:first] for k, v in BOOK.items()}).mid(0)
    assert anchor == 61_824_005_000_000
    inside = (np.maximum.accumulate(BOOK["ts_event"]) >= START) & (BOOK["ts_event"] < END) & (BOOK["price"] > 0)
    expected = np.rint(anchor * (BOOK["price"][inside] / anchor) ** 3)
    np.testing.assert_array_equal(kept["price"][inside], expected)


def test_feed_delays_change_only_receive_times():
    spike = run(TRANSFORMS["latency_spike"], CASES["latency_spike"], ticks("book_and_trades"))
    outage = run(TRANSFORMS["feed_outage"], CASES["feed_outage"], ticks("book_and_trades"))
    inside = (BOOK["ts_recv"] >= START) & (BOOK["ts_recv"] < END)
    assert np.all(outage["ts_recv"][inside] == END)
    delayed = BOOK["ts_recv"] + np.where(inside, 500_000_000, 0)
    np.testing.assert_array_equal(spike["ts_recv"], np.maximum.accumulate(delayed))
    assert np.any(spike["ts_recv"][~inside] != BOOK["ts_recv"][~inside])  # rows after the window queued
    for out in (spike, outage):
        for k in BOOK:
            if k != "ts_recv":
                np.testing.assert_array_equal(out[k], BOOK[k])


def test_an_l3_stream_is_refused_with_the_reason():
    op = default_registry().get("source.dbn")
    params = op.Params.model_validate({"path": "data/samples/dbn/test_data.mbo.dbn", "schema": "orders"})
    chunks = op.specialize(params).open(params, REPO).chunks(100)
    with pytest.raises(SpecError, match="L3"):
        run(TRANSFORMS["price_shock"], {"at": 0, "bps": -100}, chunks)
    # delays need no prices: they work on any stream
    chunks = op.specialize(params).open(params, REPO).chunks(100)
    out = run(TRANSFORMS["feed_outage"], {"start": 0, "end": 1_609_160_400_001_000_000}, chunks)
    assert np.all(np.diff(out["ts_recv"]) >= 0)

