"""The market-data catalog: Parquet partitioned Hive-style with DuckDB for queries and metadata.

- ``layout.py``: where partitions live, how names are escaped, which root;
- ``writer.py``: ``write_partitioned`` / ``PartitionWriter`` (atomic, idempotent, bounded memory);
- ``reader.py``: ``Catalog`` (``scan``, ``read``, ``query``, ``ls``) for notebooks and tools;
- ``metadata.py``: ``catalog.duckdb`` (ingest runs, quality reports, instruments, per-schema views);
- ``formats/``: the decoders ingestion can use, by name;
- ``ingest_files.py``: the ``ingest.files`` op, the node of an ingest spec.

Runs (checksums, quality thresholds, metadata) are recorded by ``pipelines/ingest.py``.
"""

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import CatalogLayout, PartitionKey, escape, resolve_root, unescape
from nodes.catalog.reader import Catalog
from nodes.catalog.writer import PartitionWrite, PartitionWriter, write_partitioned

__all__ = [
    "Catalog", "CatalogError", "CatalogLayout", "PartitionKey", "PartitionWrite", "PartitionWriter",
    "escape", "resolve_root", "unescape", "write_partitioned",
]
