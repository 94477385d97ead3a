"""The venue's params (validation messages, specialization by mode) and its summary (stats by hand)."""

import math
import re

import pytest
import yaml
from pydantic import ValidationError

from nodes.backtest.tick import TickVenue
from nodes.backtest.tick.result import summarize_tick_backtest
from tests.nodes.backtest.tick.venue_driver import book_events, drive, level, tick

SECOND = 1_000_000_000


def params(**raw):
    return TickVenue.Params.model_validate(raw)


@pytest.mark.parametrize("raw, message", [
    ({"queue_model": "fifo"}, "unknown queue model 'fifo': expected conservative, prob_power, prob_log"),
    ({"queue_model": {"model": "prob_power", "n": 0}}, "greater than 0"),
    ({"queue_model": {"module": "q.txt"}}, "must be a Python file"),
    ({"reject_windows": [{"start": "2024-08-08T10:00:00Z", "end": "2024-08-08T09:00:00Z", "rate": 0.5}]},
     "reject window end ('2024-08-08T09:00:00Z') is not after its start ('2024-08-08T10:00:00Z')"),
    ({"reject_windows": [{"start": "yesterday", "end": 5, "rate": 0.5}]}, "is not an ISO time"),
    ({"reject_windows": [{"start": 0, "end": 5, "rate": 1.5}]}, "less than or equal to 1"),
    ({"entry_latency": "fast"}, "is not a duration"),
    ({"equity_interval": "0"}, "equity_interval must be > 0"),
    ({"orders": "market"}, "'quotes', 'target' or 'commands'"),
    ({"max_orders": 0}, "greater than or equal to 1"),
    ({"maker_fees": 0.1}, "Extra inputs are not permitted"),
])
def test_bad_params_say_what_is_wrong(raw, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        params(**raw)


def test_iso_reject_windows_are_utc_nanoseconds():
    window = params(reject_windows=[{"start": "2024-08-08T23:00:00", "end": "2024-08-08T23:00:01.5+00:00",
                                     "rate": 0.2}]).reject_windows[0]
    assert window.span_ns() == (1723158000 * SECOND, 1723158001 * SECOND + SECOND // 2)


def test_specialize_gives_each_mode_its_inputs():
    op = TickVenue.specialize(params(book="l3", orders="commands"))
    assert list(op.inputs) == ["order_id", "side", "price", "size", "action", "flags", "cmd", "cmd_id", "cmd_side",
                               "cmd_type", "cmd_price", "cmd_qty", "cmd_ref"]
    assert op.triggers == ("order_id", "side", "price", "size", "action", "flags")
    assert list(TickVenue.specialize(params(orders="target")).inputs)[-1] == "target"
    assert TickVenue.specialize(params()).step is TickVenue.step  # the default is the registry's op


def test_a_user_queue_model_names_its_file_digest_in_the_step(tmp_path):
    """The kernel cache is keyed by the steps' names: an edited model must give a new name (a new kernel)."""
    model = tmp_path / "q.py"
    model.write_text("def advance(front_qty, back_qty, decrease_qty):\n    return front_qty\n")
    first = TickVenue.specialize(params(queue_model={"module": "q.py"}), base_dir=tmp_path).step
    model.write_text("def advance(front_qty, back_qty, decrease_qty):\n    return front_qty - decrease_qty\n")
    second = TickVenue.specialize(params(queue_model={"module": "q.py"}), base_dir=tmp_path).step
    assert first.__qualname__ != second.__qualname__
    assert "q.py:advance:" in first.__qualname__


def test_the_docstring_example_is_a_valid_node():
    text = TickVenue.__doc__.split("Example::", 1)[1]
    node = yaml.safe_load(text)["venue"]
    assert node["op"] == TickVenue.name
    op = TickVenue.specialize(params(**node["with"]))
    assert set(node["in"]) == set(op.inputs)


def test_stats_from_a_hand_built_run():
    raw = {"orders": "commands", "equity_interval": "1s", "taker_fee": 0.001}
    events = book_events(0, bids=[(100, 5)], asks=[(101, 5)]) + [
        tick(SECOND // 2, cmd=1, cmd_id=1, cmd_side=1, cmd_type=1, cmd_qty=1),   # buys 1 @ 101
        tick(SECOND // 2 + 1),
        level(1_200_000_000, -1, 101, 0, flags=0), level(1_200_000_000, 1, 102, 5, flags=0),
        level(1_200_000_001, -1, 103, 5),  # mid 100.5 → 102.5
        tick(2_500_000_000),
    ]
    run = drive(raw, events)
    result = summarize_tick_backtest(TickVenue.Params.model_validate(raw), run.logs)
    fee = 101 * 0.001
    # equity rows at 0 s (flat), 1 s (long 1 at mid 100.5) and 2 s (mid 102.5)
    curve = [100_000.0, 100_000 - 101 - fee + 100.5, 100_000 - 101 - fee + 102.5]
    assert run.equity["equity"].to_list() == pytest.approx(curve, abs=1e-9)
    stats = result.stats
    assert stats["pnl"] == pytest.approx(curve[-1] - 100_000, abs=1e-9)
    assert stats["fees"] == pytest.approx(fee)
    assert (stats["fills"], stats["taker_fills"], stats["maker_fills"]) == (1, 1, 0)
    assert stats["volume"] == stats["taker_volume"] == 1.0
    assert stats["max_drawdown"] == pytest.approx(curve[0] - curve[1], abs=1e-9)
    changes = [curve[1] - curve[0], curve[2] - curve[1]]
    mean = sum(changes) / 2
    std = math.sqrt(sum((x - mean) ** 2 for x in changes))
    assert stats["sharpe"] == pytest.approx(mean / std * math.sqrt(365 * 86_400), rel=1e-12)
    assert stats["time_in_market"] == pytest.approx(2 / 3)
    assert stats["max_abs_position"] == 1.0
    text = result.format()
    assert "PnL" in text and "Sharpe" in text and "taker" in text


def test_gaps_in_the_equity_log_count_as_quiet_intervals():
    raw = {"orders": "commands", "equity_interval": "1s"}
    events = book_events(0, bids=[(100, 5)], asks=[(101, 5)]) + [
        tick(SECOND // 2, cmd=1, cmd_id=1, cmd_side=1, cmd_type=1, cmd_qty=1), tick(SECOND // 2 + 1),
        level(10 * SECOND, 1, 100.5, 5),   # nine quiet seconds, then the mid moves
    ]
    result = summarize_tick_backtest(TickVenue.Params.model_validate(raw), drive(raw, events).logs)
    assert result.equity.height == 2  # logged at 0 s and 10 s only
    assert result.stats["time_in_market"] == pytest.approx(10 / 11)  # the grid from 0 s to 10 s has 11 points
