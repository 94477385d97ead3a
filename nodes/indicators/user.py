"""Write your own indicator as one plain function in numba's subset of Python.

``stream_indicator`` turns ``def f(state, x) -> (state, y)`` into a ``StreamOp`` subclass, so a user module
listed under a spec's ``modules:`` gets a new op without writing the op contract by hand::

    # my_ops.py, next to the spec
    import numpy as np
    from nodes.indicators.user import stream_indicator

    @stream_indicator("user.range_ema", inputs=("high", "low"), state=(0.0, 0))
    def range_ema(state, high, low):
        value, count = state
        value = high - low if count == 0 else value + 0.1 * ((high - low) - value)
        return (value, count + 1), value

    # spec:  modules: [my_ops.py]
    #        rng: {op: user.range_ema, in: {high: bars.high, low: bars.low}, place: numba}

The function receives the state tuple and one float per input and returns the new state and one float per
output (a tuple ``(state, y1, y2, ...)`` for several outputs). ``state`` is the initial state: a tuple of numbers
and numpy arrays, or, with ``params``, a function of the constants tuple (``state=lambda c: (0.0, np.zeros(c[0]))``).
With ``params`` (an ``OpParams`` subclass) the function also receives the constants first: ``f(c, state, x)``.

On ``numba`` the function is compiled when the plan is built, from example arguments (the params' defaults,
or 1 / 1.0 for a required field, the initial state and 0.0 per input). If numba cannot compile it the run
stops with ``StepCompileError``, naming the function, its file and line, and numba's reason. Nothing falls
back to Python silently: to run it as Python, place the node on ``cpu`` (``place: cpu``).
"""

import hashlib
import importlib.util
import inspect
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path

from nodes.contract import F64, OpParams, StreamOp, step_helper
from nodes.contract.cache import cache_dir


def stream_indicator(
    name: str,
    *,
    inputs: tuple[str, ...] = ("x",),
    outputs: tuple[str, ...] = ("out",),
    state: tuple | Callable = (0.0,),
    params: type[OpParams] | None = None,
) -> Callable[[Callable], type[StreamOp]]:
    """Return a decorator that makes a ``StreamOp`` named ``name`` from a step function.

    Raises:
        ValueError: ``name`` is not dotted, inputs/outputs are empty, or the function's parameters do not match
            ``(state, *inputs)`` (``(c, state, *inputs)`` with ``params``).
    """
    if "." not in name:
        raise ValueError(f"indicator name {name!r} must be dotted, e.g. 'user.{name}'")
    if not inputs or not outputs:
        raise ValueError(f"indicator {name!r} needs at least one input and one output")

    def decorate(function: Callable) -> type[StreamOp]:
        expected = (["c"] if params is not None else []) + ["state", *inputs]
        got = list(inspect.signature(function).parameters)
        if len(got) != len(expected):
            raise ValueError(
                f"{function.__qualname__} takes ({', '.join(got)}); an indicator with inputs {list(inputs)}"
                f"{' and params' if params is not None else ''} needs ({', '.join(expected)})"
            )
        step = function if params is not None else _make_step(function, inputs)
        initial = state if callable(state) else (lambda c, _s=tuple(state): _s)
        params_model = params or OpParams

        def init(c, n_keys):
            return _copy_state(initial(c))

        def example_args():
            c = _example_constants(params_model)
            return (c, init(c, 1), *([0.0] * len(inputs)))

        step.tickloom_example_args = example_args
        step.tickloom_user_name = f"{function.__qualname__} (op {name!r})"
        step.tickloom_user_function = function
        namespace = {
            "name": name,
            "Params": params_model,
            "inputs": {n: F64 for n in inputs},
            "outputs": {n: F64 for n in outputs},
            "init": staticmethod(init),
            "step": staticmethod(step),
            "__doc__": function.__doc__ or f"User indicator {name} ({function.__qualname__}).",
            "__module__": function.__module__,
            "user_function": staticmethod(function),
        }
        return type(function.__name__, (StreamOp,), namespace)

    return decorate


def _make_step(function: Callable, inputs: tuple[str, ...]) -> Callable:
    """A step ``(c, s, *inputs)`` that calls ``function(s, *inputs)``.

    The wrapper is written to a file in the kernel cache, named by a hash of the user's module source, so that
    numba can cache it on disk and a changed user function never reuses a stale compilation.
    """
    arguments = ", ".join(inputs)
    source = f"def step(c, s, {arguments}):\n    return _user(s, {arguments})\n"
    origin = inspect.getsourcefile(function) or function.__module__
    try:
        origin_text = Path(origin).read_bytes()
    except OSError:
        origin_text = inspect.getsource(function).encode()
    key = hashlib.sha256(source.encode() + origin.encode() + function.__qualname__.encode() + origin_text).hexdigest()[:20]
    module_name = f"tickloom_user_step_{function.__name__}_{key}"
    if module_name not in sys.modules:
        path = cache_dir("kernels") / f"{module_name}.py"
        if not path.exists():
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(source)
            temporary.replace(path)
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        module.__dict__["_user"] = step_helper(function)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name].step


def _copy_state(value):
    """Fresh arrays per state so two nodes (or two instruments) never share a ring buffer."""
    return tuple(v.copy() if hasattr(v, "copy") and not isinstance(v, (int, float)) else v for v in value)


def _example_constants(model: type[OpParams]) -> tuple:
    """The constants a plan would pass, built from defaults (1 or 1.0 for required fields): their types."""
    values = []
    for field in model.model_fields.values():
        if not field.is_required():
            values.append(field.get_default(call_default_factory=True))
        else:
            values.append(1.0 if _is_float(field.annotation) else 1)
    return tuple(values)


def _is_float(annotation) -> bool:
    return annotation is float or float in typing.get_args(annotation)
