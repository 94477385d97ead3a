"""The ``source.dbn`` op: one normalized table of a DBN file as a stream of events.

Chunks follow the source contract (``docs/contracts.md`` 2.2): ``ts_event``, ``ts_recv``, ``instrument`` (int32
index into ``instruments``) and one numpy array per output port, sorted by ``ts_recv``. The ports depend on
the ``schema`` param (``TABLE_PORTS``); nullable columns become port values as follows: a null integer is 0,
a null float NaN, a boolean 1/0 (-1 when null), a one-letter code its ASCII code (0 when empty).

**Order.** DBN files are sorted by their index time (``ts_recv``; ``ts_event`` for bars, whose ``ts_recv`` is
then open + interval and keeps the order). A file that is not sorted is rejected: ``DataQualityError`` names
the first record where ``ts_recv`` goes backwards (record index and byte offset) and how many do so up to
there. Nothing is re-sorted behind the user's back.

**Damage.** With ``on_damage: raise`` (default) a quarantined region (truncation, corrupt bytes, see
``nodes.marketdata.dbn.stream``) raises ``DataQualityError`` with file, byte offsets and reason once the
records before it have been emitted; ``on_damage: warn`` emits a warning and goes on. Records of unknown
rtypes are not rows of any table: they are counted in the report (``check_dbn``) and skipped.

**Instruments** are known before reading: the ``symbols`` param when given (rows of other symbols are then
left out, as asked), otherwise the symbols of the file's metadata mappings (cheap: the header only); a file
without mappings is scanned once for its instrument ids.

Example::

    quotes: {op: source.dbn, with: {path: data/samples/dbn/test_data.mbp-1.dbn, schema: quotes, symbols: [ESH1]}}
"""

import warnings
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from nodes.contract import F64, I64, OpParams, ScalarType, SourceOp
from nodes.errors import DataQualityError
from nodes.marketdata.dbn.decode import decode_dbn
from nodes.marketdata.dbn.schemas import DBN_TABLES
from nodes.marketdata.dbn.stream import RecordSplitter, open_dbn_bytes, read_metadata
from nodes.marketdata.dbn.symbols import SymbolResolver

TableName = Literal[
    "orders", "quotes", "trades", "book_deltas", "bars", "definitions", "imbalance", "statistics", "status"
]


def _ports(names: str, scalar: ScalarType = I64) -> dict[str, ScalarType]:
    return {name: scalar for name in names.split()}


TABLE_PORTS: dict[str, dict[str, ScalarType]] = {
    "orders": _ports("order_id side price size action flags"),
    "quotes": _ports("bid_px ask_px bid_sz ask_sz"),
    "trades": _ports("price size side"),
    "book_deltas": _ports("side price size action flags"),
    "bars": _ports("open high low close volume", F64),
    "definitions": {**_ports("instrument_id tick_size lot_size expiration"), "multiplier": F64},
    "imbalance": _ports(
        "ref_price auction_time cont_book_clr_price auct_interest_clr_price ssr_filling_price ind_match_price "
        "upper_collar lower_collar paired_qty total_imbalance_qty market_imbalance_qty unpaired_qty "
        "auction_type side auction_status freeze_status num_extensions unpaired_side significant_imbalance"
    ),
    "statistics": _ports("stat_type price quantity ts_ref update_action stat_flags channel_id"),
    "status": _ports("action reason trading_event is_trading is_quoting is_short_sell_restricted"),
}


# ``schema`` is the param's name in specs; it shadows pydantic's deprecated ``BaseModel.schema()``, harmlessly.
warnings.filterwarnings("ignore", message='Field name "schema" in "DbnSourceParams" shadows', category=UserWarning)


class DbnSourceParams(OpParams):
    path: str = Field(description="the DBN file (.dbn or .dbn.zst), relative to the spec's folder")
    schema: TableName = Field(description="which normalized table of the file to emit")
    symbols: list[str] | None = Field(None, description="emit only these symbols, in this instrument order")
    on_damage: Literal["raise", "warn"] = Field(
        "raise", description="what a quarantined (truncated or corrupt) region of the file does"
    )

    @field_validator("symbols")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        return value


def _resolve_path(params: DbnSourceParams, base_dir: Path | None) -> Path:
    path = Path(params.path)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


@cache
def _file_symbols(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """The symbols a DBN file's records resolve to: its metadata mappings, else one scan of its records."""
    handle, reader, _ = open_dbn_bytes(path)
    with handle:
        metadata, header_bytes, version, _ = read_metadata(reader, path)
        resolver = SymbolResolver(metadata)
        if resolver.symbols:
            return tuple(resolver.symbols)
        splitter = RecordSplitter(reader, str(path), header_bytes, version, bool(metadata.ts_out), 1 << 20)
        while runs := splitter.runs(1 << 16):
            for run in runs:
                if run.layout is None or run.layout.kind in ("error", "system"):
                    continue
                if run.layout.kind == "symbol_mapping":
                    raw = [v.decode("utf-8", "replace") for v in run.records["stype_out_symbol"].tolist()]
                    resolver.add_mapping_records(run.records["instrument_id"], raw)
                    continue
                names = run.records.dtype.names
                when = run.records["ts_recv"] if "ts_recv" in names else run.records["ts_event"]
                resolver.resolve(run.records["instrument_id"], when)
        return tuple(resolver.symbols)


def file_symbols(path: Path) -> list[str]:
    """Return the symbols of a DBN file (cached per file and modification time)."""
    path = Path(path)
    if not path.is_file():
        raise DataQualityError(f"{path}: no such DBN file")
    return list(_file_symbols(path.resolve(), path.stat().st_mtime_ns))


class DbnSource(SourceOp):
    """Read one normalized table (orders, quotes, trades, book_deltas, bars, ...) from a Databento DBN file.

    The output ports depend on ``schema`` (``outputs_for``; ``specialize`` returns the op class with them
    declared). See the module docstring for ordering, damage and instruments.

    Example::

        quotes: {op: source.dbn, with: {path: data/samples/dbn/test_data.mbp-1.dbn, schema: quotes}}
    """

    name = "source.dbn"
    Params = DbnSourceParams
    outputs: dict[str, ScalarType] = {}

    @classmethod
    def outputs_for(cls, params: DbnSourceParams) -> dict[str, ScalarType]:
        """Return the output ports of the table ``params.schema``."""
        return dict(TABLE_PORTS[params.schema])

    @classmethod
    def specialize(cls, params: DbnSourceParams, base_dir: Path | None = None) -> type["DbnSource"]:
        """Return a subclass whose ``outputs`` are those of ``params.schema`` (what the engine reads)."""
        return _specialized(params.schema)

    @classmethod
    def instruments(cls, params: DbnSourceParams, base_dir: Path | None = None) -> list[str]:
        """Return ``symbols`` if given, else the file's symbols (``base_dir``: the spec's folder, else cwd).

        Raises ``DataQualityError`` when the file is missing or unreadable.
        """
        if params.symbols is not None:
            return list(params.symbols)
        return file_symbols(_resolve_path(params, base_dir))

    @classmethod
    def open(cls, params: DbnSourceParams, base_dir: Path) -> "DbnReader":
        path = _resolve_path(params, base_dir)
        available = file_symbols(path)
        if params.symbols is not None:
            missing = [s for s in params.symbols if s not in available]
            if missing:
                raise DataQualityError(
                    f"{path}: symbol(s) {', '.join(missing)} not in the file; it has: {', '.join(available)}"
                )
        return DbnReader(path, params, cls.instruments(params, base_dir))


@cache
def _specialized(schema: str) -> type[DbnSource]:
    return type(f"DbnSource_{schema}", (DbnSource,), {"outputs": dict(TABLE_PORTS[schema]), "__module__": __name__})


class DbnReader:
    """An opened ``source.dbn``: ``instruments`` and ``chunks(max_rows)`` as the source contract says."""

    def __init__(self, path: Path, params: DbnSourceParams, instruments: list[str]):
        self.path = path
        self.params = params
        self.instruments = instruments
        self.report = None  # the file's DbnQualityReport once ``chunks`` has run

    def chunks(self, max_rows: int):
        table = self.params.schema
        index = {symbol: i for i, symbol in enumerate(self.instruments)}
        keep_others = self.params.symbols is None
        decoding = decode_dbn(self.path, chunk_records=max_rows)
        self.report = decoding.report
        pending: list[dict[str, np.ndarray]] = []
        pending_rows = 0
        last_ts_recv: int | None = None
        seen_quarantine = 0
        rows_before = 0
        for chunk in decoding:
            frame = chunk.tables.get(table)
            if frame is not None and frame.height:
                columns = self._columns(frame, index, keep_others, rows_before)
                rows_before += frame.height
                ts = columns["ts_recv"]
                if len(ts):
                    self._check_order(ts, last_ts_recv, chunk.first_record)
                    last_ts_recv = int(ts[-1])
                    pending.append(columns)
                    pending_rows += len(ts)
            damaged = len(decoding.report.quarantined) > seen_quarantine
            while pending_rows >= max_rows or (damaged and pending_rows):
                out, pending, pending_rows = _split(pending, max_rows)
                yield out
            if damaged:
                seen_quarantine = self._damage(decoding, seen_quarantine)
        while pending_rows:
            out, pending, pending_rows = _split(pending, max_rows)
            yield out
        self._damage(decoding, seen_quarantine)

    def _columns(self, frame: pl.DataFrame, index: dict[str, int], keep_others: bool, rows_before: int):
        instrument = frame["symbol"].replace_strict(index, default=-1, return_dtype=pl.Int32).to_numpy()
        unknown = instrument < 0
        if unknown.any():
            if keep_others:
                row = int(np.argmax(unknown))
                raise DataQualityError(
                    f"{self.path}: {int(unknown.sum())} {self.params.schema} row(s) of symbol(s) the metadata does "
                    f"not list, first {frame['symbol'][row]!r} at row {rows_before + row} of the table; "
                    "give 'symbols' to choose what to read"
                )
            frame = frame.filter(pl.Series(~unknown))
            instrument = instrument[~unknown]
        columns = {
            "ts_event": frame["ts_event"].to_numpy().astype(np.int64),
            "ts_recv": frame["ts_recv"].to_numpy().astype(np.int64),
            "instrument": instrument.astype(np.int32),
        }
        for port, scalar in TABLE_PORTS[self.params.schema].items():
            columns[port] = _port_values(frame[port], scalar)
        return columns

    def _check_order(self, ts: np.ndarray, last: int | None, first_record: int) -> None:
        backwards = np.flatnonzero(np.diff(ts) < 0) + 1
        if last is not None and ts[0] < last:
            backwards = np.r_[0, backwards]
        if len(backwards):
            found = self.report.ts_recv_backwards.first
            where = (f"first at record {found[0]['record']} (byte {found[0]['byte']})" if found
                     else f"in the chunk from record {first_record}")
            raise DataQualityError(
                f"{self.path}: ts_recv goes backwards {len(backwards)} time(s) in this {self.params.schema} chunk, "
                f"{where}; source.dbn needs a file sorted by ts_recv (check_dbn reports every case)"
            )

    def _damage(self, decoding, seen: int) -> int:
        """Raise (or warn) for the regions quarantined since the last call; return how many were handled."""
        regions = decoding.report.quarantined
        for region in regions[seen:]:
            message = (f"{region.file}: bytes {region.byte_start}-{region.byte_end} quarantined before record "
                       f"{region.record_index}: {region.reason}")
            if self.params.on_damage == "raise":
                raise DataQualityError(message)
            warnings.warn(message, stacklevel=3)
        return len(regions)


def _port_values(series: pl.Series, scalar: ScalarType) -> np.ndarray:
    if series.dtype == pl.String:
        return np.array([ord(s[0]) if s else 0 for s in series.fill_null("").to_list()], dtype=np.int64)
    if series.dtype == pl.Boolean:
        return series.cast(pl.Int64).fill_null(-1).to_numpy().astype(np.int64)
    if series.dtype == pl.UInt64:  # order ids: the same 64 bits, read as signed
        return series.fill_null(0).to_numpy().astype(np.uint64).view(np.int64)
    if scalar is F64:
        return series.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)
    return series.cast(pl.Int64).fill_null(0).to_numpy().astype(np.int64)


def _split(pending: list[dict[str, np.ndarray]], max_rows: int):
    """Take the first ``max_rows`` rows of the pending column blocks; return (chunk, rest, rest's row count)."""
    taken, rest, need = [], [], max_rows
    for block in pending:
        n = len(block["ts_recv"])
        if need == 0:
            rest.append(block)
        elif n <= need:
            taken.append(block)
            need -= n
        else:
            taken.append({k: v[:need] for k, v in block.items()})
            rest.append({k: v[need:] for k, v in block.items()})
            need = 0
    out = {k: np.concatenate([b[k] for b in taken]) for k in taken[0]}
    return out, rest, sum(len(b["ts_recv"]) for b in rest)
