"""strategy.imbalance_taker: entries, hysteresis, cooldown by hand; the rule on a real book; parity; no look-ahead."""

import numpy as np
import pytest
from pydantic import ValidationError

from nodes.contract import default_registry
from nodes.marketdata.schemas import F_LAST, UNDEF_PRICE
from tests.nodes.op_examples import docstring_example
from tests.nodes.strategies.real_book import btcusdt_tops, run_example_on_capture
from tests.support import assert_bit_identical, drive

NAME = "strategy.imbalance_taker"
OP = default_registry().get(NAME)
QTY = 2_000_000_000  # 2 units
BID, ASK = 100_000_000_000, 100_250_000_000


def _targets(params: dict, bid_size, ask_size, best_bid=None, best_ask=None, flags=None, target="cpu") -> np.ndarray:
    n = len(bid_size)
    columns = [
        np.full(n, BID, np.int64) if best_bid is None else np.asarray(best_bid, np.int64),
        np.full(n, ASK, np.int64) if best_ask is None else np.asarray(best_ask, np.int64),
        np.asarray(bid_size, np.int64), np.asarray(ask_size, np.int64),
        np.full(n, F_LAST, np.int64) if flags is None else np.asarray(flags, np.int64),
    ]
    validated = OP.Params.model_validate({"qty": 2, "threshold": 0.5, **params})
    return drive(OP, validated, [], columns, target)[0]


def _sizes(imbalances: list[float]) -> tuple[list[int], list[int]]:
    """Top sizes with the given imbalances (bid + ask = 1000 units)."""
    bid = [int(round(500 * (1 + x))) * 1_000_000_000 for x in imbalances]
    return bid, [1000 * 1_000_000_000 - b for b in bid]


def test_enters_beyond_the_threshold_and_leaves_with_hysteresis():
    imbalances = [0.0, 0.5, 0.6, 0.3, 0.1, -0.2, -0.6, -0.3, -0.1, 0.8]
    out = _targets({"hysteresis": 0.3}, *_sizes(imbalances))
    # 0.5 is not strictly above; 0.3 stays long (exit below 0.2); -0.3 stays short (exit above -0.2)
    assert (out // QTY).tolist() == [0, 0, 1, 1, 0, 0, -1, -1, 0, 1]
    no_band = _targets({}, *_sizes(imbalances))
    assert (no_band // QTY).tolist() == [0, 0, 1, 0, 0, 0, -1, 0, 0, 1]
    long_only = _targets({"short": False}, *_sizes(imbalances))
    assert (long_only // QTY).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 1]


def test_a_long_flips_straight_to_short_past_the_opposite_entry():
    assert (_targets({"hysteresis": 0.5}, *_sizes([0.9, -0.9, 0.9])) // QTY).tolist() == [1, -1, 1]


def test_cooldown_holds_a_change_for_the_given_decision_events():
    imbalances = [0.9, -0.9, -0.9, -0.9, -0.9, 0.0]
    assert (_targets({"cooldown_events": 2}, *_sizes(imbalances)) // QTY).tolist() == [1, 1, 1, -1, -1, -1]
    # records inside a venue event are not decisions and do not count
    flags = [F_LAST, 0, 0, F_LAST, F_LAST, F_LAST]
    out = _targets({"cooldown_events": 2}, *_sizes([0.9] + [-0.9] * 5), flags=flags)
    assert (out // QTY).tolist() == [1, 1, 1, 1, 1, -1]


def test_no_information_holds_the_target():
    bid_size, ask_size = _sizes([0.9, 0.9, 0.9, -0.9, -0.9])
    best_bid = [BID, UNDEF_PRICE, BID, ASK, BID]
    best_ask = [ASK, ASK, UNDEF_PRICE, ASK, ASK]
    out = _targets({}, bid_size, ask_size, best_bid, best_ask)
    assert (out // QTY).tolist() == [1, 1, 1, 1, -1]  # empty sides and a locked book change nothing
    assert (_targets({}, [0, 5], [0, 1]) // QTY).tolist() == [0, 1]


def test_on_a_real_book_the_target_follows_the_imbalance_rule():
    tops = btcusdt_tops()
    params = {"threshold": 0.6, "hysteresis": 0.2, "cooldown_events": 5}
    out = _targets(params, tops["bid_size"], tops["ask_size"], tops["best_bid"], tops["best_ask"], tops["flags"])
    assert set(np.unique(out).tolist()) == {-QTY, 0, QTY}
    changed = np.flatnonzero(np.diff(out)) + 1
    assert len(changed) >= 5
    total = tops["bid_size"] + tops["ask_size"]
    imbalance = (tops["bid_size"] - tops["ask_size"]) / np.where(total > 0, total, 1)
    decided = (tops["flags"] & F_LAST) != 0
    assert decided[changed].all()
    up, down = changed[out[changed] > out[changed - 1]], changed[out[changed] < out[changed - 1]]
    assert (imbalance[up] > -0.4).all() and (imbalance[down] < 0.4).all()  # moves toward the side the book leans
    entered_long, entered_short = changed[out[changed] == QTY], changed[out[changed] == -QTY]
    assert (imbalance[entered_long] > 0.6).all() and (imbalance[entered_short] < -0.6).all()
    decision_index = np.cumsum(decided)
    assert (np.diff(decision_index[changed]) > 5).all()  # the cooldown separates changes


@pytest.mark.parametrize("params", [{"threshold": 0.3}, {"threshold": 0.6, "hysteresis": 0.6, "cooldown_events": 3,
                                                          "short": False, "every_record": True}])
def test_cpu_and_numba_are_bit_identical_on_a_real_book(params):
    tops = btcusdt_tops()
    columns = (tops["bid_size"], tops["ask_size"], tops["best_bid"], tops["best_ask"], tops["flags"])
    on_cpu = _targets(params, *columns, target="cpu")
    on_numba = _targets(params, *columns, target="numba")
    assert_bit_identical(on_cpu, on_numba, f"{NAME} {params}: target")
    assert len(np.unique(on_cpu)) > 1


def test_outputs_up_to_t_ignore_inputs_after_t():
    tops = btcusdt_tops()
    columns = [tops[k].copy() for k in ("bid_size", "ask_size", "best_bid", "best_ask", "flags")]
    n = len(columns[0])
    params = {"threshold": 0.4, "cooldown_events": 3}
    before = _targets(params, *columns)
    rng = np.random.default_rng(2)
    for t in (0, 50, 4_000, n - 2):
        changed = [c.copy() for c in columns]
        for column in changed:
            column[t + 1 :] = rng.integers(-10**12, 10**12, n - t - 1)
        np.testing.assert_array_equal(before[: t + 1], _targets(params, *changed)[: t + 1], err_msg=f"t={t}")


def test_bad_params_are_refused():
    with pytest.raises(ValidationError, match="must not exceed threshold"):
        OP.Params.model_validate({"qty": 1, "threshold": 0.3, "hysteresis": 0.4})
    with pytest.raises(ValidationError):
        OP.Params.model_validate({"qty": 1, "threshold": 1.0})


def test_docstring_example_is_valid():
    node = docstring_example(NAME)["target"]
    OP.Params.model_validate(node["with"])
    assert list(node["in"]) == list(OP.inputs)


def test_docstring_example_runs_in_a_spec_and_the_engine_adds_nothing(tmp_path):
    """The example on the shipped capture (its ``mbo`` source is the Binance stream, its book ``book.l2``)
    against the tick venue: the recorded target is exactly the step driven over what the engine fed it."""
    example = docstring_example(NAME)
    example["target"]["with"] = {**example["target"]["with"], "qty": 0.01}
    venue = {"op": "backtest.tick_venue", "in": {"target": "target"},
             "with": {"book": "l2", "orders": "target", "entry_latency": "1ms", "response_latency": "1ms"}}
    run, fed = run_example_on_capture(tmp_path, example, venue)
    by_hand = drive(OP, OP.Params.model_validate(example["target"]["with"]), [], fed, "cpu")
    assert_bit_identical(run.replay.recorded["target"]["target"].to_numpy(), by_hand[0], "example: target")
    assert len(np.unique(by_hand[0])) > 1 and run.replay.summaries["venue"].stats["fills"] > 0
