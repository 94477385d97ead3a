"""kill -9 at random points of a scripted paper session: resumed each time, nothing lost, nothing sent twice."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.plan import compile_plan
from pipelines.spec import load_spec
from runtime.journal import read_journal
from runtime.promotion import Registry
from runtime.recovery import recover_session
from runtime.session import shadow_check
from tests.support import REPO, promoted_live_market_maker

SPOT_SAMPLE = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"

def _live_command(path: Path, folder: Path, registry: Path, resume: bool, speed: float = 8.0) -> list[str]:
    """The session at ``speed`` times the recorded pace: the ~19 s cut plays in 19 / speed seconds."""
    command = [sys.executable, "-m", "runtime.cli", "live", str(path), "--stage", "paper", "--speed", str(speed),
               "--session", str(folder), "--registry", str(registry), "--fsync", "never"]
    return command + ["--resume"] if resume else command


def _wait_started(process: subprocess.Popen, folder: Path, starts: int, timeout_s: float = 120.0) -> None:
    """Wait until the session's ``starts``-th start is journaled (compiled, recovered, feeding)."""
    deadline = time.monotonic() + timeout_s
    journal = folder / "journal.tlj"
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and sum(r.kind in ("session", "resumed") for r in read_journal(journal).records) >= starts:
            return
        time.sleep(0.05)
    assert process.poll() is None or process.returncode == 0, process.stderr.read()[-3000:]


@pytest.mark.slow
def test_a_session_killed_at_random_points_loses_no_order_sends_none_twice_and_matches_the_venue(tmp_path):
    """kill -9 at random moments of a scripted paper session, resume each time, run it to its end: the journal
    holds every order the recorded market decides exactly once, and positions equal the venue's."""
    path, registry = promoted_live_market_maker(tmp_path)
    spec = load_spec(path)
    folder = tmp_path / "session"
    rng = np.random.default_rng(20261125)
    kills = 0
    for attempt in range(4):
        process = subprocess.Popen(_live_command(path, folder, registry, resume=attempt > 0), cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_started(process, folder, starts=attempt + 1)
        if attempt < 3:
            time.sleep(float(rng.uniform(0.05, 1.0)))
            if process.poll() is None:
                process.kill()  # SIGKILL: no handler, no flush, no clean-up
                process.communicate()
                kills += 1
                continue
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-3000:]
        break
    assert kills >= 2, "the session ended before it could be killed: slow the feed down"
    records = read_journal(folder / "journal.tlj").records
    assert sum(r.kind == "resumed" for r in records) >= kills
    sent = [i for r in records if r.kind == "venue.orders"
            for i, event in zip(r.payload["order_id"], r.payload["event"]) if event == "sent"]
    assert len(sent) == len(set(sent)), "an order id was sent twice"
    # no order lost: the journal is exactly what a backtest of all the inputs the sessions saw decides
    report = shadow_check(folder)
    assert report.ok, report.format()
    journaled_orders = sum(len(r.payload["order_id"]) for r in records if r.kind == "venue.orders")
    assert journaled_orders == report.compared["venue.orders"]
    # positions equal the venue's: a last recovery of the finished session reconciles without a difference
    recovery = recover_session(folder, compile_plan(spec))
    assert recovery.recovered == {} and recovery.reconciliation.differences == []
    # the killed processes' deployments were closed by the processes that took their journal over
    assert Registry(registry).deployments(running_only=True) == []
    assert len(Registry(registry).deployments(running_only=False)) == kills + 1


@pytest.mark.slow
def test_a_standby_takes_over_a_killed_primary_and_finishes_its_session(tmp_path):
    """A standby waits on the session's journal lock; kill -9 of the primary hands it the session, which it
    recovers and runs to the end: the orders of the whole session are one backtest's, none twice."""
    path, registry = promoted_live_market_maker(tmp_path)
    folder = tmp_path / "session"
    primary = subprocess.Popen(_live_command(path, folder, registry, resume=False, speed=3.0), cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_started(primary, folder, starts=1)
    standby = subprocess.Popen(_live_command(path, folder, registry, resume=False, speed=3.0) + ["--standby"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    assert standby.poll() is None, standby.stderr.read()[-3000:]  # waiting: the primary holds the journal
    primary.kill()
    primary.communicate()
    out, err = standby.communicate(timeout=180)
    assert standby.returncode == 0, err[-3000:]
    records = read_journal(folder / "journal.tlj").records
    assert [r.kind for r in records].count("resumed") == 1 and records[-1].kind == "ended"
    sent = [i for r in records if r.kind == "venue.orders"
            for i, event in zip(r.payload["order_id"], r.payload["event"]) if event == "sent"]
    assert len(sent) == len(set(sent))
    report = shadow_check(folder)
    assert report.ok, report.format()


def test_a_standby_of_a_session_that_ended_cleanly_does_not_take_over(tmp_path):
    from runtime.journal import Journal
    from runtime.recovery import wait_to_take_over

    with Journal(tmp_path / "journal.tlj", fsync="never") as journal:
        journal.append("session", {})
        journal.append("ended", {"events": 0})
    assert wait_to_take_over(tmp_path) is False
    with Journal(tmp_path / "journal.tlj", fsync="never") as journal:
        journal.append("resumed", {})
    assert wait_to_take_over(tmp_path) is True  # the last start did not end: a crash to recover


@pytest.mark.slow
def test_a_websocket_session_killed_and_resumed_rebuilds_the_book_from_a_fresh_snapshot(tmp_path):
    """The market goes on while the session is down (one timeline, like a venue's): the resumed session
    rebuilds its state from its recorded inputs, reconnects, takes the book as of now from a snapshot and
    trades on; its whole journal is still exactly what a backtest of everything it recorded decides."""
    import yaml

    from runtime.feed_server import FeedServer

    path, registry = promoted_live_market_maker(tmp_path)
    folder = tmp_path / "session"
    with FeedServer(SPOT_SAMPLE, speed=2.0, snapshot_wait_s=10.0, restamp=True) as server:
        document = yaml.safe_load(path.read_text())
        document["nodes"]["md"] = {"op": "source.binance_ws", "with": {
            "url": server.url, "rest_url": server.rest_url, "market": "spot", "symbols": ["BTCUSDT"],
            "schema": "book_and_trades", "depth_update_ms": 100, "snapshot_limit": 5000,
            "reconnect_backoff_ms": 50, "max_reconnects": 3}}
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        Registry(registry).record_promotion(spec="market_making_binance", spec_hash=load_spec(path).spec_hash,
                                            stage="paper", action="promote", passed=True, who="test",
                                            why="websocket kill test", gates=[], previous_hash=None,
                                            spec_path=str(path))
        first = subprocess.Popen(_live_command(path, folder, registry, resume=False), cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_started(first, folder, starts=1)
        time.sleep(1.5)
        assert first.poll() is None, first.stderr.read()[-3000:]
        first.kill()
        first.communicate()
        second = subprocess.Popen(_live_command(path, folder, registry, resume=True), cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-3000:]
    assert "recovered" in out
    records = read_journal(folder / "journal.tlj").records
    resumed = [r for r in records if r.kind == "resumed"]
    assert len(resumed) == 1 and resumed[0].payload["differences"] == []
    assert records[-1].kind == "ended" and records[-1].payload["events"] > resumed[0].payload["events"]
    sent = [i for r in records if r.kind == "venue.orders"
            for i, event in zip(r.payload["order_id"], r.payload["event"]) if event == "sent"]
    assert sent and len(sent) == len(set(sent))
    report = shadow_check(folder)
    assert report.ok, report.format()
