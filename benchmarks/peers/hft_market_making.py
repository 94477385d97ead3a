"""Peer: the tick-level market-making workload of ``benchmarks/tick_backtest.py``, run through hftbacktest.

Runs in the peer environment (``/work/benchvenv``, see README.md); imports nothing from tickloom.

Workload (the same rules as tickloom's ``strategy.market_maker`` + ``backtest.tick_venue`` in the benchmark):
on every market feed event (depth diff or trade), quote one lot on each side at
``mid ∓ half_spread_ticks × tick`` shifted by ``−skew_ticks_per_unit × position`` ticks, rounded outward to the
tick grid (bid down, ask up), pulled back so it does not cross the market (bid at most one tick under the best
ask, ask at least one over the best bid), post-only (GTX); a side quotes while its fill plus one reserve quote
stays within ``±max_position`` (tickloom's ``strategy.market_maker`` with ``reserve_quotes: 1``).
A quote whose price changed is cancelled and a new one submitted (at most one order per side in flight).
Constant order entry and response latency; queue position by hftbacktest's power probability model; fees as
fractions of traded value. The loop stops at the end of the data (``end_code`` 1) or on an error from
hftbacktest (its code, or 1000/2000/3000/4000 + the code of a failed submit/cancel), printed as ``end_code``.

Prints one JSON line: events (feed rows), seconds of the backtest loop (after a warm-up run that compiles
the strategy), fills, final position, equity, VmHWM.

    /work/benchvenv/bin/python benchmarks/peers/hft_market_making.py CAPTURE.gz
"""

import argparse
import contextlib
import io
import json
import time

import numpy as np
from numba import njit

from hftbacktest import GTX, LIMIT, BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures


@njit
def market_maker(hbt, half_spread_ticks, qty, max_position, skew_ticks_per_unit):
    tick = hbt.depth(0).tick_size
    next_id = 1
    bid_id = 0
    ask_id = 0
    bid_px = 0.0
    ask_px = 0.0
    events = 0
    while True:
        code = hbt.wait_next_feed(False, 3_600_000_000_000)
        if code != 2:
            break
        events += 1
        depth = hbt.depth(0)
        best_bid = depth.best_bid
        best_ask = depth.best_ask
        if not (np.isfinite(best_bid) and np.isfinite(best_ask)) or best_bid >= best_ask:
            continue
        hbt.clear_inactive_orders(0)
        orders = hbt.orders(0)
        position = hbt.position(0)
        mid = (best_bid + best_ask) / 2.0
        shift = -skew_ticks_per_unit * position
        want_bid = min(np.floor(mid / tick - half_spread_ticks + shift), np.round(best_ask / tick) - 1) * tick
        want_ask = max(np.ceil(mid / tick + half_spread_ticks + shift), np.round(best_bid / tick) + 1) * tick
        limit = max_position - qty  # one quote in reserve for fills not seen yet
        bid_live = bid_id != 0 and orders.__contains__(bid_id)
        ask_live = ask_id != 0 and orders.__contains__(ask_id)
        if bid_live and (position + qty > limit or abs(want_bid - bid_px) > tick / 2):
            if orders.get(bid_id).cancellable:
                code = hbt.cancel(0, bid_id, False)
                if code != 0:
                    return events, 3000 + code
            bid_live = True
        if not bid_live and position + qty <= limit:
            bid_id = next_id
            next_id += 1
            bid_px = want_bid
            code = hbt.submit_buy_order(0, bid_id, want_bid, qty, GTX, LIMIT, False)
            if code != 0:
                return events, 1000 + code
        if ask_live and (position - qty < -limit or abs(want_ask - ask_px) > tick / 2):
            if orders.get(ask_id).cancellable:
                code = hbt.cancel(0, ask_id, False)
                if code != 0:
                    return events, 4000 + code
            ask_live = True
        if not ask_live and position - qty >= -limit:
            ask_id = next_id
            next_id += 1
            ask_px = want_ask
            code = hbt.submit_sell_order(0, ask_id, want_ask, qty, GTX, LIMIT, False)
            if code != 0:
                return events, 2000 + code
    return events, code


def _asset(data, args) -> BacktestAsset:
    return (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(args.entry_latency_ns, args.response_latency_ns)
        .power_prob_queue_model(args.queue_power)
        .__getattribute__(args.exchange + "_exchange")()
        .trading_value_fee_model(args.maker_fee, args.taker_fee)
        .tick_size(args.tick_size)
        .lot_size(args.lot_size)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--tick-size", type=float, default=0.1)
    parser.add_argument("--lot-size", type=float, default=1.0)
    parser.add_argument("--qty", type=float, default=1.0)
    parser.add_argument("--half-spread-ticks", type=float, default=2.0)
    parser.add_argument("--max-position", type=float, default=5.0)
    parser.add_argument("--skew-ticks-per-unit", type=float, default=1.0)
    parser.add_argument("--entry-latency-ns", type=int, default=1_000_000)
    parser.add_argument("--response-latency-ns", type=int, default=1_000_000)
    parser.add_argument("--queue-power", type=float, default=3.0)
    parser.add_argument("--maker-fee", type=float, default=-0.0001)
    parser.add_argument("--taker-fee", type=float, default=0.0005)
    parser.add_argument("--repeats", type=int, default=3)
    # no_partial_fill by default: with one-lot quotes (qty 1 = the lot size) a fill is whole anyway, and
    # hftbacktest 2.4.4's partial_fill exchange stops this loop early with error code 14 (end_code below)
    parser.add_argument("--exchange", choices=("partial_fill", "no_partial_fill"), default="no_partial_fill")
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):
        data = binancefutures.convert(args.capture, opt="t", buffer_size=100_000_000)
    times, result = [], None
    for repeat in range(args.repeats + 1):  # the first run compiles the strategy: not timed
        hbt = HashMapMarketDepthBacktest([_asset(data, args)])
        started = time.perf_counter()
        events, code = market_maker(hbt, args.half_spread_ticks, args.qty, args.max_position,
                                    args.skew_ticks_per_unit)
        elapsed = time.perf_counter() - started
        values = hbt.state_values(0)
        depth = hbt.depth(0)
        mid = (depth.best_bid + depth.best_ask) / 2.0
        result = {"events": int(len(data)), "feed_events_seen": int(events), "end_code": int(code), "fills": int(values.num_trades),
                  "position": float(values.position), "fees": float(values.fee),
                  "equity": float(values.balance + values.position * mid - values.fee)}
        hbt.close()
        if repeat:
            times.append(elapsed)
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
    print(json.dumps({**result, "seconds": times, "vmhwm_kb": int(hwm)}))


if __name__ == "__main__":
    main()
