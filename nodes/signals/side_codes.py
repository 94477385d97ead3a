"""Side codes: a side port's float value (+1, 0, -1, NaN) as the small integer an integer datapath works on.

Shared by the ops that turn a side into an order (``risk.order_limits``) and by their fixed-point FPGA models
(``hardware.fpga``), which treat ``side_code`` as the boundary conversion from a float port.
"""

from nodes.contract import step_helper

SIDE_BAD = 2  # any number other than -1, 0, +1
SIDE_NONE = 3  # NaN: no wish


@step_helper
def side_code(side):
    """-1, 0 or +1 for a side; ``SIDE_BAD`` for any other number; ``SIDE_NONE`` for NaN (no wish)."""
    if side != side:
        return SIDE_NONE
    if side == 1.0:
        return 1
    if side == -1.0:
        return -1
    if side == 0.0:
        return 0
    return SIDE_BAD
