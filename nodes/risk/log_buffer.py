"""Log rows for the risk ops: one int64 and one float64 buffer in the state, appended by the step, drained by Python.

A step calls ``reserve`` before it may write rows (it returns the same buffers, or copies twice as large, so the
state keeps its types), then ``new_row`` per row; the row cursor is a scalar of the op's state. ``drain_columns``
reads the rows out as ``{column: array}`` after every chunk (the engine's ``drain`` hook).
"""

import numpy as np

from nodes.contract import step_helper
from nodes.risk.codes import named


def new_buffers(int_columns: int, float_columns: int, rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((rows, int_columns), np.int64), np.zeros((rows, float_columns), np.float64)


@step_helper
def reserve(log_ints, log_floats, used, rows):
    """The buffers with room for ``rows`` more rows after ``used``: the same arrays, or copies twice as large."""
    if used + rows <= log_ints.shape[0]:
        return log_ints, log_floats
    size = max(2 * log_ints.shape[0], used + rows)
    grown_ints = np.zeros((size, log_ints.shape[1]), np.int64)
    grown_floats = np.zeros((size, log_floats.shape[1]), np.float64)
    for r in range(used):
        for j in range(log_ints.shape[1]):
            grown_ints[r, j] = log_ints[r, j]
        for j in range(log_floats.shape[1]):
            grown_floats[r, j] = log_floats[r, j]
    return grown_ints, grown_floats


def drain_columns(log_ints: np.ndarray, log_floats: np.ndarray, used: int,
                  columns: dict[str, tuple[str, int, tuple | None]]) -> dict[str, np.ndarray]:
    """The first ``used`` rows as ``{column: array}``; ``columns`` maps name → (``"i"``/``"f"``, index, names)."""
    out = {}
    for name, (buffer, index, names) in columns.items():
        values = (log_ints if buffer == "i" else log_floats)[:used, index].copy()
        out[name] = named(values, names) if names is not None else values
    return out
