"""``signal.book_imbalance`` on the fabric: clamp, two constant multiplies, two compares, a side register.

Formats: sizes UQ50.0 (int64 inputs clamped to [0, 2^50), as the op does), the ratio a UQ4.8 constant
(``ratio × 256``), the products UQ62.0; the side 2-bit signed plus a null flag. Integer arithmetic throughout:
the golden model equals the op bit for bit (error bound 0).

Structure: ``in`` (clamp) → ``scale`` (``ratio × size`` for both sizes: a shift-add tree for a ratio with
few signed digits such as 3 = 768/256, DSP slices otherwise; pipelined) → ``side`` (the two compares and
the side register with the change/state rule: the recurrence).
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat, null_float, side_value
from hardware.fpga.ops.crossover import NONE, SIDE, side_columns
from hardware.fpga.registry import FpgaImpl
from hardware.fpga.rtl import INT64, Issue, Recurrence, StreamModule, delay_line, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.execution.book_imbalance import RATIO_STEPS, SIZE_CAP, BookImbalance, imbalance_side

SIZE = FixedFormat(False, 50, 0, "floor", "saturate")


class BookImbalanceFpga(FpgaImpl):
    op = BookImbalance

    def constants(self, params) -> tuple:
        return BookImbalance.constants(params)

    @staticmethod
    def init(c, n_keys):
        return (NONE,)

    @staticmethod
    def step(c, s, bid_size, ask_size):
        ratio_steps, state_mode = c
        previous = s[0]
        side = imbalance_side(bid_size, ask_size, ratio_steps)
        if state_mode or side != previous:
            return (side,), side_value(side)
        return (side,), null_float()

    def formats(self, params) -> dict[str, FixedFormat]:
        return {"bid_size": SIZE, "ask_size": SIZE, "const.ratio": FixedFormat(False, 4, 8, "floor", "saturate"),
                "product": FixedFormat(False, 62, 0, "floor", "wrap"), "side": SIDE, "state.side": SIDE}

    def structure(self, params) -> T.Structure:
        ratio_steps = BookImbalance.constants(params)[0]
        return T.Structure((
            T.Stage("in", {"clamp": (T.cmp(64), T.mux(3))}),
            T.Stage("scale", {"ratio × size": T.const_mul(50, ratio_steps)}, pipelined=True),
            T.Stage("side", {"compare and rule": (T.cmp(62), T.logic(2))}, loop=True),
        ))

    def resources(self, params) -> R.Resources:
        ratio_steps = BookImbalance.constants(params)[0]
        scale = self.timing(params).cycles_of("scale")
        return R.total([
            R.comparator(64, 4), R.multiplexer(50, 3, 2), R.constant_multiplier(50, ratio_steps, 2),
            R.comparator(62, 2), R.random_logic(6),
            R.register(2 * 50 + 2 * 62 * scale + 2 * 62 + 3 + 3 + 8),
        ])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "BookImbalanceModule":
        structure = self.structure(params)
        cycles = {s.name: stage_cycles(s, clock_hz)[0] for s in structure.stages}
        return BookImbalanceModule(BookImbalance.constants(params), cycles["scale"], cycles["side"])

    def rtl_inputs(self, params, columns):
        return {"bid_size": np.asarray(columns[0], np.int64), "ask_size": np.asarray(columns[1], np.int64)}

    def rtl_outputs(self, params, signals):
        return [side_columns(signals)]


class BookImbalanceModule(StreamModule):
    """``in_bid_size``, ``in_ask_size`` (int64) → ``out_side`` (-1/0/+1, + ``out_side_null``)."""

    def __init__(self, c: tuple, scale_cycles: int, cycles: int):
        super().__init__({"bid_size": INT64, "ask_size": INT64}, {"side": signed(2), "side_null": 1})
        self.ratio_steps, self.state_mode = c
        self.scale_cycles = scale_cycles
        self.cycles = cycles

    def elaborate(self, platform):
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        sizes = []
        for name in ("bid_size", "ask_size"):
            value = self.i[name]
            clamped = Signal(unsigned(50), name=f"{name}_r")
            hold_on(m, issue.accept, [(clamped, Mux(value < 0, 0, Mux(value > SIZE_CAP, SIZE_CAP, value)))])
            sizes.append(clamped)
        valid = stage_valid(m, issue.accept, "in_valid_r")
        bid, ask = sizes
        # scale: bid · 256 and ask · 256 are shifts; ratio · size a constant multiply, pipelined
        products = []
        for k, size in enumerate((bid, ask)):
            product, scaled_valid = delay_line(m, size * self.ratio_steps, valid, self.scale_cycles, f"ratio_{k}")
            shifted, _ = delay_line(m, size * RATIO_STEPS, valid, self.scale_cycles, f"shifted_{k}")
            products.append((shifted, product))
        (bid_shifted, ratio_bid), (ask_shifted, ratio_ask) = products

        loop = Recurrence(m, scaled_valid, self.cycles)
        previous = Signal(signed(3), init=NONE, name="previous")
        side = Signal(signed(3), name="side")
        out_side = Signal(signed(2), name="side_r")
        out_null = Signal(init=1, name="side_null_r")
        m.d.comb += side.eq(0)
        with m.If(bid_shifted > ratio_ask):
            m.d.comb += side.eq(1)
        with m.Elif(ask_shifted > ratio_bid):
            m.d.comb += side.eq(-1)
        with m.If(loop.fire):
            m.d.sync += [previous.eq(side), out_side.eq(side),
                         out_null.eq(0 if self.state_mode else side == previous)]
        m.d.comb += [self.out_valid.eq(loop.valid), self.o["side"].eq(out_side), self.o["side_null"].eq(out_null)]
        return m

