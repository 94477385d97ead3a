"""The venue in whole specs run by the engine: logs drained per chunk, cpu vs numba, summaries, L2 and L3."""

import polars as pl
import pytest

from nodes.backtest.tick import TickBacktestResult
from pipelines.run import run_spec
from tests.nodes.backtest.tick.market_data import BINANCE, DBN_MBO
from tests.support import assert_frames_identical, write_spec

MARKET = {"side": "md.side", "price": "md.price", "size": "md.size", "action": "md.action", "flags": "md.flags"}


def market_making_nodes(**venue) -> dict:
    return {
        "md": {"op": "source.binance_capture", "with": {"path": str(BINANCE), "schema": "book_and_trades"}},
        "book": {"op": "book.l2", "in": MARKET},
        "quotes": {"op": "strategy.market_maker",
                   "in": {"best_bid": "book.best_bid", "best_ask": "book.best_ask",
                          "position": "prev(venue.position)", "flags": "md.flags"},
                   "with": {"tick_size": 0.01, "quote_qty": 0.001, "max_position": 0.004,
                            "skew_ticks_per_unit": 1000}},
        "venue": {"op": "backtest.tick_venue",
                  "in": {**MARKET, "bid_px": "quotes.bid_px", "bid_qty": "quotes.bid_qty",
                         "ask_px": "quotes.ask_px", "ask_qty": "quotes.ask_qty"},
                  "with": {"queue_model": "prob_log", "maker_fee": -0.0001, "taker_fee": 0.0004,
                           "entry_latency": {"model": "lognormal", "median": "300us", "sigma": 0.4},
                           "response_latency": "300us", "seed": 5, **venue}},
    }


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    spec = write_spec(tmp_path_factory.mktemp("mm"), "mm", market_making_nodes(), defaults={"place": "cpu"})
    return run_spec(spec, write=False)


def test_the_engine_drains_the_venue_logs_and_summarizes_them(cpu_run):
    logs = cpu_run.replay.logs["venue"]
    assert set(logs) == {"orders", "fills", "queue", "equity"}
    assert logs["fills"].height > 5
    assert logs["fills"]["instrument"].cast(pl.String).unique().to_list() == ["BTCUSDT"]
    assert "venue" not in cpu_run.replay.recorded  # record_events = False: the logs are the record
    result = cpu_run.replay.summaries["venue"]
    assert isinstance(result, TickBacktestResult)
    assert result.stats["fills"] == logs["fills"].height
    assert result.stats["max_abs_position"] <= 0.004 + 0.001  # the strategy's limit, one fill in flight
    assert "PnL" in result.format()


def test_a_spec_gives_the_same_logs_on_numba_and_in_small_chunks(cpu_run, tmp_path):
    numba_spec = write_spec(tmp_path, "mm_numba", market_making_nodes(), defaults={"place": "numba"})
    small = write_spec(tmp_path, "mm_small", market_making_nodes(), defaults={"place": "cpu", "chunk_events": 500})
    for spec in (numba_spec, small):
        other = run_spec(spec, write=False)
        for name, frame in cpu_run.replay.logs["venue"].items():
            assert_frames_identical(frame, other.replay.logs["venue"][name], f"{spec.stem} {name}")


def test_an_l3_spec_on_the_shipped_mbo_sample(tmp_path):
    nodes = {
        "mbo": {"op": "source.dbn", "with": {"path": str(DBN_MBO), "schema": "orders"}},
        "venue": {"op": "backtest.tick_venue",
                  "in": {"order_id": "mbo.order_id", **{k: v.replace("md.", "mbo.") for k, v in MARKET.items()},
                         "target": "mbo.size"},
                  "with": {"book": "l3", "orders": "target", "taker_order": "fok"}},
    }
    out = run_spec(write_spec(tmp_path, "l3", nodes), write=False)
    equity = out.replay.logs["venue"]["equity"]
    assert equity["book_inconsistent"].to_list() == [0]  # both records are cancels of unknown orders
    assert out.replay.summaries["venue"].stats["fills"] == 0
