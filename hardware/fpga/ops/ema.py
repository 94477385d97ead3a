"""``indicator.ema`` on the fabric: an SMA-seeded EMA in fixed point.

Formats: input ``x`` SQ32.16 (half to even, saturated), value SQ32.24 (the state and the output), seed sum
SQ46.16 (window ≤ 16384), alpha = 2 / (window + 1) and 1 / window as 25-bit constants (``constant_shift``):
a power of two becomes a shift. The value update ``v += floor((x - v) · alpha)`` truncates (floor): the shift
of a power-of-two alpha is then free, and the bias it adds is bounded below.

Structure: ``in`` (input register) → ``update`` (the recurrence: ``v`` → subtract → multiply by alpha → add →
``v``; warm-up: ``sum += x``, and once ``sum · 1/window`` — the rare seed path). The multiply sits inside a
one-event recurrence, so it cannot be pipelined: at 322 MHz a general alpha needs a 4-cycle multicycle loop
(II 4). With ``window = 2^k - 1`` alpha is a power of two, the loop is a subtract and an add, and the op runs
at II 1 (the seed multiply then stalls the input once, after the window-th value).

Error bound (scale-relative, see ``hardware.fpga.registry``): input rounding 2^-17, seed 2^-25 (1/window)
and 2^-24 (its rounding), alpha 2^-25 relative on a deviation up to 2·M, and the floor bias 2^-24 / alpha =
2^-25·(window + 1).
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import (
    FLOOR,
    FixedFormat,
    constant_shift,
    dequantize,
    is_power_of_two,
    is_null,
    mul_round,
    null_float,
    quantize,
    quantize_array,
)
from hardware.fpga.lint import FpgaPlacementError, Reason
from hardware.fpga.registry import PRICE, FpgaImpl
from hardware.fpga.rtl import Issue, Recurrence, StreamModule, hold_on, round_shift, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.indicators.ema import Ema, ema_alpha

VALUE = FixedFormat(True, 32, 24, "floor", "wrap")  # a convex combination of inputs: cannot overflow
SHIFT_TO_VALUE = VALUE.frac_bits - PRICE.frac_bits
VALUE_LSB = VALUE.lsb
COEFFICIENT_BITS = 25
MAX_WINDOW = 16384  # the seed sum stays within 62 bits


def seed_constant(window: int) -> tuple[int, int]:
    """1 / window as (q, r) scaling a 16-fraction-bit sum straight to the value's 24 fraction bits."""
    q, r = constant_shift(1.0 / window, COEFFICIENT_BITS)
    r -= SHIFT_TO_VALUE
    if r < 0:
        q, r = q << -r, 0
    return q, r


class EmaFpga(FpgaImpl):
    op = Ema

    def check(self, params) -> None:
        if params.window > MAX_WINDOW:
            raise FpgaPlacementError(self.op_name, [Reason(
                "width", f"window {params.window} > {MAX_WINDOW}: the seed sum would not fit 62 bits",
                "params.window")], "Use a shorter window or place the node on numba.")

    def constants(self, params) -> tuple:
        alpha_q, alpha_r = constant_shift(ema_alpha(params.window), COEFFICIENT_BITS)
        seed_q, seed_r = seed_constant(params.window)
        return (params.window, alpha_q, alpha_r, seed_q, seed_r, *PRICE.codes())

    @staticmethod
    def init(c, n_keys):
        return (0, 0, 0)

    @staticmethod
    def step(c, s, x):
        window, alpha_q, alpha_r, seed_q, seed_r, frac, lo, hi, rounding, overflow = c
        value, count, total = s
        if is_null(x):
            return s, null_float()
        q = quantize(x, frac, lo, hi, rounding, overflow)
        if count < window:
            total += q
            count += 1
            if count < window:
                return (value, count, total), null_float()
            value = mul_round(total, seed_q, seed_r, 0)
            return (value, count, total), dequantize(value, VALUE_LSB)
        value = value + mul_round(q * 256 - value, alpha_q, alpha_r, 0)
        return (value, count, total), dequantize(value, VALUE_LSB)

    def formats(self, params) -> dict[str, FixedFormat]:
        alpha_q, alpha_r = constant_shift(ema_alpha(params.window), COEFFICIENT_BITS)
        seed_q, seed_r = seed_constant(params.window)
        return {
            "x": PRICE,
            "out": VALUE,
            "state.value": VALUE,
            "state.sum": FixedFormat(True, 32 + params.window.bit_length(), 16, "floor", "wrap"),
            "const.alpha": FixedFormat(False, 0, alpha_r, "half_even") if alpha_r else FixedFormat(False, 1, 0),
            "const.seed": FixedFormat(False, max(1, seed_q.bit_length() - seed_r), seed_r, "half_even"),
        }

    def error_bound(self, params) -> float:
        n = params.window
        return 2.0**-17 + 2.0**-24 + 2.0**-25 + 2.0**-25 * 2 + 2.0**-25 * (n + 1) + 2.0**-40

    def structure(self, params) -> T.Structure:
        alpha_q, _ = constant_shift(ema_alpha(params.window), COEFFICIENT_BITS)
        seed_q, _ = seed_constant(params.window)
        run = (T.add(57), T.shift() if is_power_of_two(alpha_q) else T.mul(57, alpha_q.bit_length()), T.add(56))
        sum_bits = 48 + params.window.bit_length()
        seed = (T.add(sum_bits), T.shift() if is_power_of_two(seed_q) else T.mul(sum_bits, seed_q.bit_length()))
        return T.Structure((
            T.Stage("in", {"register": ()}),
            T.Stage("update", {"value": run, "sum": (T.add(sum_bits),), "seed": seed}, loop=True,
                    rare=frozenset({"seed"})),
        ))

    @property
    def note(self) -> str:
        return "restructure: window = 2^k - 1 makes alpha a power of two (a shift) and the loop II 1"

    def resources(self, params) -> R.Resources:
        alpha_q, _ = constant_shift(ema_alpha(params.window), COEFFICIENT_BITS)
        seed_q, _ = seed_constant(params.window)
        sum_bits = 48 + params.window.bit_length()
        count_bits = params.window.bit_length() + 1
        parts = [
            R.register(49 + 1),  # input register and the rare flag
            R.register(56 + sum_bits + count_bits + 1),  # value, sum, count, output null
            R.register(2 * count_bits + 4),  # input-side counter, hold and loop counters
            R.adder(57), R.adder(56), R.adder(sum_bits), R.adder(count_bits, 2),
            R.multiplexer(56, 2), R.random_logic(12),
        ]
        if not is_power_of_two(alpha_q):
            parts.append(R.multiplier(57, alpha_q.bit_length()))
        if not is_power_of_two(seed_q):
            parts.append(R.multiplier(sum_bits, seed_q.bit_length()))
        return R.total(parts)

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "EmaModule":
        self.check(params)
        structure = self.structure(params)
        cycles, rare_cycles = stage_cycles(structure.stages[1], clock_hz)
        return EmaModule(self.constants(params), cycles, max(cycles, rare_cycles))

    def rtl_inputs(self, params, columns):
        x, null = quantize_array(columns[0], PRICE)
        return {"x": x, "x_null": null.astype(np.int64)}

    def rtl_outputs(self, params, signals):
        value = np.array([float(v) for v in signals["out"]]) * 2.0**-VALUE.frac_bits
        return [np.where(np.array(signals["out_null"], dtype=bool), np.nan, value)]

    def rare_events(self, params, columns):
        valid = ~np.isnan(np.asarray(columns[0], np.float64))
        rare = np.zeros(len(valid), bool)
        seeded = np.flatnonzero(valid)
        if len(seeded) >= params.window:
            rare[seeded[params.window - 1]] = True
        return rare


class EmaModule(StreamModule):
    """The EMA datapath: ``in_x`` SQ32.16 (+ ``in_x_null``) → ``out_out`` SQ32.24 (+ ``out_out_null``)."""

    def __init__(self, c: tuple, cycles: int, seed_cycles: int):
        super().__init__({"x": signed(48), "x_null": 1}, {"out": signed(56), "out_null": 1})
        self.c = c
        self.cycles = cycles
        self.seed_cycles = seed_cycles

    def elaborate(self, platform):
        window, alpha_q, alpha_r, seed_q, seed_r = self.c[:5]
        m = Module()
        # input side: the window-th valid value takes the seed path, which may need more cycles
        seen = Signal(range(window + 1), name="seen")
        seeding_in = Signal(name="seeding_in")
        m.d.comb += seeding_in.eq(~self.i["x_null"] & (seen == window - 1))
        issue = Issue(m, self, Mux(seeding_in, self.seed_cycles, self.cycles), max(self.cycles, self.seed_cycles))
        with m.If(issue.accept & ~self.i["x_null"] & (seen < window)):
            m.d.sync += seen.eq(seen + 1)
        # stage in
        x = Signal(signed(48), name="x_r")
        null = Signal(name="null_r")
        seeding = Signal(name="seeding_r")
        hold_on(m, issue.accept, [(x, self.i["x"]), (null, self.i["x_null"]), (seeding, seeding_in)])
        valid = stage_valid(m, issue.accept, "in_valid_r")
        # stage update: the recurrence
        loop = Recurrence(m, valid, self.cycles, seeding, self.seed_cycles)
        value = Signal(signed(56), name="value")
        total = Signal(signed(62), name="total")
        count = Signal(range(window + 1), name="count")
        out_null = Signal(init=1, name="out_null_r")
        run_value = Signal(signed(56), name="run_value")
        new_total = Signal(signed(62), name="new_total")
        seed_value = Signal(signed(56), name="seed_value")
        deviation = (x << 8) - value
        m.d.comb += [
            run_value.eq(value + round_shift(deviation * alpha_q, alpha_r, FLOOR)),
            new_total.eq(total + x),
            seed_value.eq(round_shift(new_total * seed_q, seed_r, FLOOR)),
        ]
        with m.If(loop.fire):
            with m.If(null):
                m.d.sync += out_null.eq(1)
            with m.Elif(count < window):
                m.d.sync += [total.eq(new_total), count.eq(count + 1)]
                with m.If(count == window - 1):
                    m.d.sync += [value.eq(seed_value), out_null.eq(0)]
                with m.Else():
                    m.d.sync += out_null.eq(1)
            with m.Else():
                m.d.sync += [value.eq(run_value), out_null.eq(0)]
        m.d.comb += [self.out_valid.eq(loop.valid), self.o["out"].eq(value), self.o["out_null"].eq(out_null)]
        return m
