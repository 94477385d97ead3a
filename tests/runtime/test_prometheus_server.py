"""A real Prometheus server scrapes a running ``tickloom live`` paper session and receives its series.

The session is the paper market maker (specs/deploy/market_making_paper.yaml) on the shipped Binance sample,
paced at its recorded speed (about 18 s of feed), in its own process, exactly as an operator starts it. The
overlay shortens the drift node's reference (3,000 sizes) and window (1,000) so drift is measured within seconds,
and a tiny ``max_drift`` makes the circuit breaker trip on it about 5 s into the feed, after the first quotes:
drift depends on the market data only, so the trip does not depend on how the wall clock paces fills. The test
stops the session (SIGINT, as Ctrl-C) once Prometheus has every series.

Needs the ``prometheus`` binary (Debian's package: ``apt-get install -y prometheus``); skipped without it.
Everything listens on 127.0.0.1; Prometheus and the session run in their own process groups and are ended
with them.
"""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipelines.spec import load_spec
from runtime.metrics import METRICS
from runtime.promotion import Registry
from tests.support import REPO

PAPER = REPO / "specs" / "deploy" / "market_making_paper.yaml"
SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
PROMETHEUS = shutil.which("prometheus")
SETS = ["max_drift=0.01"]  # the KS statistic of the sample's sizes is about 0.2-0.3: trips when first measured
STARTUP_S = 120.0  # until the session serves: a cold numba cache adds ~25 s of compiling the graph
DEADLINE_S = 40.0  # from then until every series has arrived (the trip comes ~5 s into the feed)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _spec(tmp_path: Path) -> Path:
    """An overlay of the paper spec: the sample by absolute path, drift over 3,000 reference and 1,000 recent sizes."""
    overlay = {"tickloom": 1, "extends": str(PAPER), "name": "market_making_paper",
               "nodes": {"md": {"with": {"path": str(SPOT)}},
                         "drift": {"with": {"reference_events": 3000, "window": 1000, "every": 50}}}}
    path = tmp_path / "paper_session.yaml"
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


def _promote(path: Path, registry: Path) -> None:
    spec = load_spec(path, sets=SETS)
    Registry(registry).record_promotion(spec=spec.name, spec_hash=spec.spec_hash, stage="paper", action="promote",
                                        passed=True, who="test", why="prometheus scrape test", gates=[],
                                        previous_hash=None, spec_path=str(path))


def _start(command: list[str], log: Path, **options) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, **options)


def _end(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_until_serving(port: int, session: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if session.poll() is not None:
            pytest.fail(f"the session exited with {session.returncode} before serving:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the session did not serve metrics within {STARTUP_S:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.mark.skipif(PROMETHEUS is None, reason="needs the prometheus binary: apt-get install -y prometheus "
                                               "(Debian's package); not installed on this machine")
def test_a_prometheus_server_receives_the_series_of_a_running_paper_session(tmp_path):
    spec, registry = _spec(tmp_path), tmp_path / "registry.duckdb"
    _promote(spec, registry)
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: tickloom\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    prometheus_log, session_log = tmp_path / "prometheus.log", tmp_path / "session.log"
    prometheus = _start([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                         f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"], prometheus_log)
    session = _start([sys.executable, "-m", "runtime.cli", "live", str(spec), "--stage", "paper", "--speed", "1",
                      "--metrics-port", str(metrics_port), "--session", str(tmp_path / "session"),
                      "--registry", str(registry), "--fsync", "never", *[a for s in SETS for a in ("--set", s)]],
                     session_log, cwd=REPO)
    api = f"http://127.0.0.1:{web_port}/api/v1"

    def query(expr: str) -> dict[str, float]:
        """Instant query over the last minute (series stay queryable after the session ends): labels → value."""
        found = get_json(f"{api}/query?{urllib.parse.urlencode({'query': expr})}")["data"]["result"]
        return {json.dumps(r["metric"], sort_keys=True): float(r["value"][1]) for r in found}

    # what the session must show, each as a PromQL expression that returns a series once it has arrived
    wanted = {
        "tick-to-trade": "last_over_time(tickloom_tick_to_trade_seconds_count[1m]) > 0",
        "events": 'last_over_time(tickloom_events_total{source="md"}[1m]) > 0',
        "orders": 'last_over_time(tickloom_orders_total{instrument="BTCUSDT"}[1m]) > 0',
        # how many quotes fill depends on the wall clock (latencies against a paced feed): present, any value
        "fills": 'last_over_time(tickloom_fills_total{instrument="BTCUSDT"}[1m]) >= 0',
        "position": 'last_over_time(tickloom_position{instrument="BTCUSDT"}[1m])',
        "equity": "last_over_time(tickloom_equity[1m]) > 90000",
        "pnl": "last_over_time(tickloom_pnl[1m])",
        "drawdown": "last_over_time(tickloom_drawdown[1m]) >= 0",
        "halted": "last_over_time(tickloom_risk_state[1m]) == 1",
        "trip": 'last_over_time(tickloom_risk_trips_total{reason="max_drift"}[1m]) == 1',
        "refused while halted": 'last_over_time(tickloom_rejects_total{reason="halted"}[1m]) > 0',
        "drift": 'last_over_time(tickloom_feature_drift_ks{feature="md.size"}[1m]) > 0.01',
        "node latency": "last_over_time(tickloom_node_latency_seconds_count[1m]) > 0",
        "session": 'last_over_time(tickloom_session_info{spec="market_making_paper", stage="paper"}[1m])',
    }
    arrived: dict[str, dict] = {}
    try:
        _wait_until_serving(metrics_port, session, session_log)
        deadline = time.monotonic() + DEADLINE_S
        while len(arrived) < len(wanted) and time.monotonic() < deadline:
            if prometheus.poll() is not None:
                pytest.fail(f"prometheus exited with {prometheus.returncode}:\n{prometheus_log.read_text()[-3000:]}")
            for what, expr in wanted.items():
                if what not in arrived:
                    try:
                        if found := query(expr):
                            arrived[what] = found
                    except OSError:  # Prometheus not listening yet
                        break
            time.sleep(0.5)
        names = set(get_json(f"{api}/label/__name__/values")["data"])
        _end(session, signal.SIGINT)  # Ctrl-C: the session stops, writes its logs and exits 0
    finally:
        _end(session)
        _end(prometheus)
    missing = sorted(set(wanted) - set(arrived))
    assert not missing, (f"series that never arrived: {missing}\nsession log:\n{session_log.read_text()[-3000:]}"
                         f"\nprometheus log:\n{prometheus_log.read_text()[-2000:]}")
    assert session.returncode == 0, session_log.read_text()[-3000:]
    # every series the session exports is one METRICS declares
    assert {n for n in names if n.startswith("tickloom_") and not n.endswith("_created")} <= {
        n + suffix for n in METRICS for suffix in ("", "_bucket", "_sum", "_count", "_info")}
    (position,) = arrived["position"].values()
    assert math.isfinite(position) and abs(position) <= 0.006  # BTC, within the breaker's position limit
