"""Tardis.dev CSV files → normalized ``book_deltas``, ``trades`` and ``quotes`` (see ``normalize``)."""

from nodes.marketdata.tardis.layout import TardisLayout, detect_layout
from nodes.marketdata.tardis.normalize import (
    TardisChunk,
    TardisNormalization,
    list_symbols,
    normalize_tardis,
    read_header,
    read_tardis,
)
from nodes.marketdata.tardis.report import TardisQualityReport

__all__ = [
    "TardisChunk", "TardisLayout", "TardisNormalization", "TardisQualityReport", "detect_layout", "list_symbols",
    "normalize_tardis", "read_header", "read_tardis",
]
