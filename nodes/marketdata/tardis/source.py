"""``source.tardis``: a Tardis.dev CSV file as a stream source of one normalized schema.

The file's header says what it holds (``nodes.marketdata.tardis.layout``): book files (``incremental_book_L2``,
``book_snapshot_N``) give ``book_deltas``, ``trades`` files ``trades``, ``quotes`` files ``quotes``. ``schema``
may be left out (the file's own) or given, and then must be the file's: a spec that says what it expects
fails at open, not three nodes later.

Instruments must be known before reading: the ``symbols`` listed in the params (other symbols of the file
are left out and counted in the report's ``filtered_out``), else the symbols of the first
``prefix_scan_lines`` data lines in order of first appearance (a symbol that shows up only later fails the
run with its line: list ``symbols`` for such files).

Ports: those of every normalized market-data source (``nodes.marketdata.stream_ports``), all int64; the ones
outside the schema are 0.

Bad input: a bad line fails the run (``DataQualityError`` naming the file, lines and reasons) unless
``max_bad_fraction`` allows it; the reader's ``report`` holds the full ``TardisQualityReport``.

Example::

    book: {op: source.tardis, with: {path: data/deribit_incremental_book_L2_BTC-PERPETUAL.csv.gz,
                                     schema: book_deltas}}
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.marketdata.stream_ports import OUTPUTS, port_chunks
from nodes.marketdata.tardis.normalize import list_symbols, normalize_tardis


class TardisParams(OpParams):
    path: str = Field(description="the Tardis CSV file (plain or gzip), relative to the spec's folder")
    schema_: Literal["book_deltas", "trades", "quotes"] | None = Field(
        None, alias="schema", description="the normalized events expected; default: whatever the file's header holds"
    )
    symbols: list[str] | None = Field(
        None, description="instruments to emit, in this order; default: the symbols of the file's first lines"
    )
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="lines received before their exchange time: clamp ts_event, report only, or reject"
    )
    max_bad_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share of bad lines tolerated before the run fails (default none)"
    )
    chunk_lines: int = Field(65_536, ge=1, description="lines parsed at a time (bounds memory)")
    prefix_scan_lines: int = Field(
        20_000, ge=1, description="data lines scanned for symbols when 'symbols' is not given"
    )

    model_config = {**OpParams.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _symbols_listed_once(self):
        if self.symbols is not None and (not self.symbols or len(set(self.symbols)) != len(self.symbols)):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        return self

    def instrument_list(self, base_dir: Path | None = None) -> list[str]:
        """The instruments, known before reading.

        Raises:
            DataQualityError: no file, or no symbol in its first lines.
        """
        if self.symbols is not None:
            return list(self.symbols)
        path = Path(base_dir or ".") / self.path
        if not path.exists():
            raise DataQualityError(f"{path}: no such Tardis CSV file (needed to find its symbols; or list 'symbols')")
        found = list_symbols(path, self.prefix_scan_lines)
        if not found:
            raise DataQualityError(f"{path}: no symbol in the first {self.prefix_scan_lines} data lines; list 'symbols'")
        return found


class Tardis(SourceOp):
    """Emit one normalized schema (book_deltas, trades or quotes) from a Tardis.dev CSV file.

    See ``nodes.marketdata.tardis.normalize`` for the rules (exact decimals, µs times, Tardis' snapshot rule,
    receive-order repair, the clock policy, quarantine of bad lines).

    Example::

        trades: {op: source.tardis, with: {path: data/bitmex_trades_XBTUSD.csv.gz, schema: trades}}
    """

    name = "source.tardis"
    Params = TardisParams
    outputs = OUTPUTS

    @classmethod
    def instruments(cls, params: TardisParams, base_dir: Path | None = None) -> list[str]:
        return params.instrument_list(base_dir)

    @classmethod
    def open(cls, params: TardisParams, base_dir: Path) -> "TardisReader":
        return TardisReader(params, Path(base_dir) / params.path, params.instrument_list(base_dir))


class TardisReader:
    """Chunks of one schema as dicts of numpy arrays; ``report`` is complete once they are exhausted.

    Raises:
        DataQualityError: the file holds another schema than ``schema`` asks for (at once).
    """

    def __init__(self, params: TardisParams, path: Path, instruments: list[str]):
        self.params = params
        self.path = path
        self.instruments = instruments
        p = params
        self._run = normalize_tardis(
            path, symbols=instruments, unlisted_symbols="drop" if p.symbols is not None else "error",
            clock_policy=p.clock_policy, max_bad_fraction=p.max_bad_fraction, chunk_lines=p.chunk_lines,
        )
        self.schema = self._run.layout.schema
        if p.schema_ is not None and p.schema_ != self.schema:
            raise DataQualityError(f"{path}: a Tardis {self._run.layout.data_type} file holds {self.schema}, "
                                   f"not {p.schema_} (the 'schema' param)")
        self.report = self._run.report

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        index = {name: i for i, name in enumerate(self.instruments)}
        for chunk in self._run:
            yield from port_chunks(chunk.frame, self.schema, index, max_rows, str(self.path))
