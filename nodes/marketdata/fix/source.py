"""``source.fix_md``: a FIX market-data log as a stream source of one normalized schema.

Instruments must be known before reading (the plan sizes per-instrument state from them): the ``symbols``
listed in the params, else every Symbol (55) value in the file in order of first appearance (one fast pass
over the bytes, cached per file and modification time). Reading then checks it: a row of a symbol that was not
announced (an entry named only by SecurityID 48) fails the run with ``DataQualityError`` when the instruments
were found by the scan, and is left out when ``symbols`` were listed.

Ports are those every market-data source shares (``nodes.marketdata.stream_ports``); the ones that do not
belong to the chosen ``schema`` are 0:

| schema | ports filled |
|---|---|
| book_deltas | side, price, size, action, flags, sequence |
| trades | side, price, size, trade_id |
| quotes | bid_px, ask_px, bid_sz, ask_sz, sequence |

All are int64: prices and sizes in 1e-9 units, ``action`` and ``flags`` as in ``nodes.marketdata.schemas``.

Bad input: each bad message is quarantined in the reader's ``report`` (``FixQualityReport``) with its byte
offset, line and reason; more than ``max_bad_fraction`` of them (default 0: none) fails the run with
``DataQualityError`` once the file is read.

Example::

    deltas: {op: source.fix_md, with: {path: data/samples/fix/spot_btcusdt.fix44.log.gz, schema: book_deltas}}
"""

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.marketdata.fix.decode import decode_fix
from nodes.marketdata.fix.stream import StreamStatus, read_pieces
from nodes.marketdata.stream_ports import OUTPUTS, port_chunks

_SYMBOL_FIELD = re.compile(rb"[\x01|]55=([^\x01|\r\n]{1,64})(?=[\x01|])")
_CARRY = 80  # bytes kept between pieces (> the longest symbol field): a field cut by a boundary is read whole


class FixMdParams(OpParams):
    path: str = Field(description="the FIX log (plain, gzip or zstd), relative to the spec's folder")
    schema_: Literal["book_deltas", "trades", "quotes"] = Field(
        "book_deltas", alias="schema", description="which normalized events this source emits"
    )
    symbols: list[str] | None = Field(None, description="instruments to emit, in this order; default: every "
                                                        "Symbol (55) in the file")
    venue: str | None = Field(None, description="the venue of every row; default: SecurityExchange (207), else "
                                                "SenderCompID (49)")
    delimiter: Literal["auto", "soh", "pipe"] = Field("auto", description="field delimiter: per message, SOH or '|'")
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="rows received before their event time: clamp ts_event, report only, or reject"
    )
    unknown_tags: Literal["reject", "ignore"] = Field(
        "reject", description="tags the dictionary does not define: reject the message, or drop the field"
    )
    dictionary_dir: str | None = Field(None, description="folder of QuickFIX dictionaries, relative to the spec's "
                                                         "folder (default: the vendored data/fix)")
    max_bad_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share of bad messages tolerated before the run fails (default none)"
    )
    chunk_messages: int = Field(65_536, ge=1, description="messages decoded at a time (bounds memory)")

    model_config = {**OpParams.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _symbols_listed_once(self):
        if self.symbols is not None and (not self.symbols or len(set(self.symbols)) != len(self.symbols)):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        return self


@cache
def _file_symbols(path: Path, mtime_ns: int) -> tuple[str, ...]:
    found: dict[str, None] = {}
    carry = b""
    status = StreamStatus(str(path))
    for piece in read_pieces(path, status):
        data = carry + piece
        for match in _SYMBOL_FIELD.finditer(data):  # one found again in the carried bytes changes nothing
            found.setdefault(match.group(1).decode("latin-1"))
        carry = data[-_CARRY:]
    return tuple(found)


def file_symbols(path: str | Path) -> list[str]:
    """Every Symbol (55) value of a FIX log, in order of first appearance (cached per file and mtime).

    Raises:
        DataQualityError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"{path}: no such FIX log (needed to find its symbols; or list 'symbols')")
    return list(_file_symbols(path.resolve(), path.stat().st_mtime_ns))


class FixMarketData(SourceOp):
    """Emit one normalized schema (book_deltas, trades or quotes) from a FIX 4.2/4.4/5.0SP2 market-data log.

    35=W snapshots become a clear row and the book's levels (``F_SNAPSHOT``) and a top-of-book quote; 35=X
    entries become book deltas (L2 set-size) and trades. Every message is validated against the QuickFIX
    dictionaries; see ``nodes.marketdata.fix.decode`` for the rules (time, clock policy, symbols, quarantine).

    Example::

        trades: {op: source.fix_md, with: {path: data/samples/fix/spot_ethusdt.fix50sp2.log.zst, schema: trades}}
    """

    name = "source.fix_md"
    Params = FixMdParams
    outputs = dict(OUTPUTS)

    @classmethod
    def instruments(cls, params: FixMdParams, base_dir: Path | None = None) -> list[str]:
        """Return ``symbols`` if given, else the file's Symbol values.

        Raises:
            DataQualityError: the file is missing or names no symbol.
        """
        if params.symbols is not None:
            return list(params.symbols)
        path = Path(base_dir or ".") / params.path
        found = file_symbols(path)
        if not found:
            raise DataQualityError(f"{path}: no Symbol (55) field in the log; list the instruments in 'symbols'")
        return found

    @classmethod
    def open(cls, params: FixMdParams, base_dir: Path) -> "FixMarketDataReader":
        return FixMarketDataReader(params, Path(base_dir) / params.path, cls.instruments(params, base_dir),
                                   Path(base_dir))


class FixMarketDataReader:
    """Chunks of one schema as dicts of numpy arrays; ``report`` is complete once they are exhausted."""

    def __init__(self, params: FixMdParams, path: Path, instruments: list[str], base_dir: Path):
        self.params = params
        self.path = path
        self.instruments = instruments
        self.base_dir = base_dir
        self.report = None
        self.filtered_out: dict[str, int] = {}

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        p = self.params
        index = {name: i for i, name in enumerate(self.instruments)}
        dictionary_dir = None if p.dictionary_dir is None else self.base_dir / p.dictionary_dir
        decoding = decode_fix(
            self.path, delimiter=p.delimiter, clock_policy=p.clock_policy, venue=p.venue,
            unknown_tags=p.unknown_tags, dictionary_dir=dictionary_dir, chunk_messages=p.chunk_messages,
            max_bad_fraction=p.max_bad_fraction,
        )
        self.report = decoding.report
        for chunk in decoding:
            frame = chunk.tables.get(p.schema_)
            if frame is None or frame.height == 0:
                continue
            if p.symbols is not None:
                keep = frame["symbol"].is_in(list(index))
                if not keep.all():
                    for symbol, n in frame.filter(~keep)["symbol"].value_counts().iter_rows():
                        self.filtered_out[symbol] = self.filtered_out.get(symbol, 0) + n
                    frame = frame.filter(keep)
            yield from port_chunks(frame, p.schema_, index, max_rows, str(self.path))
