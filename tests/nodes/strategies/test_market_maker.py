"""strategy.market_maker: the quote rules by hand, its invariants on a real book, parity, prefix invariance."""

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.contract import default_registry
from nodes.marketdata.schemas import F_LAST, UNDEF_PRICE
from tests.nodes.op_examples import docstring_example
from tests.nodes.strategies.real_book import btcusdt_tops, random_walk_position, run_example_on_capture
from tests.support import assert_bit_identical, drive

NAME = "strategy.market_maker"
OP = default_registry().get(NAME)
TICK = 10_000_000  # 0.01 in 1e-9 units
UNIT = 1_000_000_000
BASE = {"tick_size": 0.01, "quote_qty": 0.001, "max_position": 0.005}


def _quotes(params: dict, best_bid, best_ask, position, flags=None, target="cpu") -> np.ndarray:
    """(bid_px, bid_qty, ask_px, ask_qty) per event as rows."""
    n = len(best_bid)
    columns = [np.asarray(best_bid, np.int64), np.asarray(best_ask, np.int64), np.asarray(position, np.int64),
               np.full(n, F_LAST, np.int64) if flags is None else np.asarray(flags, np.int64)]
    outputs = drive(OP, OP.Params.model_validate({**BASE, **params}), [], columns, target)
    return np.stack(outputs, axis=1)


def _px(ticks: int) -> int:
    return ticks * TICK


def test_a_one_tick_market_is_joined_on_both_sides_and_half_spread_steps_back():
    bid, ask = _px(10_000), _px(10_001)  # 100.00 / 100.01
    q = 1_000_000
    assert _quotes({}, [bid], [ask], [0]).tolist() == [[bid, q, ask, q]]
    assert _quotes({"half_spread_ticks": 1}, [bid], [ask], [0]).tolist() == [[_px(9_999), q, _px(10_002), q]]
    # a three-tick market: mid on the grid, the quotes one tick either side of it
    assert _quotes({"half_spread_ticks": 1}, [bid], [_px(10_002)], [0]).tolist() == [[bid, q, _px(10_002), q]]


def test_inventory_skews_both_quotes_against_the_position():
    bid, ask = _px(10_000), _px(10_010)  # a ten-tick market: the skew has room to show
    params = {"half_spread_ticks": 2, "skew_ticks_per_unit": 1000.0, "max_position": 0.01}
    flat, long_, short = _quotes(params, [bid] * 3, [ask] * 3, [0, 3_000_000, -3_000_000])
    assert (flat[0], flat[2]) == (_px(10_003), _px(10_007))
    assert (long_[0], long_[2]) == (_px(10_000), _px(10_004))  # 0.003 long × 1000 = 3 ticks down
    assert (short[0], short[2]) == (_px(10_006), _px(10_010))
    # a skew past the market is pulled back so the quotes stay post-only: bid under the ask, ask over the bid
    far = _quotes(params, [bid], [ask], [9_000_000])[0]
    assert far[2] == _px(10_001) and far[0] < far[2] and far[0] == _px(9_994)


def test_min_spread_widens_around_the_skewed_mid():
    bid, ask = _px(10_000), _px(10_001)
    row = _quotes({"min_spread_ticks": 3}, [bid], [ask], [0])[0]
    assert (row[0], row[2]) == (_px(9_999), _px(10_002))


def test_a_side_is_pulled_at_the_position_limit_with_the_reserve():
    bid, ask = _px(10_000), _px(10_001)
    q = 1_000_000
    positions = [3_000_000, 4_000_000, -3_000_000, -4_000_000, 5_000_000]
    rows = _quotes({}, [bid] * 5, [ask] * 5, positions)  # max 0.005, reserve one quote: ±0.004 after a fill
    assert rows[:, 1].tolist() == [q, 0, q, q, 0]
    assert rows[:, 3].tolist() == [q, q, q, 0, q]
    no_reserve = _quotes({"reserve_quotes": 0}, [bid] * 5, [ask] * 5, positions)
    assert no_reserve[:, 1].tolist() == [q, q, q, q, 0]


def test_empty_crossed_or_locked_books_pull_both_sides_and_keep_the_prices():
    bid, ask = _px(10_000), _px(10_001)
    rows = _quotes({}, [bid, UNDEF_PRICE, bid, ask, bid, bid], [ask, ask, UNDEF_PRICE, ask, bid - TICK, ask],
                   [0] * 6)
    assert rows[:, 1].tolist() == [1_000_000, 0, 0, 0, 0, 1_000_000]
    assert rows[:, 3].tolist() == [1_000_000, 0, 0, 0, 0, 1_000_000]
    assert (rows[:, 0] == bid).all() and (rows[:, 2] == ask).all()
    before_any = _quotes({}, [UNDEF_PRICE], [UNDEF_PRICE], [0])[0]
    assert before_any.tolist() == [0, 0, TICK, 0]


def test_quotes_change_only_where_a_venue_event_is_complete():
    bid, ask = _px(10_000), _px(10_001)
    flags = [F_LAST, 0, 0, F_LAST]
    rows = _quotes({}, [bid, ask, ask, bid + TICK], [ask, bid, ask + TICK, ask + TICK], [0] * 4, flags)
    assert rows[1].tolist() == rows[0].tolist() == rows[2].tolist()  # mid-event (even crossed): held
    assert rows[3].tolist() == [bid + TICK, 1_000_000, ask + TICK, 1_000_000]
    every = _quotes({"every_record": True}, [bid, ask], [ask, bid], [0, 0], flags[:2])
    assert every[1, 1] == 0  # every record: the transient cross pulls the quotes


def test_on_a_real_book_quotes_are_on_the_grid_ordered_post_only_and_within_the_limit():
    tops = btcusdt_tops()
    n = len(tops["best_bid"])
    position = random_walk_position(n, 1_000_000, seed=3)
    params = {"half_spread_ticks": 1, "skew_ticks_per_unit": 500.0, "max_position": 0.01}
    rows = _quotes(params, tops["best_bid"], tops["best_ask"], position, tops["flags"])
    bid_px, bid_qty, ask_px, ask_qty = rows.T
    quoting = (bid_qty > 0) | (ask_qty > 0)
    complete = ((tops["flags"] & F_LAST) != 0) & (tops["best_bid"] < tops["best_ask"])
    assert complete.sum() > 400 and quoting[complete].all()  # at least one side quotes on every complete book
    assert not quoting[: np.argmax(complete)].any()  # nothing before the first whole book (the snapshot's rows)
    assert (bid_px < ask_px).all() and (bid_px % TICK == 0).all() and (ask_px % TICK == 0).all()
    # post-only where they are set (mid-event records hold the last quotes while the book moves)
    assert (bid_px[complete] < tops["best_ask"][complete]).all()
    assert (ask_px[complete] > tops["best_bid"][complete]).all()
    # what the limit leaves: a bid only while a fill and a reserve quote stay within 0.01 long, an ask mirrored
    bids, asks = complete & (bid_qty > 0), complete & (ask_qty > 0)
    assert (position[bids] + 2_000_000 <= 10_000_000).all() and (position[asks] - 2_000_000 >= -10_000_000).all()
    assert (bid_qty[complete] == 0).any() and (ask_qty[complete] == 0).any()  # the walk reaches both limits
    # longer → quotes lower (or equal): against inventory
    flat = _quotes(params, tops["best_bid"], tops["best_ask"], np.zeros(n, np.int64), tops["flags"])
    longer = complete & (position > 0)
    assert (bid_px[longer] <= flat[longer, 0]).all() and (ask_px[longer] <= flat[longer, 2]).all()
    assert (bid_px[longer] < flat[longer, 0]).any()


@pytest.mark.parametrize("params", [{}, {"half_spread_ticks": 3, "min_spread_ticks": 8, "skew_ticks_per_unit": 777.7,
                                        "reserve_quotes": 0, "every_record": True}])
def test_cpu_and_numba_are_bit_identical_on_a_real_book(params):
    tops = btcusdt_tops()
    position = random_walk_position(len(tops["best_bid"]), 1_000_000, seed=5)
    on_cpu = _quotes(params, tops["best_bid"], tops["best_ask"], position, tops["flags"], "cpu")
    on_numba = _quotes(params, tops["best_bid"], tops["best_ask"], position, tops["flags"], "numba")
    for k, port in enumerate(OP.outputs):
        assert_bit_identical(on_cpu[:, k], on_numba[:, k], f"{NAME} {params}: {port}")


def test_outputs_up_to_t_ignore_inputs_after_t():
    tops = btcusdt_tops()
    n = len(tops["best_bid"])
    position = random_walk_position(n, 1_000_000, seed=8)
    rng = np.random.default_rng(11)
    params = {"skew_ticks_per_unit": 500.0}
    before = _quotes(params, tops["best_bid"], tops["best_ask"], position, tops["flags"])
    for t in (0, 100, 3_000, n - 2):
        changed = [column.copy() for column in (tops["best_bid"], tops["best_ask"], position, tops["flags"])]
        for column in changed:
            column[t + 1 :] = rng.integers(-10**15, 10**15, n - t - 1)
        after = _quotes(params, *changed)
        np.testing.assert_array_equal(before[: t + 1], after[: t + 1], err_msg=f"t={t}")


def test_params_that_could_never_quote_are_refused():
    with pytest.raises(ValidationError, match="could never quote"):
        OP.Params.model_validate({**BASE, "max_position": 0.0015})
    with pytest.raises(ValidationError, match="below the data's price unit"):
        OP.Params.model_validate({**BASE, "tick_size": 1e-12})
    with pytest.raises(ValidationError, match="extra"):
        OP.Params.model_validate({**BASE, "spread": 2})


def test_docstring_example_is_valid():
    example = docstring_example(NAME)
    node = example["quotes"]
    OP.Params.model_validate(node["with"])
    assert node["in"]["position"] == "prev(venue.position)" and list(node["in"]) == list(OP.inputs)


def test_docstring_example_runs_in_a_spec_and_the_engine_adds_nothing(tmp_path):
    """The example on the shipped capture against the tick venue: the node's recorded quotes are exactly its
    step driven over the values the engine fed it (the venue's position through prev)."""
    example = docstring_example(NAME)
    venue = {"op": "backtest.tick_venue", "in": {p: f"quotes.{p}" for p in OP.outputs},
             "with": {"book": "l2", "orders": "quotes", "entry_latency": "1ms", "response_latency": "1ms"}}
    run, fed = run_example_on_capture(tmp_path, example, venue)
    by_hand = drive(OP, OP.Params.model_validate(example["quotes"]["with"]), [], fed, "cpu")
    recorded = run.replay.recorded["quotes"]
    for port, expected in zip(OP.outputs, by_hand):
        assert_bit_identical(recorded[port].to_numpy(), expected, f"example: {port} engine vs by hand")
    assert run.replay.summaries["venue"].stats["fills"] > 0 and (fed[2] != 0).any()
