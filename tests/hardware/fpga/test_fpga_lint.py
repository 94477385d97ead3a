"""The fabric check names what keeps an op off the FPGA, and passes every golden model."""

import inspect

import numpy as np
import pytest
from pydantic import Field

from hardware.fpga.lint import FpgaPlacementError, check_fpga_placeable, fabric_reasons, step_reasons
from hardware.fpga.registry import fpga_impl, fpga_impls
from nodes.contract import I64, OpParams, StreamOp, default_registry
from nodes.errors import SpecError


class RatioParams(OpParams):
    scale: int = Field(1, description="a constant")


class IntRatio(StreamOp):
    """Divide two integer inputs (a user's op: the float division keeps it off the fabric)."""

    name = "test.int_ratio"
    Params = RatioParams
    inputs = {"a": I64, "b": I64}
    outputs = {"out": I64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, a, b):
        return s, int(a / b)


class Loops(StreamOp):
    """Integer-only, but a data-dependent loop and a remainder by a variable."""

    name = "test.loops"
    Params = RatioParams
    inputs = {"a": I64, "b": I64}
    outputs = {"out": I64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, a, b):
        (scale,) = c
        total = 0
        while a > 0:
            a -= b
            total += 1
        for _ in range(b):
            total += 1
        return s, total % b + a // scale


class Integer(StreamOp):
    """What maps to fabric: adds, compares, shifts, a multiply, a loop of fixed trip count, // by a constant."""

    name = "test.integer"
    Params = RatioParams
    inputs = {"a": I64, "b": I64}
    outputs = {"out": I64}

    @staticmethod
    def init(c, n_keys):
        return (np.zeros(4, np.int64),)

    @staticmethod
    def step(c, s, a, b):
        (scale,) = c
        ring = s[0]
        total = 0
        for i in range(4):
            total += ring[i]
        ring[0] = a * 3 + (b >> 2)
        return s, max(total, a) // scale


def _line_of(function, text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)


def test_a_float_division_is_refused_naming_the_line():
    with pytest.raises(FpgaPlacementError) as raised:
        check_fpga_placeable(IntRatio, IntRatio.Params())
    error = raised.value
    assert isinstance(error, SpecError)
    assert error.op_name == "test.int_ratio"
    line = _line_of(IntRatio.step, "a / b")
    division = [r for r in error.reasons if "true division" in r.message]
    assert division and division[0].kind == "float" and division[0].where.endswith(f"test_fpga_lint.py:{line}")
    assert "`a / b`" in str(error) and "cannot be placed on fpga" in str(error)
    assert any("int(" not in r.message and r.kind == "float" for r in error.reasons)


def test_data_dependent_loops_and_divisions_by_variables_are_refused():
    reasons = fabric_reasons(Loops)
    kinds = sorted({r.kind for r in reasons})
    assert kinds == ["division", "loop"], reasons
    messages = " | ".join(r.message for r in reasons)
    assert "while a > 0" in messages and "for _ in range(b)" in messages and "total % b" in messages
    assert "a // scale" not in messages  # a division by a param is a multiply by its reciprocal


def test_integer_fixed_size_logic_passes():
    assert fabric_reasons(Integer) == []
    assert check_fpga_placeable(Integer, Integer.Params()) is None


def test_float_ops_without_an_implementation_are_refused_with_their_reasons():
    rsi = default_registry().get("indicator.rsi")
    with pytest.raises(FpgaPlacementError) as raised:
        check_fpga_placeable(rsi, rsi.Params())
    kinds = {r.kind for r in raised.value.reasons}
    assert "float" in kinds
    assert "input x, output out are f64" in str(raised.value)
    assert "more float reason" in str(raised.value)  # condensed: a float op has dozens


def test_helpers_are_followed_to_their_own_lines():
    """book.l2's step is integer, but its ladder helpers binary-search with while loops: the RTL replaces them."""
    book = default_registry().get("book.l2")
    reasons = fabric_reasons(book)
    assert reasons and {r.kind for r in reasons} == {"loop"}
    assert all("ladder.py" in r.where for r in reasons)


def test_every_golden_model_passes_the_check():
    """A golden step is integer arithmetic between the boundary helpers (quantize, dequantize ...); the book's
    golden model is book.l2's own step, whose loops the RTL replaces by parallel comparators."""
    for name, impl in fpga_impls().items():
        reasons = step_reasons(impl.step)
        if name == "book.l2":
            assert {r.kind for r in reasons} == {"loop"}
            continue
        assert reasons == [], f"{name}: {reasons}"


@pytest.mark.parametrize("name, params, problem", [
    ("book.l2", {"max_levels": 4096}, "max_levels 4096 > 64"),
    ("indicator.sma", {"window": 5000}, "window 5000 > 4096"),
    ("indicator.ema", {"window": 20000}, "window 20000 > 16384"),
])
def test_params_beyond_an_implementation_are_refused(name, params, problem):
    op = fpga_impl(name).op
    with pytest.raises(FpgaPlacementError, match=problem):
        check_fpga_placeable(op, op.Params(**params))
    assert check_fpga_placeable(op, op.Params(**{k: 16 for k in params})) is None
