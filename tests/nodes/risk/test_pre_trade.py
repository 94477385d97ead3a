"""risk.pre_trade: each check refuses exactly past its limit, HALTED lets only exits through, flattening,
the rejects log, parity and prefix invariance on the real Binance book."""

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.marketdata.schemas import UNDEF_PRICE
from nodes.risk.codes import CHECK_NAMES, DUPLICATE, EXPOSURE, HALTED, INVALID, LOT, MAX_NOTIONAL, MAX_QTY, \
    NO_REFERENCE, OK, POSITION, PRICE_BAND, RATE, TICK
from tests.nodes.op_examples import docstring_example
from tests.nodes.risk.driver import MS, UNIT, assert_cpu_numba_identical, op, run
from tests.nodes.strategies.real_book import btcusdt_tops, random_walk_position
from tests.support import assert_bit_identical

NAME = "risk.pre_trade"
PX = 61_830_000_000_000  # 61,830.00
CENT = 10_000_000  # 0.01
Q = 1_000_000  # 0.001


def _quotes(params, bid_px=PX, bid_qty=Q, ask_px=PX + CENT, ask_qty=0, ref_px=PX, position=0, halted=0, **more):
    """One column per input from scalars or lists (scalars repeated to the longest list)."""
    columns = {"bid_px": bid_px, "bid_qty": bid_qty, "ask_px": ask_px, "ask_qty": ask_qty, "ref_px": ref_px,
               "position": position, "halted": halted, **more}
    n = max(len(v) for v in columns.values() if isinstance(v, list)) if any(
        isinstance(v, list) for v in columns.values()) else 1
    events = {k: v if isinstance(v, list) else [v] * n for k, v in columns.items()}
    return assert_cpu_numba_identical(NAME, params, events, n_keys=2 if "key" in more else 1)


def _bid(params, **events):
    """(bid qty let through, reject_code, reject_limit) per event of a bid-only stream."""
    out, logs = _quotes(params, **events)
    return out["bid_qty"].tolist(), out["reject_code"].tolist(), out["reject_limit"].tolist(), logs["rejects"]


def test_max_order_qty_and_notional_refuse_one_unit_past_the_limit():
    assert _bid({"max_order_qty": 0.002}, bid_qty=[2 * Q, 2 * Q + 1])[:3] == (
        [2 * Q, 0], [OK, MAX_QTY], [pytest.approx(np.nan, nan_ok=True), 0.002])
    # 61,830.00 × 0.002 = 123.66 exactly at the limit; a billionth of a BTC more is over it
    qty, code, limit, log = _bid({"max_order_notional": 123.66}, bid_qty=[2 * Q, 2 * Q + 1])
    assert (qty, code, limit[1]) == ([2 * Q, 0], [OK, MAX_NOTIONAL], 123.66)
    assert log["value"].tolist() == [pytest.approx(123.66 + 61_830 * 1e-9)]


def test_price_band_around_the_reference_is_inclusive_and_needs_a_reference():
    band = {"price_band_bps": 10}  # 10 bps of 61,830.00 = 61.83
    away = 6_183 * CENT
    qty, code, _, log = _bid(band, bid_px=[PX - away, PX - away - 1, PX + away, PX + away + CENT])
    assert (qty, code) == ([Q, 0, Q, 0], [OK, PRICE_BAND, OK, PRICE_BAND])
    assert log["check"].tolist() == ["price_band", "price_band"] and log["limit"].tolist() == [10.0, 10.0]
    assert log["value"][1] == pytest.approx(10 + 1e4 * 0.01 / 61_830)
    assert _bid(band, ref_px=UNDEF_PRICE)[1] == [NO_REFERENCE]


def test_tick_lot_and_invalid_orders():
    assert _bid({"tick_size": 0.01}, bid_px=[PX + CENT, PX + CENT // 2])[:2] == ([Q, 0], [OK, TICK])
    assert _bid({"lot_size": 0.00001}, bid_qty=[Q + 10_000, Q + 5_000])[:2] == ([Q + 10_000, 0], [OK, LOT])
    assert _bid({}, bid_qty=[-1, Q, Q], bid_px=[PX, 0, UNDEF_PRICE])[:2] == ([0, 0, 0], [INVALID, INVALID, INVALID])
    # quantity 0 is a cancel: always through, never a reject
    assert _bid({"max_order_qty": 0.001}, bid_qty=[0], bid_px=[0])[:2] == ([0], [OK])


def test_max_position_counts_the_fill_and_lets_reducing_orders_through():
    limit = {"max_position": 0.005}
    assert _bid(limit, position=4 * Q, bid_qty=[Q, Q + 1])[:2] == ([Q, 0], [OK, POSITION])
    out, logs = _quotes(limit, position=[-4 * Q, -4 * Q, 6 * Q, 6 * Q], bid_qty=0, ask_qty=[Q, Q + 1, Q, Q])
    assert out["ask_qty"].tolist() == [Q, 0, Q, Q]  # a long beyond the limit may still sell
    out, _ = _quotes(limit, position=6 * Q, bid_qty=Q, ask_qty=Q)
    assert (out["bid_qty"][0], out["ask_qty"][0], out["reject_code"][0]) == (0, Q, POSITION)
    assert logs["rejects"]["value"].tolist() == [pytest.approx(0.005000001)]


def test_exposure_sums_every_instrument_at_its_reference():
    # instrument 0 holds 0.001 at 61,830 (61.83); instrument 1 may add 61.83 more under a 123.66 limit
    params = {"max_exposure_notional": 123.66}
    out, logs = _quotes(params, key=[0, 1, 1], position=[Q, 0, 0], bid_qty=[0, Q, Q + 1])
    assert out["bid_qty"].tolist() == [0, Q, 0] and out["reject_code"].tolist() == [OK, OK, EXPOSURE]
    assert logs["rejects"]["key"].tolist() == [1]


def test_rate_limit_is_a_token_bucket_on_ts_recv_and_cancels_are_free():
    params = {"max_orders_per_s": 10, "order_burst": 2}  # a token every 100 ms, two at most
    ts = [0, 0, MS, 100 * MS - 1, 100 * MS, 100 * MS, 150 * MS]
    out, logs = _quotes(params, ts_recv=ts,
                        bid_px=[PX, PX, PX - CENT, PX - CENT, PX - CENT, PX - CENT, PX - CENT],
                        ask_qty=[0, Q, Q, Q, Q, 0, Q])
    # t=0: the bid and the ask take both tokens; 1 ms: the moved bid is refused; 100 ms − 1 ns: still short of a
    # token; 100 ms: through; then the ask is cancelled (free) and re-posted at 150 ms: 50 ms of credit, refused
    assert out["bid_qty"].tolist() == [Q, Q, 0, 0, Q, Q, Q]
    assert out["ask_qty"].tolist() == [0, Q, Q, Q, Q, 0, 0]
    assert out["reject_code"].tolist() == [OK, OK, RATE, OK, OK, OK, RATE]
    assert logs["rejects"]["check"].tolist() == ["max_orders_per_s", "max_orders_per_s"]
    assert logs["rejects"]["value"].tolist() == [0.01, 0.5]  # tokens available


def test_duplicate_guard_refuses_the_same_order_within_the_window():
    params = {"duplicate_window": "50ms"}
    ts = [0, 10 * MS, 20 * MS, 50 * MS, 60 * MS]
    qty, code, _, log = _bid(params, ts_recv=ts, bid_qty=[Q, 0, Q, Q, Q])
    assert (qty, code) == ([Q, 0, 0, Q, Q], [OK, OK, DUPLICATE, OK, OK])
    assert log["limit"].tolist() == [0.05] and log["value"].tolist() == [0.02]


def test_a_held_quote_is_checked_again_and_a_refusal_is_logged_once():
    # the position grows past what the resting bid allows: the bid is pulled; the same refusal is not re-logged
    qty, code, _, log = _bid({"max_position": 0.005}, position=[0, 4 * Q + 1, 4 * Q + 1, 4 * Q + 1, 0])
    assert (qty, code) == ([Q, 0, 0, 0, Q], [OK, POSITION, OK, OK, OK])
    assert len(log["ts_recv"]) == 1


def test_halted_lets_only_risk_reducing_quotes_through():
    out, logs = _quotes({}, halted=1, position=[3 * Q, 3 * Q, 0, -2 * Q], bid_qty=Q, ask_qty=[Q, 4 * Q, Q, Q])
    assert out["bid_qty"].tolist() == [0, 0, 0, Q]  # a bid only reduces a short
    assert out["ask_qty"].tolist() == [Q, 0, 0, 0]  # an ask only reduces a long, by at most the long
    rejects = logs["rejects"]
    assert set(rejects["check"].tolist()) == {"halted"} and rejects["state"].tolist()[0] == "halted"
    # the limit is what an exit on that side may be: 0.003 for the 0.004 ask on a 0.003 long
    assert rejects.get("limit")[rejects["side"] == -1].tolist()[0] == pytest.approx(0.003)


def test_flattening_works_the_position_down_in_whole_lots_at_the_strategys_price():
    params = {"max_order_qty": 0.002, "lot_size": 0.001}
    out, _ = _quotes(params, halted=2, position=[3 * Q, 1_500_000, -500_000, 0], bid_qty=Q, ask_qty=Q)
    assert out["ask_qty"].tolist() == [2 * Q, Q, 0, 0]  # at most max_order_qty, whole lots
    assert out["bid_qty"].tolist() == [0, 0, 0, 0]  # 0.0005 short is less than a lot: nothing to send
    out, _ = _quotes({}, halted=2, position=[-1_500_000], bid_qty=0, ask_qty=Q)
    assert (out["bid_qty"][0], out["ask_qty"][0]) == (1_500_000, 0)


def test_target_mode_checks_the_implied_order_and_holds_the_position_on_a_refusal():
    name_params = {"orders": "target", "max_order_qty": 0.002, "max_position": 0.005}
    events = {"target": [2 * Q, 2 * Q + 1, 6 * Q, 4 * Q, 4 * Q], "ref_px": [PX] * 5,
              "position": [0, 0, 4 * Q, 6 * Q, 6 * Q], "halted": [0, 0, 0, 0, 1]}
    out, logs = assert_cpu_numba_identical(NAME, name_params, events)
    # 0.002 passes; one unit more is refused (target := position); 0.004 → 0.006 breaks the position limit;
    # 0.006 → 0.004 reduces: through, also while HALTED
    assert out["target"].tolist() == [2 * Q, 0, 4 * Q, 4 * Q, 4 * Q]
    assert out["reject_code"].tolist() == [OK, MAX_QTY, POSITION, OK, OK]
    assert logs["rejects"]["qty"].tolist() == [2 * Q + 1, 2 * Q]
    halted = {"target": [2 * Q, 4 * Q, -Q, 0], "ref_px": [PX] * 4, "position": [3 * Q] * 4, "halted": [1] * 4}
    out, _ = assert_cpu_numba_identical(NAME, {"orders": "target"}, halted)
    assert out["target"].tolist() == [2 * Q, 3 * Q, 3 * Q, 0] and out["reject_code"].tolist()[1:3] == [HALTED] * 2
    flat = {"target": [5 * Q] * 3, "ref_px": [PX] * 3, "position": [5 * Q, 3 * Q, -Q], "halted": [2] * 3}
    out, _ = assert_cpu_numba_identical(NAME, {"orders": "target", "max_order_qty": 0.002}, flat)
    assert out["target"].tolist() == [3 * Q, Q, 0]  # steps of at most max_order_qty toward 0
    notional = {"target": [Q, Q], "ref_px": [UNDEF_PRICE, PX], "position": [0, 0], "halted": [0, 0]}
    out, _ = assert_cpu_numba_identical(NAME, {"orders": "target", "max_order_notional": 61.83}, notional)
    assert out["reject_code"].tolist() == [NO_REFERENCE, OK] and out["target"].tolist() == [0, Q]


def test_specialize_gives_each_mode_its_ports():
    quotes, _ = op(NAME, orders="quotes")
    target, _ = op(NAME, orders="target")
    assert list(quotes.inputs)[:4] == ["bid_px", "bid_qty", "ask_px", "ask_qty"]
    assert list(target.inputs) == ["target", "ref_px", "position", "halted"] and "target" in target.outputs


def test_bad_params_are_refused_with_the_field_named():
    with pytest.raises(ValidationError, match="lot_size"):
        op(NAME, lot_size=1e-10)
    with pytest.raises(ValidationError, match="order_burst needs max_orders_per_s"):
        op(NAME, order_burst=3)
    with pytest.raises(ValidationError, match="duplicate_window"):
        op(NAME, duplicate_window="-5ms")


def test_check_names_match_the_codes():
    assert CHECK_NAMES[PRICE_BAND] == "price_band" and CHECK_NAMES[RATE] == "max_orders_per_s"
    assert len(CHECK_NAMES) == DUPLICATE + 1


# --- the real book: parity, prefix invariance, log drains --------------------------------------------------------

PAPER = {"max_order_qty": 0.002, "max_order_notional": 200, "price_band_bps": 2, "max_position": 0.003,
         "max_exposure_notional": 150, "max_orders_per_s": 200, "order_burst": 5, "duplicate_window": "20ms",
         "tick_size": 0.01, "lot_size": 0.00001}


def _real_events(n: int | None = None, seed: int = 3) -> dict:
    """Quotes a few ticks around the real BTCUSDT top (a fat finger 1 % away now and then), a random-walk
    position, halts now and then, the mid as the reference, events 0–5 ms apart."""
    tops = btcusdt_tops()
    m = len(tops["best_bid"]) if n is None else n
    rng = np.random.default_rng(seed)
    bid, ask = tops["best_bid"][:m], tops["best_ask"][:m]
    good = (bid != UNDEF_PRICE) & (ask != UNDEF_PRICE)
    ref = np.where(good, bid + (ask - bid) // 2, UNDEF_PRICE)
    return {
        "bid_px": np.where(good, bid - CENT * rng.integers(0, 3, m) - (rng.random(m) < 0.01) * (bid // 100), 0),
        "bid_qty": rng.choice(np.array([0, Q, Q, 2 * Q, 3 * Q, Q + 5_000]), m),
        "ask_px": np.where(good, ask + CENT * rng.integers(0, 3, m), 0),
        "ask_qty": rng.choice(np.array([0, Q, Q, 2 * Q]), m),
        "ref_px": ref, "position": random_walk_position(m, Q, seed),
        "halted": np.where((np.arange(m) // 500) % 4 == 3, rng.integers(1, 3, m), 0),
        "ts_recv": np.cumsum(rng.integers(0, 5 * MS, m)),
    }


def test_cpu_and_numba_agree_on_the_real_book_and_every_check_fires():
    out, logs = assert_cpu_numba_identical(NAME, PAPER, _real_events(), drain_every=997)
    fired = set(logs["rejects"]["check"].tolist())
    assert fired >= {"max_order_qty", "max_position", "price_band", "max_orders_per_s", "halted", "lot",
                     "duplicate"}, fired
    # a drained log is the same rows however often it is drained
    _, once = run(NAME, PAPER, _real_events())
    for column, values in once["rejects"].items():
        assert values.tolist() == logs["rejects"][column].tolist()


@pytest.mark.parametrize("t", [0, 1, 250, 1_999, 3_333])
def test_outputs_and_rows_up_to_t_ignore_inputs_after_t(t):
    events = _real_events(4_000)
    changed = {k: v.copy() for k, v in events.items()}
    rng = np.random.default_rng(t)
    for name in ("bid_px", "bid_qty", "ask_qty", "ref_px", "position", "halted"):
        changed[name][t + 1:] = rng.integers(-3 * Q, 3 * Q, len(changed[name]) - t - 1)
    before, logs_before = run(NAME, PAPER, events)
    after, logs_after = run(NAME, PAPER, changed)
    for port in before:
        assert_bit_identical(before[port][:t + 1], after[port][:t + 1], f"port {port} up to t={t}")
    kept = logs_before["rejects"]["ts_recv"] <= events["ts_recv"][t]
    rows_after = logs_after["rejects"]["ts_recv"] <= events["ts_recv"][t]
    assert logs_before["rejects"]["qty"][kept].tolist() == logs_after["rejects"]["qty"][rows_after].tolist()


def test_docstring_example_names_this_op_with_valid_params():
    node = docstring_example(NAME)["risk"]
    stream_op, params = op(NAME, **node["with"])
    assert set(node["in"]) == set(stream_op.inputs) and params.max_orders_per_s == 5
    assert UNIT == 10**9
