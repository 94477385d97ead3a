"""``signal.crossover`` on the fabric: a subtractor, a sign register and a two-state output rule.

Formats: ``fast`` and ``slow`` SQ32.16; the state is the sign of the last valid difference (-1, 0, +1, or
"none" before the first); the side is a 2-bit signed value plus a null flag (the float op's NaN).

Exact on the grid: the difference of two SQ32.16 values is exact in float64 too, so for inputs on the grid
the side equals the float op's on every event (error bound 0). Off the grid a side can differ only on an event
where |fast - slow| is below one LSB (2^-16).

Structure: ``in`` (subtract, take the sign) → ``cross`` (the recurrence on the sign register and the output
rule): two cycles, II 1.
"""

import numpy as np
from amaranth import Module, Signal, signed

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat, is_null, null_float, quantize, quantize_array, side_value
from hardware.fpga.registry import PRICE, FpgaImpl
from hardware.fpga.rtl import Issue, Recurrence, StreamModule, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.signals.crossover import Crossover

NONE = 2  # the sign state before the first valid difference
SIDE = FixedFormat(True, 2, 0, "floor", "saturate")


def side_columns(signals: dict, port: str = "side") -> np.ndarray:
    """A side output column (float) from the module's ``out_<port>`` and ``out_<port>_null`` signals."""
    side = np.array([float(v) for v in signals[port]])
    return np.where(np.array(signals[f"{port}_null"], dtype=bool), np.nan, side)


class CrossoverFpga(FpgaImpl):
    op = Crossover
    exact_on_grid = True

    def constants(self, params) -> tuple:
        return (params.mode == "cross", params.short, *PRICE.codes())

    @staticmethod
    def init(c, n_keys):
        return (NONE,)

    @staticmethod
    def step(c, s, fast, slow):
        cross_only, short, frac, lo, hi, rounding, overflow = c
        previous = s[0]
        if is_null(fast) or is_null(slow):
            return s, null_float()
        diff = quantize(fast, frac, lo, hi, rounding, overflow) - quantize(slow, frac, lo, hi, rounding, overflow)
        sign = 1 if diff > 0 else (-1 if diff < 0 else 0)
        down = -1 if short else 0
        if cross_only:
            if previous == -1 and sign == 1:
                return (sign,), side_value(1)
            if previous == 1 and sign == -1:
                return (sign,), side_value(down)
            return (sign,), null_float()
        if sign == 1:
            return (sign,), side_value(1)
        if sign == -1:
            return (sign,), side_value(down)
        return (sign,), null_float()

    def formats(self, params) -> dict[str, FixedFormat]:
        return {"fast": PRICE, "slow": PRICE, "side": SIDE, "state.sign": SIDE,
                "diff": FixedFormat(True, 33, 16, "floor", "wrap")}

    def structure(self, params) -> T.Structure:
        return T.Structure((
            T.Stage("in", {"sign": (T.add(49), T.logic(1))}),
            T.Stage("cross", {"rule": (T.logic(2),)}, loop=True),
        ))

    def resources(self, params) -> R.Resources:
        return R.total([R.adder(49), R.random_logic(8), R.register(3 + 1 + 3 + 3 + 4)])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "CrossoverModule":
        cycles = stage_cycles(self.structure(params).stages[1], clock_hz)[0]
        return CrossoverModule(params.mode == "cross", params.short, cycles)

    def rtl_inputs(self, params, columns):
        fast, fast_null = quantize_array(columns[0], PRICE)
        slow, slow_null = quantize_array(columns[1], PRICE)
        return {"fast": fast, "fast_null": fast_null.astype(np.int64),
                "slow": slow, "slow_null": slow_null.astype(np.int64)}

    def rtl_outputs(self, params, signals):
        return [side_columns(signals)]


class CrossoverModule(StreamModule):
    """``in_fast``, ``in_slow`` SQ32.16 (+ nulls) → ``out_side`` (-1/0/+1, + ``out_side_null``)."""

    def __init__(self, cross_only: bool, short: bool, cycles: int):
        super().__init__({"fast": signed(48), "fast_null": 1, "slow": signed(48), "slow_null": 1},
                         {"side": signed(2), "side_null": 1})
        self.cross_only = cross_only
        self.short = short
        self.cycles = cycles

    def elaborate(self, platform):
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        diff = Signal(signed(49), name="diff")
        m.d.comb += diff.eq(self.i["fast"] - self.i["slow"])
        up, down_sign, null = Signal(name="up_r"), Signal(name="down_r"), Signal(name="null_r")
        hold_on(m, issue.accept, [(up, diff > 0), (down_sign, diff < 0),
                                  (null, self.i["fast_null"] | self.i["slow_null"])])
        valid = stage_valid(m, issue.accept, "in_valid_r")

        loop = Recurrence(m, valid, self.cycles)
        previous = Signal(signed(3), init=NONE, name="previous")
        side = Signal(signed(2), name="side_r")
        side_null = Signal(init=1, name="side_null_r")
        sign = Signal(signed(3), name="sign")
        m.d.comb += sign.eq(up - down_sign)
        down = -1 if self.short else 0
        with m.If(loop.fire):
            with m.If(null):
                m.d.sync += side_null.eq(1)
            with m.Else():
                m.d.sync += previous.eq(sign)
                if self.cross_only:
                    with m.If((previous == -1) & up):
                        m.d.sync += [side.eq(1), side_null.eq(0)]
                    with m.Elif((previous == 1) & down_sign):
                        m.d.sync += [side.eq(down), side_null.eq(0)]
                    with m.Else():
                        m.d.sync += side_null.eq(1)
                else:
                    with m.If(up):
                        m.d.sync += [side.eq(1), side_null.eq(0)]
                    with m.Elif(down_sign):
                        m.d.sync += [side.eq(down), side_null.eq(0)]
                    with m.Else():
                        m.d.sync += side_null.eq(1)
        m.d.comb += [self.out_valid.eq(loop.valid), self.o["side"].eq(side), self.o["side_null"].eq(side_null)]
        return m
