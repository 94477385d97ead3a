"""Bar CSV layouts (Yahoo, zipline's date/OHLCV with dividends and splits, Binance klines) and backward
split/dividend adjustment, on files written by hand with values worked out by hand.

The shipped AAPL sample (``data/samples``) shows what its 2014-06-09 7:1 split row holds. The bar files in
``../shared/data/bars`` that may not be vendored are read only when that folder is here (skipped otherwise).
"""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nodes.errors import DataQualityError
from nodes.sources.bars_csv import BarsCsv, BarsCsvParams
from pipelines.ingest import ingest_files

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "samples"
SHARED = REPO.parent / "shared" / "data" / "bars"
NO_SHARED = f"the shared bar files are not here ({SHARED}): they may not be vendored, and a fresh clone has none"
NS = 1_000_000_000
MS = 1_000_000


def _read(folder: Path, path: str, **params) -> dict[str, np.ndarray]:
    params = BarsCsvParams(path=path, instrument=params.pop("instrument", "X"), **{"timezone": "UTC", **params})
    chunks = list(BarsCsv.open(params, folder).chunks(100_000))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def _shared(name: str) -> Path:
    if not (SHARED / name).exists():
        pytest.skip(NO_SHARED)
    return SHARED / name


# -- Yahoo --------------------------------------------------------------------------------------------------------------

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,100,101,99,100,90,1000
2024-01-03,102,104,101,103,92.7,1100
2024-01-04,103,105,102,104,104,1200
"""


def test_yahoo_columns_are_case_insensitive_and_close_is_the_close_by_default(tmp_path):
    (tmp_path / "y.csv").write_text(YAHOO)
    bars = _read(tmp_path, "y.csv", timezone="America/New_York")
    assert bars["close"].tolist() == [100, 103, 104] and bars["volume"].tolist() == [1000, 1100, 1200]
    assert (bars["ts_recv"] - bars["ts_event"] == 6.5 * 3600 * NS).all()


@pytest.mark.parametrize("mode", ["dividends", "splits_and_dividends"])
def test_yahoo_adj_close_ratio_adjusts_every_price_and_leaves_volume(tmp_path, mode):
    (tmp_path / "y.csv").write_text(YAHOO)
    bars = _read(tmp_path, "y.csv", adjust=mode)
    assert bars["close"].tolist() == [90, 92.7, 104]
    assert bars["open"].tolist() == pytest.approx([90, 102 * 0.9, 103], rel=1e-12)
    assert bars["low"].tolist() == pytest.approx([99 * 0.9, 101 * 0.9, 102], rel=1e-12)
    assert bars["volume"].tolist() == [1000, 1100, 1200]


def test_yahoo_without_a_split_column_refuses_split_adjustment(tmp_path):
    (tmp_path / "y.csv").write_text(YAHOO)
    with pytest.raises(DataQualityError, match="already split-adjusted"):
        _read(tmp_path, "y.csv", adjust="splits")


# -- date/OHLCV with dividends and splits --------------------------------------------------------------------------------

# A 2:1 split on 2024-01-04 (the price halves) and a 1.00 dividend on 2024-01-05 (previous close 51).
EVENTS = """date,open,high,low,close,volume,dividend,split
2024-01-02,100,102,99,100,1000,0.0,1.0
2024-01-03,101,103,100,102,1100,0.0,1.0
2024-01-04,51,52,50,51,2400,0.0,2.0
2024-01-05,52,53,51,50,2000,1.0,1.0
2024-01-08,50,51,49,50.5,1500,0.0,1.0
"""
D = 50 / 51  # the dividend factor: 1 - 1.00 / 51


@pytest.mark.parametrize("mode, close, volume", [
    ("none", [100, 102, 51, 50, 50.5], [1000, 1100, 2400, 2000, 1500]),
    ("splits", [50, 51, 51, 50, 50.5], [2000, 2200, 2400, 2000, 1500]),
    ("dividends", [100 * D, 102 * D, 51 * D, 50, 50.5], [1000, 1100, 2400, 2000, 1500]),
    ("splits_and_dividends", [50 * D, 51 * D, 51 * D, 50, 50.5], [2000, 2200, 2400, 2000, 1500]),
])
def test_backward_adjustment_by_hand(tmp_path, mode, close, volume):
    (tmp_path / "e.csv").write_text(EVENTS)
    bars = _read(tmp_path, "e.csv", adjust=mode)
    assert bars["close"].tolist() == pytest.approx(close, rel=1e-12)
    assert bars["volume"].tolist() == pytest.approx(volume, rel=1e-12)
    factor = np.array(close) / np.array([100, 102, 51, 50, 50.5])
    assert bars["high"].tolist() == pytest.approx((np.array([102, 103, 52, 53, 51]) * factor).tolist(), rel=1e-12)
    # traded value is unchanged by a split: price × volume of the first day
    if mode == "splits":
        assert bars["close"][0] * bars["volume"][0] == 100 * 1000


def test_event_column_names_follow_yahoo_and_yfinance_spellings(tmp_path):
    text = EVENTS.replace("dividend,split", "Dividends,Stock Splits").replace(",1.0\n", ",0\n")
    (tmp_path / "e.csv").write_text(text.upper().replace("DATE", "Date"))
    bars = _read(tmp_path, "e.csv", adjust="splits_and_dividends")
    assert bars["close"].tolist() == pytest.approx([50 * D, 51 * D, 51 * D, 50, 50.5], rel=1e-12)


def test_a_split_the_prices_already_show_is_refused_with_its_line(tmp_path):
    adjusted = EVENTS.replace("2024-01-02,100,102,99,100", "2024-01-02,50,51,49.5,50").replace(
        "2024-01-03,101,103,100,102", "2024-01-03,50.5,51.5,50,51")
    (tmp_path / "a.csv").write_text(adjusted)
    with pytest.raises(DataQualityError, match=r"line 4 \(2024-01-04\): split 2 but the price does not jump"):
        _read(tmp_path, "a.csv", adjust="splits")
    assert _read(tmp_path, "a.csv", adjust="dividends")["close"][-1] == 50.5


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("1.0,1.0\n2024-01-08", "60.0,1.0\n2024-01-08"), r"line 5: dividend 60.0 is not below"),
    (lambda t: t.replace("0.0,2.0", "0.0,-2.0"), r"line 4: split -2.0 is not a finite non-negative"),
    (lambda t: t.replace("dividend,split", "dividend,other"), "needs a split column"),
])
def test_bad_events_are_refused_with_their_line(tmp_path, edit, message):
    (tmp_path / "e.csv").write_text(edit(EVENTS))
    with pytest.raises(DataQualityError, match=message):
        _read(tmp_path, "e.csv", adjust="splits_and_dividends")


def test_the_aapl_sample_is_split_adjusted_already_at_the_2014_7_for_1_split():
    rows = gzip.decompress((SAMPLES / "AAPL.csv.gz").read_bytes()).decode().splitlines()
    split_line = next(i + 1 for i, row in enumerate(rows) if row.startswith("2014-06-09"))
    assert rows[split_line - 1].endswith(",0.0,7.0") and split_line == 612
    before = rows[split_line - 2].split(",")
    after = rows[split_line - 1].split(",")
    # unadjusted, the open after a 7:1 split would be about 1/7 of the close before it; here it is about equal,
    # and the volume before is about 7 times the 12.5 million shares AAPL traded that day
    assert abs(float(after[1]) / float(before[4]) - 1) < 0.01 and float(before[5]) > 7 * 12_000_000
    with pytest.raises(DataQualityError, match=r"line 612 \(2014-06-09\): split 7 .* split-adjusted already"):
        _read(SAMPLES, "AAPL.csv.gz", timezone="America/New_York", adjust="splits")
    raw = _read(SAMPLES, "AAPL.csv.gz", timezone="America/New_York")
    divs = _read(SAMPLES, "AAPL.csv.gz", timezone="America/New_York", adjust="dividends")
    assert divs["close"][-1] == raw["close"][-1] and divs["close"][0] < raw["close"][0]
    assert (divs["volume"] == raw["volume"]).all()


# -- Binance klines -------------------------------------------------------------------------------------------------------

KLINES = """1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.20000000,1637971259999,1.03547608,79,19523.00000000,0.55694227,0
1637971260000,0.00002854,0.00002860,0.00002854,0.00002859,89196.60000000,1637971319999,2.54751330,98,59004.20000000,1.68545512,0
"""
KLINE_HEADER = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n"


@pytest.mark.parametrize("header", ["", KLINE_HEADER])
def test_binance_klines_open_at_open_time_and_are_known_after_close_time(tmp_path, header):
    (tmp_path / "k.csv").write_text(header + KLINES)
    bars = _read(tmp_path, "k.csv", layout="binance_klines")
    assert bars["ts_event"].tolist() == [1637971200000 * MS, 1637971260000 * MS]
    assert bars["ts_recv"].tolist() == [1637971260000 * MS, 1637971320000 * MS]
    assert bars["open"].tolist() == [0.00002853, 0.00002854] and bars["volume"].tolist() == [36304.2, 89196.6]


def test_binance_klines_in_microseconds(tmp_path):
    us = KLINES.replace("1637971200000", "1637971200000000").replace("1637971259999", "1637971259999999")
    (tmp_path / "k.csv").write_text(us.splitlines()[0] + "\n")
    bars = _read(tmp_path, "k.csv", layout="binance_klines", epoch_unit="us")
    assert bars["ts_event"].tolist() == [1637971200000 * MS] and bars["ts_recv"].tolist() == [1637971260000 * MS]


def test_klines_read_as_a_header_file_say_which_layout_to_use_and_bad_times_name_their_line(tmp_path):
    (tmp_path / "k.csv").write_text(KLINES)
    with pytest.raises(DataQualityError, match="layout: binance_klines"):
        _read(tmp_path, "k.csv")
    (tmp_path / "bad.csv").write_text(KLINES.replace("1637971260000,", "soon,", 1))
    with pytest.raises(DataQualityError, match=r"line 2 \('soon'\)"):
        _read(tmp_path, "bad.csv", layout="binance_klines")
    (tmp_path / "narrow.csv").write_text("1,2,3\n")
    with pytest.raises(DataQualityError, match="has 12 columns"):
        _read(tmp_path, "narrow.csv", layout="binance_klines")


def test_klines_ingest_into_a_catalog(tmp_path):
    (tmp_path / "ADABTC.csv").write_text(KLINES)
    result = ingest_files(tmp_path / "catalog", "bars_csv", [tmp_path / "ADABTC.csv"], venue="BINANCE",
                          options={"timezone": "UTC", "layout": "binance_klines"})
    assert result.rows == {"bars": 2} and result.reports[0]["symbol"] == "ADABTC"


# -- the shared bar files (../shared) ------------------------------------------------------------------------------------

def test_shared_binance_klines_match_a_naive_read():
    path = _shared("ADABTC-1m-2021-11-27.csv")
    naive = pd.read_csv(path, header=None)
    bars = _read(path.parent, path.name, layout="binance_klines")
    assert len(bars["close"]) == len(naive) == 10
    assert bars["ts_event"].tolist() == (naive[0] * MS).tolist() and bars["close"].tolist() == naive[4].tolist()


@pytest.mark.parametrize("name, column", [("btc-perp-20211231-20220201_1m.csv", "timestamp"),
                                          ("6EH4.XCME_1min_bars_20240101_20240131.csv.gz", "timestamp_utc")])
def test_shared_minute_bars_match_a_naive_read(name, column):
    path = _shared(name)
    naive = pd.read_csv(path)
    bars = _read(path.parent, path.name, bar_duration="1m")
    assert len(bars["close"]) == len(naive)
    first = pd.Timestamp(naive[column].iloc[0], tz="UTC").value
    assert bars["ts_event"][0] == first and bars["close"].tolist() == naive["close"].tolist()
