"""Port types: what flows along an edge, one value per event.

Scalars are the only values a stream step sees (numba compiles them into registers). A record type is a named
bundle of scalar fields: an input declared as ``BAR`` is wired to a node whose outputs include every field,
and the step receives the fields as separate arguments in declaration order.
"""

from dataclasses import dataclass
from enum import Enum

import numpy as np


class ScalarType(Enum):
    """A scalar port type with its numpy dtype and the value a port holds before its node first fires."""

    F64 = "f64"
    I64 = "i64"
    BOOL = "bool"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"f64": np.float64, "i64": np.int64, "bool": np.bool_}[self.value])

    @property
    def initial(self):
        """The held value of a port before its node first fires: NaN, 0 or False."""
        return {"f64": float("nan"), "i64": 0, "bool": False}[self.value]

    @property
    def literal(self) -> str:
        """The initial value as Python source for generated kernels."""
        return {"f64": "np.nan", "i64": "np.int64(0)", "bool": "False"}[self.value]

    def __str__(self) -> str:
        return self.value


F64 = ScalarType.F64
I64 = ScalarType.I64
BOOL = ScalarType.BOOL


@dataclass(frozen=True)
class RecordType:
    """A named bundle of scalar fields, e.g. ``bar`` = open, high, low, close, volume."""

    name: str
    fields: tuple[tuple[str, ScalarType], ...]

    def __str__(self) -> str:
        return self.name + "{" + ", ".join(f"{n}: {t}" for n, t in self.fields) + "}"


@dataclass(frozen=True)
class TableType:
    """A whole table: the recorded outputs of a node, or a table op's result (inputs of table ops only)."""

    def __str__(self) -> str:
        return "table"


TABLE = TableType()

PortType = ScalarType | RecordType | TableType

BAR = RecordType("bar", (("open", F64), ("high", F64), ("low", F64), ("close", F64), ("volume", F64)))


class Scope(Enum):
    """Whose value an output port holds.

    ``KEY``: the value belongs to the instrument of the event that fired the node (every output of a keyed op).
    ``ACCOUNT``: one value for the whole run (an account's equity).
    A feedback read (``prev(...)``) of a KEY port returns the value for the current event's instrument.
    """

    KEY = "key"
    ACCOUNT = "account"
