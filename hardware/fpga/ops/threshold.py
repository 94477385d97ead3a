"""``signal.threshold`` on the fabric: four comparators against constants and a two-bit state machine.

Formats: ``x`` SQ32.16; the four levels are quantized so that comparisons stay exact for inputs on the grid:
a "strictly above L" level is ``floor(L · 2^16)`` and a "strictly below L" level is ``ceil(L · 2^16)``
(for a grid value v, ``v > L`` ⟺ ``v > floor(L)`` and ``v < L`` ⟺ ``v < ceil(L)``). The side is 2-bit signed
with a "none yet" state, the output a side plus a null flag.

Exact on the grid (error bound 0); off the grid a side can differ only on an event whose ``x`` lies within
one LSB (2^-16) of a level.

Structure: ``in`` (the four compares, in parallel) → ``side`` (the recurrence: the state machine and the
change/state output rule): two cycles, II 1.
"""

import math

import numpy as np
from amaranth import C, Module, Signal, signed

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat, is_null, null_float, quantize, quantize_array, side_value
from hardware.fpga.ops.crossover import NONE, SIDE, side_columns
from hardware.fpga.registry import PRICE, FpgaImpl
from hardware.fpga.rtl import Issue, Recurrence, StreamModule, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.signals.threshold import Threshold


def level_above(level: float) -> int:
    """The integer a grid value must exceed to be strictly above ``level``."""
    return _clamped(math.floor(level * 2.0**PRICE.frac_bits))


def level_below(level: float) -> int:
    """The integer a grid value must be under to be strictly below ``level``."""
    return _clamped(math.ceil(level * 2.0**PRICE.frac_bits))


def _clamped(q: int) -> int:
    return max(PRICE.min_int - 1, min(PRICE.max_int + 1, q))


class ThresholdFpga(FpgaImpl):
    op = Threshold
    exact_on_grid = True

    def constants(self, params) -> tuple:
        mirror = 2.0 * params.center
        return (level_above(params.upper), level_below(params.lower), level_below(mirror - params.upper),
                level_above(mirror - params.lower), params.short, params.mode == "state", *PRICE.codes())

    @staticmethod
    def init(c, n_keys):
        return (NONE,)

    @staticmethod
    def step(c, s, x):
        upper, lower, short_entry, short_exit, short, state_mode, frac, lo, hi, rounding, overflow = c
        previous = s[0]
        if is_null(x):
            return s, null_float()
        q = quantize(x, frac, lo, hi, rounding, overflow)
        side = 0 if previous == NONE else previous
        if side > 0:
            if short and q < short_entry:
                side = -1
            elif q < lower:
                side = 0
        elif side < 0:
            if q > upper:
                side = 1
            elif q > short_exit:
                side = 0
        elif q > upper:
            side = 1
        elif short and q < short_entry:
            side = -1
        if state_mode or side != previous:
            return (side,), side_value(side)
        return (side,), null_float()

    def formats(self, params) -> dict[str, FixedFormat]:
        level = FixedFormat(True, 34, 16, "floor", "saturate")  # one bit of headroom for the clamped levels
        return {"x": PRICE, "side": SIDE, "state.side": SIDE, "const.upper": level, "const.lower": level,
                "const.short_entry": level, "const.short_exit": level}

    def structure(self, params) -> T.Structure:
        return T.Structure((
            T.Stage("in", {"compare": (T.cmp(50),)}),
            T.Stage("side", {"state machine": (T.logic(2), T.mux(3))}, loop=True),
        ))

    def resources(self, params) -> R.Resources:
        return R.total([R.constant_comparator(50, 4), R.random_logic(10), R.register(4 + 1 + 3 + 3 + 4)])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "ThresholdModule":
        cycles = stage_cycles(self.structure(params).stages[1], clock_hz)[0]
        return ThresholdModule(self.constants(params), cycles)

    def rtl_inputs(self, params, columns):
        x, null = quantize_array(columns[0], PRICE)
        return {"x": x, "x_null": null.astype(np.int64)}

    def rtl_outputs(self, params, signals):
        return [side_columns(signals)]


class ThresholdModule(StreamModule):
    """``in_x`` SQ32.16 (+ null) → ``out_side`` (-1/0/+1, + ``out_side_null``)."""

    def __init__(self, c: tuple, cycles: int):
        super().__init__({"x": signed(48), "x_null": 1}, {"side": signed(2), "side_null": 1})
        self.c = c
        self.cycles = cycles

    def elaborate(self, platform):
        upper, lower, short_entry, short_exit, short, state_mode = self.c[:6]
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        x = self.i["x"]
        above_upper, below_lower = Signal(name="above_upper"), Signal(name="below_lower")
        below_entry, above_exit = Signal(name="below_short_entry"), Signal(name="above_short_exit")
        null = Signal(name="null_r")
        hold_on(m, issue.accept, [(above_upper, x > upper), (below_lower, x < lower),
                                  (below_entry, x < short_entry), (above_exit, x > short_exit),
                                  (null, self.i["x_null"])])
        valid = stage_valid(m, issue.accept, "in_valid_r")

        loop = Recurrence(m, valid, self.cycles)
        previous = Signal(signed(3), init=NONE, name="previous")
        side = Signal(signed(3), name="side")
        out_side = Signal(signed(2), name="side_r")
        out_null = Signal(init=1, name="side_null_r")
        held = Signal(signed(3), name="held")
        m.d.comb += held.eq(previous)
        with m.If(previous == NONE):
            m.d.comb += held.eq(0)
        enter_short = below_entry if short else C(0, 1)
        m.d.comb += side.eq(held)
        with m.If(held > 0):
            with m.If(enter_short):
                m.d.comb += side.eq(-1)
            with m.Elif(below_lower):
                m.d.comb += side.eq(0)
        with m.Elif(held < 0):
            with m.If(above_upper):
                m.d.comb += side.eq(1)
            with m.Elif(above_exit):
                m.d.comb += side.eq(0)
        with m.Elif(above_upper):
            m.d.comb += side.eq(1)
        with m.Elif(enter_short):
            m.d.comb += side.eq(-1)
        with m.If(loop.fire):
            with m.If(null):
                m.d.sync += out_null.eq(1)
            with m.Else():
                m.d.sync += [previous.eq(side), out_side.eq(side),
                             out_null.eq(0 if state_mode else side == previous)]
        m.d.comb += [self.out_valid.eq(loop.valid), self.o["side"].eq(out_side), self.o["side_null"].eq(out_null)]
        return m
