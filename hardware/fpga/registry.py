"""The FPGA implementations of nodes ops, and the interface the plan and the placement planner use.

    fpga_impl(op_name) -> FpgaImpl | None
    check_fpga_placeable(op_cls, params) -> None, or raises FpgaPlacementError naming every reason

An ``FpgaImpl`` is the fixed-point twin of one stream op (``op``). It gives:

- ``constants(params)``, ``init(c, n_keys)``, ``step(c, s, *context, *inputs) -> (s, *outputs)``: the **golden
  model**, a bit-exact integer model of the RTL with the same signature, inputs and output types as the op's
  own step. Float inputs are quantized at the boundary and float outputs dequantized, so the graph's port types
  stay; everything between is integer arithmetic that passes ``hardware.fpga.lint``. ``c`` comes from the
  impl's ``constants(params)``, not the op's. numba compiles the step like any other.
- ``formats(params)``: the fixed-point format of every port, state variable and constant.
- ``error_bound(params)``: how far the golden model may be from the float op (see below).
- ``structure(params)`` → ``timing(params, clock_hz)``: latency and II derived from the pipeline
  (``hardware.fpga.timing``); ``resources(params)``: LUT/FF/DSP/BRAM (``hardware.fpga.resources``).
- ``module(params, clock_hz)``: the Amaranth module (interface in ``hardware.fpga.rtl``), built from the same
  structure and cycle counts; ``rtl_inputs`` / ``rtl_outputs`` map op columns to its signals and back.

Error bound: ``|fpga - float| <= error_bound(params) · max(1, M)`` for every f64 output, where M is the largest
|f64 input| of the run (a scale-relative absolute bound: an EMA's error grows with the price level). Value ops
(EMA, SMA) bound it on raw float inputs, input quantization included. Ops that emit a side (threshold,
crossover) have ``exact_on_grid = True`` and bound 0: their output equals the float op's whenever the inputs
are on the input grid (``grid_inputs``); off the grid, a side can differ only on an event whose input lies
within one LSB (2^-16) of a level. Integer ops (book, risk check, encoder) are bit-identical: bound 0.
"""

from abc import ABC, abstractmethod

import numpy as np

from hardware.fpga.fixed import FixedFormat, dequantize_value, quantize_value
from hardware.fpga.lint import FpgaPlacementError, check_fpga_placeable
from hardware.fpga.resources import Resources
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, Structure, Timing, derive_timing
from nodes.contract import F64, StreamOp

__all__ = ["FpgaImpl", "FpgaPlacementError", "check_fpga_placeable", "fpga_impl", "fpga_impls"]

# The float format of price-like f64 ports: ±2^31 in steps of 2^-16 (1.5e-5), rounded half to even, saturated.
PRICE = FixedFormat(True, 32, 16, "half_even", "saturate")


class FpgaImpl(ABC):
    """The fixed-point golden model, timing, resources and RTL of one stream op (see the module docstring).

    Abstract: an implementation that leaves out one of the abstract methods cannot be instantiated."""

    op: type[StreamOp]
    exact_on_grid = False
    note = ""

    @property
    def op_name(self) -> str:
        return self.op.name

    def check(self, params) -> None:
        """Raise ``FpgaPlacementError`` when these params do not fit the implementation (default: all fit)."""

    @abstractmethod
    def constants(self, params) -> tuple:
        """The golden model's constants (``c``)."""

    @staticmethod
    @abstractmethod
    def init(c, n_keys):
        """The golden model's initial state."""

    @staticmethod
    @abstractmethod
    def step(c, s, *args):
        """One event of the golden model: ``(s, *outputs)``, the op's step signature."""

    @abstractmethod
    def formats(self, params) -> dict[str, FixedFormat]:
        """The fixed-point format of every port, state variable and constant."""

    def error_bound(self, params) -> float:
        return 0.0

    @abstractmethod
    def structure(self, params) -> Structure:
        """The pipeline the timing is derived from."""

    def timing(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> Timing:
        """Latency, II and the clock check, derived from ``structure(params)``."""
        return derive_timing(self.structure(params), clock_hz, self.note)

    @abstractmethod
    def resources(self, params) -> Resources:
        """LUT/FF/DSP/BRAM estimates."""

    @abstractmethod
    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ):
        """The Amaranth module."""

    @abstractmethod
    def rtl_inputs(self, params, columns: list[np.ndarray]) -> dict[str, np.ndarray]:
        """The module's input signals (ints) for the op's input columns (in ``flat_inputs`` order)."""

    @abstractmethod
    def rtl_outputs(self, params, signals: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The op's output columns from the module's output signals."""

    def rare_events(self, params, columns: list[np.ndarray]) -> np.ndarray:
        """Which events take a warm-up path that stalls (``Timing.stall_cycles``); none by default."""
        return np.zeros(len(columns[0]), bool)

    def grid_inputs(self, params, columns: list[np.ndarray]) -> list[np.ndarray]:
        """The columns with every f64 input snapped to its format's grid (integer inputs unchanged)."""
        formats = self.formats(params)
        out = []
        for (name, _, scalar), column in zip(self.op.flat_inputs(), columns):
            if scalar is F64:
                fmt = formats[name]
                column = np.array([v if v != v else dequantize_value(quantize_value(v, fmt), fmt) for v in column])
            out.append(column)
        return out


_REGISTRY: dict[str, FpgaImpl] | None = None


def fpga_impls() -> dict[str, FpgaImpl]:
    """Every FPGA implementation, by the name of the op it implements."""
    global _REGISTRY
    if _REGISTRY is None:
        from hardware.fpga.ops import IMPLEMENTATIONS  # the ops import this module's base class

        _REGISTRY = {impl.op_name: impl for impl in IMPLEMENTATIONS}
    return _REGISTRY


def fpga_impl(op_name: str) -> FpgaImpl | None:
    """The FPGA implementation of the op named ``op_name``, or None when it has none."""
    return fpga_impls().get(op_name)
