"""Targets: where a stream node runs, and how a fused segment of nodes becomes something callable.

``cpu`` runs the op's ``step`` and the generated segment loop as plain Python. ``numba`` compiles the very same
functions with numba, caching compiled kernels on disk (a generated segment is written to a file named by the
hash of its source and of the ops it calls, so a changed op never reuses a stale kernel). ``fpga`` is a known
placement; no op offers it yet (the simulated FPGA target is separate work), so asking for it is refused with
the op's available targets.
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

KNOWN_TARGETS = ("cpu", "numba", "fpga")


def kernel_cache_dir() -> Path:
    """Where generated kernels and numba's cache for them live: ``$TICKLOOM_CACHE`` or ``~/.cache/tickloom``."""
    root = Path(os.environ.get("TICKLOOM_CACHE", Path.home() / ".cache" / "tickloom"))
    path = root / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


_jitted: dict[Callable, Callable] = {}


def step_function(step: Callable, target: str) -> Callable:
    """Return the callable that runs ``step`` on ``target``: itself on cpu, its numba compilation on numba."""
    if target == "cpu":
        return step
    if target == "numba":
        if step not in _jitted:
            _jitted[step] = numba.njit(cache=True, inline="always")(step)
        return _jitted[step]
    raise ValueError(f"target {target!r} cannot run stream steps")


def source_digest(functions: list[Callable]) -> str:
    """A digest of the source files defining ``functions``: part of a generated kernel's cache key."""
    digest = hashlib.sha256()
    for path in sorted({inspect.getsourcefile(f) or "" for f in functions}):
        digest.update(path.encode())
        digest.update(Path(path).read_bytes() if path and Path(path).exists() else b"")
    return digest.hexdigest()


def compile_segment(source: str, entry: str, namespace: dict, target: str, dependencies: list[Callable]) -> Callable:
    """Turn a generated segment's source into a callable on ``target``.

    ``namespace`` holds the globals the source refers to (step functions, numpy). On ``numba`` the source is
    written to the kernel cache under the hash of (source, dependencies' files, numba version) and compiled
    with ``cache=True``, so a second process loads machine code instead of compiling.
    """
    if target == "cpu":
        scope = dict(namespace)
        exec(compile(source, f"<tickloom segment {entry}>", "exec"), scope)
        return scope[entry]
    if target != "numba":
        raise ValueError(f"target {target!r} cannot run a segment")
    key = hashlib.sha256(
        (source + source_digest(dependencies) + numba.__version__ + np.__version__).encode()
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
    function = numba.njit(cache=True)(getattr(module, entry))
    setattr(module, entry, function)
    return function
