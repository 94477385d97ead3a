"""Where the catalog keeps things: partition paths, the escaping of names, the metadata and staging files.

A catalog is a folder (the *root*)::

    <root>/
      schema=<schema>/venue=<venue>/symbol=<symbol>/date=<YYYY-MM-DD>/part-0.parquet   the data
      catalog.duckdb                                                              metadata and views
      .lock                                                                       held by the one writer
      .staging/<run id>/                                                          spilled rows of a run

- ``date`` is the **UTC date of ``ts_recv``**: the day we received the event, not the venue's trading day
  (daily bars of a New York session close at 21:00/20:00 UTC, so they land on their own exchange date).
- ``venue`` and ``symbol`` are percent-escaped: every byte of the UTF-8 text outside ``A-Z a-z 0-9 - _ .``,
  and a leading ``.``, becomes ``%XX`` (``BTC/USDT`` → ``BTC%2FUSDT``, ``.x`` → ``%2Ex``). It is reversible
  (``unescape(escape(s)) == s``) and is what DuckDB and polars undo when they read hive partitions, so both
  engines report the original names. Empty names and escaped names longer than 255 bytes (a file-name limit)
  are refused. Names are case-sensitive: on a case-insensitive file system ``aapl`` and ``AAPL`` would
  share a folder, so keep catalogs on case-sensitive storage (Linux, object stores).
- Only files named exactly ``part-0.parquet`` are data. Writers create ``.part-0.parquet.<run>.tmp`` beside
  it and rename; readers never look at anything else, so a crashed write is invisible.

The root is, in order: an explicit ``--catalog DIR`` (or ``root`` argument), ``$TICKLOOM_CATALOG``, ``./catalog``.
"""

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from nodes.catalog.errors import CatalogError
from nodes.marketdata.schemas import SCHEMAS

CATALOG_ENV = "TICKLOOM_CATALOG"
DEFAULT_ROOT = Path("catalog")
PARTITION_FILE = "part-0.parquet"
METADATA_FILE = "catalog.duckdb"
NS_PER_DAY = 86_400_000_000_000
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_MAX_NAME_BYTES = 255


def resolve_root(root: str | Path | None = None) -> Path:
    """Return the catalog root: ``root`` if given, else ``$TICKLOOM_CATALOG``, else ``./catalog``."""
    if root is not None and str(root) != "":
        return Path(root)
    from_env = os.environ.get(CATALOG_ENV)
    return Path(from_env) if from_env else DEFAULT_ROOT


def escape(name: str) -> str:
    """Escape a venue or symbol for use as a path component (reversible; see the module docstring).

    Raises:
        CatalogError: ``name`` is empty or its escaped form is longer than 255 bytes.
    """
    if not isinstance(name, str) or name == "":
        raise CatalogError(f"a venue or symbol must be a non-empty string, got {name!r}")
    parts = []
    for position, char in enumerate(name):
        if char in _SAFE and not (position == 0 and char == "."):
            parts.append(char)
        else:
            parts.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    escaped = "".join(parts)
    if len(escaped) > _MAX_NAME_BYTES:
        raise CatalogError(f"{name[:40]!r}...: escaped name is {len(escaped)} bytes, over the {_MAX_NAME_BYTES}-byte limit")
    return escaped


def unescape(text: str) -> str:
    """Undo ``escape``."""
    return unquote(text, encoding="utf-8", errors="strict")


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One partition: a day of one symbol of one venue in one schema."""

    schema: str
    venue: str
    symbol: str
    date: dt.date

    def __str__(self) -> str:
        return f"{self.schema}/{self.venue}/{self.symbol}/{self.date.isoformat()}"


def date_of_ns(ts_ns: int) -> dt.date:
    """The UTC date of an int64 nanosecond timestamp (floor division: correct before 1970 too)."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=ts_ns // NS_PER_DAY)


class CatalogLayout:
    """The paths of one catalog root. Creates nothing by itself."""

    def __init__(self, root: str | Path | None = None):
        self.root = resolve_root(root)

    def __repr__(self) -> str:
        return f"CatalogLayout({str(self.root)!r})"

    @property
    def metadata_path(self) -> Path:
        return self.root / METADATA_FILE

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @property
    def staging_root(self) -> Path:
        return self.root / ".staging"

    def schema_dir(self, schema: str) -> Path:
        return self.root / f"schema={check_schema(schema)}"

    def partition_dir(self, key: PartitionKey) -> Path:
        return (
            self.schema_dir(key.schema) / f"venue={escape(key.venue)}" / f"symbol={escape(key.symbol)}"
            / f"date={key.date.isoformat()}"
        )

    def partition_file(self, key: PartitionKey) -> Path:
        return self.partition_dir(key) / PARTITION_FILE

    def schema_glob(self, schema: str) -> str:
        """A glob of every data file of ``schema`` (absolute), for DuckDB's ``read_parquet``."""
        return str(self.schema_dir(schema).resolve() / "venue=*" / "symbol=*" / "date=*" / PARTITION_FILE)

    def partitions(
        self,
        schema: str | None = None,
        venue: str | None = None,
        symbols: Iterable[str] | None = None,
        first_date: dt.date | None = None,
        last_date: dt.date | None = None,
    ) -> Iterator[tuple[PartitionKey, Path]]:
        """Yield the published partitions, pruned by folder name, in (schema, venue, symbol, date) order.

        Only folders that can match are listed: a venue and symbols skip straight to their folders.
        ``first_date`` and ``last_date`` are inclusive.
        """
        schemas = [check_schema(schema)] if schema is not None else list(SCHEMAS)
        wanted_symbols = None if symbols is None else sorted({escape(s) for s in symbols})
        for schema_name in schemas:
            schema_dir = self.schema_dir(schema_name)
            venue_dirs = (
                [schema_dir / f"venue={escape(venue)}"] if venue is not None else _subdirs(schema_dir, "venue=")
            )
            for venue_dir in sorted(venue_dirs, key=lambda p: unescape(p.name[6:])):
                if wanted_symbols is None:
                    symbol_dirs = _subdirs(venue_dir, "symbol=")
                else:
                    symbol_dirs = [venue_dir / f"symbol={s}" for s in wanted_symbols]
                for symbol_dir in sorted(symbol_dirs, key=lambda p: unescape(p.name[7:])):
                    for date_dir in sorted(_subdirs(symbol_dir, "date="), key=lambda p: p.name):
                        try:
                            date = dt.date.fromisoformat(date_dir.name[5:])
                        except ValueError:
                            continue  # not ours
                        if (first_date and date < first_date) or (last_date and date > last_date):
                            continue
                        file = date_dir / PARTITION_FILE
                        if file.is_file():
                            key = PartitionKey(schema_name, unescape(venue_dir.name[6:]), unescape(symbol_dir.name[7:]), date)
                            yield key, file


def as_layout(catalog) -> CatalogLayout:
    """Accept a ``CatalogLayout``, anything with a ``layout`` (a ``Catalog``), a path or None (the default root)."""
    if isinstance(catalog, CatalogLayout):
        return catalog
    layout = getattr(catalog, "layout", None)
    return layout if isinstance(layout, CatalogLayout) else CatalogLayout(catalog)


def check_schema(schema: str) -> str:
    """Return ``schema`` if it is a normalized schema.

    Raises:
        CatalogError: an unknown schema (with the known ones).
    """
    if schema not in SCHEMAS:
        import difflib

        close = difflib.get_close_matches(str(schema), SCHEMAS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CatalogError(f"unknown schema {schema!r}{hint}; schemas: {', '.join(SCHEMAS)}")
    return schema


def _subdirs(folder: Path, prefix: str) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.name.startswith(prefix) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
