"""Read the catalog from a notebook or a tool: lazy polars scans with partition pruning, SQL, a listing.

Example::

    from nodes.catalog import Catalog

    catalog = Catalog("catalog")
    catalog.ls()                                              # what is there
    aapl = catalog.read("bars", venue="XNAS", symbols="AAPL", start="2013-01-01", end="2014-01-01")
    catalog.query("select symbol, count(*) from bars group by symbol")
    catalog.query("select run_id, status, rows from ingest_runs order by started_utc")

Readers take no lock and see only published partitions (never a write in progress).
"""

import datetime as dt
from collections.abc import Iterable

import duckdb
import polars as pl
import pyarrow.parquet as pq

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import NS_PER_DAY, CatalogLayout, check_schema, date_of_ns
from nodes.catalog.metadata import create_views, metadata_connection
from nodes.marketdata.schemas import SCHEMAS, empty

Instant = int | str | dt.date | dt.datetime

_LS_SCHEMA = {
    "schema": pl.String, "venue": pl.String, "symbol": pl.String, "dates": pl.UInt32, "first_date": pl.Date,
    "last_date": pl.Date, "rows": pl.Int64, "bytes": pl.Int64,
}


class Catalog:
    """A catalog folder (see ``nodes/catalog/layout.py``); ``root`` defaults to ``$TICKLOOM_CATALOG`` or
    ``./catalog``. Creating one touches nothing on disk."""

    def __init__(self, root=None):
        self.layout = CatalogLayout(root)

    @property
    def root(self):
        return self.layout.root

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    def scan(
        self,
        schema: str,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: Instant | None = None,
        end: Instant | None = None,
    ) -> pl.LazyFrame:
        """Lazily read a schema's rows with ``start <= ts_recv < end``, of one venue and some symbols.

        Partitions are pruned by folder name before any file is opened (venue, symbols, and the UTC dates
        the range covers); within files polars skips row groups by their ``ts_recv`` statistics. Columns are
        exactly the normalized schema's, so a result can be written back to a catalog. Rows come partition
        by partition (venue, symbol, date), each sorted by ``ts_recv``: sort by ``ts_recv`` for one stream.

        ``start``/``end``: int ns UTC, a ``datetime`` (naive means UTC), a ``date`` (midnight UTC) or an ISO
        string of either. ``symbols``: one symbol or several.

        Raises:
            CatalogError: an unknown schema or an unreadable time.
        """
        check_schema(schema)
        symbol_list = [symbols] if isinstance(symbols, str) else (list(symbols) if symbols is not None else None)
        start_ns = None if start is None else to_ns(start, "start")
        end_ns = None if end is None else to_ns(end, "end")
        files = [
            path
            for _, path in self.layout.partitions(
                schema, venue, symbol_list,
                first_date=None if start_ns is None else date_of_ns(start_ns),
                last_date=None if end_ns is None else date_of_ns(end_ns - 1),
            )
        ]
        return self.scan_files(schema, files, start_ns, end_ns)

    def scan_files(self, schema: str, files: Iterable, start: Instant | None = None, end: Instant | None = None) -> pl.LazyFrame:
        """``scan`` over partition files listed beforehand (``layout.partitions``): a reader that goes through
        many date ranges lists the folders once instead of once per range.

        Raises:
            CatalogError: an unknown schema or an unreadable time.
        """
        check_schema(schema)
        files = [str(f) for f in files]
        if not files:
            return empty(schema).lazy()
        frame = pl.scan_parquet(files, hive_partitioning=False)
        if start is not None:
            frame = frame.filter(pl.col("ts_recv") >= to_ns(start, "start"))
        if end is not None:
            frame = frame.filter(pl.col("ts_recv") < to_ns(end, "end"))
        return frame.select(list(SCHEMAS[schema]))

    def read(
        self,
        schema: str,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: Instant | None = None,
        end: Instant | None = None,
    ) -> pl.DataFrame:
        """``scan(...)`` collected into a DataFrame."""
        return self.scan(schema, venue, symbols, start, end).collect()

    def query(self, sql: str) -> pl.DataFrame:
        """Run DuckDB SQL over the schema views and the metadata tables; return the result as polars.

        Views: ``trades``, ``quotes``, ``book_deltas``, ``orders``, ``bars``, ``definitions`` (schema columns
        plus ``date``, the partition's UTC date: filter on it to prune). Tables: ``ingest_runs``,
        ``quality_reports``, ``instruments`` (see ``nodes/catalog/metadata.py``). Read-only.

        Raises:
            CatalogError: the SQL failed (DuckDB's message), or the metadata file is locked for too long.
        """
        with metadata_connection(self.layout) as connection:
            try:
                create_views(connection, self.layout, temporary=True)
                result = connection.sql(sql)
                return result.pl() if result is not None else pl.DataFrame()
            except duckdb.Error as error:
                raise CatalogError(f"query failed: {error}") from error

    def ls(self) -> pl.DataFrame:
        """One row per (schema, venue, symbol): how many dates, the first and last, rows and bytes on disk."""
        records = []
        for key, path in self.layout.partitions():
            records.append((key.schema, key.venue, key.symbol, key.date, pq.read_metadata(path).num_rows, path.stat().st_size))
        if not records:
            return pl.DataFrame(schema=_LS_SCHEMA)
        partitions = pl.DataFrame(records, schema=["schema", "venue", "symbol", "date", "rows", "bytes"], orient="row")
        return (
            partitions.group_by("schema", "venue", "symbol", maintain_order=True)
            .agg(
                pl.len().alias("dates"), pl.col("date").min().alias("first_date"),
                pl.col("date").max().alias("last_date"), pl.col("rows").sum(), pl.col("bytes").sum(),
            )
            .cast(_LS_SCHEMA)
        )


def to_ns(value: Instant, what: str = "time") -> int:
    """Convert an int (ns UTC), date, datetime (naive = UTC) or ISO string to int64 ns UTC.

    Raises:
        CatalogError: a value that is none of those.
    """
    if isinstance(value, bool):
        raise CatalogError(f"{what}: expected ns, a date, a datetime or an ISO string, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise CatalogError(f"{what}: {value!r} is not an ISO date or datetime (e.g. 2024-01-02 or 2024-01-02T14:30:00Z)") from None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        delta = aware - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * NS_PER_DAY
    raise CatalogError(f"{what}: expected ns, a date, a datetime or an ISO string, got {value!r}")
