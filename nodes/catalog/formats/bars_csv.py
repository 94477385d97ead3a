"""The ``bars_csv`` ingest format: OHLCV bar files, parsed exactly as the ``source.bars_csv`` op parses them.

One file is one symbol (``symbol`` option, or the file name without extensions: ``AAPL.csv.gz`` → ``AAPL``)
of one venue (``venue``, required: a CSV does not say where it traded). Times follow ``source.bars_csv``:
date-only rows open at ``session_open`` and are known at ``session_close`` in ``timezone``; ``ts_event`` is
the bar's open and ``ts_recv`` its close, so a daily bar lands in the partition of its exchange date.

A bad row (missing price, time going backwards, a bar known before it opened) rejects the whole file with
its line numbers, as the source op does; so the report never has bad records: it has the good ones.
"""

from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nodes.marketdata.schemas import SCHEMAS
from nodes.sources.bars_adjust import AdjustMode
from nodes.sources.bars_csv import BarsCsv, BarsCsvParams

_COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2", ".xz")
_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class BarsCsvOptions(BaseModel):
    """Options of the ``bars_csv`` format (the parsing ones are ``source.bars_csv``'s, same defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue: str = Field(min_length=1, description="the venue the bars are from, e.g. XNAS")
    symbol: str | None = Field(None, min_length=1, description="the symbol; default: the file name without extensions")
    timezone: str = Field(description="IANA zone of naive timestamps and session times, e.g. America/New_York")
    bar_duration: str = Field("1d", description="length of one bar: 1d, 1h, 5m, 30s, ...")
    timestamp_is: Literal["open", "close"] = Field("open", description="whether an intraday row's timestamp is the bar's open or close")
    session_open: str = Field("09:30", description="local open time of date-only (daily) bars")
    session_close: str = Field("16:00", description="local close time of date-only bars: when the bar is known")
    time_column: str | None = Field(None, description="name of the time column; found among usual names if unset")
    epoch_unit: Literal["s", "ms", "us", "ns"] = Field("ms", description="unit of numeric epoch timestamps")
    layout: Literal["header", "binance_klines"] = Field("header", description="named columns, or Binance klines without a header")
    adjust: AdjustMode = Field("none", description="backward split/dividend adjustment (see nodes.sources.bars_adjust)")
    chunk_rows: int = Field(65_536, ge=1, description="rows per emitted frame")

    @model_validator(mode="after")
    def _parsing_options_are_valid(self):
        self.source_params(Path("unused"), "unused")  # the source op's own checks: zone, duration, clocks
        return self

    def source_params(self, path: Path, symbol: str) -> BarsCsvParams:
        """The ``source.bars_csv`` params that parse ``path`` as ``symbol`` with these options."""
        try:
            return BarsCsvParams(
                path=str(path), instrument=symbol, timezone=self.timezone, bar_duration=self.bar_duration,
                timestamp_is=self.timestamp_is, session_open=self.session_open, session_close=self.session_close,
                time_column=self.time_column, epoch_unit=self.epoch_unit, layout=self.layout, adjust=self.adjust,
            )
        except ValidationError as error:
            raise ValueError("; ".join(str(e.get("ctx", {}).get("error", e["msg"])) for e in error.errors())) from None


def symbol_from_path(path: Path) -> str:
    """``AAPL.csv.gz`` → ``AAPL``: the file name without a compression suffix and then without its extension."""
    name = path.name
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return Path(name).stem


def decode_bars_csv(path: Path, options: dict):
    """Decode one bar CSV into normalized ``bars`` frames; return (frames, report).

    The report (a dict) is complete once the frames have been consumed.

    Raises:
        DataQualityError: the file is missing, unparseable or holds bad bars (with line numbers).
    """
    opts = BarsCsvOptions.model_validate(options)
    path = Path(path)
    symbol = opts.symbol or symbol_from_path(path)
    params = opts.source_params(path.resolve(), symbol)
    report = {"format": "bars_csv", "file": str(path), "venue": opts.venue, "symbol": symbol, "records": 0, "bad_records": 0}

    def frames():
        reader = BarsCsv.open(params, Path("/"))
        first = last = None
        for chunk in reader.chunks(opts.chunk_rows):
            n = len(chunk["ts_recv"])
            frame = pl.DataFrame({
                "ts_event": chunk["ts_event"],
                "ts_recv": chunk["ts_recv"],
                "venue": np.full(n, opts.venue, dtype=object),
                "symbol": np.full(n, symbol, dtype=object),
                "sequence": pl.Series([None] * n, dtype=pl.Int64),
                **{name: chunk[name] for name in _PRICE_COLUMNS},
            }, schema=SCHEMAS["bars"])
            report["records"] += n
            first = int(chunk["ts_recv"][0]) if first is None and n else first
            last = int(chunk["ts_recv"][-1]) if n else last
            yield "bars", frame
        report["first_ts_recv"], report["last_ts_recv"] = first, last

    return frames(), report


decode_bars_csv.options_model = BarsCsvOptions
