"""The venue on real data: accounting identities and conservation on every fill, determinism, cpu vs numba bit
identity, prefix invariance and chunking invariance (Binance BTCUSDT L2 + trades; DBN MBO for L3)."""

import numpy as np
import polars as pl
import pytest

from tests.nodes.backtest.tick.market_data import (
    DBN_MBO,
    ESH4,
    ESM4,
    binance_stream,
    cut,
    imbalance_target,
    mbo_stream,
    quote_inputs,
    shared,
    venue_columns,
)
from tests.nodes.backtest.tick.venue_driver import drive_columns, summary, venue
from tests.support import assert_bit_identical, assert_frames_identical

MM = {"orders": "quotes", "queue_model": {"model": "prob_power", "n": 3}, "maker_fee": -0.0001,
      "taker_fee": 0.0004, "maker_fee_per_unit": 0.01, "entry_latency": {"model": "uniform", "low": "100us",
      "high": "400us"}, "response_latency": "250us", "compute_latency": "10us", "seed": 11}
TAKER = {"orders": "target", "taker_order": "ioc", "taker_limit_bps": 2, "taker_fee": 0.0004,
         "entry_latency": "300us", "response_latency": "300us", "equity_interval": "100ms"}
LOT = 1_000_000  # 0.001 BTC


def run_binance(params: dict, inputs, target: str = "cpu", stop: int | None = None, drain_every: int = 0):
    stream = binance_stream()
    columns = venue_columns(stream, inputs(stream, LOT))
    if stop is not None:
        columns = cut(columns, stop)
    op, validated = venue(params)
    return drive_columns(op, validated, columns, target, drain_every=drain_every)


@pytest.fixture(scope="module")
def mm_run():
    return run_binance(MM, quote_inputs)


@pytest.fixture(scope="module")
def taker_run():
    return run_binance(TAKER, imbalance_target)


def test_the_market_maker_trades_on_both_sides(mm_run, taker_run):
    fills = mm_run.fills
    assert fills.height > 20 and set(fills["side"].to_list()) == {1, -1}
    assert set(fills["liquidity"].to_list()) == {"maker"}  # post-only quotes never take
    assert taker_run.fills.height > 10 and set(taker_run.fills["liquidity"].to_list()) == {"taker"}


@pytest.mark.parametrize("which", ["mm", "taker"])
def test_cash_position_and_fee_identities_hold_after_every_fill(which, mm_run, taker_run):
    run, params = (mm_run, MM) if which == "mm" else (taker_run, TAKER)
    cash = 100_000.0
    position = 0
    for side, price, qty, liquidity, fee, notional, pos_after, cash_after in run.fills.select(
            "side", "price", "qty", "liquidity", "fee", "notional", "position", "cash").iter_rows():
        assert notional == (price / 1e9) * (qty / 1e9)
        rate, per_unit = ((params.get("maker_fee", 0.0), params.get("maker_fee_per_unit", 0.0)) if liquidity == "maker"
                          else (params.get("taker_fee", 0.0), params.get("taker_fee_per_unit", 0.0)))
        assert fee == rate * abs(notional) + per_unit * (abs(qty) / 1e9)
        cash -= side * notional + fee
        position += side * qty
        assert (pos_after, cash_after) == (position, cash)
    stats = summary(params, run).stats
    assert stats["maker_volume"] + stats["taker_volume"] == pytest.approx(run.fills["qty"].sum() / 1e9, abs=1e-12)
    assert stats["fills"] == stats["maker_fills"] + stats["taker_fills"] == run.fills.height
    assert stats["fees"] == pytest.approx(run.fills["fee"].sum())


def test_the_strategy_ends_knowing_what_the_venue_knows(mm_run):
    last = mm_run.fills.row(-1, named=True)
    assert mm_run.outputs["position"][-1] == last["position"]
    assert mm_run.outputs["cash"][-1] == last["cash"]
    assert mm_run.outputs["fills"][-1] == mm_run.fills.height
    # and never before it could: the local position changes only at events at or after a fill's ts_local
    stream = binance_stream()
    first_seen = int(np.argmax(mm_run.outputs["position"] != 0))
    assert stream["ts_recv"][first_seen] >= mm_run.fills["ts_local"][0]


def test_no_fill_without_liquidity(mm_run, taker_run):
    stream = binance_stream()
    frame = pl.DataFrame({k: stream[k] for k in ("ts_event", "side", "price", "size", "action")})
    trades = frame.filter(pl.col("action") == ord("T"))
    for ts, side, price, ahead in mm_run.fills.select("ts_exchange", "side", "price", "ahead_before").iter_rows():
        # a maker fill needs a print at or through its price at that moment, or the other side quoting through it
        at = frame.filter(pl.col("ts_event") == ts)
        printed = trades.filter((pl.col("ts_event") == ts) & ((pl.col("price") - price) * side <= 0))
        crossing = at.filter((pl.col("action") != ord("T")) & (pl.col("side") == -side) & (pl.col("size") > 0)
                             & ((pl.col("price") - price) * side <= 0))
        assert printed.height + crossing.height > 0, f"maker fill at {ts} {price} has no liquidity"
    # with size ahead of us, a fill needs prints at our price past that size (or through it), or the other side
    # of a consistent book resting at our price (its sellers would have traded with every bid there)
    for row in mm_run.fills.filter(pl.col("ahead_before") > 0).iter_rows(named=True):
        now = frame.filter(pl.col("ts_event") == row["ts_exchange"])
        same = now.filter((pl.col("action") == ord("T")) & (pl.col("price") == row["price"]))
        through = now.filter((pl.col("action") == ord("T")) & ((pl.col("price") - row["price"]) * row["side"] < 0))
        crossing = now.filter((pl.col("action") != ord("T")) & (pl.col("side") == -row["side"])
                              & ((pl.col("price") - row["price"]) * row["side"] <= 0) & (pl.col("size") > 0))
        assert (through.height > 0 or crossing["size"].sum() >= row["qty"]
                or same["size"].sum() >= row["ahead_before"] + row["qty"])
    # a taker fill is at a price the book showed on its side: never better than the touch it walked from
    for side, price, best_bid, best_ask in taker_run.fills.select("side", "price", "best_bid", "best_ask").iter_rows():
        assert (price >= best_ask) if side == 1 else (price <= best_bid)


def test_same_seed_same_logs_other_seed_other_logs(mm_run):
    again = run_binance(MM, quote_inputs)
    for name in mm_run.logs:
        assert_frames_identical(mm_run.logs[name], again.logs[name], name)
    other = run_binance({**MM, "seed": 12}, quote_inputs)
    assert not other.orders.equals(mm_run.orders)


def test_logs_do_not_depend_on_when_they_are_drained(mm_run):
    chunked = run_binance(MM, quote_inputs, drain_every=997)
    for name in mm_run.logs:
        assert_frames_identical(mm_run.logs[name], chunked.logs[name], f"{name} drained every 997 events")


@pytest.mark.parametrize("stop", [1500, 3700, 6000])
def test_fills_before_a_time_do_not_depend_on_later_events(stop, mm_run):
    prefix = run_binance(MM, quote_inputs, stop=stop)
    cutoff = binance_stream()["ts_event"][stop - 1]
    for name in ("fills", "orders"):
        full = mm_run.logs[name].filter(pl.col("ts_exchange") <= cutoff)
        short = prefix.logs[name].filter(pl.col("ts_exchange") <= cutoff)
        # a request still on its way at the cut was processed in the full run only: compare what both saw
        assert_frames_identical(full.head(short.height), short, f"{name} up to event {stop}")
        assert short.height >= full.height - 4
    for port in mm_run.outputs:
        assert_bit_identical(mm_run.outputs[port][:stop], prefix.outputs[port], f"{port} up to event {stop}")


@pytest.mark.parametrize("params, inputs", [(MM, quote_inputs), (TAKER, imbalance_target)], ids=["quotes", "target"])
def test_cpu_and_numba_give_the_same_bits(params, inputs):
    on_cpu = run_binance(params, inputs, "cpu")
    on_numba = run_binance(params, inputs, "numba")
    for port in on_cpu.outputs:
        assert_bit_identical(on_cpu.outputs[port], on_numba.outputs[port], f"{port} cpu vs numba")
    for name in on_cpu.logs:
        assert_frames_identical(on_cpu.logs[name], on_numba.logs[name], f"{name} cpu vs numba")


def run_mbo(path, params: dict, target: str = "cpu", then_wait: bool = False):
    stream = mbo_stream(path)
    if then_wait:  # one quiet record a second after the file ends, so requests sent at its end arrive
        stream = {k: np.append(v, v[-1] + (1_000_000_000 if k.startswith("ts_") else 0)) for k, v in stream.items()}
        stream["action"][-1] = ord("N")
    mode_inputs = quote_inputs if params["orders"] == "quotes" else imbalance_target
    qty = 1_000_000_000
    columns = venue_columns(stream, mode_inputs(stream, qty, l3=True), l3=True)
    op, validated = venue({"book": "l3", **params})
    return drive_columns(op, validated, columns, target)


def test_shipped_mbo_sample_runs_and_counts_what_it_cannot_apply():
    run = run_mbo(DBN_MBO, {"orders": "quotes"})
    # two cancels of orders that rested before the file began: counted, never crash
    assert run.equity["book_inconsistent"].to_list() == [0]
    assert int(run.state[2][2, 19]) == 2  # K_INCONSISTENT of instrument 0
    assert run.fills.height == 0


def test_esh4_snapshot_builds_the_book_our_quotes_join():
    run = run_mbo(shared(ESH4), {"orders": "quotes"}, "numba", then_wait=True)
    joined = run.queue.filter(pl.col("cause") == "arrival")
    assert joined.height >= 2 and (joined["ahead"] > 0).all()


@pytest.mark.parametrize("orders", ["quotes", "target"])
def test_esm4_mbo_cpu_and_numba_give_the_same_bits(orders):
    path = shared(ESM4)
    params = {"orders": orders, "taker_order": "ioc", "taker_limit_bps": 10, "entry_latency": "20us",
              "response_latency": "20us"}
    on_cpu = run_mbo(path, params, "cpu")
    on_numba = run_mbo(path, params, "numba")
    for name in on_cpu.logs:
        assert_frames_identical(on_cpu.logs[name], on_numba.logs[name], f"{name} cpu vs numba")
    for port in on_cpu.outputs:
        assert_bit_identical(on_cpu.outputs[port], on_numba.outputs[port], f"{port} cpu vs numba")
    assert on_cpu.orders.height > 0
