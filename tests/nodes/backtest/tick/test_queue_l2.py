"""L2 queue models on a hand-built level: the queue ahead after a decrease, by model, computed by hand."""

import math

import pytest

from hardware.targets import StepCompileError, step_function
from nodes.backtest.tick import TickVenue
from nodes.backtest.tick.queue_l2 import builtin_advance
from nodes.backtest.tick.codes import QM_CONSERVATIVE, QM_PROB_LOG, QM_PROB_POWER
from nodes.errors import SpecError
from tests.nodes.backtest.tick.venue_driver import book_events, drive, level, tick, trade, units

POST_ONLY = 4


def scenario() -> list[dict]:
    """Our bid joins 100 behind 10, 30 more join behind it, then 8 leave without a trade (front 10, back 30)."""
    return book_events(1000, bids=[(100, 10)], asks=[(101, 5)]) + [
        tick(2000, cmd=1, cmd_id=1, cmd_side=1, cmd_type=POST_ONLY, cmd_price=100, cmd_qty=1),
        tick(2100),
        level(2200, 1, 100, 40),
        level(2300, 1, 100, 32),
        tick(2400),
    ]


def ahead_after(queue_model) -> list[int]:
    run = drive({"orders": "commands", "queue_model": queue_model}, scenario())
    return run.queue["ahead"].to_list()


def hftbacktest_front(f, front: float, back: float, decrease: float) -> float:
    """hftbacktest's ProbQueueModel.depth, written independently: the share behind is f(back)/(f(back)+f(front))."""
    behind = f(back) / (f(back) + f(front))
    return front - (1 - behind) * decrease + min(back - behind * decrease, 0.0)


def test_conservative_model_never_advances_on_a_decrease():
    assert ahead_after("conservative") == [units(10)]


@pytest.mark.parametrize("n", [2.0, 3.0])
def test_prob_power_splits_the_decrease_by_x_to_the_n(n):
    expected = hftbacktest_front(lambda x: x**n, 10.0, 30.0, 8.0)
    assert ahead_after({"model": "prob_power", "n": n}) == [units(10), round(expected * 1e9)]
    assert 9.0 < expected < 10.0  # most of the decrease was behind us (30 behind, 10 ahead)


def test_prob_log_splits_the_decrease_by_log_one_plus_x():
    expected = hftbacktest_front(lambda x: math.log(1 + x), 10.0, 30.0, 8.0)
    assert ahead_after("prob_log") == [units(10), round(expected * 1e9)]


def test_a_decrease_larger_than_the_back_eats_the_front():
    # 2 ahead, 6 behind, all 8 leave: the model puts 90 % (7.2) behind, but only 6 were there
    front = builtin_advance(QM_PROB_POWER, 2.0, 2.0, 6.0, 8.0)
    assert front == pytest.approx(hftbacktest_front(lambda x: x**2, 2.0, 6.0, 8.0))
    assert front == pytest.approx(0.0, abs=1e-12)
    assert builtin_advance(QM_CONSERVATIVE, 0.0, 10.0, 1.0, 5.0) == 10.0
    assert builtin_advance(QM_PROB_LOG, 0.0, 0.0, 1.0, 5.0) == 0.0  # nothing ahead: nothing to advance


def test_a_level_below_the_queue_ahead_clamps_it():
    events = scenario()[:-3] + [level(2200, 1, 100, 4), tick(2300)]
    run = drive({"orders": "commands"}, events)
    assert run.queue["ahead"].to_list() == [units(10), units(4)]
    assert run.queue["cause"].to_list() == ["arrival", "level_below_ahead"]


def test_a_user_queue_model_from_the_spec_folder(tmp_path):
    (tmp_path / "my_queue.py").write_text(
        "def advance(front_qty, back_qty, decrease_qty):\n"
        "    # a quarter of every decrease was ahead of us\n"
        "    return front_qty - 0.25 * decrease_qty\n")
    run = drive({"orders": "commands", "queue_model": {"module": "my_queue.py", "function": "advance"}}, scenario(),
                base_dir=tmp_path)
    assert run.queue["ahead"].to_list() == [units(10), units(8)]


def test_a_user_queue_model_is_kept_within_what_the_decrease_allows(tmp_path):
    (tmp_path / "wild.py").write_text("def advance(front_qty, back_qty, decrease_qty):\n    return -1e9\n")
    run = drive({"orders": "commands", "queue_model": {"module": "wild.py"}}, scenario(), base_dir=tmp_path)
    assert run.queue["ahead"].to_list() == [units(10), units(2)]  # 8 left: at most 8 of them were ahead


def test_a_missing_user_model_is_a_clear_spec_error(tmp_path):
    (tmp_path / "my_queue.py").write_text("def other(a, b, c):\n    return a\n\ndef two(a, b):\n    return a\n")
    with pytest.raises(SpecError, match="not found"):
        drive({"orders": "commands", "queue_model": {"module": "nope.py"}}, scenario(), base_dir=tmp_path)
    with pytest.raises(SpecError, match="no function 'advance'"):
        drive({"orders": "commands", "queue_model": {"module": "my_queue.py"}}, scenario(), base_dir=tmp_path)
    with pytest.raises(SpecError, match="must take"):
        drive({"orders": "commands", "queue_model": {"module": "my_queue.py", "function": "two"}}, scenario(),
              base_dir=tmp_path)


def test_trades_then_a_decrease_split_only_the_unexplained_part():
    events = scenario()[:-2] + [trade(2250, -1, 100, 4), level(2300, 1, 100, 32), tick(2400)]
    # 40 at the level, 4 traded (front 10 → 6), then 40 → 32: 4 explained by the trade, 4 unexplained;
    # back = 40 - 4 traded - 6 front = 30
    expected = hftbacktest_front(lambda x: x**2, 6.0, 30.0, 4.0)
    run = drive({"orders": "commands", "queue_model": {"model": "prob_power", "n": 2}}, events)
    assert run.queue["ahead"].to_list() == [units(10), units(6), round(expected * 1e9)]


@pytest.mark.slow  # compiles the venue a second time, around the user's model (~20 s)
def test_a_user_queue_model_compiles_with_numba_and_gives_the_same_bits(tmp_path):
    (tmp_path / "my_queue.py").write_text(
        "import math\n\n\n"
        "def advance(front_qty, back_qty, decrease_qty):\n"
        "    share = math.sqrt(front_qty) / (math.sqrt(front_qty) + math.sqrt(back_qty) + 1e-12)\n"
        "    return front_qty - share * decrease_qty\n")
    params = {"orders": "commands", "queue_model": {"module": "my_queue.py"}}
    on_cpu = drive(params, scenario(), base_dir=tmp_path)
    on_numba = drive(params, scenario(), "numba", base_dir=tmp_path)
    assert on_cpu.queue["ahead"].to_list() == on_numba.queue["ahead"].to_list()
    share = math.sqrt(10) / (math.sqrt(10) + math.sqrt(30) + 1e-12)
    assert on_cpu.queue["ahead"].to_list() == [units(10), round((10 - share * 8) * 1e9)]


def test_a_user_queue_model_numba_cannot_compile_names_its_file_and_line(tmp_path):
    (tmp_path / "bad.py").write_text("def advance(front_qty, back_qty, decrease_qty):\n"
                                     "    return front_qty - object()\n")
    op = TickVenue.specialize(TickVenue.Params.model_validate({"orders": "commands",
                                                               "queue_model": {"module": "bad.py"}}),
                              base_dir=tmp_path)
    with pytest.raises(StepCompileError, match=r"advance \(queue_model of backtest.tick_venue\) \(.*bad.py:1\)"):
        step_function(op.step, "numba")
