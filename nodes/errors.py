"""The tickloom error family: each error says who must act.

- ``SpecError``: a spec is wrong; names file:line:col and what was expected.
- ``GraphError``: the graph a valid spec describes cannot be built (cycle, mismatched ports).
- ``DataQualityError``: input data is wrong; names the file, the row and how many.
- ``LookAheadError``: something would let a node see an event before its time.
- ``VenueError``: a venue (simulated or real) refused; carries its raw message.
- ``InvariantError``: tickloom itself is wrong; please report it.
"""

from dataclasses import dataclass


class TickloomError(Exception):
    """Base of every error tickloom raises on purpose."""


@dataclass(frozen=True)
class SourceLocation:
    """A place in a YAML file: 1-based line and column, as editors show them (0 when there is no file)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


class SpecError(TickloomError):
    """Raised when a spec is invalid; ``problems`` holds one (location, message) per problem."""

    def __init__(self, problems: list[tuple[SourceLocation | None, str]]):
        self.problems = problems
        super().__init__("\n".join(_format_problem(loc, msg) for loc, msg in problems))

    @classmethod
    def at(cls, location: SourceLocation | None, message: str) -> "SpecError":
        return cls([(location, message)])


def _format_problem(location: SourceLocation | None, message: str) -> str:
    return f"{location}: {message}" if location else message


class GraphError(SpecError):
    """Raised when a spec's nodes do not form a valid graph (cycle, unknown node or port, type mismatch)."""


class DataQualityError(TickloomError):
    """Raised when input data breaks a rule (unsorted time, unparseable row); names file and row."""


class LookAheadError(TickloomError):
    """Raised when an operation would expose an event before its receive time."""


class VenueError(TickloomError):
    """Raised when a venue rejects a request; ``raw`` is the venue's own message."""

    def __init__(self, message: str, raw: str = ""):
        self.raw = raw
        super().__init__(f"{message} (venue said: {raw})" if raw else message)


class InvariantError(TickloomError):
    """Raised when tickloom breaks its own invariant: a bug in tickloom, please report it."""

    def __init__(self, message: str):
        super().__init__(f"internal invariant broken (a tickloom bug, please report): {message}")
