"""Binance websocket captures → normalized ``book_deltas``, ``trades`` and ``quotes`` (see ``normalize``)."""

from nodes.marketdata.binance.normalize import (
    CaptureNormalization,
    NormalizedChunk,
    normalize_capture,
    read_capture,
    venue_of,
)
from nodes.marketdata.binance.reference import decimal_to_units
from nodes.marketdata.binance.report import BinanceQualityReport, QuarantinedLine

__all__ = [
    "BinanceQualityReport", "CaptureNormalization", "NormalizedChunk", "QuarantinedLine",
    "decimal_to_units", "normalize_capture", "read_capture", "venue_of",
]
