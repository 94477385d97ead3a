"""``indicator.sma`` on the fabric: a running sum over a circular buffer, times a 1/window constant.

Formats: input ``x`` SQ32.16, the buffer holds the quantized inputs (48 bits × window, BRAM above 64
entries, distributed RAM below), the running sum SQ46.16 (exact: fixed-point adds do not round, so TA-Lib's
order of adding and subtracting cannot change the result), 1/window a 25-bit constant (a shift for a
power-of-two window), the mean SQ32.24 rounded half to even.

Structure: ``in`` → ``update`` (the recurrence: ``sum + x - leaving`` and the buffer position; the leaving
value is prefetched from the buffer the cycle before) → ``scale`` (``sum · 1/window``: a DSP product,
pipelined over as many cycles as its width needs; absent for a power-of-two window) → ``round``. The loop has
no multiply, so the op runs at II 1 at 322 MHz.

Error bound (scale-relative): input rounding 2^-17 (an average of errors of at most that), 2^-25 for the
1/window constant, 2^-25 for the output rounding.
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib.memory import Memory

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import (
    HALF_EVEN,
    FixedFormat,
    constant_shift,
    dequantize,
    is_null,
    is_power_of_two,
    mul_round,
    null_float,
    quantize,
    quantize_array,
)
from hardware.fpga.lint import FpgaPlacementError, Reason
from hardware.fpga.registry import PRICE, FpgaImpl
from hardware.fpga.rtl import Issue, Recurrence, StreamModule, delay_line, hold_on, round_shift, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.indicators.sma import Sma

MEAN = FixedFormat(True, 32, 24, "half_even", "wrap")  # an average of inputs: cannot overflow
MEAN_LSB = MEAN.lsb
COEFFICIENT_BITS = 25
MAX_WINDOW = 4096  # 48 bits × 4096 = 6 BRAM36; longer windows belong on numba


def mean_constant(window: int) -> tuple[int, int]:
    """1 / window as (q, r) scaling a 16-fraction-bit sum to the mean's 24 fraction bits."""
    q, r = constant_shift(1.0 / window, COEFFICIENT_BITS)
    r -= MEAN.frac_bits - PRICE.frac_bits
    if r < 0:
        q, r = q << -r, 0
    return q, r


class SmaFpga(FpgaImpl):
    op = Sma

    def check(self, params) -> None:
        if params.window > MAX_WINDOW:
            raise FpgaPlacementError(self.op_name, [Reason(
                "memory", f"window {params.window} > {MAX_WINDOW}: its buffer would take "
                          f"{R.ring_buffer(params.window, 48).bram:g} BRAM36", "params.window")],
                "Use a shorter window or place the node on numba.")

    def constants(self, params) -> tuple:
        q, r = mean_constant(params.window)
        return (params.window, q, r, *PRICE.codes())

    @staticmethod
    def init(c, n_keys):
        return (0, 0, 0, np.zeros(c[0], np.int64))

    @staticmethod
    def step(c, s, x):
        window, mean_q, mean_r, frac, lo, hi, rounding, overflow = c
        total, count, pos, ring = s
        if is_null(x):
            return s, null_float()
        q = quantize(x, frac, lo, hi, rounding, overflow)
        ring[pos] = q
        total += q
        pos += 1
        if pos == window:
            pos = 0
        if count < window:
            count += 1
            if count < window:
                return (total, count, pos, ring), null_float()
        mean = mul_round(total, mean_q, mean_r, 2)
        total -= ring[pos]
        return (total, count, pos, ring), dequantize(mean, MEAN_LSB)

    def formats(self, params) -> dict[str, FixedFormat]:
        q, r = mean_constant(params.window)
        return {
            "x": PRICE,
            "out": MEAN,
            "state.ring": PRICE,
            "state.sum": FixedFormat(True, 32 + params.window.bit_length(), 16, "floor", "wrap"),
            "const.inverse_window": FixedFormat(False, max(1, q.bit_length() - r), r, "half_even"),
        }

    def error_bound(self, params) -> float:
        return 2.0**-17 + 2.0**-25 + 2.0**-25 + 2.0**-40

    def _sum_bits(self, params) -> int:
        return 48 + params.window.bit_length()

    def structure(self, params) -> T.Structure:
        q, r = mean_constant(params.window)
        bits = self._sum_bits(params)
        position = (T.eq(params.window.bit_length()), T.mux(2))
        stages = [
            T.Stage("in", {"register": ()}),
            T.Stage("update", {"sum": (T.add(bits), T.add(bits)), "position": position}, loop=True),
        ]
        if not is_power_of_two(q):
            stages.append(T.Stage("scale", {"product": (T.mul(bits, q.bit_length()),)}, pipelined=True))
        stages.append(T.Stage("round", {"round": (T.add(bits + q.bit_length()),)}))
        return T.Structure(tuple(stages))

    def resources(self, params) -> R.Resources:
        q, _ = mean_constant(params.window)
        bits = self._sum_bits(params)
        addr = max(1, (params.window - 1).bit_length())
        timing = self.timing(params)
        scale_cycles = dict(timing.stage_cycles).get("scale", 0)
        parts = [
            R.ring_buffer(params.window, 48),
            R.register(49),  # input register
            R.register(bits + bits + addr + addr + 2),  # sum, window sum, position, count (saturating), null
            R.register(scale_cycles * (bits + q.bit_length()) + 57 + 8),  # product pipeline, output, valids
            R.adder(bits, 2), R.adder(addr, 2), R.equality(addr, 2), R.multiplexer(addr, 2, 2),
            R.adder(bits + q.bit_length()), R.random_logic(10),
        ]
        if not is_power_of_two(q):
            parts.append(R.multiplier(bits, q.bit_length()))
        return R.total(parts)

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "SmaModule":
        self.check(params)
        structure = self.structure(params)
        cycles = {s.name: stage_cycles(s, clock_hz)[0] for s in structure.stages}
        return SmaModule(self.constants(params), cycles["update"], cycles.get("scale", 0), self._sum_bits(params))

    def rtl_inputs(self, params, columns):
        x, null = quantize_array(columns[0], PRICE)
        return {"x": x, "x_null": null.astype(np.int64)}

    def rtl_outputs(self, params, signals):
        value = np.array([float(v) for v in signals["out"]]) * 2.0**-MEAN.frac_bits
        return [np.where(np.array(signals["out_null"], dtype=bool), np.nan, value)]


class SmaModule(StreamModule):
    """The SMA datapath: ``in_x`` SQ32.16 (+ null) → ``out_out`` SQ32.24 (+ null)."""

    def __init__(self, c: tuple, cycles: int, scale_cycles: int, sum_bits: int):
        super().__init__({"x": signed(48), "x_null": 1}, {"out": signed(56), "out_null": 1})
        self.c = c
        self.cycles = cycles
        self.scale_cycles = scale_cycles
        self.sum_bits = sum_bits

    def elaborate(self, platform):
        window, mean_q, mean_r = self.c[:3]
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        x = Signal(signed(48), name="x_r")
        null = Signal(name="null_r")
        hold_on(m, issue.accept, [(x, self.i["x"]), (null, self.i["x_null"])])
        valid = stage_valid(m, issue.accept, "in_valid_r")

        loop = Recurrence(m, valid, self.cycles)
        total = Signal(signed(self.sum_bits), name="total")
        count = Signal(range(window + 1), name="count")
        pos = Signal(range(window), name="pos")
        window_sum = Signal(signed(self.sum_bits), name="window_sum")
        sum_null = Signal(init=1, name="sum_null")
        leaving = Signal(signed(48), name="leaving")
        new_pos = Signal(range(window), name="new_pos")
        with_x = Signal(signed(self.sum_bits), name="with_x")
        accepted = loop.fire & ~null

        def after(p):
            return Mux(p == window - 1, 0, p + 1)

        m.d.comb += [new_pos.eq(after(pos)), with_x.eq(total + x)]
        if window == 1:
            m.d.comb += leaving.eq(x)  # the value written is the one that leaves
        else:
            ring = Memory(shape=signed(48), depth=window, init=[])
            m.submodules.ring = ring
            write = ring.write_port()
            read = ring.read_port(transparent_for=(write,))
            # prefetch: the slot after the next write position, read one cycle ahead of its use
            m.d.comb += [
                write.addr.eq(pos), write.data.eq(x), write.en.eq(accepted),
                read.addr.eq(Mux(accepted, after(new_pos), new_pos)),
                leaving.eq(read.data),
            ]
        with m.If(loop.fire):
            with m.If(null):
                m.d.sync += sum_null.eq(1)
            with m.Else():
                m.d.sync += [pos.eq(new_pos), window_sum.eq(with_x)]
                with m.If(count < window - 1):
                    m.d.sync += [count.eq(count + 1), total.eq(with_x), sum_null.eq(1)]
                with m.Else():
                    m.d.sync += [count.eq(window), total.eq(with_x - leaving), sum_null.eq(0)]

        # scale: the product's pipeline registers, retimed into the DSP slices by synthesis
        product, product_valid = delay_line(m, window_sum * mean_q, loop.valid, self.scale_cycles, "product")
        product_null, _ = delay_line(m, sum_null, loop.valid, self.scale_cycles, "product_null")
        out = Signal(signed(56), name="out_r")
        out_null = Signal(init=1, name="out_null_r")
        hold_on(m, product_valid, [(out, round_shift(product, mean_r, HALF_EVEN)), (out_null, product_null)])
        out_valid = stage_valid(m, product_valid, "out_valid_r")
        m.d.comb += [self.out_valid.eq(out_valid), self.o["out"].eq(out), self.o["out_null"].eq(out_null)]
        return m
