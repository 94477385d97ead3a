"""What every FPGA op's RTL shares: the streaming interface, stage registers, the recurrence controller.

Interface of every op module (valid/ready in, valid out, one clock domain ``sync``):

- ``in_valid`` (in): an event is presented on the ``in_<port>`` signals this cycle;
- ``in_ready`` (out): the module accepts an event this cycle (an event is taken when both are high).
  It depends on registers only (no combinational path from ``in_valid``), and is low for ``II - 1`` cycles
  after each accepted event (``II + stall`` after a warm-up event);
- ``out_valid`` (out): the ``out_<port>`` signals hold the outputs of one event this cycle (a one-cycle pulse,
  in event order). There is no output back-pressure: a consumer must take every output.

A float port of the op is a fixed-point signal plus ``in_<port>_null`` / ``out_<port>_null`` (the NaN of the
float op); integer ports are 64-bit signed. Stages are built in the order of the op's ``Structure``: each ends
in registers that load only when the stage's event passes (so a recurrence's operands stay stable during its
multicycle evaluation), and the recurrence stage runs as a ``K``-cycle multicycle path (``Recurrence``).
"""

from amaranth import Elaboratable, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Value

from hardware.fpga.fixed import FLOOR, HALF_EVEN, HALF_UP

INT64 = signed(64)


class StreamModule(Elaboratable):
    """Base of the op modules: the handshake signals and named input/output ports.

    ``inputs`` / ``outputs`` map port names to Amaranth shapes; ``ports()`` lists every top-level signal (for
    Verilog export), ``i`` / ``o`` give them by name.
    """

    def __init__(self, inputs: dict, outputs: dict):
        self.in_valid = Signal(name="in_valid")
        self.in_ready = Signal(name="in_ready")
        self.out_valid = Signal(name="out_valid")
        self.i = {name: Signal(shape, name=f"in_{name}") for name, shape in inputs.items()}
        self.o = {name: Signal(shape, name=f"out_{name}") for name, shape in outputs.items()}

    def ports(self) -> list:
        return [self.in_valid, self.in_ready, self.out_valid, *self.i.values(), *self.o.values()]


class Issue:
    """The input side: accept an event when ready, then hold ``in_ready`` low for the event's interval - 1.

    ``interval`` is the II (an int), or a signal when a warm-up event needs longer (the op computes whether
    the presented event takes the rare path from its own input-side counters).
    """

    def __init__(self, m: Module, module: StreamModule, interval, max_interval: int):
        self.accept = Signal(name="accept")
        hold = Signal(range(max(max_interval, 2)), name="hold")
        m.d.comb += [module.in_ready.eq(hold == 0), self.accept.eq(module.in_valid & module.in_ready)]
        with m.If(self.accept):
            m.d.sync += hold.eq(interval - 1)
        with m.Elif(hold != 0):
            m.d.sync += hold.eq(hold - 1)


def stage_valid(m: Module, previous, name: str) -> Signal:
    """The valid pulse of the next stage: ``previous`` delayed one cycle."""
    valid = Signal(name=name)
    m.d.sync += valid.eq(previous)
    return valid


def hold_on(m: Module, valid, pairs: list) -> None:
    """Register each (register, value) when ``valid`` (a stage's registers keep their event otherwise)."""
    with m.If(valid):
        m.d.sync += [reg.eq(value) for reg, value in pairs]


class Recurrence:
    """A multicycle recurrence stage: starts on ``start``, fires ``cycles`` later (``rare_cycles`` if ``rare``).

    The state registers load on ``fire``; their inputs (the previous stage's registers and the state) are
    stable from ``start`` to ``fire``, which is what makes the path a legal ``K``-cycle multicycle path
    (``set_multicycle_path K``). ``valid`` is the output pulse, one cycle after ``fire``.
    """

    def __init__(self, m: Module, start, cycles: int, rare=None, rare_cycles: int = 0):
        self.fire = Signal(name="fire")
        longest = max(cycles, rare_cycles)
        if longest == 1:
            m.d.comb += self.fire.eq(start)
        else:
            active = Signal(name="loop_active")
            count = Signal(range(longest + 1), name="loop_count")
            length = Signal(range(longest + 1), name="loop_cycles")
            latched = Signal(range(longest + 1), name="loop_cycles_latched")
            m.d.comb += length.eq(Mux(rare, rare_cycles, cycles) if rare is not None and rare_cycles else cycles)
            with m.If(start):
                with m.If(length == 1):
                    m.d.comb += self.fire.eq(1)
                with m.Else():
                    m.d.sync += [active.eq(1), count.eq(1), latched.eq(length)]
            with m.Elif(active):
                with m.If(count == latched - 1):
                    m.d.comb += self.fire.eq(1)
                    m.d.sync += active.eq(0)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        self.valid = stage_valid(m, self.fire, "loop_valid")


def delay_line(m: Module, value: Value, valid, stages: int, name: str) -> tuple[Value, Signal]:
    """Register ``value`` through ``stages`` registers (a multiply's pipeline, retimed into the DSP slices)."""
    for k in range(stages):
        reg = Signal(value.shape(), name=f"{name}_p{k + 1}")
        hold_on(m, valid, [(reg, value)])
        value, valid = reg, stage_valid(m, valid, f"{name}_v{k + 1}")
    return value, valid


def round_shift(value: Value, shift: int, rounding: int) -> Value:
    """``value / 2^shift`` rounded as ``hardware.fpga.fixed.mul_round`` rounds (floor of a biased value)."""
    if shift == 0:
        return value
    value = value.as_signed()
    if rounding == FLOOR:
        return value >> shift
    half = 1 << (shift - 1)
    if rounding == HALF_UP:
        return (value + half) >> shift
    assert rounding == HALF_EVEN
    return (value + (half - 1) + value.bit_select(shift, 1)) >> shift


def saturate_to(value: Value, min_int: int, max_int: int) -> Value:
    """Clamp ``value`` to ``[min_int, max_int]``."""
    return Mux(value > max_int, max_int, Mux(value < min_int, min_int, value))


def side_shape():
    """A side (-1, 0, +1) as a 2-bit signed value."""
    return signed(2)


def flag():
    return unsigned(1)
