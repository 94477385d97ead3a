"""The base of every op's parameters model: frozen, strict about unknown keys."""

from pydantic import BaseModel, ConfigDict


class OpParams(BaseModel):
    """Parameters of an op as written under ``with:`` in a spec.

    Frozen (a plan never mutates them) and closed (an unknown key is an error, never ignored). Defaults live
    here and show up in ``tickloom ops`` and the JSON Schema.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
