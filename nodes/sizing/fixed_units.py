"""Target position as a fixed number of units on the signal's side."""

from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp


class FixedUnitsParams(OpParams):
    units: float = Field(gt=0, description="position size in units (shares, contracts, coins) at side ±1")


class FixedUnits(StreamOp):
    """Size the side as a fixed number of units: target = side × units.

    A NaN side (no signal) keeps the current position (NaN target); no warm-up.

    FPGA: yes — one constant multiply.

    Example::

        target: {op: sizing.fixed_units, in: cross, with: {units: 100}}
    """

    name = "sizing.fixed_units"
    Params = FixedUnitsParams
    inputs = {"side": F64}
    outputs = {"target": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, side):
        return s, side * c[0]
