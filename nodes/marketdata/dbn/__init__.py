"""Databento DBN files → tickloom's normalized market-data tables, with a quality report per file.

Public surface: ``decode_dbn`` (stream chunks of frames), ``check_dbn`` (the report only),
``read_dbn_frames`` (whole file, eager), ``DecodedChunk``, ``DbnDecoding``, ``DbnQualityReport``,
``EXTRA_SCHEMAS`` (``imbalance``, ``statistics``, ``status``) and the ``source.dbn`` op (``source.py``).
Needs the ``databento-dbn`` and ``zstandard`` packages, imported only when a file is read.
"""

from nodes.marketdata.dbn.decode import (
    DEFAULT_CHUNK_RECORDS, DbnDecoding, DecodedChunk, check_dbn, decode_dbn, read_dbn_frames,
)
from nodes.marketdata.dbn.quality import DbnQualityReport, Finding
from nodes.marketdata.dbn.schemas import DBN_TABLES, EXTRA_SCHEMAS
from nodes.marketdata.dbn.stream import Quarantine

__all__ = [
    "DEFAULT_CHUNK_RECORDS", "DbnDecoding", "DecodedChunk", "check_dbn", "decode_dbn", "read_dbn_frames",
    "DbnQualityReport", "Finding", "DBN_TABLES", "EXTRA_SCHEMAS", "Quarantine",
]
