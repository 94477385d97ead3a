"""Timing derived from the pipeline structure: latency, II, the clock check, restructurings and queueing."""

import numpy as np
import pytest

from hardware.fpga import timing as T
from hardware.fpga.registry import fpga_impls
from hardware.fpga.resources import Resources, over_budget, ring_buffer, total
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, csd_digits, queue_starts, queued_completion_ns

EXAMPLES = {
    "indicator.ema": {"window": 20},
    "indicator.sma": {"window": 20},
    "signal.crossover": {},
    "signal.threshold": {"upper": 100.0, "lower": 80.0},
    "book.l2": {"max_levels": 16},
    "signal.book_imbalance": {"ratio": 3.0},
    "risk.order_limits": {"lots": 1, "max_position_lots": 1, "max_notional": 1e5, "lot_size": 0.001},
    "order.encode": {"instrument_id": 7},
}


def _params(name, **override):
    impl = fpga_impls()[name]
    return impl, impl.op.Params(**{**EXAMPLES[name], **override})


def test_every_implementation_has_an_example():
    assert sorted(EXAMPLES) == sorted(fpga_impls())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_op_meets_322_mhz(name):
    impl, params = _params(name)
    timing = impl.timing(params, DEFAULT_CLOCK_HZ)
    assert timing.fmax_ok, timing.note
    assert timing.latency_cycles == sum(cycles for _, cycles in timing.stage_cycles)
    assert timing.latency_cycles >= len(impl.structure(params).stages)
    assert timing.critical_path and "period 3.103 ns" in timing.note


def test_a_multiply_in_a_one_cycle_recurrence_sets_the_ii():
    """EMA(20): v → subtract → ×alpha → add → v is 8.3 ns of logic in a loop: II 4 at 322 MHz, II 1 at 100 MHz."""
    impl, params = _params("indicator.ema")
    fast = impl.timing(params, DEFAULT_CLOCK_HZ)
    assert (fast.ii_cycles, fast.latency_cycles, fast.stall_cycles) == (4, 5, 0)
    assert "mul57x25" in fast.critical_path and "II 4" in fast.note
    assert 100e6 < fast.max_clock_hz_ii1 < 130e6
    slow = impl.timing(params, 100e6)
    assert (slow.ii_cycles, slow.latency_cycles) == (1, 2)


def test_a_power_of_two_alpha_restructures_the_loop_to_ii_1():
    """EMA(31): alpha = 1/16 is a shift; the loop is a subtract and an add. The seed's 1/31 multiply runs once
    and stalls the input instead."""
    impl, params = _params("indicator.ema", window=31)
    timing = impl.timing(params, DEFAULT_CLOCK_HZ)
    assert (timing.ii_cycles, timing.latency_cycles, timing.stall_cycles) == (1, 2, 2)
    assert "shift" in timing.critical_path and "stalls 2 cycle(s) once" in timing.note


def test_the_risk_check_loop_is_restructured_to_ii_1_and_the_book_grows_with_its_depth():
    impl, params = _params("risk.order_limits")
    assert impl.timing(params).ii_cycles == 1
    book, shallow = _params("book.l2", max_levels=16)
    _, deep = _params("book.l2", max_levels=64)
    assert book.timing(shallow).ii_cycles == 1
    deep_timing = book.timing(deep)
    assert deep_timing.ii_cycles == 2 and "or64" in deep_timing.critical_path
    assert book.resources(deep).ff > 3 * book.resources(shallow).ff


def test_a_clock_too_fast_for_a_feed_forward_stage_fails_the_check():
    impl, params = _params("order.encode")
    timing = impl.timing(params, 700e6)
    assert not timing.fmax_ok
    assert "does not fit the period" in timing.note


def test_pipelined_multiplies_take_cycles_by_their_width():
    impl, params = _params("indicator.sma", window=20)  # 1/20: a 53 × 25 product, 6 DSP tiles
    assert impl.timing(params).cycles_of("scale") == 3
    _, power = _params("indicator.sma", window=16)  # 1/16: a shift, no scale stage
    assert "scale" not in dict(impl.timing(power).stage_cycles)
    assert impl.timing(power).latency_cycles == 3


def test_constant_multiplies_become_shift_adds_with_few_signed_digits():
    for value in range(1, 2000):
        digits = csd_digits(value)
        # a CSD form never has two adjacent non-zero digits, so it has at most ceil(bits / 2) + 1 of them
        assert 1 <= digits <= (value.bit_length() + 2) // 2
    assert [csd_digits(v) for v in (1, 3, 7, 768, 20000)] == [1, 2, 2, 2, 4]
    assert T.const_mul(50, 768) == (T.add(60),)
    assert T.const_mul(49, 20000)[0].kind == "mul"
    assert T.const_mul(48, 4) == (T.shift(),)


def test_queueing_under_bursts():
    """An event starts at max(arrival, previous start + II)."""
    arrivals = np.array([0, 0, 0, 10, 11, 30, 30], np.int64)
    starts = queue_starts(arrivals, np.full(7, 4, np.int64))
    assert starts.tolist() == [0, 4, 8, 12, 16, 30, 34]
    stalled = queue_starts(arrivals, np.array([4, 4, 7, 4, 4, 4, 4], np.int64))  # a warm-up event: II + stall
    assert stalled.tolist() == [0, 4, 8, 15, 19, 30, 34]
    impl, params = _params("indicator.ema")
    timing = impl.timing(params)
    done = queued_completion_ns(np.array([0.0, 1.0, 2.0, 100.0]), timing)
    period = 1e9 / DEFAULT_CLOCK_HZ
    assert np.allclose(done, (np.array([0, 4, 8, 33]) + timing.latency_cycles) * period)


def test_resources_sum_and_check_a_budget():
    assert ring_buffer(20, 48) == Resources(lut=96)
    assert ring_buffer(4096, 48).bram == 6
    assert ring_buffer(500, 36).bram == 0.5
    parts = [fpga_impls()[name].resources(_params(name)[1]) for name in EXAMPLES]
    segment = total(parts)
    assert segment.lut == sum(p.lut for p in parts) and segment.dsp == sum(p.dsp for p in parts)
    assert all(p.ff > 0 and p.lut > 0 for p in parts)
    assert over_budget(segment, Resources(1_000_000, 2_000_000, 6000, 1800)) == []
    problems = over_budget(segment, Resources(lut=1000, ff=10**6, dsp=0, bram=10))
    assert any("LUT" in p for p in problems) and any("DSP" in p for p in problems)
    assert _params("indicator.ema")[0].resources(_params("indicator.ema")[1]).dsp == 12
