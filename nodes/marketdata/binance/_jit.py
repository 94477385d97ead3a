"""``njit`` for the normalizer's kernels: numba without reference counting where numba offers it.

The kernels allocate nothing (scratch arrays are passed in), and the atomic increments and decrements numba
wraps around every call that passes an array cost 4-5x the parse itself (measured on the 15 MB futures
capture: 490 ms with them, 110 ms without). ``_nrt=False`` is an internal numba option; when a numba
version no longer has it, the kernels compile as usual: the same results, only slower.
"""

from numba import njit as _numba_njit


def _accepts_no_nrt() -> bool:
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return False
    return hasattr(CPUTargetOptions, "_nrt")


_NO_NRT = {"_nrt": False} if _accepts_no_nrt() else {}


def njit(**options):
    """``numba.njit(**options)`` with reference counting off when numba allows it."""
    return _numba_njit(**_NO_NRT, **options)
