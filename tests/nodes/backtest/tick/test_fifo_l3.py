"""Exact FIFO on an L3 (MBO) book: a hand-built sequence where every change of our queue place is known."""

from nodes.marketdata.schemas import F_LAST
from tests.nodes.backtest.tick.venue_driver import drive, units

L3 = {"book": "l3", "orders": "commands"}
POST_ONLY = 4


def mbo(ts, action, order_id, side, price, size, flags=F_LAST, **inputs):
    return {"ts": ts, "action": action, "order_id": order_id, "side": side, "price": price, "size": size,
            "flags": flags, **inputs}


def our_bid(ts, qty=2.0, price=100.0):
    return mbo(ts, "N", 0, 0, 0, 0, cmd=1, cmd_id=1, cmd_side=1, cmd_type=POST_ONLY, cmd_price=price, cmd_qty=qty)


def opening() -> list[dict]:
    """Bids 3 (id 1) and 4 (id 2) at 100, an ask 5 (id 10) at 101; then our bid of 2 at 100 (7 ahead)."""
    return [mbo(1000, "A", 1, 1, 100, 3, flags=0), mbo(1001, "A", 2, 1, 100, 4, flags=0),
            mbo(1002, "A", 10, -1, 101, 5), our_bid(2000)]


def queue(run) -> list[tuple]:
    return [(ahead / 1e9, cause) for ahead, cause in run.queue.select("ahead", "cause").iter_rows()]


def test_every_change_ahead_of_us_moves_our_place_by_exactly_its_size():
    events = opening() + [
        mbo(2100, "A", 3, 1, 100, 5),   # joins behind us
        mbo(2200, "C", 1, 1, 100, 3),   # ahead: gone, 4 left ahead
        mbo(2300, "M", 2, 1, 100, 1),   # ahead: size down 4 → 1
        mbo(2400, "M", 2, 1, 100, 6),   # ahead: size up, loses its place, goes behind us
        mbo(2500, "F", 3, 1, 100, 2),   # id 3, behind us, is filled 2: the aggressor reached us first
        mbo(2600, "N", 0, 0, 0, 0),
    ]
    run = drive(L3, events)
    assert queue(run) == [(7.0, "arrival"), (4.0, "order_ahead_left"), (1.0, "order_ahead_left"),
                          (0.0, "order_ahead_left")]
    assert run.fills.select("price", "qty", "liquidity").rows() == [(units(100), units(2), "maker")]
    assert run.outputs["position"][-1] == units(2)


def test_partial_cancels_and_fills_ahead_advance_without_filling_us():
    events = opening() + [
        mbo(2100, "F", 1, 1, 100, 3),   # id 1 (ahead) filled: its C follows
        mbo(2101, "C", 1, 1, 100, 3),
        mbo(2200, "C", 2, 1, 100, 1),   # partial cancel of id 2: 3 left ahead
        mbo(2300, "N", 0, 0, 0, 0),
    ]
    run = drive(L3, events)
    assert queue(run) == [(7.0, "arrival"), (4.0, "order_ahead_left"), (3.0, "order_ahead_left")]
    assert run.fills.height == 0


def test_orders_modified_into_our_level_join_behind_us():
    events = opening() + [
        mbo(2100, "A", 4, 1, 99, 9),
        mbo(2200, "M", 4, 1, 100, 9),   # moves to our price: behind us
        mbo(2300, "F", 4, 1, 100, 1),   # so its fill is ours
        mbo(2400, "N", 0, 0, 0, 0),
    ]
    run = drive(L3, events)
    assert queue(run) == [(7.0, "arrival")]
    assert run.fills["qty"].to_list() == [units(1)]


def test_trades_through_our_price_and_a_crossing_ask_fill_us_at_our_price():
    through = drive(L3, opening() + [mbo(2100, "T", 0, -1, 99.5, 1), mbo(2200, "N", 0, 0, 0, 0)])
    assert through.fills.select("price", "qty").rows() == [(units(100), units(2))]
    crossed = drive(L3, opening() + [mbo(2100, "A", 11, -1, 100, 1), mbo(2200, "N", 0, 0, 0, 0)])
    assert crossed.fills.select("price", "qty", "liquidity").rows() == [(units(100), units(1), "maker")]


def test_after_a_clear_our_order_queues_behind_the_snapshot():
    events = opening() + [
        mbo(2100, "R", 0, 0, 0, 0, flags=0),
        mbo(2101, "A", 7, 1, 100, 2, flags=0),
        mbo(2102, "A", 8, 1, 100, 3, flags=F_LAST),   # snapshot complete: 5 at our level, ahead of us
        mbo(2200, "C", 7, 1, 100, 2),
        mbo(2300, "N", 0, 0, 0, 0),
    ]
    run = drive(L3, events)
    assert queue(run) == [(7.0, "arrival"), (5.0, "resync"), (3.0, "order_ahead_left")]


def test_l3_takers_walk_the_levels_the_orders_add_up_to():
    events = opening()[:-1] + [mbo(1003, "A", 11, -1, 101, 2), mbo(1004, "A", 12, -1, 102, 4),
                               mbo(2000, "N", 0, 0, 0, 0, cmd=1, cmd_id=1, cmd_side=1, cmd_type=1, cmd_qty=8),
                               mbo(2100, "N", 0, 0, 0, 0)]
    run = drive(L3, events)
    assert run.fills.select("price", "qty", "levels").rows() == [(units(101), units(7), 1), (units(102), units(1), 2)]
