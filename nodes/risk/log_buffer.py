"""Log rows for the risk ops: one int64 and one float64 buffer in the state, appended by the step, drained by Python.

A step calls ``reserve`` before it may write rows (it returns the same buffers, or copies twice as large, so the
state keeps its types), then ``new_row`` per row; the row cursor is a scalar of the op's state. ``drain_columns``
reads the rows out as ``{column: array}`` after every chunk (the engine's ``drain`` hook).
"""

import numpy as np

from nodes.contract.log_buffers import new_log_buffers, reserve_log_rows
from nodes.risk.codes import named


# the buffers themselves are the contract's (nodes/contract/log_buffers.py), shared with the tick venue
new_buffers = new_log_buffers
reserve = reserve_log_rows


def drain_columns(log_ints: np.ndarray, log_floats: np.ndarray, used: int,
                  columns: dict[str, tuple[str, int, tuple | None]]) -> dict[str, np.ndarray]:
    """The first ``used`` rows as ``{column: array}``; ``columns`` maps name → (``"i"``/``"f"``, index, names)."""
    out = {}
    for name, (buffer, index, names) in columns.items():
        values = (log_ints if buffer == "i" else log_floats)[:used, index].copy()
        out[name] = named(values, names) if names is not None else values
    return out
