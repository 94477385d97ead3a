"""risk.pre_trade in target mode in a whole spec: the imbalance taker on the shipped Binance capture, behind
pre-trade limits and the circuit breaker, against the tick venue's target mode (IOC orders)."""

import numpy as np
import polars as pl

from pipelines.run import run_spec
from tests.support import REPO, write_spec

CAPTURE = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
Q = 10_000_000  # 0.01 BTC


def _spec(folder, max_order_qty: float) -> str:
    market = {p: f"md.{p}" for p in ("side", "price", "size", "action", "flags")}
    nodes = {
        "md": {"op": "source.binance_capture", "with": {"path": str(CAPTURE), "schema": "book_and_trades"}},
        "control": {"op": "source.control", "with": {"path": "control.jsonl"}},
        "book": {"op": "book.l2", "in": market},
        "target": {"op": "strategy.imbalance_taker",
                   "in": {"best_bid": "book.best_bid", "best_ask": "book.best_ask", "bid_size": "book.bid_size",
                          "ask_size": "book.ask_size", "flags": "md.flags"},
                   "with": {"qty": 0.01, "threshold": 0.5, "hysteresis": 0.2, "cooldown_events": 10}},
        "ref": {"op": "risk.reference_price",
                "in": {"price": "md.price", "action": "md.action", "best_bid": "book.best_bid",
                       "best_ask": "book.best_ask"}},
        "risk": {"op": "risk.pre_trade",
                 "in": {"target": "target", "ref_px": "ref.ref_px", "position": "prev(venue.position)",
                        "halted": "prev(breaker.halted)"},
                 "with": {"orders": "target", "max_order_qty": max_order_qty, "max_order_notional": 2_000,
                          "max_position": 0.01}},
        "venue": {"op": "backtest.tick_venue", "in": {**market, "target": "risk.target"},
                  "with": {"book": "l2", "orders": "target", "taker_order": "ioc", "taker_limit_bps": 5,
                           "taker_fee": 0.001, "compute_latency": "20us", "entry_latency": "500us",
                           "response_latency": "500us"}},
        "breaker": {"op": "risk.circuit_breaker",
                    "in": {"equity": "venue.equity", "position": "venue.position", "reject_code": "risk.reject_code",
                           "drift": "venue.equity",  # no drift monitor here: max_drift is unset
                           "command": "control.command", "seq": "control.seq",
                           "operator": "control.operator", "reason": "control.reason",
                           "latency_ns": "control.latency_ns"},
                    "with": {"max_daily_loss": 1_000}},
    }
    return write_spec(folder, "taker_behind_risk", nodes, defaults={"place": "numba"})


def test_a_reversal_larger_than_max_order_qty_is_refused_and_the_taker_still_trades(tmp_path):
    run = run_spec(_spec(tmp_path, 0.01), record=["target", "risk"], write=False).replay
    wanted = run.recorded["target"]["target"].to_numpy()
    assert set(np.unique(wanted).tolist()) == {-Q, 0, Q}
    rejects = run.logs["risk"]["rejects"]
    assert rejects.height >= 1 and (rejects["check"] == "max_order_qty").all() and (rejects["qty"] == 2 * Q).all()
    assert (rejects["limit"] == 0.01).all() and (rejects["value"] == 0.02).all()
    sent = run.summaries["venue"].orders.filter(pl.col("event") == "sent")
    assert sent.height >= 2 and (sent["qty"] <= Q).all()
    fills = run.summaries["venue"].fills
    assert fills.height >= 2 and (fills["position"].abs() <= Q).all()
    assert run.logs["breaker"]["trips"].height == 0
    # with a limit above a reversal, the same spec reverses: the limit is what stopped it
    free = run_spec(_spec(tmp_path, 0.02), write=False).replay
    assert free.logs["risk"]["rejects"].height == 0
    assert (free.summaries["venue"].orders.filter(pl.col("event") == "sent")["qty"] == 2 * Q).any()
