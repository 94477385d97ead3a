"""The two clocks and the latencies: when requests arrive, when the strategy sees responses, in what order."""

from tests.nodes.backtest.tick.venue_driver import book_events, drive, tick, units

MARKET, POST_ONLY = 1, 4
US = 1_000


def book():
    return book_events(0, bids=[(100, 5)], asks=[(101, 5)])


def new(ts, cmd_id, side, price, qty, order_type=POST_ONLY, **extra):
    return tick(ts, cmd=1, cmd_id=cmd_id, cmd_side=side, cmd_type=order_type, cmd_price=price, cmd_qty=qty, **extra)


def test_request_times_follow_compute_entry_and_response_latencies():
    params = {"orders": "commands", "compute_latency": "10us", "entry_latency": "100us", "response_latency": "50us"}
    events = book() + [new(1_000 * US, 1, 1, 0, 1, MARKET), tick(1_109 * US), tick(1_110 * US), tick(1_159 * US),
                       tick(1_160 * US)]
    run = drive(params, events)
    rows = run.orders.select("event", "ts_exchange", "ts_local").rows()
    assert rows == [("sent", 1_110 * US, 1_010 * US), ("acked", 1_110 * US, 1_160 * US),
                    ("filled", 1_110 * US, 1_160 * US)]
    # the venue fills it at the first event at or after its arrival; the strategy sees it 50us later
    assert run.outputs["position"].tolist()[-4:] == [0, 0, 0, units(1)]


def test_feed_latency_model_moves_the_local_clock_off_ts_recv():
    params = {"orders": "commands", "feed_latency": "1ms", "entry_latency": "0"}
    events = book() + [new(5_000 * US, 1, 1, 99, 1, ts_recv=5_001 * US), tick(7_000 * US)]
    run = drive(params, events)
    assert run.orders.filter(run.orders["event"] == "sent")["ts_local"].to_list() == [6_000 * US]


def test_feed_latency_data_uses_ts_recv():
    events = book() + [new(5_000 * US, 1, 1, 99, 1, ts_recv=5_300 * US), tick(7_000 * US)]
    run = drive({"orders": "commands"}, events)
    assert run.orders.filter(run.orders["event"] == "sent")["ts_local"].to_list() == [5_300 * US]


def test_a_fast_cancel_never_overtakes_its_order():
    params = {"orders": "commands", "entry_latency": "1ms", "cancel_latency": "10us"}
    events = book() + [new(1_000 * US, 1, 1, 99, 1), tick(1_001 * US, cmd=2, cmd_id=2, cmd_ref=1), tick(3_000 * US)]
    run = drive(params, events)
    assert run.orders.select("event", "ts_exchange").rows() == [
        ("sent", 2_000 * US), ("cancel_sent", 2_000 * US), ("acked", 2_000 * US), ("cancelled", 2_000 * US)]


def test_the_exchange_clock_never_runs_backwards():
    # the second event is stamped earlier than the first (streams interleaved by receive time): the venue's clock
    # stays at 5_000, so the order that arrived at 5_000 is processed on it, at 5_000
    events = book() + [new(5_000, 1, 1, 0, 1, MARKET), {**tick(4_000), "ts_recv": 6_000}]
    run = drive({"orders": "commands"}, events)
    assert run.orders.select("event", "ts_exchange").rows() == [("sent", 5_000), ("acked", 5_000), ("filled", 5_000)]
    assert run.outputs["position"][-1] == units(1)


def test_random_latencies_repeat_with_the_seed_and_differ_across_seeds():
    params = {"orders": "commands", "entry_latency": {"model": "uniform", "low": "50us", "high": "150us"},
              "response_latency": {"model": "lognormal", "median": "200us", "sigma": 0.5}}
    events = book() + [new(1_000 * US * (i + 1), i + 1, 1, 90 + i, 1) for i in range(20)] + [tick(10**9)]
    a, b, c = (drive({**params, "seed": seed}, events) for seed in (3, 3, 4))
    assert a.orders.equals(b.orders)
    assert not a.orders.equals(c.orders)
    entry = (a.orders.filter(a.orders["event"] == "sent")["ts_exchange"]
             - a.orders.filter(a.orders["event"] == "sent")["ts_local"])
    assert entry.min() >= 50 * US and entry.max() <= 150 * US and entry.n_unique() > 10
