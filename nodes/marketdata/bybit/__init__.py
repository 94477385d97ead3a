"""Bybit order-book files (``orderbook.<depth>.<symbol>`` JSON lines) → normalized ``book_deltas`` (see ``normalize``)."""

from nodes.marketdata.bybit.normalize import (
    BybitChunk,
    BybitNormalization,
    list_symbols,
    normalize_bybit_orderbook,
    read_bybit_orderbook,
)
from nodes.marketdata.bybit.report import BybitQualityReport

__all__ = [
    "BybitChunk", "BybitNormalization", "BybitQualityReport", "list_symbols", "normalize_bybit_orderbook",
    "read_bybit_orderbook",
]
