"""Buffers for an op's logs (the ``logs`` / ``drain`` contract): one int64 and one float64 2-D array in the state.

A step appends rows at a cursor it keeps as a scalar of its state; before writing it asks ``reserve_log_rows``
for room, which returns the same arrays or copies twice as large (same dtype and rank, so the state's types
stay stable and numba compiles the step once). ``drain`` reads the rows out as Python after every chunk.
"""

import numpy as np

from nodes.contract.op import step_helper


def new_log_buffers(int_columns: int, float_columns: int, rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Empty buffers of ``rows`` rows for logs of ``int_columns`` int64 and ``float_columns`` float64 columns."""
    return np.zeros((rows, int_columns), np.int64), np.zeros((rows, float_columns), np.float64)


@step_helper
def reserve_log_rows(log_ints, log_floats, used, rows):
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
