"""The fabric check: can an op's step map to FPGA fabric as written? Names every reason it cannot.

What maps to fabric: integer add/sub, compares, min/max, muxes (if/else), shifts by constants, multiplies
(DSP slices), small lookup tables, fixed-size arrays (ring buffers) and small state machines. What does not:
floating point, division or remainder by a variable, loops whose trip count depends on data, transcendental
functions, allocation per event.

Why the AST and not numba's typed IR: the check must run on any op, including ops that only run on ``cpu``
and user ops numba cannot compile (they deserve a reason too, not a numba traceback); it must name the line
a user wrote (numba's IR after inlining and SSA renaming points at generated code); and what it rejects is
visible in the syntax: a ``/`` is a float division in Python whatever the operand types, a ``while`` is a
data-dependent loop, a float literal or ``np.nan`` is a float. Types are taken from the op's declared ports
(an ``f64`` port is a float datapath unless an ``FpgaImpl`` declares its fixed-point formats). Calls are
followed into the helpers a step calls (``step_helper`` functions of the project), so a division hidden in a
helper is found and named at its own line. The check is conservative: a division by a helper's argument
that is really a constant is rejected (write an ``FpgaImpl`` with a declared reciprocal instead).

Golden models (``hardware.fpga.ops``) pass this check: their only float operations are the boundary helpers
of ``hardware.fpga.fixed`` (``BOUNDARY_HELPERS``), which the check allows and does not enter.
"""

import ast
import inspect
import textwrap
import types
from dataclasses import dataclass
from typing import Callable

from hardware.fpga.fixed import BOUNDARY_HELPERS
from nodes.contract import F64
from nodes.errors import SpecError

# Calls with no fabric equivalent (a lookup table or an FpgaImpl with a declared approximation is the way).
_TRANSCENDENTAL = {
    "exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "cbrt", "pow", "power", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "arctan2", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "hypot",
    "erf", "erfc", "gamma", "lgamma",
}
_FLOAT_NAMES = {"nan", "inf", "NaN", "Inf", "infty", "float64", "float32", "pi", "e"}
_ALLOCATIONS = {"zeros", "empty", "ones", "full", "array", "arange", "zeros_like", "empty_like", "concatenate"}
_REDUCTIONS = {"sum", "mean", "std", "var", "median", "cumsum", "sort", "argsort", "percentile", "quantile"}


@dataclass(frozen=True)
class Reason:
    """One thing that keeps an op off the fabric, where it is written."""

    kind: str  # float | division | loop | math | allocation | reduction
    message: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


class FpgaPlacementError(SpecError):
    """Raised when a node placed on ``fpga`` cannot run there; ``reasons`` lists each cause with its line."""

    def __init__(self, op_name: str, reasons: list, hint: str = ""):
        self.op_name = op_name
        self.reasons = list(reasons)
        lines = "\n".join(f"  - {r}" for r in _condensed(self.reasons))
        message = f"op {op_name} cannot be placed on fpga:\n{lines}"
        if hint:
            message += f"\n{hint}"
        super().__init__([(None, message)])


_SHOWN_PER_KIND = 3


def _condensed(reasons: list) -> list:
    """The first few reasons of each kind, then how many more of that kind (a float op has dozens)."""
    shown, hidden = [], {}
    for reason in reasons:
        kind = getattr(reason, "kind", "")
        if sum(getattr(r, "kind", "") == kind for r in shown) < _SHOWN_PER_KIND:
            shown.append(reason)
        else:
            hidden[kind] = hidden.get(kind, 0) + 1
    return shown + [f"... and {n} more {kind} reason(s)" for kind, n in hidden.items()]


def check_fpga_placeable(op_cls, params=None) -> None:
    """Raise ``FpgaPlacementError`` naming every reason ``op_cls`` cannot run on the fabric; None if it can.

    For an op with an ``FpgaImpl`` (``hardware.fpga.registry.fpga_impl``), the implementation's own parameter
    limits are checked (a book deeper than its register array, a window longer than its buffer). Otherwise
    the op's declared ports and the source of its ``step`` (and the helpers it calls) are inspected.

    Raises:
        FpgaPlacementError: the op (or these params) cannot map to fabric; the message lists each reason.
    """
    from hardware.fpga.registry import fpga_impl  # the registry imports this module

    impl = fpga_impl(getattr(op_cls, "name", ""))
    if impl is not None:
        if params is not None:
            impl.check(params)
        return None
    reasons = fabric_reasons(op_cls)
    if reasons:
        raise FpgaPlacementError(
            op_cls.name, reasons,
            "Place it on cpu or numba, or write an FpgaImpl (hardware/fpga/ops/) with fixed-point formats and a "
            "golden model that avoids these.",
        )
    return None


def fabric_reasons(op_cls) -> list[Reason]:
    """Every reason ``op_cls`` cannot map to fabric as written (empty: it can)."""
    reasons = _float_ports(op_cls)
    step = inspect.getattr_static(op_cls, "step", None)
    step = step.__func__ if isinstance(step, staticmethod) else getattr(op_cls, "step", None)
    if step is not None:
        reasons.extend(step_reasons(step))
    return reasons


def _float_ports(op_cls) -> list[Reason]:
    floats = [f"input {name}" for name, _, scalar in op_cls.flat_inputs() if scalar is F64]
    floats += [f"output {name}" for name, scalar in op_cls.outputs.items() if scalar is F64]
    if not floats:
        return []
    where = _where_of(op_cls)
    return [Reason("float", f"{', '.join(floats)} {'is' if len(floats) == 1 else 'are'} f64 and the op declares "
                            f"no fixed-point formats (no FpgaImpl)", where)]


def step_reasons(function: Callable, allowed: frozenset[str] = BOUNDARY_HELPERS) -> list[Reason]:
    """Reasons found in ``function`` and every project helper it calls (each visited once)."""
    seen: set = set()
    reasons: list[Reason] = []
    _visit(function, allowed, seen, reasons)
    return reasons


def _visit(function: Callable, allowed: frozenset[str], seen: set, reasons: list) -> None:
    function = inspect.unwrap(function)
    if function in seen or not isinstance(function, types.FunctionType):
        return
    seen.add(function)
    try:
        source = textwrap.dedent(inspect.getsource(function))
        first_line = inspect.getsourcelines(function)[1]
        file_name = inspect.getsourcefile(function) or "<unknown>"
    except (OSError, TypeError):
        reasons.append(Reason("source", f"the source of {function.__qualname__} is not available to check",
                              function.__module__))
        return
    tree = ast.parse(source)
    checker = _StepChecker(function, file_name, first_line - 1, allowed)
    checker.visit(tree)
    reasons.extend(checker.reasons)
    for callee in checker.callees:
        _visit(callee, allowed, seen, reasons)


class _StepChecker(ast.NodeVisitor):
    def __init__(self, function, file_name: str, line_offset: int, allowed: frozenset[str]):
        self.function = function
        self.globals = function.__globals__
        self.file_name = file_name
        self.line_offset = line_offset
        self.allowed = allowed
        self.reasons: list[Reason] = []
        self.callees: list[Callable] = []
        self.constants: set[str] = set()  # names bound from the constants tuple ``c`` (params: fixed per node)
        self.first_arg = None

    def _add(self, node, kind: str, message: str) -> None:
        where = f"{self.file_name}:{node.lineno + self.line_offset}"
        self.reasons.append(Reason(kind, message, where))

    def visit_FunctionDef(self, node):
        if self.first_arg is None and node.args.args:
            self.first_arg = node.args.args[0].arg  # the step's ``c``
            if self.first_arg == "c":
                self.constants.add("c")
        self.generic_visit(node)

    def visit_Assign(self, node):
        # names unpacked from ``c`` are parameters: constant for the node, so a division by them is a multiply
        if isinstance(node.value, ast.Name) and node.value.id in self.constants or (
            isinstance(node.value, ast.Subscript) and isinstance(node.value.value, ast.Name)
            and node.value.value.id in self.constants
        ):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        self.constants.add(name.id)
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, float):
            self._add(node, "float", f"float literal {node.value!r}")

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy", "math"):
            if node.attr in _FLOAT_NAMES:
                self._add(node, "float", f"{node.value.id}.{node.attr} is a float")
        self.generic_visit(node)

    def visit_BinOp(self, node):
        if isinstance(node.op, ast.Div):
            self._add(node, "float", f"true division `{ast.unparse(node)}` gives a float; "
                                     "scale by a declared fixed-point reciprocal instead")
        elif isinstance(node.op, (ast.FloorDiv, ast.Mod)) and not self._is_constant(node.right):
            op = "//" if isinstance(node.op, ast.FloorDiv) else "%"
            self._add(node, "division", f"`{ast.unparse(node)}` divides by a variable "
                                        f"({ast.unparse(node.right)}); {op} by a variable has no single-cycle circuit")
        elif isinstance(node.op, ast.Pow) and not self._is_constant(node.right):
            self._add(node, "math", f"`{ast.unparse(node)}` raises to a variable power")
        self.generic_visit(node)

    def visit_While(self, node):
        self._add(node, "loop", f"`while {ast.unparse(node.test)}` loops a data-dependent number of times; "
                                "hardware unrolls only loops of a fixed trip count")
        self.generic_visit(node)

    def visit_For(self, node):
        if not self._fixed_trip_count(node.iter):
            self._add(node, "loop", f"`for {ast.unparse(node.target)} in {ast.unparse(node.iter)}`: the trip "
                                    "count depends on data; hardware unrolls only loops of a fixed trip count")
        self.generic_visit(node)

    def visit_Call(self, node):
        name = _call_name(node.func)
        if name in self.allowed:
            return  # the float boundary of a golden model: allowed and not entered
        if name == "float":
            self._add(node, "float", f"`{ast.unparse(node)}` converts to float")
        elif name in _TRANSCENDENTAL:
            self._add(node, "math", f"`{ast.unparse(node)}`: {name} has no fabric equivalent (a lookup table "
                                    "or a declared approximation in an FpgaImpl)")
        elif name in _ALLOCATIONS and _is_numpy(node.func):
            self._add(node, "allocation", f"`{ast.unparse(node)}` allocates memory on every event")
        elif name in _REDUCTIONS and isinstance(node.func, ast.Attribute):
            self._add(node, "reduction", f"`{ast.unparse(node)}` is a reduction over a whole array on every "
                                         "event")
        callee = self._resolve(node.func)
        if callee is not None:
            self.callees.append(callee)
        self.generic_visit(node)

    def _resolve(self, func) -> Callable | None:
        """A project function called by name (a step helper), to be checked too."""
        if isinstance(func, ast.Name):
            target = self.globals.get(func.id)
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = self.globals.get(func.value.id)
            target = getattr(owner, func.attr, None) if owner is not None else None
        else:
            return None
        target = inspect.unwrap(target) if callable(target) else None
        if isinstance(target, types.FunctionType) and not target.__module__.startswith(("numpy", "numba", "math")):
            return target
        return None

    def _is_constant(self, node) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            return node.id in self.constants or node.id.isupper()
        if isinstance(node, ast.Subscript):
            return self._is_constant(node.value)
        if isinstance(node, ast.Attribute):
            return node.attr == "shape"  # an array's size is fixed when the state is made
        if isinstance(node, ast.BinOp):
            return self._is_constant(node.left) and self._is_constant(node.right)
        if isinstance(node, ast.UnaryOp):
            return self._is_constant(node.operand)
        return False

    def _fixed_trip_count(self, iterator) -> bool:
        if isinstance(iterator, ast.Call) and _call_name(iterator.func) == "range":
            return all(self._is_constant(a) for a in iterator.args)
        if isinstance(iterator, ast.Name):
            return iterator.id in self.constants
        if isinstance(iterator, (ast.Tuple, ast.List)):
            return True
        return False


def _call_name(func) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _is_numpy(func) -> bool:
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy")


def _where_of(op_cls) -> str:
    try:
        return f"{inspect.getsourcefile(op_cls)}:{inspect.getsourcelines(op_cls)[1]}"
    except (OSError, TypeError):
        return op_cls.__module__
