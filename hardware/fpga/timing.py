"""Timing derived from an op's pipeline structure: latency in cycles, initiation interval, the critical path.

Nothing here is declared per op as a number. An op describes its datapath as **stages** (see ``Stage``): each
stage's combinational paths as chains of primitives (an adder of 57 bits, a DSP multiply of 57×25 bits, a
K-input OR tree ...), and whether the stage is a **recurrence** (its registers feed back into its own paths:
an EMA's value, a book's level array). From the device clock:

- a feed-forward stage takes one cycle and must fit the period (else ``fmax_ok`` is False and the stage is
  named as the critical path); a ``pipelined`` feed-forward stage (a wide multiply) takes as many cycles as its
  delay needs — the registers after it are retimed into the DSP slices (``AREG/MREG/PREG``);
- a recurrence cannot be pipelined without changing the arithmetic: it takes ``K = ceil(delay / usable)``
  cycles as a multicycle path, and the op accepts a new event every ``K`` cycles (``ii_cycles``). A rare path
  (an EMA's one-off seed divide) that needs more cycles than the common one stalls the input once
  (``stall_cycles``).

Latency is the sum of the stages' cycles (every stage ends in a register; the last one holds the outputs).
The RTL in ``hardware.fpga.ops`` is built from the same stages and cycle counts, and the tests measure its
latency and II in simulation against this model.

The delay figures are estimates for an AMD UltraScale+ device at speed grade -2 (placed-and-routed typical
values, not sign-off): one LUT level with local routing 0.40 ns, a carry chain 0.45 ns + 12.5 ps per bit, a
DSP48E2 27×18 multiply 3.0 ns unregistered plus 0.6 ns per extra tile of a wider product, and 0.35 ns of
register overhead (clock-to-out, setup, clock uncertainty) per cycle.

Queueing under bursts: an event starts at ``max(arrival, previous start + II)`` (``queue_starts``).
"""

import math
from dataclasses import dataclass, field

import numba
import numpy as np

LUT_NS = 0.40
CARRY_BASE_NS = 0.45
CARRY_PER_BIT_NS = 0.0125
DSP_NS = 3.0
DSP_CASCADE_NS = 0.6
REGISTER_OVERHEAD_NS = 0.35
DSP_A_BITS = 26  # unsigned bits of a DSP48E2 multiplier input (27×18 signed)
DSP_B_BITS = 17
DEFAULT_CLOCK_HZ = 322_265_625  # the 10GBASE-R PCS clock (64b/66b): a common clock for a trading datapath


def _log_levels(inputs: int, per_lut: int) -> int:
    """LUT levels of a tree reducing ``inputs`` signals with ``per_lut`` inputs a LUT (at least one)."""
    return max(1, math.ceil(math.log(max(inputs, 2)) / math.log(per_lut) - 1e-9))


@dataclass(frozen=True)
class Prim:
    """One primitive on a combinational path.

    ``kind``: ``add`` (add, subtract, negate: a carry chain), ``cmp`` (magnitude compare: a carry chain),
    ``eq`` (equality: a LUT tree), ``mux`` (``ways``-input multiplexer), ``or`` (``ways``-input OR/AND
    reduction), ``xor`` (``ways``-input XOR tree, e.g. a CRC bit), ``lut`` (``ways`` levels of random logic),
    ``mul`` (``width`` × ``width_b`` bits on DSP slices), ``shift`` (by a constant: wiring, no delay).
    """

    kind: str
    width: int = 1
    ways: int = 2
    width_b: int = 0

    def delay_ns(self) -> float:
        if self.kind in ("add", "cmp"):
            return CARRY_BASE_NS + CARRY_PER_BIT_NS * self.width
        if self.kind == "eq":
            return LUT_NS * _log_levels(2 * self.width, 6)
        if self.kind == "mux":
            return LUT_NS * _log_levels(self.ways, 4)
        if self.kind in ("or", "xor"):
            return LUT_NS * _log_levels(self.ways, 6)
        if self.kind == "lut":
            return LUT_NS * self.ways
        if self.kind == "mul":
            return DSP_NS + DSP_CASCADE_NS * (dsp_tiles(self.width, self.width_b) - 1)
        if self.kind == "shift":
            return 0.0
        raise ValueError(f"unknown primitive kind {self.kind!r}")

    def __str__(self) -> str:
        if self.kind == "mul":
            return f"mul{self.width}x{self.width_b}"
        if self.kind in ("mux", "or", "xor"):
            return f"{self.kind}{self.ways}"
        if self.kind == "lut":
            return f"lut×{self.ways}"
        return f"{self.kind}{self.width}"


def dsp_tiles(width_a: int, width_b: int) -> int:
    """DSP48E2 slices of a ``width_a`` × ``width_b`` multiply (27×18 signed tiles; the wider operand on A)."""
    a, b = max(width_a, width_b), min(width_a, width_b)
    return math.ceil(a / DSP_A_BITS) * math.ceil(b / DSP_B_BITS)


def add(width: int) -> Prim:
    return Prim("add", width)


def cmp(width: int) -> Prim:
    return Prim("cmp", width)


def eq(width: int) -> Prim:
    return Prim("eq", width)


def mux(ways: int) -> Prim:
    return Prim("mux", 1, ways)


def or_tree(ways: int) -> Prim:
    return Prim("or", 1, ways)


def xor_tree(ways: int) -> Prim:
    return Prim("xor", 1, ways)


def logic(levels: int) -> Prim:
    return Prim("lut", 1, levels)


def mul(width_a: int, width_b: int) -> Prim:
    return Prim("mul", width_a, 2, width_b)


def shift() -> Prim:
    return Prim("shift")


def csd_digits(constant: int) -> int:
    """Non-zero digits of ``constant`` in canonical signed-digit form (the adders of a shift-add multiply + 1)."""
    constant = abs(constant)
    digits = 0
    while constant:
        if constant & 1:
            digits += 1
            constant -= 2 - (constant & 3)  # a run of ones: subtract at its bottom, add above it
        constant >>= 1
    return digits


SHIFT_ADD_MAX_DIGITS = 3  # up to three signed digits a constant multiply is two adders in LUTs, not a DSP


def const_mul(width: int, constant: int) -> tuple[Prim, ...]:
    """The path of ``x · constant`` for a ``width``-bit x: a shift, a shift-add tree, or a DSP multiply."""
    digits = csd_digits(constant)
    out_bits = width + abs(constant).bit_length()
    if digits <= 1:
        return (shift(),)
    if digits <= SHIFT_ADD_MAX_DIGITS:
        return tuple(add(out_bits) for _ in range(math.ceil(math.log2(digits))))
    return (mul(width, abs(constant).bit_length()),)


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: named combinational paths ending in this stage's registers.

    ``loop``: the stage's registers feed its own paths (a recurrence), so it runs as a multicycle path and
    sets the initiation interval. ``pipelined``: a feed-forward stage whose delay may span several cycles
    with registers retimed into it (DSP pipelines). ``rare``: names of paths taken by a few events only
    (warm-up); they may stall the input instead of slowing every event.
    """

    name: str
    paths: dict[str, tuple[Prim, ...]]
    loop: bool = False
    pipelined: bool = False
    rare: frozenset[str] = frozenset()

    def delay_ns(self, path: str) -> float:
        return sum(p.delay_ns() for p in self.paths[path])

    def common_delay_ns(self) -> float:
        """The longest path every event may take."""
        return max((self.delay_ns(p) for p in self.paths if p not in self.rare), default=0.0)

    def rare_delay_ns(self) -> float:
        return max((self.delay_ns(p) for p in self.rare), default=0.0)

    def worst_path(self, rare: bool = False) -> str:
        names = [p for p in self.paths if (p in self.rare) == rare] or list(self.paths)
        return max(names, key=self.delay_ns)


@dataclass(frozen=True)
class Structure:
    """An op's datapath: its stages in order (at most one recurrence)."""

    stages: tuple[Stage, ...]

    def __post_init__(self):
        if sum(s.loop for s in self.stages) > 1:
            raise ValueError("a structure has at most one recurrence stage")


@dataclass(frozen=True)
class Timing:
    """What the model derives for an op at a clock.

    ``latency_cycles``: from accepting an event to its outputs being valid. ``ii_cycles``: cycles between
    accepted events. ``stall_cycles``: extra cycles the one warm-up event on a rare path adds to its own
    latency and to the gap before the next event (0 for most ops). ``fmax_ok``: every stage meets the clock.
    """

    latency_cycles: int
    ii_cycles: int
    fmax_ok: bool
    critical_path: str
    note: str
    clock_hz: float
    stall_cycles: int = 0
    stage_cycles: tuple[tuple[str, int], ...] = field(default=())
    max_clock_hz_ii1: float = 0.0

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * 1e9 / self.clock_hz

    @property
    def events_per_s(self) -> float:
        return self.clock_hz / self.ii_cycles

    def cycles_of(self, stage: str) -> int:
        return dict(self.stage_cycles)[stage]


def usable_ns(clock_hz: float) -> float:
    """The combinational delay one cycle allows: the period less the register overhead."""
    return 1e9 / clock_hz - REGISTER_OVERHEAD_NS


def stage_cycles(stage: Stage, clock_hz: float) -> tuple[int, int]:
    """``(cycles, rare_cycles)`` of a stage at ``clock_hz`` (rare_cycles: of its rare paths, 0 if none)."""
    budget = usable_ns(clock_hz)
    if not stage.loop and not stage.pipelined:
        return 1, 0
    cycles = max(1, math.ceil(stage.common_delay_ns() / budget - 1e-9))
    rare = max(1, math.ceil(stage.rare_delay_ns() / budget - 1e-9)) if stage.rare else 0
    return cycles, rare


def _describe(stage: Stage, path: str) -> str:
    chain = " → ".join(str(p) for p in stage.paths[path]) or "register"
    return f"{stage.name}.{path}: {chain} = {stage.delay_ns(path):.2f} ns"


def derive_timing(structure: Structure, clock_hz: float, note: str = "") -> Timing:
    """Latency, II, stall, clock check and critical path of ``structure`` at ``clock_hz``.

    The critical path is what limits the op: a feed-forward stage that misses the clock, else a recurrence that
    needs more than one cycle (it sets the II), else the stage with the most logic per cycle.
    """
    budget = usable_ns(clock_hz)
    period_ns = 1e9 / clock_hz
    latency = 0
    ii = 1
    stall = 0
    per_stage = []
    failing, limiting, busiest = [], None, (0.0, "")
    for stage in structure.stages:
        cycles, rare_cycles = stage_cycles(stage, clock_hz)
        per_stage.append((stage.name, cycles))
        latency += cycles
        delay = stage.common_delay_ns()
        description = _describe(stage, stage.worst_path())
        if stage.loop:
            ii = cycles
            stall = max(0, rare_cycles - cycles)
            if cycles > 1:
                limiting = f"{description} (II {cycles})"
        elif not stage.pipelined and delay > budget:
            failing.append((stage.name, description))
        if delay / cycles > busiest[0]:
            busiest = (delay / cycles, description)
    fmax_ok = not failing
    critical = failing[0][1] if failing else (limiting or busiest[1])
    loop = next((s for s in structure.stages if s.loop), None)
    max_ii1 = 0.0
    if loop is not None:
        max_ii1 = 1e9 / (loop.common_delay_ns() + REGISTER_OVERHEAD_NS)
    notes = [f"period {period_ns:.3f} ns, {budget:.3f} ns of logic a cycle"]
    if loop is not None:
        loop_path = loop.worst_path()
        chain = " → ".join(str(p) for p in loop.paths[loop_path])
        notes.append(
            f"recurrence {loop.name}.{loop_path} ({chain}) = {loop.common_delay_ns():.2f} ns: II {ii} "
            f"(II 1 up to {max_ii1 / 1e6:.0f} MHz)"
        )
        if stall:
            rare_path = loop.worst_path(rare=True)
            notes.append(f"warm-up path {loop.name}.{rare_path} = {loop.rare_delay_ns():.2f} ns stalls "
                         f"{stall} cycle(s) once")
    for name, _ in failing:
        notes.append(f"stage {name} does not fit the period: split it or lower the clock")
    if note:
        notes.append(note)
    return Timing(
        latency_cycles=latency,
        ii_cycles=ii,
        fmax_ok=fmax_ok,
        critical_path=critical,
        note="; ".join(notes),
        clock_hz=clock_hz,
        stall_cycles=stall,
        stage_cycles=tuple(per_stage),
        max_clock_hz_ii1=max_ii1,
    )


@numba.njit(cache=True)
def queue_starts(arrival_cycles: np.ndarray, interval_cycles: np.ndarray) -> np.ndarray:
    """Start cycle of each event: ``max(arrival, previous start + the previous event's interval)``.

    ``interval_cycles[i]`` is the II event ``i`` imposes on the next one (II, or II + stall for a warm-up
    event). Arrivals must be sorted.
    """
    n = arrival_cycles.shape[0]
    starts = np.empty(n, np.int64)
    free = np.int64(-(1 << 62))
    for i in range(n):
        start = arrival_cycles[i] if arrival_cycles[i] > free else free
        starts[i] = start
        free = start + interval_cycles[i]
    return starts


def queued_completion_ns(arrival_ns: np.ndarray, timing: Timing) -> np.ndarray:
    """When each event's outputs are valid, in ns, for events arriving at ``arrival_ns`` (sorted).

    Arrivals are rounded up to the next clock edge; an event waits while the op is busy with earlier ones.
    """
    period_ns = 1e9 / timing.clock_hz
    arrivals = np.ceil(np.asarray(arrival_ns, np.float64) / period_ns - 1e-9).astype(np.int64)
    intervals = np.full(len(arrivals), timing.ii_cycles, np.int64)
    starts = queue_starts(arrivals, intervals)
    return (starts + timing.latency_cycles) * period_ns
