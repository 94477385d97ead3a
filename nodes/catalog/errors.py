"""The catalog's one error: what it was asked cannot be done (bad query, unknown schema, busy catalog)."""

from nodes.errors import TickloomError


class CatalogError(TickloomError):
    """Raised when the catalog refuses a request: an unknown schema or name, SQL that fails, a catalog
    another ingest is writing, a catalog folder that does not exist."""
