"""Bars from the catalog (``schema=bars``): what ``tickloom ingest`` wrote, read back in ``ts_recv`` order.

The catalog is the meeting point of ingestion and research: an ingest spec writes bars of a venue, a strategy
reads them with this source. In Dagster that edge is lineage: the source node's asset depends on the ingest
asset that writes bars of the same venue (``pipelines/dagster``).
"""

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from nodes.catalog.errors import CatalogError
from nodes.catalog.layout import date_of_ns, resolve_root
from nodes.catalog.reader import Catalog, to_ns
from nodes.contract import OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.sources.bars import BAR_OUTPUTS, check_bars


class CatalogBarsParams(OpParams):
    venue: str = Field(min_length=1, description="the venue whose bars to read, e.g. XNAS")
    symbols: list[str] = Field(min_length=1, description="the symbols to read; an instrument each, in this order")
    start: str | None = Field(None, description="first ts_recv to read (ISO date or datetime, UTC); from the first bar when unset")
    end: str | None = Field(None, description="read ts_recv before this (ISO date or datetime, UTC, exclusive); to the last bar when unset")
    catalog: str | None = Field(
        None, description="catalog folder relative to the spec's folder; default $TICKLOOM_CATALOG, else ./catalog"
    )
    batch_bytes: int = Field(
        64 << 20, ge=1, description="Parquet bytes read at a time: consecutive days are read together up to this (bounds memory)"
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso(cls, value):
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()  # YAML reads 2013-01-02 as a date
        return value

    @model_validator(mode="after")
    def _valid_range(self):
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("'symbols' must not repeat a symbol")
        try:
            start, end = self.range_ns()
        except CatalogError as error:
            raise ValueError(str(error)) from None
        if start is not None and end is not None and end <= start:
            raise ValueError(f"end {self.end!r} is not after start {self.start!r}")
        return self

    def range_ns(self) -> tuple[int | None, int | None]:
        return (None if self.start is None else to_ns(self.start, "start"), None if self.end is None else to_ns(self.end, "end"))

    def catalog_root(self, base_dir: Path) -> Path:
        return base_dir / self.catalog if self.catalog else resolve_root(None)


class CatalogBars(SourceOp):
    """Read bars of one venue from the catalog, every symbol merged in ts_recv order.

    Partitions are listed once; consecutive days are read together (``Catalog.scan_files``, the scan of
    ``Catalog.scan`` over the listed files) up to ``batch_bytes`` of Parquet, sorted by ``ts_recv`` then symbol
    order, and emitted in chunks, so memory is bounded by a batch (at least one day). A symbol with no bars in
    the range is an error that says how to ingest it.

    Example::

        bars: {op: source.catalog_bars, with: {venue: XNAS, symbols: [AAPL, MSFT], start: 2012-01-01, end: 2015-01-01}}
    """

    name = "source.catalog_bars"
    Params = CatalogBarsParams
    outputs = BAR_OUTPUTS

    @classmethod
    def instruments(cls, params: CatalogBarsParams, base_dir: Path) -> list[str]:
        return list(params.symbols)

    @classmethod
    def catalog_reads(cls, params: CatalogBarsParams) -> dict:
        """What this node reads from the catalog (schema, venue, symbols): lineage for orchestrators."""
        return {"schema": "bars", "venue": params.venue, "symbols": list(params.symbols)}

    @classmethod
    def open(cls, params: CatalogBarsParams, base_dir: Path):
        catalog = Catalog(params.catalog_root(base_dir))
        start, end = params.range_ns()
        first = None if start is None else date_of_ns(start)
        last = None if end is None else date_of_ns(end - 1)
        days: dict[dt.date, list[Path]] = {}
        found: set[str] = set()
        for key, path in catalog.layout.partitions("bars", params.venue, params.symbols, first, last):
            days.setdefault(key.date, []).append(path)
            found.add(key.symbol)
        missing = [s for s in params.symbols if s not in found]
        if missing:
            span = f" between {params.start or 'the start'} and {params.end or 'the end'}" if start or end else ""
            raise DataQualityError(
                f"catalog {catalog.root}: no bars of {', '.join(missing)} at {params.venue}{span}; ingest them first "
                f"(tickloom ingest SPEC --catalog {catalog.root})"
            )
        batches = _batches(sorted(days.items()), params.batch_bytes)
        return _CatalogReader(catalog, params, batches, start, end)


def _batches(days: list[tuple[dt.date, list[Path]]], budget: int) -> list[tuple[dt.date, dt.date, list[Path]]]:
    """Group consecutive days into (first, last, files) of at most ``budget`` bytes on disk (a day is never split)."""
    batches, current, total = [], [], 0
    for date, files in days:
        size = sum(f.stat().st_size for f in files)
        if current and total + size > budget:
            batches.append((current[0][0], current[-1][0], [f for _, fs in current for f in fs]))
            current, total = [], 0
        current.append((date, files))
        total += size
    if current:
        batches.append((current[0][0], current[-1][0], [f for _, fs in current for f in fs]))
    return batches


class _CatalogReader:
    def __init__(self, catalog: Catalog, params: CatalogBarsParams, batches, start: int | None, end: int | None):
        self.instruments = list(params.symbols)
        self._catalog = catalog
        self._params = params
        self._batches = batches
        self._start = start
        self._end = end

    def chunks(self, max_rows: int):
        index = {symbol: i for i, symbol in enumerate(self.instruments)}
        for first, last, files in self._batches:
            frame = (
                self._catalog.scan_files("bars", files, self._start, self._end)
                .with_columns(pl.col("symbol").replace_strict(index, return_dtype=pl.Int32).alias("instrument"))
                .sort(["ts_recv", "instrument"], maintain_order=True)
                .collect()
            )
            if frame.height == 0:
                continue
            columns = {
                "ts_event": frame["ts_event"].to_numpy().astype(np.int64, copy=False),
                "ts_recv": frame["ts_recv"].to_numpy().astype(np.int64, copy=False),
                "instrument": frame["instrument"].to_numpy().astype(np.int32, copy=False),
                **{name: frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy() for name in BAR_OUTPUTS},
            }
            where = Path(f"{self._catalog.root}/schema=bars/venue={self._params.venue} ({first}..{last}), row")
            check_bars(columns, where, first_line=0)
            for offset in range(0, frame.height, max_rows):
                yield {k: v[offset : offset + max_rows] for k, v in columns.items()}
