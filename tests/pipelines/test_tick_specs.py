"""The tick-level strategy specs run end to end: a market maker on Binance, an imbalance taker on CME MBO.

Each spec runs on the data the project ships (a fresh clone) and, when ``../shared/data`` is present, on the
larger files via ``--set path=...`` (skipped otherwise, with the reason). What is checked is what a tick
backtest must get right whatever the PnL: fills on both sides at the quotes' prices as maker, the accounting
(cash moves by each fill's notional and fee, equity = cash + position × mid on every event), the inventory
limit, and for the taker that every order goes the way its target asked.
"""

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from nodes.backtest.tick import TickBacktestResult
from pipelines.run import run_spec
from tests.support import REPO

SPECS = REPO / "specs" / "strategies"
MARKET_MAKER = SPECS / "market_making_binance.yaml"
TAKER = SPECS / "mbo_taker_cme.yaml"
SHARED = REPO.parent / "shared" / "data"
BIG_CAPTURE = "binance/spot_btcusdt_20240808.gz"
ESH4 = "dbn/esh4-glbx-mdp3-20231224.mbo.dbn.zst"
ESM4 = "dbn/orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"
UNIT = 1e9


def _shared(name: str) -> list[str]:
    """The ``--set path=...`` for a file of ``../shared/data``, or a skip."""
    if not (SHARED / name).exists():
        pytest.skip(f"needs ../shared/data/{name}: not in a fresh clone")
    return [f"path=../shared/data/{name}"]


def _run(spec: Path, sets: list[str], record: list[str]):
    output = run_spec(spec, sets=sets, record=record, write=False)
    result = output.replay.summaries["venue"]
    assert isinstance(result, TickBacktestResult)
    return output, result


def _params(spec: Path, sets: list[str]) -> dict:
    params = dict(yaml.safe_load(spec.read_text())["params"])
    for item in sets:
        name, value = item.split("=", 1)
        params[name] = yaml.safe_load(value)
    return params


def _check_accounting(output, result: TickBacktestResult, start_cash: float) -> None:
    """Cash and position move by each fill exactly; equity = cash + position × mid on every event and log row."""
    fills = result.fills
    side, qty = fills["side"].to_numpy(), fills["qty"].to_numpy()
    position = fills["position"].to_numpy()
    np.testing.assert_array_equal(position, np.cumsum(side * qty))
    cash_before = np.concatenate([[start_cash], fills["cash"].to_numpy()[:-1]])
    expected = cash_before - side * fills["notional"].to_numpy() - fills["fee"].to_numpy()
    np.testing.assert_allclose(fills["cash"].to_numpy(), expected, rtol=0, atol=1e-9 * start_cash)
    np.testing.assert_allclose(fills["notional"].to_numpy(), fills["price"].to_numpy() / UNIT * qty / UNIT, rtol=1e-12)
    venue, book = output.replay.recorded["venue"], output.replay.recorded["book"]
    best_bid, best_ask = book["best_bid"].to_numpy(), book["best_ask"].to_numpy()
    two_sided = best_bid < best_ask
    mid = (best_bid + best_ask) / 2e9
    held = venue["position"].to_numpy() / UNIT
    equity = venue["cash"].to_numpy() + held * mid
    assert two_sided.sum() > 0
    np.testing.assert_allclose(venue["equity"].to_numpy()[two_sided], equity[two_sided], rtol=1e-12)
    log = result.equity.filter(pl.col("mid").is_not_nan())
    np.testing.assert_allclose(log["equity"].to_numpy(),
                               log["cash"].to_numpy() + log["position"].to_numpy() / UNIT * log["mid"].to_numpy(),
                               rtol=1e-12)


# -- the market maker -----------------------------------------------------------------------------------------------

def _check_market_maker(sets: list[str]) -> tuple[TickBacktestResult, np.ndarray]:
    params = _params(MARKET_MAKER, sets)
    output, result = _run(MARKET_MAKER, sets, ["venue", "book", "quotes"])
    fills = result.fills
    assert (fills["side"] == 1).sum() > 0 and (fills["side"] == -1).sum() > 0, "fills on both sides"
    # post-only quotes: every fill is maker, charged the maker fee, at a price the strategy quoted on that side
    assert (fills["liquidity"] == "maker").all()
    np.testing.assert_allclose(fills["fee"].to_numpy(), params["maker_fee"] * fills["notional"].to_numpy(), rtol=1e-12)
    quotes = output.replay.recorded["quotes"]
    for side, port in ((1, "bid_px"), (-1, "ask_px")):
        quoted = set(quotes[port].unique().to_list())
        assert set(fills.filter(pl.col("side") == side)["price"].to_list()) <= quoted
    tick = round(params["tick_size"] * UNIT)
    assert (fills["price"] % tick == 0).all()
    _check_accounting(output, result, result.stats["start_cash"])
    assert result.stats["pnl"] == pytest.approx(result.stats["final_equity"] - result.stats["start_cash"])
    position = output.replay.recorded["venue"]["position"].to_numpy()
    return result, np.abs(np.concatenate([position, fills["position"].to_numpy()])) / UNIT


def test_market_maker_on_the_shipped_capture():
    result, abs_position = _check_market_maker([])
    assert result.stats["fills"] >= 10
    assert abs_position.max() <= _params(MARKET_MAKER, [])["max_position"]


def test_market_maker_on_the_whole_capture():
    result, abs_position = _check_market_maker(_shared(BIG_CAPTURE))
    assert result.stats["fills"] >= 200 and result.stats["orders_sent"] > result.stats["fills"]


def test_market_maker_inventory_stays_within_max_position_on_the_whole_capture():
    _, abs_position = _check_market_maker(_shared(BIG_CAPTURE))
    assert abs_position.max() <= _params(MARKET_MAKER, [])["max_position"]


# -- the taker ------------------------------------------------------------------------------------------------------

def _check_taker(output, result: TickBacktestResult, params: dict) -> None:
    """Every order is sent toward the target the strategy wanted when it was sent; fills are taker fills."""
    target = output.replay.recorded["target"]
    ts_recv, wanted = target["ts_recv"].to_numpy(), target["target"].to_numpy()
    sent = result.orders.filter(pl.col("event") == "sent")
    assert sent.height >= 1 and sent.height <= np.count_nonzero(np.diff(wanted)) + 1 + result.stats["rejected"]
    fills = result.fills
    position_at = np.concatenate([[0], fills["position"].to_numpy()])
    fill_times = fills["ts_local"].to_numpy()
    for ts_local, side, qty in sent.select("ts_local", "side", "qty").iter_rows():
        at = np.searchsorted(ts_recv, ts_local, side="right") - 1  # the event the order was decided on
        known = position_at[np.searchsorted(fill_times, ts_recv[at], side="right")]
        assert side == np.sign(wanted[at] - known) and qty == abs(wanted[at] - known)
    assert (fills["liquidity"] == "taker").all()
    expected_fee = (params.get("taker_fee", 0.0) * fills["notional"].to_numpy()
                    + params["fee_per_contract_points"] * fills["qty"].to_numpy() / UNIT)
    np.testing.assert_allclose(fills["fee"].to_numpy(), expected_fee, rtol=1e-12)
    assert (np.abs(fills["position"].to_numpy()) <= round(params["qty"] * UNIT)).all()
    _check_accounting(output, result, result.stats["start_cash"])


def test_taker_on_the_shipped_mbo_file_runs_without_trading():
    """Two cancels of orders the book never saw: the wiring runs, the book stays empty, nothing trades."""
    output, result = _run(TAKER, [], ["venue", "book", "target"])
    assert output.replay.events == 2 and result.stats["fills"] == 0
    assert (output.replay.recorded["target"]["target"] == 0).all()


def test_taker_on_the_esh4_snapshot_decides_once():
    """The ESH4 file is one snapshot (8,725 adds at one instant): the book is built, one decision, no trade."""
    output, result = _run(TAKER, _shared(ESH4), ["venue", "book", "target"])
    book = output.replay.recorded["book"]
    assert output.replay.events == 8725 and book["orders"][-1] == 8725 and book["best_bid"][-1] < book["best_ask"][-1]
    assert result.stats["fills"] == 0 and result.stats["orders_sent"] == 0


def test_taker_trades_follow_the_signal_on_esm4():
    sets = [*_shared(ESM4), "threshold=0.2", "hysteresis=0.1", "cooldown_events=3"]
    output, result = _run(TAKER, sets, ["venue", "book", "target"])
    assert result.stats["fills"] >= 2
    _check_taker(output, result, _params(TAKER, sets))


def test_taker_trades_follow_the_signal_on_the_shipped_binance_capture(tmp_path):
    """The same taker on an L2 book (Binance book_and_trades, shipped), so a fresh clone checks the target path."""
    spec = yaml.safe_load(TAKER.read_text())
    spec["name"] = "imbalance_taker_binance"
    spec["params"].update({"qty": 0.01, "threshold": 0.5, "hysteresis": 0.2, "cooldown_events": 10,
                           "fee_per_contract_points": 0.0})
    del spec["params"]["path"]
    capture = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
    nodes = spec["nodes"]
    nodes["mbo"] = {"op": "source.binance_capture", "with": {"path": str(capture), "schema": "book_and_trades"}}
    nodes["book"] = {"op": "book.l2", "in": {p: f"mbo.{p}" for p in ("side", "price", "size", "action", "flags")}}
    del nodes["venue"]["in"]["order_id"]
    nodes["venue"]["with"].update({"book": "l2", "taker_fee": 0.001})
    path = tmp_path / "taker_binance.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    output, result = _run(path, [], ["venue", "book", "target"])
    assert result.stats["fills"] >= 4
    _check_taker(output, result, {**spec["params"], "taker_fee": 0.001})
