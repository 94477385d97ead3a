"""Trades from fills: hand-built venue records whose round trips are known, column by column."""

import doctest
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nodes.backtest import trades as trades_module
from nodes.backtest.trades import TRADE_SCHEMA, trades_from_fills
from nodes.errors import DataQualityError

BAR_NS = 10  # bars are [10 k, 10 (k + 1)) in these records: ts_event = 10 k, ts_recv = 10 (k + 1)
NO_COSTS = {"commission": 0.0, "commission_per_unit": 0.0, "slippage_bps": 0.0}


def _record(rows: list[tuple]) -> pl.DataFrame:
    """A venue record from (instrument, bar, fill_qty, fill_price, commission, mark_price) rows.

    ``bar`` is the bar number (ts_event = 10 × bar); ``position`` is the running sum of fills per instrument,
    as the venue keeps it.
    """
    positions: dict[str, float] = {}
    columns: dict[str, list] = {c: [] for c in ("ts_event", "ts_recv", "instrument", "equity", "cash",
                                                "position", "fill_qty", "fill_price", "commission", "mark_price")}
    for instrument, bar, qty, price, fee, mark in rows:
        positions[instrument] = positions.get(instrument, 0.0) + qty
        columns["ts_event"].append(bar * BAR_NS)
        columns["ts_recv"].append((bar + 1) * BAR_NS)
        columns["instrument"].append(instrument)
        columns["equity"].append(0.0)
        columns["cash"].append(0.0)
        columns["position"].append(positions[instrument])
        columns["fill_qty"].append(qty)
        columns["fill_price"].append(price if qty else math.nan)
        columns["commission"].append(fee)
        columns["mark_price"].append(mark)
    return pl.DataFrame(columns, schema_overrides={"ts_event": pl.Int64, "ts_recv": pl.Int64})


def _trade(instrument, size, entry_ts, exit_ts, entry_price, exit_price, entry_fee, exit_fee, entry_i, exit_i):
    """The expected trade row, with pnl and return_pct written out as the module docstring defines them."""
    fees = entry_fee + exit_fee
    return {
        "instrument": instrument,
        "size": size,
        "entry_ts": entry_ts,
        "exit_ts": exit_ts,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "pnl": size * (exit_price - entry_price) - fees,
        "return_pct": 100 * (
            math.copysign(1, size) * (exit_price / entry_price - 1) - fees / (abs(size) * entry_price)
        ),
        "commission": fees,
        "duration_ns": exit_ts - entry_ts,
        "entry_event_index": entry_i,
        "exit_event_index": exit_i,
    }


def _assert_trades(actual: pl.DataFrame, expected: list[dict], *, rel: float = 0.0) -> None:
    assert actual.schema == pl.Schema(TRADE_SCHEMA)
    assert actual.height == len(expected), actual
    for i, (got, want) in enumerate(zip(actual.iter_rows(named=True), expected, strict=True)):
        for column, value in want.items():
            if isinstance(value, float) and rel:
                assert got[column] == pytest.approx(value, rel=rel, abs=1e-12), (i, column)
            else:
                assert got[column] == value, (i, column, got[column], value)


def test_open_then_close_long_at_next_open():
    frame = _record([
        ("X", 0, 4.0, 128.0, 2.0, 130.0),
        ("X", 1, 0.0, math.nan, 0.0, 140.0),
        ("X", 2, -4.0, 144.0, 2.5, 150.0),
    ])
    trades, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    # Dyadic prices keep every column exact: pnl 4 × 16 − 4.5, return (0.125 − 4.5 / 512) × 100.
    _assert_trades(trades, [_trade("X", 4.0, 0, 20, 128.0, 144.0, 2.0, 2.5, 0, 2)])
    assert trades.row(0, named=True)["pnl"] == 59.5
    assert trades.row(0, named=True)["return_pct"] == 11.62109375
    assert cost == 0.0


def test_fill_at_close_times_fills_at_ts_recv():
    frame = _record([("X", 0, -4.0, 128.0, 2.0, 128.0), ("X", 1, 0.0, 0.0, 0.0, 120.0),
                     ("X", 2, 4.0, 112.0, 2.0, 112.0)])
    trades, _ = trades_from_fills(frame, fill_at="close", close_at_end=False, **NO_COSTS)
    _assert_trades(trades, [_trade("X", -4.0, 10, 30, 128.0, 112.0, 2.0, 2.0, 0, 2)])
    assert trades.row(0, named=True)["pnl"] == 60.0


def test_scale_in_closes_lots_fifo_and_splits_the_last_one():
    frame = _record([
        ("X", 0, 2.0, 100.0, 2.0, 100.0),
        ("X", 1, 2.0, 110.0, 2.0, 110.0),
        ("X", 2, -3.0, 120.0, 3.0, 120.0),  # closes the first lot and half of the second
        ("X", 3, -1.0, 130.0, 1.0, 130.0),  # closes the rest of the second
    ])
    trades, _ = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    _assert_trades(trades, [
        _trade("X", 2.0, 0, 20, 100.0, 120.0, 2.0, 2.0, 0, 2),
        _trade("X", 1.0, 10, 20, 110.0, 120.0, 1.0, 1.0, 1, 2),
        _trade("X", 1.0, 10, 30, 110.0, 130.0, 1.0, 1.0, 1, 3),
    ])
    assert trades.get_column("pnl").to_list() == [36.0, 8.0, 18.0]


def test_partial_close_shares_commissions_pro_rata():
    frame = _record([
        ("X", 0, 4.0, 100.0, 4.0, 100.0),
        ("X", 1, -1.0, 110.0, 0.5, 110.0),
        ("X", 2, -3.0, 90.0, 1.5, 90.0),
    ])
    trades, _ = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    _assert_trades(trades, [
        _trade("X", 1.0, 0, 10, 100.0, 110.0, 1.0, 0.5, 0, 1),
        _trade("X", 3.0, 0, 20, 100.0, 90.0, 3.0, 1.5, 0, 2),
    ])
    assert trades.get_column("pnl").to_list() == [8.5, -34.5]
    assert trades.get_column("commission").to_list() == [1.5, 4.5]
    assert trades.get_column("return_pct").to_list() == pytest.approx([8.5, -11.5], rel=1e-12)


def test_reversal_closes_everything_and_opens_the_remainder():
    frame = _record([
        ("X", 0, 2.0, 100.0, 1.0, 100.0),
        ("X", 1, -5.0, 110.0, 2.5, 110.0),  # 2 close the long (commission 1.0), 3 open a short (1.5)
        ("X", 2, 3.0, 105.0, 1.5, 105.0),
    ])
    trades, _ = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    _assert_trades(trades, [
        _trade("X", 2.0, 0, 10, 100.0, 110.0, 1.0, 1.0, 0, 1),
        _trade("X", -3.0, 10, 20, 110.0, 105.0, 1.5, 1.5, 1, 2),
    ])
    assert trades.get_column("pnl").to_list() == [18.0, 12.0]


@pytest.mark.parametrize(("size", "exit_price"), [(10.0, 120.0 * (1 - 5 / 1e4)), (-10.0, 120.0 * (1 + 5 / 1e4))])
def test_close_at_end_pays_slippage_and_commission(size, exit_price):
    frame = _record([
        ("X", 0, size, 100.0, 1.0, 101.0),
        ("X", 1, 0.0, math.nan, 0.0, 110.0),
        ("X", 2, 0.0, math.nan, 0.0, 120.0),
    ])
    trades, cost = trades_from_fills(
        frame, fill_at="next_open", close_at_end=True, commission=0.001, commission_per_unit=0.01, slippage_bps=5.0
    )
    exit_fee = 0.001 * 10 * exit_price + 0.01 * 10  # 1.1994 + 0.1 for the sell, 1.2006 + 0.1 for the buy
    _assert_trades(trades, [_trade("X", size, 0, 30, 100.0, exit_price, 1.0, exit_fee, 0, 2)], rel=1e-12)
    assert cost == pytest.approx(exit_fee + 10 * 0.06, rel=1e-12)
    assert trades.row(0, named=True)["pnl"] == pytest.approx(
        197.1006 if size > 0 else -202.9006, rel=1e-12
    )


def test_close_at_end_off_leaves_open_lots_out():
    frame = _record([("X", 0, 1.0, 100.0, 0.0, 100.0), ("X", 1, 0.0, math.nan, 0.0, 120.0)])
    trades, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=False, **NO_COSTS)
    assert trades.is_empty() and trades.schema == pl.Schema(TRADE_SCHEMA)
    assert cost == 0.0


def test_interleaved_instruments_pair_separately_and_end_at_their_own_last_row():
    frame = _record([
        ("A", 0, 1.0, 10.0, 0.0, 10.0),    # row 0
        ("B", 0, -2.0, 50.0, 0.0, 50.0),   # row 1
        ("A", 1, 1.0, 12.0, 0.0, 12.0),    # row 2
        ("B", 1, 2.0, 40.0, 0.0, 40.0),    # row 3: B flat again
        ("B", 2, 1.0, 44.0, 0.0, 44.0),    # row 4: B long again, until the end
        ("A", 2, 0.0, math.nan, 0.0, 16.0),  # row 5: A's last row
        ("B", 3, 0.0, math.nan, 0.0, 48.0),  # row 6: B's last row
    ])
    trades, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    _assert_trades(trades, [
        _trade("B", -2.0, 0, 10, 50.0, 40.0, 0.0, 0.0, 1, 3),
        _trade("A", 1.0, 0, 30, 10.0, 16.0, 0.0, 0.0, 0, 5),
        _trade("A", 1.0, 10, 30, 12.0, 16.0, 0.0, 0.0, 2, 5),
        _trade("B", 1.0, 20, 40, 44.0, 48.0, 0.0, 0.0, 4, 6),
    ])
    assert cost == 0.0


def test_float_residue_of_splits_leaves_no_dust_lot():
    frame = _record([("X", 0, 0.3, 10.0, 0.0, 10.0)] + [("X", k, -0.1, 11.0, 0.0, 11.0) for k in (1, 2, 3)])
    assert frame.get_column("position")[-1] != 0.0  # the venue's running sum is not exactly flat
    trades, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    assert trades.height == 3 and cost == 0.0
    assert trades.get_column("size").sum() == pytest.approx(0.3, rel=1e-12)


def test_no_fills_gives_an_empty_typed_frame():
    frame = _record([("X", 0, 0.0, math.nan, 0.0, 10.0)])
    trades, cost = trades_from_fills(frame, fill_at="close", close_at_end=True, **NO_COSTS)
    assert trades.is_empty() and trades.schema == pl.Schema(TRADE_SCHEMA) and cost == 0.0


def test_bad_fill_at_names_the_parameter():
    frame = _record([("X", 0, 0.0, math.nan, 0.0, 10.0)])
    with pytest.raises(ValueError, match="fill_at"):
        trades_from_fills(frame, fill_at="open", close_at_end=True, **NO_COSTS)


def test_position_that_disagrees_with_fills_is_a_data_error():
    frame = _record([("X", 0, 1.0, 10.0, 0.0, 10.0), ("X", 1, 1.0, 11.0, 0.0, 11.0)])
    frame = frame.with_columns(pl.Series("position", [1.0, 3.0]))
    with pytest.raises(DataQualityError, match="row 1 .X.*position"):
        trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)


def test_fill_without_price_is_a_data_error():
    frame = _record([("X", 0, 1.0, 10.0, 0.0, 10.0)]).with_columns(pl.lit(np.nan).alias("fill_price"))
    with pytest.raises(DataQualityError, match="row 0"):
        trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)


def test_missing_column_is_a_data_error():
    frame = _record([("X", 0, 1.0, 10.0, 0.0, 10.0)]).drop("mark_price")
    with pytest.raises(DataQualityError, match="mark_price"):
        trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)


def test_docstring_examples_run():
    assert doctest.testmod(trades_module, raise_on_error=True).failed == 0


# --- parity with backtesting.py 0.6: its fills, re-paired here, give its trades ---

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"
DAY_NS = 86_400 * 10**9


def _sma(values, n):
    out = np.full(len(values), np.nan)
    running = np.cumsum(np.r_[0.0, values])
    out[n - 1 :] = (running[n:] - running[:-n]) / n
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")
def test_matches_backtesting_py_trades():
    pd = pytest.importorskip("pandas")
    backtesting = pytest.importorskip("backtesting")
    from backtesting.lib import crossover

    class SmaCross(backtesting.Strategy):
        def init(self):
            self.fast = self.I(_sma, self.data.Close, 10)
            self.slow = self.I(_sma, self.data.Close, 30)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.sell()

    commission = 0.002
    bars = pd.read_csv(SAMPLES / "AAPL.csv.gz", parse_dates=["date"], index_col="date")
    bars = bars.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    run = backtesting.Backtest(bars, SmaCross, cash=100_000, commission=commission, trade_on_close=False,
                               exclusive_orders=True, finalize_trades=True).run()
    theirs = run["_trades"]
    assert len(theirs) >= 10

    # One net fill per bar, as our venue records it; backtesting.py's final close fills at the last bar's open.
    n = len(bars)
    fill_qty, fill_price, fee = np.zeros(n), np.full(n, np.nan), np.zeros(n)
    for trade in theirs.itertuples():
        for bar, qty, price in ((trade.EntryBar, trade.Size, trade.EntryPrice),
                                (trade.ExitBar, -trade.Size, trade.ExitPrice)):
            assert np.isnan(fill_price[bar]) or fill_price[bar] == price  # a reversal closes and opens at one price
            fill_qty[bar] += qty
            fill_price[bar] = price
            fee[bar] += commission * abs(qty) * price
    ts_event = pd.DatetimeIndex(bars.index).as_unit("ns").asi8
    frame = pl.DataFrame({
        "ts_event": ts_event,
        "ts_recv": ts_event + DAY_NS,
        "instrument": "AAPL",
        "position": np.cumsum(fill_qty),
        "fill_qty": fill_qty,
        "fill_price": fill_price,
        "commission": fee,
        "mark_price": bars["Close"].to_numpy(),
    })
    ours, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=True, **NO_COSTS)
    assert cost == 0.0
    _assert_trades(ours, [
        {
            "instrument": "AAPL",
            "size": float(t.Size),
            "entry_ts": pd.Timestamp(t.EntryTime).as_unit("ns").value,
            "exit_ts": pd.Timestamp(t.ExitTime).as_unit("ns").value,
            "entry_price": t.EntryPrice,
            "exit_price": t.ExitPrice,
            "pnl": t.PnL,
            "return_pct": t.ReturnPct * 100,
            "commission": t.Commission,
            "duration_ns": pd.Timedelta(t.Duration).as_unit("ns").value,
            "entry_event_index": t.EntryBar,
            "exit_event_index": t.ExitBar,
        }
        for t in theirs.itertuples()
    ], rel=1e-9)
