"""risk.circuit_breaker: each breaker trips exactly past its threshold, HALTED holds until an operator's resume,
the trips log, parity and prefix invariance."""

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.risk.codes import (
    CMD_FLATTEN, CMD_HALT, CMD_HEARTBEAT, CMD_LATENCY, CMD_RESUME, DAILY_LOSS, DATA_GAP, DRAWDOWN, DRAWDOWN_FRACTION,
    DRIFT, FEED_DELAY, FLATTENING, HALTED_STATE, LATENCY, MANUAL, POSITION_BREACH, REJECT_RATE, RUNNING,
)
from tests.nodes.op_examples import docstring_example
from tests.nodes.risk.driver import MS, UNIT, assert_cpu_numba_identical, op, run
from tests.support import assert_bit_identical

NAME = "risk.circuit_breaker"
S = 1_000 * MS
DAY = 86_400 * S


def _events(n: int, **columns) -> dict:
    """Market events (no control line yet) unless columns say otherwise; scalars are repeated."""
    base = {"equity": 100.0, "position": 0, "reject_code": 0, "drift": np.nan, "command": 0, "seq": 0,
            "operator": 0, "reason": 0, "latency_ns": -1, "ts_recv": list(np.arange(n) * MS)}
    base.update(columns)
    return {k: v if isinstance(v, list) else [v] * n for k, v in base.items()}


def _trip(params: dict, n: int, **columns):
    """(halted, trip_code) per event, and the trips log."""
    out, logs = assert_cpu_numba_identical(NAME, params, _events(n, **columns))
    return out["halted"].tolist(), out["trip_code"].tolist(), logs["trips"]


def test_drawdown_trips_one_step_past_the_limit_and_says_by_how_much():
    halted, code, log = _trip({"max_drawdown": 10}, 4, equity=[100.0, 110.0, 100.0, 99.99])
    assert (halted, code) == ([0, 0, 0, 1], [0, 0, 0, DRAWDOWN])
    assert log["event"].tolist() == ["trip"] and log["breaker"].tolist() == ["max_drawdown"]
    assert (log["value"][0], log["limit"][0]) == (pytest.approx(10.01), 10.0)
    assert _trip({"max_drawdown_fraction": 0.1}, 3, equity=[100.0, 90.0, 89.99])[1] == [0, 0, DRAWDOWN_FRACTION]


def test_daily_loss_counts_from_the_last_equity_before_the_day_and_day_start_can_be_a_session_time():
    ts = [0, S, DAY - S, DAY + S, DAY + 2 * S]
    params = {"max_daily_loss": 5}
    # day 1: 100 → 95 (a loss of 5: at the limit); day 2 starts from 95, so 94 is a loss of 1, 89.99 of 5.01
    assert _trip(params, 5, ts_recv=ts, equity=[100.0, 97.0, 95.0, 94.0, 89.99])[1] == [0, 0, 0, 0, DAILY_LOSS]
    assert _trip(params, 3, ts_recv=[0, S, 2 * S], equity=[100.0, 95.0, 94.99])[1] == [0, 0, DAILY_LOSS]
    # days starting 22:00 UTC: 21:59 and 22:01 are different days, so 96 → 92 is the new day's loss of 4; with
    # days starting at midnight the three events are one day and 100 → 92 is a loss of 8
    late = {"max_daily_loss": 5, "day_start_utc": "22:00"}
    ts = [22 * 3_600 * S - 120 * S, 22 * 3_600 * S - 60 * S, 22 * 3_600 * S + 60 * S]
    assert _trip(late, 3, ts_recv=ts, equity=[100.0, 96.0, 92.0])[1] == [0, 0, 0]
    assert _trip({"max_daily_loss": 5}, 3, ts_recv=ts, equity=[100.0, 96.0, 92.0])[1] == [0, 0, DAILY_LOSS]


def test_position_breach_reject_rate_feed_delay_data_gap_and_drift_trip_past_their_limits():
    assert _trip({"max_position": 0.005}, 3, position=[5 * UNIT // 1000, -5 * UNIT // 1000,
                                                       -5 * UNIT // 1000 - 1])[1] == [0, 0, POSITION_BREACH]
    # more than 2 rejects within 1 s: at 0, 0.5 and 1.0 s the oldest is 1 s old (outside); at 1.2 s three are in
    rejects = _trip({"max_rejects": 2, "reject_window": "1s"}, 5, reject_code=[3, 3, 0, 3, 3],
                    ts_recv=[0, S // 2, S // 2 + 1, S, S + S // 5])
    assert rejects[1] == [0, 0, 0, 0, REJECT_RATE] and rejects[2]["value"].tolist() == [3.0]
    ts = [10 * S, 20 * S, 30 * S]
    delay = _trip({"max_feed_delay": "1s"}, 3, ts_recv=ts, ts_event=[10 * S - S, 20 * S - S - 1, 30 * S])
    assert delay[1] == [0, FEED_DELAY, FEED_DELAY]
    gap = _trip({"max_data_gap": "30s"}, 3, ts_recv=[0, 30 * S, 60 * S + 1])
    assert gap[1] == [0, 0, DATA_GAP] and gap[2]["value"].tolist() == [pytest.approx(30.000000001)]
    assert _trip({"max_drift": 0.25}, 4, drift=[np.nan, 0.25, np.nan, 0.2500001])[1] == [0, 0, 0, DRIFT]


def test_control_events_measure_latency_and_a_heartbeat_sees_a_silent_market():
    # events 1 and 2 are control lines 1 and 2 (a new seq), event 3 a market event holding line 2's values
    params = {"max_latency": "50ms", "max_data_gap": "30s"}
    latency = _trip(params, 4, command=[0, CMD_LATENCY, CMD_LATENCY, CMD_LATENCY], seq=[0, 1, 2, 2],
                    latency_ns=[-1, 50 * MS, 50 * MS + 1, 50 * MS + 1])
    assert latency[1] == [0, 0, LATENCY, LATENCY] and latency[2]["breaker"].tolist() == ["max_latency"]
    heartbeat = _trip(params, 3, command=[0, CMD_HEARTBEAT, CMD_HEARTBEAT], seq=[0, 1, 2],
                      ts_recv=[0, 30 * S, 30 * S + 1])
    assert heartbeat[1] == [0, 0, DATA_GAP]


def test_halted_holds_until_an_operators_resume_and_only_a_new_control_line_counts():
    # trip on drawdown at event 1; market events keep it HALTED even when the equity recovers; a control line
    # that is not a resume (a heartbeat) does nothing; resume (line 2) → RUNNING; the held resume values on the
    # following market events are not new resumes, so the next trip halts again for good
    equity = [100.0, 80.0, 120.0, 120.0, 120.0, 120.0, 90.0, 130.0]
    events = _events(8, equity=equity, command=[0, 0, 0, CMD_HEARTBEAT, CMD_RESUME, CMD_RESUME, CMD_RESUME,
                                                CMD_RESUME],
                     seq=[0, 0, 0, 1, 2, 2, 2, 2], operator=[0, 0, 0, 0, 1, 1, 1, 1], reason=[0, 0, 0, 0, 2, 2, 2, 2])
    out, logs = assert_cpu_numba_identical(NAME, {"max_drawdown": 10}, events)
    assert out["halted"].tolist() == [0, 1, 1, 1, 0, 0, 1, 1]
    assert out["trip_code"].tolist() == [0, DRAWDOWN, DRAWDOWN, DRAWDOWN, 0, 0, DRAWDOWN, DRAWDOWN]
    trips = logs["trips"]
    assert trips["event"].tolist() == ["trip", "resume", "trip"]
    resume = {k: v[1] for k, v in trips.items()}
    assert (resume["control_seq"], resume["operator"], resume["reason"], resume["command"], resume["state"]) == (
        2, 1, 2, "resume", "running")
    assert resume["breaker"] == "max_drawdown"  # the breaker that had halted
    # the peak restarts at the resume (120): 90 is a drawdown of 30 from it
    assert trips["value"].tolist()[2] == 30.0


def test_a_resume_while_running_is_logged_and_changes_nothing():
    out, logs = assert_cpu_numba_identical(NAME, {}, _events(2, command=[0, CMD_RESUME], seq=[0, 1], operator=1,
                                                             reason=2))
    assert out["halted"].tolist() == [0, 0] and logs["trips"]["event"].tolist() == ["resume_ignored"]


def test_operator_halt_flatten_and_flatten_on_halt():
    halt = _events(3, command=[0, CMD_HALT, CMD_FLATTEN], seq=[0, 1, 2], operator=1, reason=2)
    out, logs = assert_cpu_numba_identical(NAME, {}, halt)
    assert out["halted"].tolist() == [RUNNING, HALTED_STATE, FLATTENING]
    assert out["trip_code"].tolist() == [0, MANUAL, MANUAL] and logs["trips"]["event"].tolist() == ["halt", "halt"]
    out, _ = assert_cpu_numba_identical(NAME, {"max_drawdown": 1, "flatten_on_halt": True},
                                        _events(2, equity=[100.0, 98.0]))
    assert out["halted"].tolist() == [RUNNING, FLATTENING]


def test_outputs_drawdown_and_daily_pnl():
    out, _ = run(NAME, {}, _events(3, equity=[100.0, 110.0, 104.0]))
    assert out["drawdown"].tolist() == [0.0, 0.0, 6.0] and out["daily_pnl"].tolist() == [0.0, 10.0, 4.0]


def test_bad_params_are_refused():
    with pytest.raises(ValidationError, match="day_start_utc"):
        op(NAME, day_start_utc="25:00")
    with pytest.raises(ValidationError, match="reject_window"):
        op(NAME, reject_window=0)
    with pytest.raises(ValidationError, match="max_drawdown_fraction"):
        op(NAME, max_drawdown_fraction=1.5)


ALL = {"max_drawdown": 1.0, "max_drawdown_fraction": 0.00002, "max_daily_loss": 1.5, "max_position": 0.004,
       "max_rejects": 3, "reject_window": "200ms", "max_feed_delay": "4ms", "max_data_gap": "9ms",
       "max_latency": "3ms", "max_drift": 0.8}


def _random_events(n: int, seed: int) -> dict:
    """Equity wandering around 100,000, positions, rejects, drift, and control lines (resumes among them)."""
    rng = np.random.default_rng(seed)
    control = rng.random(n) < 0.05
    seq = np.cumsum(control)
    command = np.where(control, rng.choice([CMD_RESUME, CMD_RESUME, CMD_HALT, CMD_FLATTEN, CMD_HEARTBEAT,
                                            CMD_LATENCY], n), 0)
    ts_recv = np.cumsum(rng.integers(0, 10 * MS, n))
    return {"equity": 100_000 + np.cumsum(rng.normal(0, 0.3, n)), "position": rng.integers(-5, 6, n) * 1_000_000,
            "reject_code": np.where(rng.random(n) < 0.1, 5, 0), "drift": np.where(rng.random(n) < 0.5, np.nan,
                                                                                  rng.random(n)),
            "command": command, "seq": seq,
            "operator": np.where(control, 1, 0), "reason": np.where(control, 2, 0),
            "latency_ns": np.where(rng.random(n) < 0.5, rng.integers(0, 6 * MS, n), -1),
            "ts_recv": ts_recv, "ts_event": ts_recv - rng.integers(0, 5 * MS, n)}


def test_cpu_and_numba_agree_with_all_breakers_armed():
    _, logs = assert_cpu_numba_identical(NAME, ALL, _random_events(5_000, 5), drain_every=1_001)
    assert {"trip", "resume", "halt"} <= set(logs["trips"]["event"].tolist())


@pytest.mark.parametrize("limit", sorted(ALL))
def test_cpu_and_numba_agree_with_each_breaker_alone_and_it_trips(limit):
    params = {limit: ALL[limit], "reject_window": "200ms"}
    _, logs = assert_cpu_numba_identical(NAME, params, _random_events(5_000, 5), drain_every=1_001)
    if limit != "reject_window":  # the window alone arms nothing
        assert limit in set(logs["trips"]["breaker"].tolist())


@pytest.mark.parametrize("t", [0, 7, 500, 2_999])
def test_outputs_and_rows_up_to_t_ignore_inputs_after_t(t):
    events = _random_events(3_000, 11)
    changed = _random_events(3_000, 12)
    for name in changed:
        if name not in ("ts_recv", "ts_event", "seq"):
            changed[name][:t + 1] = events[name][:t + 1]
    changed["ts_recv"], changed["ts_event"], changed["seq"] = events["ts_recv"], events["ts_event"], events["seq"]
    before, logs_before = run(NAME, ALL, events)
    after, logs_after = run(NAME, ALL, changed)
    for port in before:
        assert_bit_identical(before[port][:t + 1], after[port][:t + 1], f"port {port} up to t={t}")
    rows = lambda logs: (logs["trips"]["ts_recv"] <= events["ts_recv"][t]).sum()  # noqa: E731
    assert logs_before["trips"]["breaker"][:rows(logs_before)].tolist() == \
        logs_after["trips"]["breaker"][:rows(logs_after)].tolist()


def test_docstring_example_names_this_op_with_valid_params():
    node = docstring_example(NAME)["breaker"]
    stream_op, _ = op(NAME, **node["with"])
    assert set(node["in"]) == set(stream_op.inputs)
