"""The catalog's metadata database, ``<root>/catalog.duckdb``: ingest runs, quality reports, instruments, views.

Tables (times are UTC, durations in seconds):

- ``ingest_runs``: one row per run. ``spec_name`` is the ingest spec's name (``quick`` for files ingested
  without a spec), ``spec_hash`` its identity (null for quick runs); ``inputs`` lists every input file with
  its ``format``, ``sha256`` and size in ``bytes``; ``rows`` maps schema → rows written; ``partitions`` lists
  what the run wrote (``outcome``: new, replaced or unchanged); ``status`` is ``running``, ``succeeded`` or
  ``failed`` with ``error``. A run whose process died stays ``running`` until the next ingest of the catalog
  marks it ``failed`` (abandoned).
- ``quality_reports``: one row per input file decoded: the decoder's report as JSON, with the record counts
  and the bad-record rate the run was judged on.
- ``instruments``: the latest definition (by ``ts_recv``) of each (venue, symbol) seen in a ``definitions``
  frame: ids, class, currency, ``tick_size`` and ``lot_size`` (int64, 1e-9 units like prices),
  ``multiplier``, ``expiration`` (ns UTC).

Views: one per normalized schema (``trades``, ``quotes``, ``book_deltas``, ``orders``, ``bars``,
``definitions``), ``read_parquet`` over the schema's partitions with hive partitioning: the schema's columns
plus ``date`` (filter on it to prune partitions). A schema with no data yet has an empty view of the same
columns. Persisted views hold the catalog's absolute path and are refreshed after every ingest;
``Catalog.query`` builds its own temporary views, so a moved catalog still answers.

DuckDB lets one process write a database file at a time; connections here are short and retried while
another process holds the file.
"""

import json
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import CatalogLayout
from nodes.marketdata.schemas import SCHEMAS

_DUCKDB_TYPES = {
    pl.Int8: "TINYINT", pl.Int16: "SMALLINT", pl.Int32: "INTEGER", pl.Int64: "BIGINT",
    pl.UInt8: "UTINYINT", pl.UInt16: "USMALLINT", pl.UInt32: "UINTEGER", pl.UInt64: "UBIGINT",
    pl.Float32: "FLOAT", pl.Float64: "DOUBLE", pl.String: "VARCHAR", pl.Boolean: "BOOLEAN", pl.Date: "DATE",
}
_HIVE_TYPES = "{'schema': VARCHAR, 'venue': VARCHAR, 'symbol': VARCHAR, 'date': DATE}"
_LOCK_WAIT_S = 10.0

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS ingest_runs (
    run_id VARCHAR PRIMARY KEY,
    spec_name VARCHAR NOT NULL,
    spec_hash VARCHAR,
    started_utc TIMESTAMP NOT NULL,
    finished_utc TIMESTAMP,
    duration_s DOUBLE,
    inputs STRUCT(path VARCHAR, format VARCHAR, sha256 VARCHAR, bytes BIGINT)[],
    rows MAP(VARCHAR, BIGINT),
    partitions STRUCT(schema VARCHAR, venue VARCHAR, symbol VARCHAR, date DATE, rows BIGINT, outcome VARCHAR)[],
    status VARCHAR NOT NULL,
    error VARCHAR
);
CREATE TABLE IF NOT EXISTS quality_reports (
    run_id VARCHAR NOT NULL,
    input VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    records BIGINT,
    bad_records BIGINT,
    bad_record_rate DOUBLE,
    report JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS instruments (
    venue VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    instrument_id BIGINT,
    instrument_class VARCHAR,
    currency VARCHAR,
    tick_size BIGINT,
    lot_size BIGINT,
    multiplier DOUBLE,
    expiration BIGINT,
    ts_event BIGINT,
    ts_recv BIGINT NOT NULL,
    run_id VARCHAR NOT NULL,
    PRIMARY KEY (venue, symbol)
);
"""

_INSTRUMENT_COLUMNS = [
    "venue", "symbol", "instrument_id", "instrument_class", "currency", "tick_size", "lot_size", "multiplier",
    "expiration", "ts_event", "ts_recv",
]


class MetadataStore:
    """Reads and writes ``catalog.duckdb`` of one catalog."""

    def __init__(self, layout: CatalogLayout):
        self.layout = layout
        self.path = layout.metadata_path

    @contextmanager
    def connect(self, read_only: bool = False):
        """A short-lived connection; waits up to 10 s while another process holds the file.

        Raises:
            CatalogError: the file stayed locked, or is not a DuckDB database.
        """
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                connection = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise CatalogError(f"cannot open {self.path}: {error}") from error
                time.sleep(0.05)
        try:
            yield connection
        finally:
            connection.close()

    def begin_run(self, run_id: str, spec_name: str, spec_hash: str | None, started_utc) -> int:
        """Create the tables if needed, mark runs left ``running`` as failed, record this run as running.

        Call only while holding the catalog's writer lock (that is what proves a ``running`` run is dead).
        Returns how many runs were marked abandoned.
        """
        with self.connect() as connection:
            connection.execute(TABLES_SQL)
            abandoned = connection.execute("SELECT count(*) FROM ingest_runs WHERE status = 'running'").fetchall()[0][0]
            connection.execute(
                "UPDATE ingest_runs SET status = 'failed', "
                "error = 'abandoned: the process stopped before the run finished (found by run ' || ? || ')' "
                "WHERE status = 'running'",
                [run_id],
            )
            connection.execute(
                "INSERT INTO ingest_runs (run_id, spec_name, spec_hash, started_utc, status) VALUES (?, ?, ?, ?, 'running')",
                [run_id, spec_name, spec_hash, started_utc],
            )
        return abandoned

    def end_run(
        self,
        run_id: str,
        status: str,
        finished_utc,
        duration_s: float,
        inputs: list[dict],
        rows: dict[str, int],
        partitions: list[dict],
        reports: list[dict],
        definitions: pl.DataFrame | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended, in one transaction: its quality reports (each a dict with ``input``,
        ``format``, ``records``, ``bad_records``, ``bad_record_rate`` and ``report``), the instruments of its
        ``definitions``, refreshed views, and the run's row."""
        with self.connect() as connection:
            connection.execute("BEGIN TRANSACTION")
            for r in reports:
                connection.execute(
                    "INSERT INTO quality_reports VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [run_id, r["input"], r["format"], r["records"], r["bad_records"], r["bad_record_rate"],
                     json.dumps(r["report"], default=str, sort_keys=True)],
                )
            if definitions is not None and definitions.height:
                _upsert_instruments(connection, definitions, run_id)
            create_views(connection, self.layout, temporary=False)
            connection.execute(
                "UPDATE ingest_runs SET status = ?, finished_utc = ?, duration_s = ?, inputs = ?, rows = ?, "
                "partitions = ?, error = ? WHERE run_id = ?",
                [status, finished_utc, duration_s, inputs, rows, partitions, error, run_id],
            )
            connection.execute("COMMIT")


def _upsert_instruments(connection, definitions: pl.DataFrame, run_id: str) -> None:
    """Keep, per (venue, symbol), the definition with the latest ``ts_recv`` (an older one never wins)."""
    latest = (
        definitions.sort("ts_recv", maintain_order=True)
        .unique(["venue", "symbol"], keep="last", maintain_order=True)
        .select(_INSTRUMENT_COLUMNS)
        .with_columns(pl.lit(run_id).alias("run_id"))
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in _INSTRUMENT_COLUMNS[2:] + ["run_id"])
    connection.register("incoming_definitions", latest)
    connection.execute(
        f"INSERT INTO instruments SELECT {', '.join(_INSTRUMENT_COLUMNS)}, run_id FROM incoming_definitions "
        f"ON CONFLICT (venue, symbol) DO UPDATE SET {updates} WHERE excluded.ts_recv >= instruments.ts_recv"
    )
    connection.unregister("incoming_definitions")


def create_views(connection, layout: CatalogLayout, temporary: bool) -> None:
    """Create one view per normalized schema on ``connection`` (see the module docstring)."""
    kind = "TEMP VIEW" if temporary else "VIEW"
    for schema in SCHEMAS:
        connection.execute(f'CREATE OR REPLACE {kind} "{schema}" AS {schema_view_sql(layout, schema)}')


def schema_view_sql(layout: CatalogLayout, schema: str) -> str:
    """The SELECT behind a schema's view: its partitions through ``read_parquet``, or an empty typed row set."""
    if next(layout.partitions(schema), None) is None:
        columns = [f'CAST(NULL AS {_duckdb_type(schema, name, dtype)}) AS "{name}"' for name, dtype in SCHEMAS[schema].items()]
        return f"SELECT {', '.join(columns)}, CAST(NULL AS DATE) AS date WHERE false"
    glob = layout.schema_glob(schema).replace("'", "''")
    names = ", ".join(f'"{name}"' for name in SCHEMAS[schema])
    return f"SELECT {names}, date FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {_HIVE_TYPES})"


def _duckdb_type(schema: str, column: str, dtype) -> str:
    for polars_type, duckdb_type in _DUCKDB_TYPES.items():
        if dtype == polars_type:
            return duckdb_type
    raise CatalogError(f"{schema}.{column}: no DuckDB type for {dtype} in nodes/catalog/metadata.py")


def metadata_connection(layout: CatalogLayout):
    """A context manager: a read-only connection to the catalog's metadata, or an in-memory one with empty
    tables when the catalog has none yet."""
    if Path(layout.metadata_path).exists():
        return MetadataStore(layout).connect(read_only=True)
    return _empty_metadata()


@contextmanager
def _empty_metadata():
    connection = duckdb.connect()
    try:
        connection.execute(TABLES_SQL)
        yield connection
    finally:
        connection.close()
