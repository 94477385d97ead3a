"""The op contract: what every op, built-in or user-written, declares and implements.

Read ``docs/contracts.md`` for the full contract; this package is its executable form.
"""

from nodes.contract.ports import BAR, BOOL, F64, I64, TABLE, PortType, RecordType, ScalarType, Scope, TableType
from nodes.contract.params import OpParams
from nodes.contract.op import Op, SourceOp, SourceReader, StreamOp, TableOp, step_helper
from nodes.contract.registry import OpRegistry, default_registry

__all__ = [
    "BAR", "BOOL", "F64", "I64", "TABLE", "PortType", "RecordType", "ScalarType", "Scope", "TableType",
    "OpParams", "Op", "SourceOp", "SourceReader", "StreamOp", "TableOp", "step_helper",
    "OpRegistry", "default_registry",
]
