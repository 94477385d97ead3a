"""Matching on a hand-built L2 book: every order type, partial fills, average prices, remembered liquidity,
trade-throughs and a book that crosses a resting order. Latencies are 0 so every number is known by hand."""

import polars as pl
import pytest

from nodes.marketdata.schemas import F_LAST
from tests.nodes.backtest.tick.venue_driver import U, book_events, drive, level, tick, trade, units

COMMANDS = {"orders": "commands", "cash": 100_000.0}
LIMIT, MARKET, IOC, FOK, POST_ONLY = 0, 1, 2, 3, 4


def book() -> list[dict]:
    """bids 100 × 5, 99 × 10; asks 101 × 3, 102 × 4, 103 × 10 (at ts 1000)."""
    return book_events(1000, bids=[(100, 5), (99, 10)], asks=[(101, 3), (102, 4), (103, 10)])


def new(ts: int, cmd_id: int, side: int, order_type: int, price: float, qty: float) -> dict:
    return tick(ts, cmd=1, cmd_id=cmd_id, cmd_side=side, cmd_type=order_type, cmd_price=price, cmd_qty=qty)


def fills_of(run, order_id: int) -> list[tuple]:
    rows = run.fills.filter(run.fills["order_id"] == order_id)
    return [(p / U, q / U, liq, lv) for p, q, liq, lv in rows.select("price", "qty", "liquidity", "levels").iter_rows()]


def test_market_order_walks_the_book_level_by_level_with_its_average_price():
    run = drive(COMMANDS, book() + [new(2000, 1, 1, MARKET, 0, 5), tick(3000)])
    assert fills_of(run, 1) == [(101.0, 3.0, "taker", 1), (102.0, 2.0, "taker", 2)]
    assert run.fills["avg_price"].to_list() == [101.0, pytest.approx(101.4, abs=1e-12)]
    assert run.events_of(1) == ["sent", "acked", "partially_filled", "filled"]
    assert run.outputs["position"][-1] == units(5)
    assert run.outputs["cash"][-1] == pytest.approx(100_000 - 3 * 101 - 2 * 102, abs=1e-9)
    # the fill log carries the book that justified it (the top before the walk)
    assert run.fills.select("best_bid", "best_ask", "bid_size", "ask_size").row(0) == (
        units(100), units(101), units(5), units(3))


def test_liquidity_taken_is_remembered_until_the_data_updates_the_level():
    events = book() + [
        new(2000, 1, 1, MARKET, 0, 5),   # 3 @ 101, 2 @ 102
        new(2100, 2, 1, MARKET, 0, 4),   # 101 and 2 of 102 are gone: 2 @ 102, 2 @ 103
        level(2200, -1, 102, 4),         # the data sets 102 again: its size is back
        new(2300, 3, 1, MARKET, 0, 1),   # 1 @ 102
        tick(2400),
    ]
    run = drive(COMMANDS, events)
    assert fills_of(run, 2) == [(102.0, 2.0, "taker", 1), (103.0, 2.0, "taker", 2)]
    assert fills_of(run, 3) == [(102.0, 1.0, "taker", 1)]
    # no size was taken twice: volume per level never exceeds what the data showed
    assert run.fills.group_by("price").agg(pl.col("qty").sum()).sort("price").rows() == [
        (units(101), units(3)), (units(102), units(5)), (units(103), units(2))]


def test_ioc_takes_what_crosses_its_limit_and_the_remainder_is_cancelled():
    run = drive(COMMANDS, book() + [new(2000, 7, 1, IOC, 102, 10), tick(3000)])
    assert fills_of(run, 7) == [(101.0, 3.0, "taker", 1), (102.0, 4.0, "taker", 2)]
    assert run.events_of(7) == ["sent", "acked", "partially_filled", "partially_filled", "cancelled"]
    cancelled = run.orders.filter((run.orders["order_id"] == 7) & (run.orders["event"] == "cancelled"))
    assert cancelled["reason"].to_list() == ["IOC remainder cancelled"]
    assert run.outputs["position"][-1] == units(7)


def test_fok_fills_in_full_or_not_at_all():
    run = drive(COMMANDS, book() + [new(2000, 1, 1, FOK, 102, 8), new(2100, 2, 1, FOK, 102, 7), tick(3000)])
    assert fills_of(run, 1) == []
    assert run.events_of(1) == ["sent", "acked", "cancelled"]
    assert run.orders.filter(run.orders["order_id"] == 1)["reason"][-1] == "FOK cannot fill in full"
    assert fills_of(run, 2) == [(101.0, 3.0, "taker", 1), (102.0, 4.0, "taker", 2)]
    assert run.events_of(2)[-1] == "filled"


def test_post_only_is_rejected_when_it_would_cross_and_rests_otherwise():
    run = drive(COMMANDS, book() + [new(2000, 1, 1, POST_ONLY, 101, 1), new(2100, 2, 1, POST_ONLY, 100.5, 1),
                                    tick(3000)])
    assert run.events_of(1) == ["sent", "rejected"]
    assert run.orders.filter(run.orders["order_id"] == 1)["reason"][-1] == "post-only order would cross"
    assert run.events_of(2) == ["sent", "acked"]
    assert run.outputs["working_bid_px"][-1] == units(100.5)
    assert run.fills.height == 0


def test_limit_that_crosses_takes_then_rests_and_the_book_crossing_it_fills_it_as_maker():
    events = book() + [
        new(2000, 1, 1, LIMIT, 101.5, 5),   # takes 3 @ 101, rests 2 @ 101.5 (a new level: nothing ahead)
        tick(2100),
        level(2200, -1, 101.5, 4),          # an ask at our bid: it would have traded with us
        tick(2300),
    ]
    run = drive(COMMANDS, events)
    assert fills_of(run, 1) == [(101.0, 3.0, "taker", 1), (101.5, 2.0, "maker", 0)]
    assert run.queue.filter(run.queue["order_id"] == 1)["ahead"].to_list() == [0]
    assert run.outputs["working_bid_px"][-3] == units(101.5)
    assert run.outputs["position"][-1] == units(5)
    # the crossed ask's size is used: a market buy now finds 2 left at 101.5
    run2 = drive(COMMANDS, events + [new(2400, 2, 1, MARKET, 0, 3), tick(2500)])
    assert fills_of(run2, 2) == [(101.5, 2.0, "taker", 1), (102.0, 1.0, "taker", 2)]


def test_market_order_in_an_empty_book_is_rejected():
    run = drive(COMMANDS, [level(1000, 1, 100, 5), new(2000, 1, -1, MARKET, 0, 1), new(2100, 2, 1, MARKET, 0, 1),
                           tick(3000)])
    assert run.events_of(1) == ["sent", "acked", "filled"]  # there are bids to sell to
    assert run.events_of(2) == ["sent", "rejected"]
    assert run.orders.filter(run.orders["order_id"] == 2)["reason"][-1] == "no liquidity for a market order"


def test_a_trade_through_our_price_fills_the_whole_order_at_our_price():
    events = book() + [new(2000, 1, 1, POST_ONLY, 100, 2), tick(2100), trade(2200, -1, 99.5, 0.1), tick(2300)]
    run = drive(COMMANDS, events)
    assert fills_of(run, 1) == [(100.0, 2.0, "maker", 0)]
    assert run.fills["ahead_before"].to_list() == [units(5)]


def test_trades_at_our_price_work_through_the_queue_then_fill_partially():
    events = book() + [
        new(2000, 1, 1, POST_ONLY, 100, 2),  # 5 ahead
        tick(2100),
        trade(2200, -1, 100, 3),             # 2 ahead
        trade(2300, -1, 100, 3),             # 0 ahead, 1 of ours filled
        trade(2400, -1, 100, 5),             # the last 1 filled
        tick(2500),
    ]
    run = drive(COMMANDS, events)
    assert fills_of(run, 1) == [(100.0, 1.0, "maker", 0), (100.0, 1.0, "maker", 0)]
    assert run.queue["ahead"].to_list() == [units(5), units(2), 0]
    assert run.events_of(1) == ["sent", "acked", "partially_filled", "filled"]
    # a buyer's print never touches our bid
    run2 = drive(COMMANDS, events[:-4] + [trade(2200, 1, 100, 50), tick(2300)])
    assert run2.fills.height == 0


def test_our_orders_at_one_level_share_a_print_in_queue_order():
    events = book() + [
        new(2000, 1, 1, POST_ONLY, 100, 2),
        new(2100, 2, 1, POST_ONLY, 100, 2),
        tick(2200),
        trade(2300, -1, 100, 8),  # 5 market ahead, then ours: 2 of the first, 1 of the second
        tick(2400),
    ]
    run = drive(COMMANDS, events)
    assert fills_of(run, 1) == [(100.0, 2.0, "maker", 0)]
    assert fills_of(run, 2) == [(100.0, 1.0, "maker", 0)]
    assert run.fills["qty"].sum() == units(8) - units(5)


def test_trade_volume_before_an_update_is_not_counted_twice():
    events = book() + [
        new(2000, 1, 1, POST_ONLY, 100, 1),  # 5 ahead
        tick(2100),
        trade(2200, -1, 100, 2),             # 3 ahead
        level(2300, 1, 100, 3),              # the data catches up: the level lost exactly what traded
        tick(2400),
    ]
    run = drive({**COMMANDS, "queue_model": {"model": "prob_power", "n": 2}}, events)
    assert run.queue["ahead"].to_list() == [units(5), units(3)]


def test_a_level_update_at_an_empty_side_does_not_invent_fills():
    events = [level(1000, 1, 100, 5, flags=F_LAST), new(2000, 1, 1, POST_ONLY, 100, 1), tick(2100),
              level(2200, 1, 100, 0), level(2300, 1, 99, 4), tick(2400)]
    run = drive(COMMANDS, events)
    assert run.fills.height == 0
    assert run.queue["ahead"].to_list() == [units(5), 0]
