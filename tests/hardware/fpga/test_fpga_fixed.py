"""Fixed-point formats, rounding and overflow: the arithmetic every golden model and RTL shares."""

import math
from fractions import Fraction

import numpy as np
import pytest

from hardware.fpga.fixed import (
    FLOOR,
    HALF_EVEN,
    HALF_UP,
    FixedFormat,
    constant_shift,
    dequantize_value,
    mul_round,
    quantize,
    quantize_array,
    quantize_value,
    saturate,
    wrap,
)
from hardware.targets import step_function


def test_format_names_widths_and_ranges():
    fmt = FixedFormat.parse("SQ33.8")
    assert (fmt.signed, fmt.int_bits, fmt.frac_bits, fmt.bits) == (True, 33, 8, 41)
    assert (fmt.min_int, fmt.max_int) == (-(1 << 40), (1 << 40) - 1)
    assert fmt.name == "SQ33.8" and fmt.lsb == 2.0**-8
    ticks = FixedFormat.parse("UQ32.0", rounding="floor")
    assert (ticks.min_int, ticks.max_int, ticks.bits) == (0, (1 << 32) - 1, 32)
    assert "UQ32.0 (32 bits, floor, saturate)" == ticks.describe()


@pytest.mark.parametrize("text, problem", [("Q8.8", "not a fixed-point format"), ("SQ40.40", "1..63 bits"),
                                           ("SQ0.8", "sign bit"), ("UQ0.0", "1..63 bits")])
def test_bad_formats_are_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        FixedFormat.parse(text)
    with pytest.raises(ValueError, match="unknown rounding"):
        FixedFormat(True, 8, 8, rounding="nearest")


@pytest.mark.parametrize("target", ["cpu", "numba"])
def test_rounding_modes_on_ties_and_negatives(target):
    q = step_function(quantize, target)

    def rounded(x, mode):
        return int(q(x, 1.0, -1000, 1000, mode, 0))

    # ties: floor drops, half_up goes toward +inf, half_even to the even neighbour
    assert [rounded(v, FLOOR) for v in (2.5, -2.5, 3.5, 2.4, -2.6)] == [2, -3, 3, 2, -3]
    assert [rounded(v, HALF_UP) for v in (2.5, -2.5, 3.5, 2.4, -2.6)] == [3, -2, 4, 2, -3]
    assert [rounded(v, HALF_EVEN) for v in (2.5, -2.5, 3.5, 2.4, -2.6)] == [2, -2, 4, 2, -3]


@pytest.mark.parametrize("target", ["cpu", "numba"])
def test_overflow_saturates_or_wraps(target):
    q = step_function(quantize, target)
    fmt = FixedFormat.parse("SQ4.2")  # [-8, 8) in quarters: stored -32..31
    assert int(q(100.0, *fmt.codes())) == 31 and int(q(-100.0, *fmt.codes())) == -32
    assert int(q(math.inf, *fmt.codes())) == 31
    wrapped = FixedFormat(True, 4, 2, "half_even", "wrap")
    assert int(q(8.0, *wrapped.codes())) == -32  # 32 wraps to the most negative
    assert int(q(8.25, *wrapped.codes())) == -31
    assert step_function(saturate, target)(40, -32, 31) == 31
    assert step_function(wrap, target)(33, -32, 31) == -31


def test_quantize_array_matches_the_scalar_quantizer():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 1e4, 2000), np.arange(-8, 8) * 0.5**17, [np.nan, 1e12, -1e12]])
    for fmt in (FixedFormat.parse("SQ32.16"), FixedFormat(True, 32, 16, "half_up", "saturate"),
                FixedFormat(True, 20, 4, "floor", "wrap")):
        ints, null = quantize_array(values, fmt)
        expected = [quantize_value(v, fmt) if v == v else 0 for v in values]
        assert ints.tolist() == expected
        assert null.tolist() == list(np.isnan(values))


@pytest.mark.parametrize("target", ["cpu", "numba"])
def test_mul_round_is_exact_on_wide_products(target):
    """round(a·b / 2^r) against exact rational arithmetic, for 62-bit a, 31-bit b, shifts up to 92 bits."""
    function = step_function(mul_round, target)
    rng = np.random.default_rng(11)
    expected_of = {
        FLOOR: lambda f: math.floor(f),
        HALF_UP: lambda f: math.floor(f + Fraction(1, 2)),
        HALF_EVEN: lambda f: round(f),  # Fraction rounds half to even
    }
    cases = 0
    for _ in range(300):
        a = int(rng.integers(-(1 << 61), 1 << 61)) >> int(rng.integers(0, 60))
        b = int(rng.integers(1, 1 << 31)) >> int(rng.integers(0, 30))
        r = int(rng.integers(0, 93))
        exact = Fraction(a * b, 1 << r)
        if abs(exact) >= 1 << 61:
            continue
        for mode, expected in expected_of.items():
            assert function(a, b, r, mode) == expected(exact), (a, b, r, mode)
            cases += 1
    # exact ties in both signs
    for a in (5, -5, 7, -7, 6, -6):
        for mode, expected in expected_of.items():
            assert function(a, 1, 1, mode) == expected(Fraction(a, 2))
            cases += 1
    assert cases > 600


def test_constants_keep_their_significant_bits_and_powers_of_two_are_shifts():
    assert constant_shift(0.5, 25) == (1, 1)
    assert constant_shift(1.0, 25) == (1, 0)
    q, r = constant_shift(2 / 21, 25)
    assert 1 << 24 <= q < 1 << 25
    assert abs(q / 2**r - 2 / 21) <= 2 / 21 * 2.0**-25
    assert dequantize_value(quantize_value(1.5, FixedFormat.parse("SQ8.4")), FixedFormat.parse("SQ8.4")) == 1.5
