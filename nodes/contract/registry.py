"""Finding ops by name: the built-in library and user modules go through the same scan.

An op is any subclass of ``Op`` with a ``name``, defined at the top level of a module. ``OpRegistry.scan``
collects them; the built-in library is every module under the ``nodes`` package, a user's ops are the modules
a spec lists under ``modules:``. There is no decorator to forget and no second path for built-ins.
"""

import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import nodes
from nodes.contract.op import Op


class OpRegistry:
    """A name → op class map."""

    def __init__(self, ops: dict[str, type[Op]] | None = None):
        self._ops: dict[str, type[Op]] = dict(ops or {})

    def scan(self, module: ModuleType) -> "OpRegistry":
        """Add every op class defined in ``module``; a second op with a taken name is an error."""
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Op) and obj.__module__ == module.__name__ and "name" in vars(obj):
                existing = self._ops.get(obj.name)
                if existing is not None and existing is not obj:
                    raise ValueError(
                        f"op name {obj.name!r} is defined twice: {existing.__module__}.{existing.__qualname__} "
                        f"and {obj.__module__}.{obj.__qualname__}"
                    )
                self._ops[obj.name] = obj
        return self

    def with_modules(self, paths: list[Path]) -> "OpRegistry":
        """Return a copy with the ops of user modules (Python files) added."""
        extended = OpRegistry(self._ops)
        for path in paths:
            extended.scan(load_module_from_path(path))
        return extended

    def get(self, name: str) -> type[Op] | None:
        return self._ops.get(name)

    def suggest(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, self._ops, n=3, cutoff=0.6)

    def names(self) -> list[str]:
        return sorted(self._ops)

    def __iter__(self):
        return iter(self._ops[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._ops)


def load_module_from_path(path: Path) -> ModuleType:
    """Import a Python file as a module named after its resolved path, once per process.

    The module is registered in ``sys.modules`` so numba can cache its functions and pickling works.
    """
    path = path.resolve()
    module_name = "tickloom_user_" + "_".join(path.with_suffix("").parts[1:]).replace("-", "_").replace(".", "_")
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


@lru_cache(maxsize=1)
def default_registry() -> OpRegistry:
    """The built-in op library: every module under ``nodes`` except the contract itself."""
    registry = OpRegistry()
    for info in pkgutil.walk_packages(nodes.__path__, prefix="nodes."):
        if info.name.startswith("nodes.contract") or info.ispkg:
            continue
        registry.scan(importlib.import_module(info.name))
    return registry

