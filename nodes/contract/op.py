"""Op kinds: stream ops (state + step), source ops (columnar chunks) and table ops (whole tables).

A **stream op** is written once, in the subset of Python that numba compiles:

- ``constants(params) -> tuple``: the parameters as a tuple of numbers (the step's ``c``);
- ``init(c, n_keys) -> tuple``: the initial state; scalars and numpy arrays only;
- ``step(c, s, *context, *inputs) -> (s, *outputs)``: consume one event, return the new state and one value per
  output port, in declaration order. Scalar state is threaded through the return value (it stays in registers
  in a fused kernel); arrays (ring buffers, per-instrument books) are updated in place and returned as they are.
  The state tuple must keep the same element types on every step.

``cpu`` runs ``step`` as plain Python; ``numba`` compiles the very same function. Nothing else implements the
op, so the two placements cannot drift apart.

A **keyed** op (the default) gets a separate state per instrument: the engine keeps one state per key and the
step never sees another instrument. An op that needs the whole account (a venue, a portfolio) sets
``keyed = False``, asks for the ``key`` in ``context`` and keeps per-instrument arrays in its state.
"""

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numba.extending import register_jitable

from nodes.contract.params import OpParams
from nodes.contract.ports import PortType, RecordType, ScalarType, Scope

# A plain function that a step calls: it runs as Python on cpu and is compiled into the step on numba.
step_helper = register_jitable

# What a step may ask for besides its inputs, passed before the inputs in this order of the declaration.
CONTEXT_FIELDS = ("key", "ts_event", "ts_recv")


class Op:
    """What every op declares: a unique dotted name, a params model, typed ports and where it can run."""

    name: ClassVar[str]
    Params: ClassVar[type[OpParams]] = OpParams
    inputs: ClassVar[dict[str, PortType]] = {}
    outputs: ClassVar[dict[str, ScalarType]] = {}
    targets: ClassVar[frozenset[str]] = frozenset({"cpu"})
    kind: ClassVar[str] = "abstract"

    @classmethod
    def specialize(cls, params: OpParams, base_dir: Path | None = None) -> "type[Op]":
        """Return the op as configured by ``params``: itself, or a subclass whose ports depend on the params.

        A DBN source's output ports depend on which schema it reads; it overrides this to return a subclass with
        those ports. ``base_dir`` is the spec's folder, against which a param naming a file resolves (a tick
        venue's user queue model). The loader calls it once per node after validating the params; a
        ``SpecError`` it raises is reported at the node's ``with``.
        """
        return cls

    @classmethod
    def summary(cls) -> str:
        """The first line of the op's docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Describe the op for ``tickloom ops`` and docs, generated from its own declarations."""
        params = {}
        for field_name, field in cls.Params.model_fields.items():
            params[field_name] = {
                "type": _annotation_name(field.annotation),
                "required": field.is_required(),
                "default": None if field.is_required() else field.get_default(call_default_factory=True),
                "description": field.description or "",
            }
        return {
            "name": cls.name,
            "kind": cls.kind,
            "summary": cls.summary(),
            "inputs": {name: str(t) for name, t in cls.inputs.items()},
            "outputs": {name: str(t) for name, t in cls.outputs.items()},
            "targets": sorted(cls.targets),
            "params": params,
        }


def _annotation_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + "|".join(str(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


class StreamOp(Op):
    """An op that consumes one event at a time: ``init`` + ``step``, compiled by numba or run as Python."""

    kind = "stream"
    targets = frozenset({"cpu", "numba"})
    keyed: ClassVar[bool] = True
    context: ClassVar[tuple[str, ...]] = ()
    # Scope of each output of an unkeyed op; outputs of a keyed op are always per key.
    output_scopes: ClassVar[dict[str, Scope]] = {}
    # Inputs whose events make the node run; None: all of them. The others are read as of that moment.
    triggers: ClassVar[tuple[str, ...] | None] = None
    # Names of the op's logs: sparse rows (a venue's fills, order events) kept in its state and handed to the
    # engine by ``drain`` after every chunk. Only unkeyed ops have logs.
    logs: ClassVar[tuple[str, ...]] = ()
    # Optional for ops with logs: ``logged_rows(c, s) -> int``, the rows logged since the last drain (cheap
    # Python); a live session drains an op only when it says there are some.
    # False: a sink whose per-event outputs are not recorded unless asked for (its logs are its record), so a
    # long tick replay keeps memory bounded by the chunk instead of growing with every event.
    record_events: ClassVar[bool] = True

    @staticmethod
    def constants(params: OpParams) -> tuple:
        """Return the params as the tuple of numbers the step receives; override when a param is not a number."""
        values = []
        for name, value in params:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"param {name!r} is not a number; the op must override constants()")
            values.append(value)
        return tuple(values)

    @staticmethod
    def init(c: tuple, n_keys: int) -> tuple:
        raise NotImplementedError  # every stream op defines its own state

    @staticmethod
    def step(c: tuple, s: tuple, *args):
        raise NotImplementedError  # every stream op defines its own step

    @classmethod
    def instrument_constants(cls, params: OpParams, instruments: list[str]) -> tuple:
        """Return constants that depend on the plan's instruments (arrays indexed by key), appended to ``c``.

        Per-instrument settings (``impact_by_instrument: {AAPL: ...}``) need the instruments' order, which only
        the plan knows. Default: nothing.
        """
        return ()

    @staticmethod
    def drain(c: tuple, s: tuple) -> tuple[tuple, dict[str, dict[str, np.ndarray]]]:
        """Return the state with its log buffers emptied and the rows logged since the last drain.

        Called as Python (never compiled) after every chunk and at the end of a replay, for ops that declare
        ``logs``: ``(state, {log: {column: array}})``, with the same columns on every call.
        """
        raise NotImplementedError  # an op with logs defines how they are read out of its state

    @classmethod
    def scope_of(cls, port: str) -> Scope:
        return Scope.KEY if cls.keyed else cls.output_scopes.get(port, Scope.ACCOUNT)

    @classmethod
    def flat_inputs(cls) -> list[tuple[str, str | None, ScalarType]]:
        """Inputs as the step sees them: (input, record field or None, scalar type), in argument order."""
        flat = []
        for name, port_type in cls.inputs.items():
            if isinstance(port_type, RecordType):
                flat.extend((name, field, t) for field, t in port_type.fields)
            else:
                flat.append((name, None, port_type))
        return flat


class SourceReader(Protocol):
    """An opened source: its instruments and its events as columnar chunks sorted by ``ts_recv``.

    Each chunk is a dict of equal-length numpy arrays with ``ts_event`` and ``ts_recv`` (int64 ns UTC),
    ``instrument`` (int32 index into ``instruments``) and one array per output port of the op.
    """

    instruments: list[str]

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]: ...


class SourceOp(Op):
    """An op that reads events from outside the graph (files, a catalog, a socket)."""

    kind = "source"
    targets = frozenset({"cpu"})

    @classmethod
    def instruments(cls, params: OpParams, base_dir: Path) -> list[str]:
        """Return the instruments the source will emit, known before reading (the plan needs their count).

        ``base_dir`` is the spec's folder, against which relative paths resolve.
        """
        raise NotImplementedError  # every source declares its instruments

    @classmethod
    def open(cls, params: OpParams, base_dir: Path) -> SourceReader:
        """Open the source; relative paths resolve against ``base_dir`` (the spec's folder)."""
        raise NotImplementedError  # every source defines how it reads


class TableOp(Op):
    """An op over whole tables (polars), run in batch after the stream pass.

    Its inputs are the recorded outputs of upstream nodes: one polars DataFrame per input, with ``ts_event``,
    ``ts_recv``, ``instrument`` and one column per port. ``run`` returns one DataFrame per output.
    """

    kind = "table"
    targets = frozenset({"cpu"})

    @classmethod
    def run(cls, params: OpParams, tables: dict) -> dict:
        raise NotImplementedError  # every table op defines its computation
