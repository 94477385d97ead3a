"""The order state machine: modifies and their queue priority, cancels racing fills, late, duplicate and unknown
requests (logged with a reason, never a crash), capacity, venue reject bursts, and the quotes/target modes."""

from nodes.marketdata.schemas import UNDEF_PRICE
from tests.nodes.backtest.tick.venue_driver import book_events, drive, level, tick, trade, units

LIMIT, MARKET, IOC, FOK, POST_ONLY = 0, 1, 2, 3, 4
NEW, CANCEL, MODIFY = 1, 2, 3
COMMANDS = {"orders": "commands"}


def book() -> list[dict]:
    return book_events(1000, bids=[(100, 5), (99, 10)], asks=[(101, 3), (102, 4)])


def new(ts, cmd_id, side, price, qty, order_type=POST_ONLY):
    return tick(ts, cmd=NEW, cmd_id=cmd_id, cmd_side=side, cmd_type=order_type, cmd_price=price, cmd_qty=qty)


def cancel(ts, cmd_id, ref):
    return tick(ts, cmd=CANCEL, cmd_id=cmd_id, cmd_ref=ref)


def modify(ts, cmd_id, ref, price, qty):
    return tick(ts, cmd=MODIFY, cmd_id=cmd_id, cmd_ref=ref, cmd_price=price, cmd_qty=qty)


def reasons(run, order_id):
    rows = run.orders.filter(run.orders["order_id"] == order_id)
    return list(zip(rows["event"].to_list(), rows["reason"].to_list()))


def test_modify_down_keeps_the_queue_place():
    events = book() + [new(2000, 1, 1, 100, 3), new(2100, 2, 1, 100, 2), tick(2200),
                       modify(2300, 3, 1, 100, 1), tick(2400),
                       trade(2500, -1, 100, 6), tick(2600)]
    run = drive(COMMANDS, events)
    assert run.events_of(1) == ["sent", "acked", "modify_sent", "modified", "filled"]
    # no new queue place for 1: 5 market ahead, then 1 (1 lot), then 2: a print of 6 fills order 1 only
    assert run.queue.filter(run.queue["order_id"] == 1)["cause"].to_list() == ["arrival", "trade"]
    assert run.fills["order_id"].to_list() == [1]
    assert run.fills["qty"].to_list() == [units(1)]


def test_modify_up_or_to_a_new_price_loses_the_queue_place():
    base = book() + [new(2000, 1, 1, 100, 1), new(2100, 2, 1, 100, 1), tick(2200), level(2250, 1, 100, 8)]
    up = drive(COMMANDS, base + [modify(2300, 3, 1, 100, 2), tick(2400), trade(2500, -1, 100, 6), tick(2600)])
    # order 1 re-queued behind the 8 now displayed: the print of 6 reaches order 2 (5 ahead of it) only
    assert up.queue.filter(up.queue["order_id"] == 1)["cause"].to_list()[:2] == ["arrival", "requeue"]
    assert up.queue.filter((up.queue["order_id"] == 1) & (up.queue["cause"] == "requeue"))["ahead"].to_list() == [
        units(8)]
    assert up.fills["order_id"].to_list() == [2]
    moved = drive(COMMANDS, base + [modify(2300, 3, 1, 99.5, 1), tick(2400)])
    assert moved.queue.filter(moved.queue["order_id"] == 1)["price"].to_list() == [units(100), units(99.5)]
    assert moved.outputs["working_bid_px"][-1] == units(100)  # order 2 is still the best working bid


def test_modify_to_at_most_the_filled_quantity_cancels():
    events = book() + [new(2000, 1, 1, 100, 3), tick(2100), trade(2200, -1, 100, 6), tick(2300),
                       modify(2400, 2, 1, 100, 1), tick(2500)]
    run = drive(COMMANDS, events)
    assert reasons(run, 1)[-1] == ("cancelled", "modified to at most the filled quantity")
    assert run.outputs["position"][-1] == units(1)


def test_a_cancel_racing_a_fill_arrives_too_late_and_is_logged():
    params = {**COMMANDS, "entry_latency": "1us", "cancel_latency": "1ms", "response_latency": "1us"}
    events = book() + [new(2000, 1, 1, 100, 1), tick(5000), cancel(10_000, 2, 1), trade(20_000, -1, 99, 1),
                       tick(2_000_000)]
    run = drive(params, events)
    assert [e for e, _ in reasons(run, 1)] == ["sent", "acked", "cancel_sent", "filled", "cancel_rejected"]
    assert reasons(run, 1)[-1][1] == "too late: the order is no longer live at the venue"
    late = run.orders.filter(run.orders["event"] == "cancel_rejected")
    assert late["ts_exchange"].to_list() == [10_000 + 1_000_000]
    assert run.outputs["position"][-1] == units(1)


def test_late_unknown_and_duplicate_commands_are_logged_never_crash():
    events = book() + [new(2000, 5, 1, 100, 1, MARKET), tick(2100),
                       cancel(2200, 6, 5),                 # the order is filled and the strategy knows it
                       modify(2300, 7, 999, 100, 1),       # no such order
                       new(2400, 4, 1, 100, 1),            # an old cmd_id
                       tick(2500, cmd=9, cmd_id=8),        # no such command
                       new(2600, 9, 1, 99, 1),             # fine
                       new(2650, 8, 1, 99, 1),             # 8 again, after 9: a duplicate
                       tick(2700)]
    run = drive(COMMANDS, events)
    # a repeated id equal to the last one is the strategy's held output, not a new command: ignored silently
    local = run.orders.filter(run.orders["ts_exchange"] == 0)
    assert local.select("order_id", "event", "reason").rows() == [
        (5, "rejected", "the order is already filled"),
        (999, "rejected", "unknown order id"),
        (4, "rejected", "duplicate or out-of-order cmd_id"),
        (8, "rejected", "unknown cmd"),
        (8, "rejected", "duplicate or out-of-order cmd_id"),
    ]


def test_bad_orders_are_rejected_locally_with_their_reason():
    events = book() + [new(2000, 1, 1, 100, 0), new(2100, 2, 0, 100, 1), new(2200, 3, 1, 100, 1, order_type=9),
                       tick(2300, cmd=NEW, cmd_id=4, cmd_side=1, cmd_type=LIMIT, cmd_price=None, cmd_qty=1),
                       tick(2400)]
    run = drive(COMMANDS, events)
    assert run.orders["reason"].to_list() == ["quantity must be > 0", "side must be 1 or -1", "unknown order type",
                                               "invalid price"]


def test_max_orders_rejects_the_order_past_capacity_and_frees_slots_when_orders_end():
    events = book() + [new(2000, 1, 1, 98, 1), new(2100, 2, 1, 97, 1), new(2200, 3, 1, 96, 1), tick(2300),
                       cancel(2400, 4, 1), tick(2500), new(2600, 5, 1, 95, 1), tick(2700)]
    run = drive({**COMMANDS, "max_orders": 2}, events)
    assert reasons(run, 3) == [("rejected", "max_orders working orders reached")]
    assert run.events_of(5) == ["sent", "acked"]


def test_reject_windows_reject_requests_arriving_inside_them():
    window = {"start": 2050, "end": 2250, "rate": 1.0}
    events = book() + [new(2000, 1, 1, 98, 1), new(2100, 2, 1, 97, 1), new(2300, 3, 1, 96, 1), tick(2400)]
    run = drive({**COMMANDS, "reject_windows": [window]}, events)
    assert run.events_of(1) == ["sent", "acked"]
    assert reasons(run, 2)[-1] == ("rejected", "venue reject burst (reject_windows)")
    assert run.events_of(3) == ["sent", "acked"]
    none = drive({**COMMANDS, "reject_windows": [{**window, "rate": 0.0}]}, events)
    assert none.events_of(2) == ["sent", "acked"]


def test_reject_window_rate_is_a_probability_drawn_from_the_seed():
    events = book() + [new(3000 + 10 * i, i + 1, 1, 90 + 0.01 * i, 1) for i in range(400)] + [tick(9000)]
    params = {**COMMANDS, "max_orders": 512, "reject_windows": [{"start": 0, "end": 10**18, "rate": 0.25}]}
    runs = [drive({**params, "seed": seed}, events) for seed in (1, 1, 2)]
    rejected = [int((r.orders["reason"] == "venue reject burst (reject_windows)").sum()) for r in runs]
    assert rejected[0] == rejected[1] and 60 < rejected[0] < 140
    assert runs[0].orders.equals(runs[1].orders) and not runs[0].orders.equals(runs[2].orders)


def test_quotes_become_requests_one_side_at_a_time():
    params = {"orders": "quotes", "entry_latency": "10us", "response_latency": "10us"}
    events = book() + [
        tick(100_000, bid_px=100, bid_qty=2, ask_px=101.5, ask_qty=1),
        tick(105_000, bid_px=99.5, bid_qty=2),    # a new price while the first new is in flight: waits
        tick(200_000),                            # seen the acks: now cancel + new
        tick(300_000, bid_qty=1),                 # smaller at the same price: modify (keeps its place)
        tick(400_000, bid_qty=3),                 # larger: cancel + new
        tick(500_000, ask_qty=0),                 # no ask: cancel
        tick(600_000),
    ]
    run = drive(params, events)
    sent = run.orders.filter(run.orders["event"].is_in(["sent", "cancel_sent", "modify_sent"]))
    assert sent.select("ts_local", "ts_exchange", "order_id", "event", "price", "qty").rows() == [
        (100_000, 110_000, 1, "sent", units(100), units(2)),
        (100_000, 110_000, 2, "sent", units(101.5), units(1)),
        # the change at 105_000 waited for the acks (seen at 120_000): it left at the next event
        (200_000, 210_000, 1, "cancel_sent", units(100), units(2)),
        (200_000, 210_000, 3, "sent", units(99.5), units(2)),
        (300_000, 310_000, 3, "modify_sent", units(99.5), units(1)),
        (400_000, 410_000, 3, "cancel_sent", units(99.5), units(1)),
        (400_000, 410_000, 4, "sent", units(99.5), units(3)),
        (500_000, 510_000, 2, "cancel_sent", units(101.5), units(1)),
    ]
    assert run.outputs["working_bid_px"][-1] == units(99.5)
    assert run.outputs["working_ask_px"][-1] == UNDEF_PRICE
    assert [e for e in run.events_of(3)] == ["sent", "acked", "modify_sent", "modified", "cancel_sent", "cancelled"]


def test_a_replaced_quote_whose_cancel_is_refused_is_cancelled_again():
    params = {"orders": "quotes", "entry_latency": "10us", "cancel_latency": "5us", "response_latency": "10us",
              "reject_windows": [{"start": 200_005_000, "end": 200_006_000, "rate": 1.0}]}
    events = book() + [
        tick(100_000_000, bid_px=100, bid_qty=1),
        tick(200_000_000, bid_px=99.5),          # replace: the cancel arrives in the reject burst, the new after
        tick(300_000_000),                        # the refusal is seen: the old quote is cancelled again
        tick(400_000_000),
    ]
    run = drive(params, events)
    assert run.events_of(1) == ["sent", "acked", "cancel_sent", "cancel_rejected", "cancel_sent", "cancelled"]
    assert run.events_of(2) == ["sent", "acked"]
    assert run.outputs["working_bid_px"][-1] == units(99.5)


def test_target_mode_trades_the_difference_as_taker_orders():
    params = {"orders": "target", "taker_order": "ioc", "taker_limit_bps": 100}
    events = book() + [tick(2000, target=4), tick(2100), tick(2200, target=-2), tick(2300), tick(2400)]
    run = drive(params, events)
    assert run.fills.select("side", "price", "qty").rows() == [
        (1, units(101), units(3)), (1, units(102), units(1)),  # buy 4 up to 101 × 1.01
        (-1, units(100), units(5)), (-1, units(99), units(1)),  # sell 6 down to 100 × 0.99
    ]
    assert run.outputs["position"].tolist()[-4:] == [units(4), units(4), units(-2), units(-2)]
    assert run.orders.filter(run.orders["event"] == "sent")["type"].to_list() == ["ioc", "ioc"]
