"""Bar sources: times parsed with an explicit zone (DST-aware), bad rows rejected with their line."""

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nodes.errors import DataQualityError
from nodes.sources.bars_csv import BarsCsv, BarsCsvParams
from nodes.sources.bars_parquet import BarsParquet, BarsParquetParams

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"
NS = 1_000_000_000


def _read(params, base: Path = SAMPLES, chunk: int = 10_000):
    op = BarsCsv if isinstance(params, BarsCsvParams) else BarsParquet
    chunks = list(op.open(params, base).chunks(chunk))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def test_daily_bars_are_known_at_the_local_close_across_dst():
    bars = _read(BarsCsvParams(path="AAPL.csv.gz", instrument="AAPL", timezone="America/New_York"))
    utc = pl.Series(bars["ts_recv"]).cast(pl.Datetime("ns", "UTC"))
    assert str(utc[0]) == "2012-01-03 21:00:00+00:00"  # 16:00 EST
    july = utc.filter(utc.dt.month() == 7)[0]
    assert july.hour == 20  # 16:00 EDT
    assert np.all(bars["ts_recv"] - bars["ts_event"] == 6.5 * 3600 * NS)  # 09:30 → 16:00 local, winter and summer
    assert np.all(np.diff(bars["ts_recv"]) > 0)
    assert len(bars["close"]) == 754


def test_intraday_epoch_and_iso_timestamps(tmp_path):
    (tmp_path / "ms.csv").write_text("timestamp,open,high,low,close,volume\n1700000000000,1,2,0.5,1.5,10\n1700000060000,1.5,2,1,1.2,11\n")
    bars = _read(BarsCsvParams(path="ms.csv", instrument="X", timezone="UTC", bar_duration="1m"), tmp_path)
    assert bars["ts_event"].tolist() == [1_700_000_000 * NS, 1_700_000_060 * NS]
    assert (bars["ts_recv"] - bars["ts_event"]).tolist() == [60 * NS, 60 * NS]
    (tmp_path / "iso.csv").write_text("timestamp,open,high,low,close,volume\n2024-03-10 01:59:00,1,1,1,1,1\n2024-03-10 03:00:00,1,1,1,1,1\n")
    bars = _read(BarsCsvParams(path="iso.csv", instrument="X", timezone="America/Chicago", bar_duration="1m",
                               timestamp_is="close"), tmp_path)
    # 01:59 CST is 07:59 UTC; 03:00 CDT (after the spring-forward gap) is 08:00 UTC
    assert (bars["ts_recv"][1] - bars["ts_recv"][0]) == 60 * NS


def test_several_instruments_merge_by_time_then_declaration_order():
    bars = _read(BarsCsvParams(path="{instrument}.csv.gz", instruments=["MSFT", "AAPL"], timezone="America/New_York"), chunk=100)
    assert len(bars["ts_recv"]) == 754 * 2
    assert np.all(np.diff(bars["ts_recv"]) >= 0)
    same_day = bars["instrument"][:2].tolist()
    assert same_day == [0, 1]  # MSFT (declared first) before AAPL at the same close


@pytest.mark.parametrize("edit, message, line", [
    (lambda rows: rows.__setitem__(3, rows[3].replace(rows[3].split(",")[2], "")), "missing or non-numeric high", 4),
    (lambda rows: rows.__setitem__(4, rows[2]), "time goes backwards", 5),
    (lambda rows: rows.__setitem__(6, "2012-13-45" + rows[6][10:]), "unparseable timestamp", 7),
])
def test_bad_rows_reject_the_file_with_their_line(tmp_path, edit, message, line):
    rows = gzip.decompress((SAMPLES / "AAPL.csv.gz").read_bytes()).decode().splitlines()
    edit(rows)
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataQualityError) as error:
        _read(BarsCsvParams(path="bad.csv", instrument="AAPL", timezone="America/New_York"), tmp_path)
    assert message in str(error.value) and "bad.csv" in str(error.value) and f"line {line}" in str(error.value).replace("line(s)", "line")


def test_zone_and_instrument_options_are_checked():
    with pytest.raises(ValueError, match="unknown time zone"):
        BarsCsvParams(path="a.csv", instrument="A", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="exactly one of"):
        BarsCsvParams(path="a.csv", timezone="UTC")
    with pytest.raises(ValueError, match=r"\{instrument\}"):
        BarsCsvParams(path="a.csv", instruments=["A", "B"], timezone="UTC")


def test_parquet_source_streams_in_batches_and_matches_csv(tmp_path):
    csv = _read(BarsCsvParams(path="{instrument}.csv.gz", instruments=["AAPL", "KO"], timezone="America/New_York"))
    for index, name in enumerate(["AAPL", "KO"]):
        mine = csv["instrument"] == index
        pl.DataFrame({k: csv[k][mine] for k in ("ts_event", "ts_recv", "open", "high", "low", "close", "volume")}).write_parquet(tmp_path / f"{name}.parquet", row_group_size=50)
    params = BarsParquetParams(path="{instrument}.parquet", instruments=["AAPL", "KO"], batch_rows=64)
    chunks = list(BarsParquet.open(params, tmp_path).chunks(64))
    assert max(len(c["ts_recv"]) for c in chunks) <= 2 * 64
    parquet = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    for key in csv:
        assert np.array_equal(csv[key], parquet[key]), key
