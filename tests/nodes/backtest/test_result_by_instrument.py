"""Per-instrument statistics (``stats_by_instrument``): every column by hand, instruments without trades, and
on a real four-instrument run the sums that must equal the portfolio's."""

import math

import numpy as np
import polars as pl
import pytest

from nodes.backtest.result import BY_INSTRUMENT_SCHEMA, format_by_instrument, stats_by_instrument
from pipelines.run import run_spec
from tests.support import multi_instrument_nodes, write_spec

nan = float("nan")


def test_every_column_by_hand():
    # A: five events, a position after three of them; B: four events, one; C: two events, never a position
    recorded = pl.DataFrame({
        "instrument": pl.Series(["A", "B", "C", "A", "B", "A", "C", "B", "A", "B", "A"],
                                dtype=pl.Enum(["A", "B", "C"])),
        "position": [10.0, 0.0, 0.0, 10.0, -5.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0],
    })
    trades = pl.DataFrame({
        "instrument": ["A", "B", "A"],
        "size": [10.0, -5.0, 4.0],
        "entry_price": [100.0, 50.0, 125.0],
        "pnl": [40.0, -10.0, -20.0],
        "return_pct": [4.5, -3.5, -3.75],
        "commission": [2.0, 0.5, 1.0],
    })
    table = stats_by_instrument(recorded, trades)
    assert table.schema == pl.Schema(BY_INSTRUMENT_SCHEMA)
    a, b, c = table.rows(named=True)
    assert a == {
        "instrument": "A", "# Trades": 2, "Win Rate [%]": 50.0, "PnL [$]": 20.0,
        "Return on Notional [%]": 20.0 / (10 * 100.0 + 4 * 125.0) * 100,  # 20 / 1500
        "Best Trade [%]": 4.5, "Worst Trade [%]": -3.75, "Exposure Time [%]": 60.0, "Commissions [$]": 3.0,
    }
    assert b == {
        "instrument": "B", "# Trades": 1, "Win Rate [%]": 0.0, "PnL [$]": -10.0,
        "Return on Notional [%]": -4.0,  # -10 / (5 × 50)
        "Best Trade [%]": -3.5, "Worst Trade [%]": -3.5, "Exposure Time [%]": 25.0, "Commissions [$]": 0.5,
    }
    assert c["instrument"] == "C" and c["# Trades"] == 0 and c["PnL [$]"] == 0.0 and c["Commissions [$]"] == 0.0
    assert c["Exposure Time [%]"] == 0.0
    assert all(math.isnan(c[k]) for k in ("Win Rate [%]", "Return on Notional [%]", "Best Trade [%]",
                                          "Worst Trade [%]"))


def test_no_trades_at_all():
    recorded = pl.DataFrame({"instrument": ["A", "A"], "position": [0.0, 0.0]})
    trades = pl.DataFrame(schema={"instrument": pl.String, "size": pl.Float64, "entry_price": pl.Float64,
                                  "pnl": pl.Float64, "return_pct": pl.Float64, "commission": pl.Float64})
    table = stats_by_instrument(recorded, trades)
    assert table.height == 1 and table["# Trades"].to_list() == [0] and table["PnL [$]"].to_list() == [0.0]


def test_format_shows_every_instrument_and_dashes_for_nan():
    table = pl.DataFrame({"instrument": ["A", "B"], "# Trades": [2, 0], "PnL [$]": [1234.5, 0.0],
                          "Win Rate [%]": [50.0, nan]})
    lines = format_by_instrument(table).splitlines()
    assert lines[0].split() == ["instrument", "#", "Trades", "PnL", "[$]", "Win", "Rate", "[%]"]
    assert lines[1].split() == ["A", "2", "1,234.50", "50.00"]
    assert lines[2].split() == ["B", "0", "0.00", "--"]
    assert len({len(line) for line in lines}) == 1


@pytest.mark.parametrize("close_at_end", [True, False])
def test_four_instruments_add_up_to_the_portfolio(tmp_path, close_at_end):
    nodes = multi_instrument_nodes(0.25)
    nodes["sim"]["with"] = {**nodes["sim"]["with"], "close_at_end": close_at_end}
    run = run_spec(write_spec(tmp_path, "four", nodes), write=False, record=["sim"])
    bt = run.backtest
    table = bt.by_instrument
    assert table["instrument"].to_list() == ["AAPL", "MSFT", "IBM", "KO"]
    assert (table["# Trades"] > 0).all()
    assert table["# Trades"].sum() == bt.stats["# Trades"] == bt.trades.height
    assert table["PnL [$]"].sum() == pytest.approx(math.fsum(bt.trades["pnl"].to_list()), rel=1e-12, abs=1e-9)
    assert table["Commissions [$]"].sum() == pytest.approx(bt.stats["Commissions [$]"], rel=1e-12)
    if close_at_end:
        # every position is closed at the end: the trades' PnL is the account's
        assert table["PnL [$]"].sum() == pytest.approx(bt.stats["Equity Final [$]"] - 100_000, rel=1e-9)
    sim = run.replay.recorded["sim"]
    for row in table.iter_rows(named=True):
        rows = sim.filter(pl.col("instrument").cast(pl.String) == row["instrument"])
        assert row["Exposure Time [%]"] == pytest.approx(100 * float((rows["position"] != 0).mean()))
        mine = bt.trades.filter(pl.col("instrument") == row["instrument"])
        assert row["Best Trade [%]"] == mine["return_pct"].max()
        assert row["Worst Trade [%]"] == mine["return_pct"].min()
        assert row["Win Rate [%]"] == pytest.approx(100 * float((mine["pnl"] > 0).mean()))
    assert np.isfinite(table["Return on Notional [%]"].to_numpy()).all()
