"""What a scenario step is: a stream transform or a node override, each with a frozen params model.

A **stream transform** has ``name``, ``Params`` and ``transform(params, chunks) -> chunks``: it reads a source's
chunks (dicts of equal-length numpy arrays: ``ts_event``, ``ts_recv``, ``instrument`` and one array per port,
sorted by ``ts_recv``) and yields chunks of the same columns and dtypes, still sorted by ``ts_recv``. It may
change values, delay rows or add rows; whatever state it needs across chunks lives in the generator, so its
output does not depend on how the input was cut into chunks.

A **node override** has ``name``, ``Params``, ``node_of(params, ops)`` (which node it changes, given the spec's
``{node id: op name}``) and ``override(params, current) -> dict`` (the node's new ``with`` values, given its
current ones). The stress run applies overrides before it compiles the plan.

Times in params: ``Timestamp`` accepts a date (``2013-04-15``: midnight UTC), an ISO date-time (naive means
UTC; ``2013-04-15T14:30:00-04:00`` carries its offset) or integer ns since the epoch. ``Duration`` accepts
``<number><unit>`` with unit ``ns``, ``us``, ``ms``, ``s``, ``m``, ``h``, ``d`` (``250ms``, ``2d``, ``1.5h``) or
integer ns.
"""

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Chunk = dict[str, np.ndarray]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|min|h|d)\s*$")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "min": 60 * 10**9,
            "h": 3_600 * 10**9, "d": 86_400 * 10**9}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp_ns(value: Any) -> int:
    """Read a point in time as int ns since the epoch, UTC.

    Example:
        >>> timestamp_ns("2013-04-15"), timestamp_ns("2013-04-15T10:30:00-04:00") - timestamp_ns("2013-04-15")
        (1365984000000000000, 52200000000000)

    Raises:
        ValueError: not a date, an ISO date-time or an integer.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a date, an ISO date-time or int ns, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        has_clock = "T" in text or " " in text or ":" in text
        try:
            value = dt.datetime.fromisoformat(text) if has_clock else dt.date.fromisoformat(text)
        except ValueError:
            expected = "a date (2013-04-15) or an ISO date-time (2013-04-15T14:30:00Z)"
            raise ValueError(f"{value!r} is not {expected}") from None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()).days * 86_400 * 10**9
    raise ValueError(f"expected a date, an ISO date-time or int ns, got {value!r}")


def duration_ns(value: Any) -> int:
    """Read a length of time as int ns (``250ms`` → 250_000_000); it must not be negative.

    Raises:
        ValueError: not ``<number><unit>`` or a non-negative integer.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 250ms or 2d, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return int(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as 250ms, 30s or 2d (units ns us ms s m h d), got {value!r}")
    number, unit = match.groups()
    return round(float(number) * _UNIT_NS[unit])


Timestamp = Annotated[int, BeforeValidator(timestamp_ns)]
Duration = Annotated[int, BeforeValidator(duration_ns)]


class TransformParams(BaseModel):
    """Params of a scenario step as written in a scenario file; frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class WindowParams(TransformParams):
    """A half-open window of time ``[start, end)``."""

    start: Timestamp = Field(description="first moment inside the window (a date, an ISO date-time or int ns, UTC)")
    end: Timestamp = Field(description="first moment after the window; must be after start")

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError(f"end ({self.end} ns) must be after start ({self.start} ns)")
        return self


class StreamTransform:
    """A step that rewrites a source's chunks; see the module docstring."""

    kind: ClassVar[str] = "stream"
    name: ClassVar[str]
    Params: ClassVar[type[TransformParams]]

    @classmethod
    def transform(cls, params: TransformParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        raise NotImplementedError


class NodeOverride:
    """A step that changes a node's params before the plan is compiled; see the module docstring."""

    kind: ClassVar[str] = "override"
    name: ClassVar[str]
    Params: ClassVar[type[TransformParams]]

    @classmethod
    def node_of(cls, params: TransformParams, ops: dict[str, str]) -> str:
        raise NotImplementedError

    @classmethod
    def override(cls, params: TransformParams, current: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError
