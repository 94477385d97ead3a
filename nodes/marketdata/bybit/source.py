"""``source.bybit_orderbook``: a Bybit order-book file as a stream source of ``book_deltas``.

Instruments must be known before reading: the ``symbols`` listed in the params (other symbols are left out
and counted in the report's ``filtered_out``); else the symbol in the file name as Bybit names its downloads,
``<yyyy-mm-dd>_<SYMBOL>_ob<depth>.data[.zip]`` (``2024-12-01_XRPUSDT_ob500.data.zip`` → ``XRPUSDT``); else the
symbols of the first ``prefix_scan_lines`` lines. A symbol that was not announced fails the run with its line
when the instruments were inferred.

``schema`` has one value, ``book_deltas``: an order-book feed gives level updates; wire ``book.l2`` after the
source for the top of book. The param is there so that a spec reads like every other market-data source.

Ports: those of every normalized market-data source (``nodes.marketdata.stream_ports``), all int64; the
quote and trade ports are 0.

Example::

    book: {op: source.bybit_orderbook, with: {path: data/2024-12-01_XRPUSDT_ob500.data.zip,
                                              assumed_latency_ns: 5000000}}
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.marketdata.bybit.normalize import list_symbols, normalize_bybit_orderbook
from nodes.marketdata.stream_ports import OUTPUTS, port_chunks

_FILE_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}_(?P<symbol>[A-Z0-9]+)_ob\d+$")


def symbol_from_file_name(path: str) -> str | None:
    """The symbol a Bybit download's name encodes (``2024-12-01_XRPUSDT_ob500.data.zip`` → ``XRPUSDT``), or None."""
    match = _FILE_NAME.match(Path(path).name.split(".", 1)[0])
    return match.group("symbol") if match else None


class BybitOrderbookParams(OpParams):
    path: str = Field(description="the order-book file (zip, gzip or JSON lines), relative to the spec's folder")
    schema_: Literal["book_deltas"] = Field("book_deltas", alias="schema", description="the events emitted")
    symbols: list[str] | None = Field(
        None, description="instruments to emit, in this order; default: the symbol in the file name"
    )
    venue: str = Field("BYBIT", min_length=1, description="the venue recorded in the quality report")
    assumed_latency_ns: int = Field(
        0, ge=0, description="added to Bybit's publish time ts to make ts_recv (the files hold no receive time)"
    )
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="messages whose cts is after ts_recv: clamp ts_event, report only, or reject"
    )
    max_bad_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share of bad lines tolerated before the run fails (default none)"
    )
    chunk_messages: int = Field(10_000, ge=1, description="messages normalized at a time (bounds memory)")
    prefix_scan_lines: int = Field(1_000, ge=1, description="lines scanned for symbols when nothing else gives them")

    model_config = {**OpParams.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _symbols_listed_once(self):
        if self.symbols is not None and (not self.symbols or len(set(self.symbols)) != len(self.symbols)):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        return self

    def instrument_list(self, base_dir: Path | None = None) -> list[str]:
        """The instruments, known before reading.

        Raises:
            DataQualityError: none can be found (no file, or no symbol in its first lines).
        """
        if self.symbols is not None:
            return list(self.symbols)
        named = symbol_from_file_name(self.path)
        if named is not None:
            return [named]
        path = Path(base_dir or ".") / self.path
        if not path.exists():
            raise DataQualityError(f"{path}: no such Bybit order-book file (needed to find its symbols; or list 'symbols')")
        found = list_symbols(path, self.prefix_scan_lines)
        if not found:
            raise DataQualityError(f"{path}: no symbol in the first {self.prefix_scan_lines} lines; list 'symbols'")
        return found


class BybitOrderbook(SourceOp):
    """Emit ``book_deltas`` from a Bybit order-book file (snapshots and deltas of ``orderbook.<depth>.<symbol>``).

    See ``nodes.marketdata.bybit.normalize`` for the rules (exact decimals, size 0 deletes, a snapshot resets,
    update-id gaps marked by a clear row until the next snapshot, quarantine of bad lines).

    Example::

        book: {op: source.bybit_orderbook, with: {path: data/2024-12-01_XRPUSDT_ob500.data.zip}}
    """

    name = "source.bybit_orderbook"
    Params = BybitOrderbookParams
    outputs = OUTPUTS

    @classmethod
    def instruments(cls, params: BybitOrderbookParams, base_dir: Path | None = None) -> list[str]:
        return params.instrument_list(base_dir)

    @classmethod
    def open(cls, params: BybitOrderbookParams, base_dir: Path) -> "BybitOrderbookReader":
        return BybitOrderbookReader(params, Path(base_dir) / params.path, params.instrument_list(base_dir))


class BybitOrderbookReader:
    """Chunks of ``book_deltas`` as dicts of numpy arrays; ``report`` is complete once they are exhausted."""

    def __init__(self, params: BybitOrderbookParams, path: Path, instruments: list[str]):
        self.params = params
        self.path = path
        self.instruments = instruments
        p = params
        self._run = normalize_bybit_orderbook(
            path, symbols=instruments, unlisted_symbols="drop" if p.symbols is not None else "error",
            venue=p.venue, assumed_latency_ns=p.assumed_latency_ns, clock_policy=p.clock_policy,
            max_bad_fraction=p.max_bad_fraction, chunk_messages=p.chunk_messages,
        )
        self.report = self._run.report

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        index = {name: i for i, name in enumerate(self.instruments)}
        for chunk in self._run:
            yield from port_chunks(chunk.frame, "book_deltas", index, max_rows, str(self.path))
