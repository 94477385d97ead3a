"""``source.binance_capture``: a Binance websocket capture as a stream source of one normalized schema.

Instruments must be known before reading (the plan sizes per-instrument state from them). In order of
preference they are: the ``symbols`` listed in the params; the symbol written in the file name the way capture
files are named here, ``[<venue>_]<symbol>_<yyyymmdd>[.<anything>]`` with ``<venue>`` one of spot, um, usdm,
cm, coinm, futures (``spot_btcusdt_20240808.gz`` → ``BTCUSDT``, ``cm_btcusd_perp_20240808.gz`` →
``BTCUSD_PERP``); else a cheap scan of the first ``prefix_scan_lines`` lines (default 20,000) for the symbols
of the chosen schema's messages, in order of first appearance. Reading then checks it: a line of a symbol
that was not announced fails the run (``DataQualityError`` with its line) when the instruments were inferred,
and is left out (counted in the report's ``filtered_out``) when ``symbols`` were listed.

Ports: every source of this op has the same ports (the op contract fixes them per op); those that do not
belong to the chosen ``schema`` are 0:

| schema | ports filled |
|---|---|
| book_deltas | side, price, size, action, flags, sequence |
| trades | side, price, size, trade_id |
| quotes | bid_px, ask_px, bid_sz, ask_sz, sequence |
| book_and_trades | side, price, size, action, flags, sequence, trade_id |

``book_and_trades`` is the book deltas (snapshot rows included) and the trades in one stream, ordered by
``ts_recv`` with ties broken by the capture line that made each row known (a diff replayed after a snapshot
is known at the snapshot's line): what a tick-level venue simulator reads. Trade rows have ``action`` T,
``side`` the aggressor (1 buyer, -1 seller), ``size`` the traded quantity, ``trade_id``, ``flags`` ``F_LAST``;
book rows are as in ``book_deltas`` (see ``nodes.marketdata.stream_ports``).

All are int64: prices and sizes in 1e-9 units, ``action`` and ``flags`` as in ``nodes.marketdata.schemas``.

Bad input: a bad line fails the run (``DataQualityError`` naming the file, the lines and the reasons) unless
``max_bad_fraction`` allows it; the reader's ``report`` holds the full ``BinanceQualityReport``.

Example::

    deltas: {op: source.binance_capture, with: {path: data/samples/binance/spot_btcusdt_20240808.head2000.gz,
                                                schema: book_deltas, clock_policy: shift}}
"""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.marketdata.binance.normalize import list_symbols, normalize_capture
from nodes.marketdata.stream_ports import OUTPUTS, merge_book_and_trades, port_chunks

_FILE_NAME = re.compile(r"^(?:(?:spot|um|usdm|cm|coinm|futures)_)?(?P<symbol>[a-z0-9]+(?:_[a-z0-9]+)*?)_(?P<date>\d{8})$")


def symbol_from_file_name(path: str) -> str | None:
    """The symbol a capture's file name encodes (``cm_btcusd_perp_20240808.gz`` → ``BTCUSD_PERP``), or None."""
    stem = Path(path).name.split(".", 1)[0].lower()
    match = _FILE_NAME.match(stem)
    return match.group("symbol").upper() if match else None


class BinanceCaptureParams(OpParams):
    path: str = Field(description="the capture file (gzip or text), relative to the spec's folder")
    schema_: Literal["book_deltas", "trades", "quotes", "book_and_trades"] = Field(
        "book_deltas", alias="schema", description="which normalized events this source emits"
    )
    clock_policy: Literal["shift", "report", "reject"] = Field(
        "shift", description="what to do when receive times are before venue times (see the normalizer's clock rules)"
    )
    symbols: list[str] | None = Field(
        None, description="instruments to emit, in this order; default: the symbol in the file name"
    )
    venue_kind: Literal["auto", "spot", "futures"] = Field("auto", description="update-id rules to apply")
    max_bad_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share of bad lines tolerated before the run fails (default none)"
    )
    chunk_lines: int = Field(65_536, ge=1, description="input lines normalized at a time (bounds memory)")
    prefix_scan_lines: int = Field(
        20_000, ge=1, description="lines scanned for symbols when neither 'symbols' nor the file name gives them"
    )

    model_config = {**OpParams.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _symbols_listed_once(self):
        if self.symbols is not None and (not self.symbols or len(set(self.symbols)) != len(self.symbols)):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        return self

    def instrument_list(self, base_dir: Path | None = None) -> list[str]:
        """The instruments, known before reading (see the module docstring for the order of preference).

        Raises:
            DataQualityError: none can be found (no file, or no message of the schema in the prefix).
        """
        if self.symbols is not None:
            return list(self.symbols)
        named = symbol_from_file_name(self.path)
        if named is not None:
            return [named]
        path = Path(base_dir or ".") / self.path
        if not path.exists():
            raise DataQualityError(f"{path}: no such capture file (needed to find its symbols; or list 'symbols')")
        streams = {"book_deltas": ("depth", "snapshot"), "trades": ("trade",), "quotes": ("bookTicker",),
                   "book_and_trades": ("depth", "snapshot", "trade")}[self.schema_]
        found = list_symbols(path, self.prefix_scan_lines, streams)
        if not found:
            raise DataQualityError(
                f"{path}: no {self.schema_} message names a symbol in the first {self.prefix_scan_lines} lines; "
                "list the instruments in 'symbols'"
            )
        return found


class BinanceCapture(SourceOp):
    """Emit one normalized schema (book_deltas, trades, quotes or book_and_trades) from a Binance capture file.

    See ``nodes.marketdata.binance.normalize`` for the rules (exact decimals, the clock policy, the update-id
    rules with gaps marked by a clear row, dedup, quarantine of bad lines).

    Example::

        trades: {op: source.binance_capture, with: {path: data/samples/binance/cm_btcusd_perp_20240808.head2000.gz,
                                                    schema: trades}}
    """

    name = "source.binance_capture"
    Params = BinanceCaptureParams
    outputs = OUTPUTS

    @classmethod
    def instruments(cls, params: BinanceCaptureParams, base_dir: Path | None = None) -> list[str]:
        return params.instrument_list(base_dir)

    @classmethod
    def open(cls, params: BinanceCaptureParams, base_dir: Path) -> "BinanceCaptureReader":
        return BinanceCaptureReader(params, Path(base_dir) / params.path, params.instrument_list(base_dir))


class BinanceCaptureReader:
    """Chunks of one schema as dicts of numpy arrays; ``report`` is complete once they are exhausted."""

    def __init__(self, params: BinanceCaptureParams, path: Path, instruments: list[str]):
        self.params = params
        self.path = path
        self.instruments = instruments
        self.report = None

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        p = self.params
        index = {name: i for i, name in enumerate(self.instruments)}
        run = normalize_capture(
            self.path, venue_kind=p.venue_kind, clock_policy=p.clock_policy, chunk_lines=p.chunk_lines,
            symbols=self.instruments, unlisted_symbols="drop" if p.symbols is not None else "error",
            max_bad_fraction=p.max_bad_fraction,
        )
        self.report = run.report
        if p.schema_ != "book_and_trades":
            for chunk in run:
                yield from port_chunks(getattr(chunk, p.schema_), p.schema_, index, max_rows, str(self.path))
            return
        released_upto = 0
        for chunk in run:
            known_at, released_upto = release_lines(chunk.lines["book_deltas"], released_upto)
            merged = merge_book_and_trades(chunk.book_deltas, chunk.trades, known_at, chunk.lines["trades"])
            yield from port_chunks(merged, p.schema_, index, max_rows, str(self.path))


def release_lines(lines: np.ndarray, released_upto: int) -> tuple[np.ndarray, int]:
    """The capture line at which each book row became known, and the running maximum to carry on.

    The update-id rules emit rows in the order lines release them, the releasing message's own rows first (a
    snapshot, then the diffs buffered before it; a diff that closes a hole, then the held ones after it), so
    the running maximum of the rows' own lines is the releasing line.
    """
    if len(lines) == 0:
        return lines, released_upto
    known_at = np.maximum.accumulate(np.maximum(lines, released_upto))
    return known_at, int(known_at[-1])
