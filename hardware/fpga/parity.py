"""Parity of an FPGA golden model with the float op it implements: run both on the same columns, compare.

What "equal" means is the registry's error-bound contract (``hardware.fpga.registry``): every f64 output
within ``error_bound(params) · max(1, M)`` (M: the largest |f64 input|), NaN exactly where the float op has
NaN, every int64 output identical; for ``exact_on_grid`` ops the inputs are first snapped to their grid.
"""

from dataclasses import dataclass

import numpy as np

from hardware.fpga.registry import FpgaImpl
from hardware.targets import step_function
from nodes.contract import F64


def run_step(step, c: tuple, state, columns: list[np.ndarray], output_types: list, target: str) -> list[np.ndarray]:
    """Drive ``step`` over every event of ``columns`` (no context) on ``target``; one array per output."""
    function = step_function(step, target)
    n = len(columns[0])
    outputs = [np.empty(n, dtype=t.dtype) for t in output_types]
    rows = [column.tolist() for column in columns]
    for i in range(n):
        returned = function(c, state, *(row[i] for row in rows))
        state = returned[0]
        for out, value in zip(outputs, returned[1:]):
            out[i] = value
    return outputs


def golden_outputs(impl: FpgaImpl, params, columns: list[np.ndarray], target: str = "numba") -> list[np.ndarray]:
    """The golden model's outputs over ``columns``."""
    c = impl.constants(params)
    return run_step(impl.step, c, impl.init(c, 1), columns, list(impl.op.outputs.values()), target)


def float_outputs(impl: FpgaImpl, params, columns: list[np.ndarray], target: str = "numba") -> list[np.ndarray]:
    """The float op's own outputs over ``columns``."""
    op = impl.op
    c = tuple(op.constants(params))
    return run_step(op.step, c, op.init(c, 1), columns, list(op.outputs.values()), target)


@dataclass
class ParityResult:
    """How far the golden model is from the float op; ``problems`` empty when within the contract."""

    op_name: str
    max_scaled_error: float
    bound: float
    scale: float
    events: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def parity(impl: FpgaImpl, params, columns: list[np.ndarray], target: str = "numba") -> ParityResult:
    """Compare the golden model with the float op on ``columns`` (the op's inputs in ``flat_inputs`` order)."""
    if impl.exact_on_grid:
        columns = impl.grid_inputs(params, columns)
    golden = golden_outputs(impl, params, columns, target)
    reference = float_outputs(impl, params, columns, target)
    floats = [column for (_, _, t), column in zip(impl.op.flat_inputs(), columns) if t is F64]
    scale = max([1.0] + [float(np.nanmax(np.abs(f))) for f in floats if np.isfinite(f).any()])
    bound = impl.error_bound(params)
    worst = 0.0
    problems = []
    for (name, kind), got, want in zip(impl.op.outputs.items(), golden, reference):
        if kind is F64:
            nan_differs = np.flatnonzero(np.isnan(got) != np.isnan(want))
            if len(nan_differs):
                i = nan_differs[0]
                problems.append(f"{name}: NaN differs at {len(nan_differs)} event(s), first {i}: "
                                f"fpga {got[i]!r} vs float {want[i]!r}")
            both = ~np.isnan(got) & ~np.isnan(want)
            error = np.abs(got[both] - want[both]) / scale
            if error.size:
                worst = max(worst, float(error.max()))
                if error.max() > bound:
                    i = np.flatnonzero(both)[int(error.argmax())]
                    problems.append(f"{name}: |fpga - float| / scale = {error.max():.3g} > bound {bound:.3g} at event "
                                    f"{i}: {got[i]!r} vs {want[i]!r}")
        else:
            differs = np.flatnonzero(got != want)
            if len(differs):
                i = differs[0]
                problems.append(f"{name}: {len(differs)} event(s) differ, first {i}: {got[i]} vs {want[i]}")
    return ParityResult(impl.op_name, worst, bound, scale, len(columns[0]), problems)
