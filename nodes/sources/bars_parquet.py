"""Bars from Parquet files in the normalized bar schema, read in bounded batches."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from nodes.contract import SourceOp
from nodes.errors import DataQualityError
from nodes.sources.bars import BAR_OUTPUTS, InstrumentFilesParams, check_bars
from nodes.sources.merge import merge_chunks

NORMALIZED_COLUMNS = ("ts_event", "ts_recv", "open", "high", "low", "close", "volume")


class BarsParquetParams(InstrumentFilesParams):
    batch_rows: int = Field(1_000_000, ge=1, description="rows read from a file at a time (bounds memory)")


class BarsParquet(SourceOp):
    """Read normalized bars (ts_event, ts_recv as int64 ns UTC; open, high, low, close, volume) from Parquet.

    Files are streamed in ``batch_rows`` batches, so memory does not grow with history length. Several
    instruments (``{instrument}`` in ``path``) are merged in ``ts_recv`` order.

    Example::

        bars: {op: source.bars_parquet, with: {path: "catalog/bars/{instrument}.parquet", instruments: [ES, NQ]}}
    """

    name = "source.bars_parquet"
    Params = BarsParquetParams
    outputs = BAR_OUTPUTS

    @classmethod
    def instruments(cls, params: BarsParquetParams, base_dir: Path) -> list[str]:
        return params.instrument_list()

    @classmethod
    def open(cls, params: BarsParquetParams, base_dir: Path):
        files = params.files(base_dir)
        for _, path in files:
            _check_schema(path)
        return _ParquetReader(params.instrument_list(), [p for _, p in files], params.batch_rows)


class _ParquetReader:
    def __init__(self, instruments: list[str], paths: list[Path], batch_rows: int):
        self.instruments = instruments
        self._paths = paths
        self._batch_rows = batch_rows

    def chunks(self, max_rows: int):
        streams = [self._file_chunks(p, i, min(max_rows, self._batch_rows)) for i, p in enumerate(self._paths)]
        names = ["ts_event", "ts_recv", "instrument", *BAR_OUTPUTS]
        if len(streams) == 1:
            yield from streams[0]
            return
        for batch in merge_chunks(streams, [names] * len(streams)):
            yield {
                name: np.concatenate([part[name] for part in batch.parts])[_concat_order(batch)]
                for name in names
            }

    @staticmethod
    def _file_chunks(path: Path, instrument_index: int, batch_rows: int):
        first_line = 0
        last_ts = None
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=list(NORMALIZED_COLUMNS)):
            columns = {name: record_batch.column(name).to_numpy(zero_copy_only=False) for name in NORMALIZED_COLUMNS}
            columns = {
                "ts_event": columns["ts_event"].astype(np.int64, copy=False),
                "ts_recv": columns["ts_recv"].astype(np.int64, copy=False),
                "instrument": np.full(record_batch.num_rows, instrument_index, dtype=np.int32),
                **{name: columns[name].astype(np.float64, copy=False) for name in BAR_OUTPUTS},
            }
            check_bars(columns, path, first_line=first_line)
            if last_ts is not None and record_batch.num_rows and columns["ts_recv"][0] < last_ts:
                raise DataQualityError(f"{path}: time goes backwards at row {first_line}")
            if record_batch.num_rows:
                last_ts = columns["ts_recv"][-1]
            first_line += record_batch.num_rows
            yield columns


def _concat_order(batch) -> np.ndarray:
    """Positions, in the concatenation of the batch's parts, of the events in merged order."""
    offsets = np.cumsum([0] + [len(p["ts_recv"]) for p in batch.parts])[:-1]
    return offsets[batch.stream] + batch.row


def _check_schema(path: Path) -> None:
    if not path.exists():
        raise DataQualityError(f"{path}: no such file")
    names = set(pq.ParquetFile(path).schema_arrow.names)
    missing = [c for c in NORMALIZED_COLUMNS if c not in names]
    if missing:
        raise DataQualityError(f"{path}: missing column(s) {', '.join(missing)} of the normalized bar schema")
