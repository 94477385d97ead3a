"""Fixed-point formats, rounding and overflow: what every FPGA op declares for its ports, state and constants.

A format is written ``UQm.n`` (unsigned) or ``SQm.n`` (signed, two's complement): ``m`` integer bits, ``n``
fraction bits, ``m + n`` bits in all — for ``SQ`` the sign bit is one of the ``m`` (so ``SQ33.8`` is 41 bits
holding [-2^32, 2^32) in steps of 2^-8, and ``UQ32.0`` is a plain 32-bit price in ticks). A value ``v`` is
stored as the integer ``round(v · 2^n)``.

Rounding modes (what happens to the bits dropped by a right shift or at the float boundary):

- ``floor``: drop them (round toward -inf): free in hardware, a bias of up to one LSB;
- ``half_up``: round to nearest, ties toward +inf: ``(v + 2^(k-1)) >> k``, one adder;
- ``half_even``: round to nearest, ties to even (convergent): one adder and the kept LSB, no bias.

Overflow modes: ``saturate`` (clamp to the format's range: two comparators and a mux) and ``wrap`` (keep the
low bits: free, for values the datapath proves cannot overflow).

Two kinds of helpers:

- plain Python (``FixedFormat``, ``quantize_value``, ``dequantize_value``) for constants and tests;
- ``step_helper`` functions (``quantize``, ``mul_round``, ``shift_round``, ``saturate``, ``wrap``) that a golden
  step calls: plain Python on ``cpu``, compiled into the step on ``numba``; every intermediate stays below
  2^63, so both give the same integers. ``mul_round`` multiplies a 62-bit value by a 31-bit constant exactly
  (in 31-bit limbs) and rounds the 93-bit product like the RTL's full-width product does.

The boundary helpers (``quantize``, ``dequantize``, ``is_null``) are the only float operations a golden step
may use; ``hardware.fpga.lint`` knows them (``BOUNDARY_HELPERS``).
"""

import math
import re
from dataclasses import dataclass

import numpy as np

from nodes.contract import step_helper

FLOOR, HALF_UP, HALF_EVEN = 0, 1, 2
ROUNDING_MODES = {"floor": FLOOR, "half_up": HALF_UP, "half_even": HALF_EVEN}
SATURATE, WRAP = 0, 1
OVERFLOW_MODES = {"saturate": SATURATE, "wrap": WRAP}
# The golden models compute in int64; a format (or a product before its shift) must leave a bit of headroom.
MAX_BITS = 63

_NAME = re.compile(r"^(U|S)Q(\d+)\.(\d+)$")


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format: signedness, integer and fraction bits, rounding and overflow modes.

    ``int_bits`` counts the sign bit of a signed format (``SQ33.8`` is 41 bits wide).

    Raises:
        ValueError: a width of zero or above 63 bits, or an unknown rounding/overflow mode.
    """

    signed: bool
    int_bits: int
    frac_bits: int
    rounding: str = "half_even"
    overflow: str = "saturate"

    def __post_init__(self):
        if self.int_bits < 0 or self.frac_bits < 0 or not 0 < self.bits <= MAX_BITS:
            raise ValueError(f"{self.name}: a format is 1..{MAX_BITS} bits wide (integer bits {self.int_bits}, "
                             f"fraction bits {self.frac_bits})")
        if self.signed and self.int_bits < 1:
            raise ValueError(f"{self.name}: a signed format needs at least the sign bit as an integer bit")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"{self.name}: unknown rounding {self.rounding!r}; one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"{self.name}: unknown overflow {self.overflow!r}; one of {', '.join(OVERFLOW_MODES)}")

    @classmethod
    def parse(cls, text: str, rounding: str = "half_even", overflow: str = "saturate") -> "FixedFormat":
        """Read ``UQm.n`` / ``SQm.n``.

        Raises:
            ValueError: the text is not of that form.
        """
        match = _NAME.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a fixed-point format; expected UQm.n or SQm.n, e.g. SQ33.8")
        return cls(match[1] == "S", int(match[2]), int(match[3]), rounding, overflow)

    @property
    def name(self) -> str:
        return f"{'S' if self.signed else 'U'}Q{self.int_bits}.{self.frac_bits}"

    @property
    def bits(self) -> int:
        return self.int_bits + self.frac_bits

    @property
    def min_int(self) -> int:
        """The smallest stored integer."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """The largest stored integer."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        """The value of one step, 2^-frac_bits."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def rounding_code(self) -> int:
        return ROUNDING_MODES[self.rounding]

    @property
    def overflow_code(self) -> int:
        return OVERFLOW_MODES[self.overflow]

    def codes(self) -> tuple:
        """What a golden step needs to quantize into this format: (2^frac bits, min, max, rounding, overflow)."""
        return (math.ldexp(1.0, self.frac_bits), self.min_int, self.max_int, self.rounding_code, self.overflow_code)

    def describe(self) -> str:
        return f"{self.name} ({self.bits} bits, {self.rounding}, {self.overflow})"

    def __str__(self) -> str:
        return self.name


def quantize_value(x: float, fmt: FixedFormat) -> int:
    """The stored integer of ``x`` in ``fmt`` (Python; for constants and tests)."""
    return int(quantize(float(x), *fmt.codes()))


def dequantize_value(q: int, fmt: FixedFormat) -> float:
    """The value of the stored integer ``q`` (Python)."""
    return math.ldexp(float(q), -fmt.frac_bits)


def quantize_array(values: np.ndarray, fmt: FixedFormat) -> tuple[np.ndarray, np.ndarray]:
    """``(stored ints, null flags)`` of a float array, exactly as ``quantize`` does element by element."""
    values = np.asarray(values, np.float64)
    null = values != values
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.where(null, 0.0, values) * 2.0 ** fmt.frac_bits
        if fmt.rounding == "floor":
            r = np.floor(y)
        elif fmt.rounding == "half_up":
            r = np.floor(y + 0.5)
        else:
            r = np.rint(y)
        if fmt.overflow == "wrap":
            span = float(fmt.max_int - fmt.min_int + 1)
            r = np.mod(r - fmt.min_int, span) + fmt.min_int
        r = np.clip(r, fmt.min_int, fmt.max_int)
    return r.astype(np.int64), null


def is_power_of_two(q: int) -> bool:
    """Whether a positive integer constant is a power of two (its multiply is a shift)."""
    return q > 0 and q & (q - 1) == 0


def constant_shift(value: float, significant_bits: int) -> tuple[int, int]:
    """A positive constant as ``(q, r)`` with ``q / 2^r ≈ value`` and ``q`` holding ``significant_bits`` bits.

    Used for multiply-by-constant (an EMA's alpha, a 1/N): the relative error is at most 2^-significant_bits.
    A power of two comes back as ``(1, r)``: the multiply is then a shift.
    """
    if value <= 0:
        raise ValueError(f"constant {value} must be positive")
    mantissa, exponent = math.frexp(value)  # value = mantissa · 2^exponent, mantissa in [0.5, 1)
    if mantissa == 0.5:
        return 1, 1 - exponent
    r = significant_bits - exponent
    q = round(math.ldexp(value, r))
    if q >= 1 << significant_bits:  # rounding carried into a new bit
        q, r = q >> 1, r - 1
    return q, r


# --- step helpers: plain Python on cpu, compiled into the golden steps on numba ---------------------------


@step_helper
def is_null(x):
    """Whether a float input is NaN (a null value: the boundary's one float test)."""
    return x != x


@step_helper
def dequantize(q, lsb):
    """The float value of the stored integer ``q`` whose step is ``lsb`` (2^-frac bits; exact below 2^53)."""
    return q * lsb


@step_helper
def side_value(code):
    """A side code (-1, 0, +1) as the float a side port carries."""
    return code * 1.0


@step_helper
def null_float():
    """The float a null output carries (NaN)."""
    return np.nan


@step_helper
def quantize(x, scale, min_int, max_int, rounding, overflow):
    """Quantize a finite float ``x`` into a format given by its codes (see ``FixedFormat.codes``).

    Scaling by ``scale`` = 2^frac_bits is exact; the rounding acts on the scaled value; overflow saturates or
    wraps. (The scale is a constant rather than computed here: a power per call costs more than the rest.)
    """
    y = x * scale
    if rounding == FLOOR:
        r = np.floor(y)
    elif rounding == HALF_UP:
        r = np.floor(y + 0.5)
    else:
        r = np.rint(y)
    if overflow == SATURATE or not abs(r) < 4.0e18:
        if r > max_int:
            return max_int
        if r < min_int:
            return min_int
        return np.int64(r)
    return wrap(np.int64(r), min_int, max_int)


@step_helper
def saturate(v, min_int, max_int):
    """Clamp ``v`` to ``[min_int, max_int]``."""
    if v > max_int:
        return max_int
    if v < min_int:
        return min_int
    return v


@step_helper
def wrap(v, min_int, max_int):
    """Keep the low bits of ``v``: two's complement wrap-around into ``[min_int, max_int]``."""
    span = max_int - min_int + 1
    return (v - min_int) % span + min_int


@step_helper
def _round_magnitude(q, above_half, at_half, nonzero, negative, rounding):
    """Round the quotient of |P| / 2^r (``q``, remainder compared with half) as the RTL's shift of a signed P does.

    The RTL computes ``floor((P + bias) / 2^r)`` on the two's complement product: floor rounds toward -inf,
    half_up is floor(v + 1/2), half_even rounds ties to the even neighbour. In magnitude terms:
    """
    if not negative:
        if rounding == FLOOR:
            return q
        if rounding == HALF_UP:
            return q + 1 if above_half or at_half else q
        return q + 1 if above_half or (at_half and q % 2 == 1) else q
    if rounding == FLOOR:
        return -(q + 1) if nonzero else -q
    if rounding == HALF_UP:
        return -(q + 1) if above_half else -q
    return -(q + 1) if above_half or (at_half and q % 2 == 1) else -q


@step_helper
def mul_round(a, b, r, rounding):
    """``round(a · b / 2^r)`` exactly, for |a| < 2^62, 0 <= b < 2^31, 0 <= r <= 92, result below 2^62.

    The product is held as ``U · 2^31 + low`` (31-bit limbs), so nothing overflows int64 on numba and cpu
    gives the same integers.
    """
    negative = a < 0
    m = -a if negative else a
    mask31 = (1 << 31) - 1
    low_product = (m & mask31) * b
    upper = (m >> 31) * b + (low_product >> 31)
    low = low_product & mask31
    if r == 0:
        q = upper * (1 << 31) + low
        return -q if negative else q
    if r <= 31:
        q = upper * (1 << (31 - r)) + (low >> r)
        rem = low & ((1 << r) - 1)
        half = 1 << (r - 1)
        return _round_magnitude(q, rem > half, rem == half, rem > 0, negative, rounding)
    k = r - 31
    q = upper >> k
    rem_high = upper & ((1 << k) - 1)
    half_high = 1 << (k - 1)
    above = rem_high > half_high or (rem_high == half_high and low > 0)
    at = rem_high == half_high and low == 0
    return _round_magnitude(q, above, at, rem_high > 0 or low > 0, negative, rounding)


@step_helper
def shift_round(v, r, rounding):
    """``round(v / 2^r)`` for |v| < 2^62: a right shift with the RTL's rounding."""
    return mul_round(v, 1, r, rounding)


# What hardware.fpga.lint accepts as the float boundary of a golden step.
BOUNDARY_HELPERS = frozenset({"is_null", "dequantize", "null_float", "quantize", "side_code", "side_value"})
