"""Resource estimates: LUTs, flip-flops, DSP slices and block RAM per op, per placed segment, against a budget.

Estimates for an AMD UltraScale+ fabric (LUT6, CARRY8, DSP48E2, BRAM36), counted from what the RTL builds:

- an adder, subtractor or magnitude comparator of w bits: w LUTs (one per bit on the carry chain);
- an equality test of w bits: ceil(w / 3) LUTs plus the AND tree;
- a w-bit n:1 multiplexer: w · ceil((n - 1) / 3) LUTs (a LUT6 is a 4:1 mux);
- an n-input OR/XOR tree: ceil((n - 1) / 5) LUTs;
- a w_a × w_b multiply: ``dsp_tiles`` DSP48E2 slices (27×18 signed tiles), and for a product of several tiles
  LUT adders summing the partial products, (tiles - 1) · (w_a + w_b) / 2 LUTs;
- a w-bit compare against a constant: ceil(w / 4) LUTs (the constant folds into the carry chain's LUTs);
- a register of b bits: b flip-flops;
- a ring buffer of depth × width bits: distributed RAM (one LUT per bit of width per 64 entries, doubled for
  a simple dual port) up to 64 entries, else BRAM36 in the aspect ratio (512×72 ... 32K×1) that needs fewest.

They are meant to rank placements and catch a design that cannot fit, not to replace synthesis: the slow
test ``tests/hardware/fpga/test_fpga_synthesis.py`` compares them with Yosys' ``synth_xilinx`` counts where a
full Yosys is installed (within a factor of 3 for LUTs and 2 for flip-flops; Yosys maps every wide product to
DSP slices, where these estimates count a constant with few signed digits as LUT adders).
"""

import math
from dataclasses import dataclass

from hardware.fpga.timing import SHIFT_ADD_MAX_DIGITS, csd_digits, dsp_tiles

_BRAM36_SHAPES = ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))


@dataclass(frozen=True)
class Resources:
    """Fabric resources: LUTs, flip-flops, DSP48E2 slices, BRAM36 blocks (halves allowed for BRAM18)."""

    lut: int = 0
    ff: int = 0
    dsp: int = 0
    bram: float = 0.0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp, self.bram + other.bram)

    def scaled(self, copies: int) -> "Resources":
        return Resources(self.lut * copies, self.ff * copies, self.dsp * copies, self.bram * copies)

    def as_dict(self) -> dict:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram": self.bram}


def adder(width: int, count: int = 1) -> Resources:
    return Resources(lut=width * count)


def comparator(width: int, count: int = 1) -> Resources:
    return Resources(lut=width * count)


def equality(width: int, count: int = 1) -> Resources:
    per = math.ceil(width / 3) + math.ceil(math.ceil(width / 3) / 6)
    return Resources(lut=per * count)


def multiplexer(width: int, ways: int, count: int = 1) -> Resources:
    return Resources(lut=width * max(1, math.ceil((ways - 1) / 3)) * count)


def reduction(ways: int, count: int = 1) -> Resources:
    return Resources(lut=max(1, math.ceil((ways - 1) / 5)) * count)


def random_logic(luts: int) -> Resources:
    return Resources(lut=luts)


def register(bits: int) -> Resources:
    return Resources(ff=bits)


def multiplier(width_a: int, width_b: int, count: int = 1) -> Resources:
    tiles = dsp_tiles(width_a, width_b)
    return Resources(lut=(tiles - 1) * (width_a + width_b) // 2 * count, dsp=tiles * count)


def constant_comparator(width: int, count: int = 1) -> Resources:
    return Resources(lut=math.ceil(width / 4) * count)


def constant_multiplier(width: int, constant: int, count: int = 1) -> Resources:
    """``x · constant``: nothing for a power of two, adders for a few signed digits, else DSP slices."""
    digits = csd_digits(constant)
    if digits <= 1:
        return Resources()
    if digits <= SHIFT_ADD_MAX_DIGITS:
        return adder(width + abs(constant).bit_length(), (digits - 1) * count)
    return multiplier(width, abs(constant).bit_length(), count)


def ring_buffer(depth: int, width: int) -> Resources:
    """A circular buffer with one write and one read port per cycle."""
    if depth <= 64:
        return Resources(lut=2 * width * math.ceil(depth / 64))
    blocks = min(math.ceil(width / w) * math.ceil(depth / d) for d, w in _BRAM36_SHAPES)
    half = depth * width <= 18 * 1024 and width <= 36
    return Resources(bram=0.5 if half else float(blocks))


def total(parts) -> Resources:
    """The sum of an iterable of ``Resources``."""
    out = Resources()
    for part in parts:
        out = out + part
    return out


def over_budget(used: Resources, budget: Resources, what: str = "segment") -> list[str]:
    """The resources of ``used`` above ``budget``, one message each (empty when it fits)."""
    problems = []
    for name in ("lut", "ff", "dsp", "bram"):
        have, limit = getattr(used, name), getattr(budget, name)
        if have > limit:
            problems.append(f"{what} needs {have:g} {name.upper()} but the device budget is {limit:g}")
    return problems
