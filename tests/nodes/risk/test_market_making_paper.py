"""specs/deploy/market_making_paper.yaml on the shipped Binance capture: the risk layer in the one graph.

With its declared limits and no operator command the layer is transparent (the same fills as the strategy
alone); a tight drawdown limit trips the breaker, after which the risk node lets only exits through and every
order the venue sends is an exit; an operator's resume line brings quoting back; flatten rests exits for the
whole position.

What the graph cannot do, by construction: the risk node sees the breaker's state one event late and acts only
on events, so quotes decided on the trip's own event still go out, and a quiet market (Binance depth comes every
100 ms) leaves working quotes resting until the next event lets the venue cancel them.
"""

import json

import numpy as np
import polars as pl
import pytest

from pipelines.run import run_spec
from tests.support import REPO, assert_frames_identical

PAPER = REPO / "specs" / "deploy" / "market_making_paper.yaml"
BASE = REPO / "specs" / "strategies" / "market_making_binance.yaml"
MS = 1_000_000
COMPUTE_LATENCY_NS = 20_000  # the venue's compute_latency in the base spec: orders leave 20 us after their event


def _run(sets: list[str], record: tuple[str, ...] = ("risk", "venue", "breaker")):
    return run_spec(PAPER, sets=sets, record=list(record), write=False).replay


def _control(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "control.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return f"control_path={path}"


@pytest.fixture(scope="module")
def tripped():
    """The paper spec with a drawdown limit of 0.5 USDT: the breaker trips a few seconds in."""
    return _run(["max_drawdown=0.5"])


def test_with_its_declared_limits_and_no_command_the_risk_layer_changes_no_fill():
    alone = run_spec(BASE, write=False).replay.summaries["venue"]
    paper = _run([], record=())
    behind = paper.summaries["venue"]
    # the instrument column's categories differ (the control source adds its own instrument): compare names
    named = [pl.col("instrument").cast(pl.String)]
    assert_frames_identical(alone.fills.with_columns(named), behind.fills.with_columns(named),
                            "fills with and without the risk layer")
    assert behind.stats == alone.stats and behind.stats["fills"] >= 10
    assert paper.logs["risk"]["rejects"].height == 0 and paper.logs["breaker"]["trips"].height == 0


def test_a_trip_halts_and_then_only_orders_that_reduce_the_position_pass(tripped):
    trips = tripped.logs["breaker"]["trips"]
    assert trips["event"].to_list() == ["trip"] and trips["breaker"].to_list() == ["max_drawdown"]
    assert trips["value"][0] > 0.5 == trips["limit"][0]
    trip_ts = trips["ts_recv"][0]
    risk, venue, breaker = (tripped.recorded[n] for n in ("risk", "venue", "breaker"))
    ts = risk["ts_recv"].to_numpy()
    halted = breaker["halted"].to_numpy()
    assert (halted[ts < trip_ts] == 0).all() and (halted[ts >= trip_ts] == 1).all()
    # the risk node sees the state one event late (prev(breaker.halted)), with the position it knew then
    position = np.concatenate([[0], venue["position"].to_numpy()[:-1]])
    after = ts > trip_ts
    bid, ask = risk["bid_qty"].to_numpy(), risk["ask_qty"].to_numpy()
    assert ((bid[after] == 0) | ((position[after] < 0) & (bid[after] <= -position[after]))).all()
    assert ((ask[after] == 0) | ((position[after] > 0) & (ask[after] <= position[after]))).all()
    if (position[after] != 0).any():  # with a position left at the trip, its exit is let through
        assert (bid[after] + ask[after] > 0).any(), "no exit was let through"
    # while halted, the account never builds a position on the other side of the one it had
    held = venue["position"].to_numpy()[ts >= trip_ts]
    assert (np.sign(held[held != 0]) == np.sign(held[held != 0][0])).all() if (held != 0).any() else True
    rejects = tripped.logs["risk"]["rejects"]
    assert rejects.height > 0 and (rejects["check"] == "halted").all() and (rejects["ts_recv"] > trip_ts).all()
    # every order the venue sent from a decision after the trip's event is an exit of the position known then
    sent = tripped.summaries["venue"].orders.filter(pl.col("event") == "sent")
    decided = sent["ts_local"].to_numpy() - COMPUTE_LATENCY_NS
    at = np.searchsorted(ts, decided, side="right") - 1  # the venue decides on the last record of a venue event
    assert (ts[at] == decided).all()
    later = decided > trip_ts
    for side, qty, i in zip(sent["side"].to_numpy()[later], sent["qty"].to_numpy()[later], at[later]):
        assert side == -np.sign(position[i]) and qty <= abs(position[i])


def test_only_an_operators_resume_brings_quoting_back(tripped, tmp_path):
    trip_ts = tripped.logs["breaker"]["trips"]["ts_recv"][0]
    resume_ts = trip_ts + 2_000 * MS
    control = _control(tmp_path, [{"ts": resume_ts - 1_000 * MS, "command": "heartbeat"},
                                  {"ts": resume_ts, "command": "resume", "operator": "alice",
                                   "reason": "drawdown reviewed"}])
    resumed = _run(["max_drawdown=0.5", control])
    trips = resumed.logs["breaker"]["trips"]
    assert trips["event"].to_list()[:2] == ["trip", "resume"] and trips["ts_recv"][0] == trip_ts
    row = trips.row(1, named=True)
    assert (row["ts_recv"], row["control_seq"], row["state"], row["breaker"]) == (resume_ts, 2, "running",
                                                                                   "max_drawdown")
    from nodes.risk.control import control_texts

    texts = control_texts(tmp_path / "control.jsonl")
    assert (texts[row["operator"]], texts[row["reason"]]) == ("alice", "drawdown reviewed")
    sent = resumed.summaries["venue"].orders.filter(pl.col("event") == "sent")
    halted_sent = tripped.summaries["venue"].orders.filter(pl.col("event") == "sent")
    assert sent.filter(pl.col("ts_local") > resume_ts).height > halted_sent.filter(
        pl.col("ts_local") > resume_ts).height
    # the heartbeat (a control line that is not a resume) left it HALTED
    ts = resumed.recorded["breaker"]["ts_recv"].to_numpy()
    halted = resumed.recorded["breaker"]["halted"].to_numpy()
    assert (halted[(ts > trip_ts) & (ts < resume_ts)] == 1).all() and halted[ts == resume_ts][-1] == 0


def test_flatten_on_halt_rests_exits_for_the_whole_position(tmp_path):
    run = _run(["max_drawdown=0.5", "flatten_on_halt=true"])
    trip_ts = run.logs["breaker"]["trips"]["ts_recv"][0]
    risk, venue = run.recorded["risk"], run.recorded["venue"]
    ts = risk["ts_recv"].to_numpy()
    position = np.concatenate([[0], venue["position"].to_numpy()[:-1]])
    after = ts > trip_ts
    bid, ask = risk["bid_qty"].to_numpy()[after], risk["ask_qty"].to_numpy()[after]
    # FLATTENING: the exit is the whole position (within max_order_qty 0.002), on the reducing side only
    expected_ask = np.where(position[after] > 0, np.minimum(position[after], 2_000_000), 0)
    expected_bid = np.where(position[after] < 0, np.minimum(-position[after], 2_000_000), 0)
    assert (ask == expected_ask).all() and (bid == expected_bid).all()
    assert run.recorded["breaker"]["halted"].to_numpy()[-1] == 2
