"""`tickloom live` paper sessions: the same compiled graph on live feeds (a loopback websocket server playing a
real Binance capture, or a file paced as a live feed), refused unless promoted, journaled, and checked against a
backtest of the inputs it recorded (the shadow check)."""

from pathlib import Path

import pytest
import yaml

from pipelines.spec import load_spec
from runtime.cli import main
from runtime.feed_server import FeedServer
from runtime.journal import read_journal
from runtime.live import LiveOptions, run_live
from runtime.session import shadow_check
from runtime.promotion import PromotionError, Registry
from tests.support import REPO

MM_SPEC = REPO / "specs" / "strategies" / "market_making_binance.yaml"
SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"


def _spec(tmp_path: Path, source: dict | None = None) -> Path:
    document = yaml.safe_load(MM_SPEC.read_text())
    document["nodes"]["md"]["with"]["path"] = str(SPOT)
    if source is not None:
        document["nodes"]["md"] = source
    path = tmp_path / "mm_live.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _promote(path: Path, registry: Path) -> None:
    spec = load_spec(path)
    Registry(registry).record_promotion(spec=spec.name, spec_hash=spec.spec_hash, stage="paper", action="promote",
                                        passed=True, who="test", why="paper session test", gates=[],
                                        previous_hash=None, spec_path=str(path))


def test_a_spec_not_promoted_to_the_stage_is_refused(tmp_path):
    with pytest.raises(PromotionError, match="not promoted to paper"):
        run_live(_spec(tmp_path), LiveOptions(session_dir=tmp_path / "s", registry=str(tmp_path / "r.duckdb")))


# 20x the recorded pace: the 2,000-line capture plays in about a second, slow enough that orders reach the
# venue (their latencies are a few ms) while the market still moves around them
def test_a_paced_file_session_journals_its_orders_and_its_shadow_backtest_decides_the_same(tmp_path):
    path, registry = _spec(tmp_path), tmp_path / "registry.duckdb"
    _promote(path, registry)
    session = run_live(path, LiveOptions(speed=20.0, session_dir=tmp_path / "session", registry=str(registry),
                                         metrics_port=0))
    assert session.events > 1000
    # how many orders fill depends on the wall clock (latencies against a paced feed): the journal and the shadow
    # check must agree with the session whatever happened
    orders, fills = session.result.logs["venue"]["orders"], session.result.logs["venue"]["fills"]
    assert orders.filter(event="sent").height > 0
    journal = read_journal(tmp_path / "session" / "journal.tlj")
    kinds = [r.kind for r in journal.records]
    assert kinds[0] == "session" and "venue.orders" in kinds
    for log, frame in (("orders", orders), ("fills", fills)):
        journaled = sum(len(r.payload["order_id"]) for r in journal.records if r.kind == f"venue.{log}")
        assert journaled == frame.height, log
    assert len(session.tick_to_trade_ns) > 0 and (session.tick_to_trade_ns > 0).all()
    report = shadow_check(tmp_path / "session")
    assert report.ok, report.format()
    assert report.compared["venue.orders"] == orders.height and report.compared["venue.fills"] == fills.height
    # the session is over: the registry says so
    assert Registry(registry).deployments(running_only=True) == []


def test_a_websocket_session_runs_the_graph_on_a_loopback_feed_and_passes_the_shadow_check(tmp_path, capsys):
    registry = tmp_path / "registry.duckdb"
    with FeedServer(SPOT, speed=20.0, snapshot_wait_s=10.0, restamp=True) as server:
        source = {"op": "source.binance_ws",
                  "with": {"url": server.url, "rest_url": server.rest_url, "market": "spot", "symbols": ["BTCUSDT"],
                           "schema": "book_and_trades", "depth_update_ms": 100, "snapshot_limit": 5000,
                           "reconnect_backoff_ms": 50, "max_reconnects": 3}}
        path = _spec(tmp_path, source)
        _promote(path, registry)
        code = main(["live", str(path), "--stage", "paper", "--session", str(tmp_path / "ws"),
                     "--registry", str(registry)])
    assert code == 0
    out = capsys.readouterr().out
    assert "events" in out and "tick-to-trade" in out
    assert main(["shadow", str(tmp_path / "ws")]) == 0
    assert "same decisions" in capsys.readouterr().out
