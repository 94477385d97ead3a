"""Targets: where a stream node runs, and how a fused segment of nodes becomes something callable.

``cpu`` runs the op's ``step`` and the generated segment loop as plain Python. ``numba`` compiles the very same
functions with numba, caching compiled kernels on disk (a generated segment is written to a file named by the
hash of its source and of the ops it calls, so a changed op never reuses a stale kernel). ``fpga`` runs the
op's **golden model** (``hardware.fpga``): the bit-exact fixed-point twin of the RTL, with the op's own ports,
compiled with numba like any step. ``implementation(op, target)`` says which one runs.
"""

import hashlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import Callable

import numba
import numpy as np
from numba.core.errors import NumbaError, TypingError

from nodes.contract.cache import cache_dir
from nodes.errors import SpecError

KNOWN_TARGETS = ("cpu", "numba", "fpga")

# A step may carry a zero-argument callable under this attribute that returns example arguments
# ``(c, s, *inputs)``. ``step_function`` then compiles it for ``numba`` at once (at plan time) instead of on the
# first event, so a step numba cannot compile fails early with ``StepCompileError``. User indicators made with
# ``nodes.indicators.user.stream_indicator`` set it.
EXAMPLE_ARGS_ATTRIBUTE = "tickloom_example_args"


class StepCompileError(SpecError):
    """Raised when numba cannot compile a step placed on ``numba``; names the function and numba's reason.

    Nothing falls back to Python on its own: the fix is to change the function, or to place its node on
    ``cpu`` (``place: cpu``) to run it as plain Python.
    """

    def __init__(self, step: Callable, reason: str):
        self.step = step
        self.reason = reason
        where = ""
        source = getattr(step, "tickloom_user_function", step)  # a generated wrapper names the user's function
        try:
            where = f" ({inspect.getsourcefile(source)}:{inspect.getsourcelines(source)[1]})"
        except (OSError, TypeError):
            pass
        name = getattr(step, "tickloom_user_name", None) or getattr(step, "__qualname__", repr(step))
        super().__init__([(None, (
            f"numba cannot compile {name}{where}: {reason.strip()}\n"
            f"Change the function to the subset of Python numba compiles, or run its node as plain Python with "
            f"`place: cpu` (nothing falls back to Python on its own)."
        ))])


def kernel_cache_dir() -> Path:
    """Where generated kernels and numba's cache for them live: ``$TICKLOOM_CACHE/kernels``."""
    return cache_dir("kernels")


_jitted: dict[Callable, Callable] = {}


def implementation(op, target: str):
    """What runs ``op`` on ``target``: the op itself, or on ``fpga`` its fixed-point golden model (an ``FpgaImpl``).

    Either one offers ``constants(params)``, ``init(c, n_keys)`` and ``step``; an ``FpgaImpl`` has its own
    constants (fixed-point numbers), so ``c`` always comes from the same implementation as the step.

    Raises:
        ValueError: ``op`` has no FPGA implementation (the loader refuses such a placement first).
    """
    if target != "fpga":
        return op
    from hardware.fpga.registry import fpga_impl

    impl = fpga_impl(op.name)
    if impl is None:
        raise ValueError(f"op {op.name} has no FPGA implementation")
    return impl


def targets_of(op) -> frozenset[str]:
    """Where ``op`` can run: its own targets, plus ``fpga`` when ``hardware.fpga`` implements it."""
    from hardware.fpga.registry import fpga_impl

    return op.targets | {"fpga"} if op.kind == "stream" and fpga_impl(op.name) is not None else op.targets


def step_function(step: Callable, target: str) -> Callable:
    """Return the callable that runs ``step`` on ``target``: itself on cpu, its numba compilation on numba and
    fpga (where ``step`` is the golden model's)."""
    if target == "cpu":
        return step
    if target in ("numba", "fpga"):
        if step not in _jitted:
            jitted = numba.njit(inline="always", error_model="numpy")(step)
            example_args = getattr(step, EXAMPLE_ARGS_ATTRIBUTE, None)
            if example_args is not None:
                try:
                    jitted.compile(tuple(numba.typeof(a) for a in example_args()))
                except TypingError as error:
                    raise StepCompileError(step, _first_paragraph(str(error))) from None
                except NumbaError as error:  # unsupported bytecode, constructs numba rejects before typing
                    raise StepCompileError(step, _first_paragraph(str(error))) from None
            _jitted[step] = jitted
        return _jitted[step]
    raise ValueError(f"target {target!r} cannot run stream steps")


def _first_paragraph(message: str) -> str:
    """numba's reason, innermost first, without its frames of typing context."""
    marker = "raised a specific error:"
    if marker in message:
        message = message[message.rindex(marker) + len(marker):]
    message = message.replace("TypingError: ", "").replace(
        "Failed in nopython mode pipeline (step: nopython frontend)", "")
    kept = []
    for line in message.splitlines():
        if line.strip().startswith("During:") or "This error may have been caused" in line:
            break
        if line.strip():
            kept.append(line.strip())
    return " ".join(kept)[:800]


def source_digest(functions: list[Callable]) -> str:
    """A digest of the code ``functions`` may run: part of a generated kernel's cache key.

    A step may call helpers from other modules, so for a built-in op every file of the ``nodes`` package
    counts (editing any op recompiles kernels once); for a user op, its own file.
    """
    files: set[Path] = set()
    for function in functions:
        source = inspect.getsourcefile(function)
        if source:
            files.add(Path(source).resolve())
    for root in {_package_root(f) for f in files}:
        if root is not None:
            files.update(root.rglob("*.py"))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _package_root(path: Path) -> Path | None:
    """The top package folder containing ``path`` (the folder of ``nodes`` for a built-in op), if any."""
    root = None
    folder = path.parent
    while (folder / "__init__.py").exists():
        root = folder
        folder = folder.parent
    return root


def compile_segment(source: str, entry: str, namespace: dict, target: str, dependencies: list[Callable]) -> Callable:
    """Turn a generated segment's source into a callable on ``target``.

    ``namespace`` holds the globals the source refers to (step functions, numpy). On ``numba`` the source is
    written to the kernel cache under the hash of (source, the dependencies' names and files, numba version)
    and compiled with ``cache=True``, so a second process loads machine code instead of compiling.
    """
    if target == "cpu":
        scope = dict(namespace)
        exec(compile(source, f"<tickloom segment {entry}>", "exec"), scope)
        return scope[entry]
    if target not in ("numba", "fpga"):  # an fpga segment is its golden models, compiled
        raise ValueError(f"target {target!r} cannot run a segment")
    # The source names steps only by position (step_n3): two specs that differ by which op sits at a node
    # generate the same text, so the steps' own names are part of the key too.
    steps = "".join(f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', repr(f))}\n" for f in dependencies)
    key = hashlib.sha256(
        (source + steps + source_digest(dependencies) + numba.__version__ + np.__version__).encode()
    ).hexdigest()[:24]
    module_name = f"tickloom_kernel_{key}"
    if module_name in sys.modules:
        return getattr(sys.modules[module_name], entry)
    path = kernel_cache_dir() / f"{module_name}.py"
    if not path.exists():
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        temporary.replace(path)  # atomic: a concurrent process never imports a half-written file
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(namespace)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    function = numba.njit(cache=True, error_model="numpy")(getattr(module, entry))
    setattr(module, entry, function)
    return function
