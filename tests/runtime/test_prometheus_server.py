"""A real Prometheus server scrapes a session's metrics endpoint while a replay of sma_cross updates it.

Needs the ``prometheus`` binary (Debian's package: ``apt-get install -y prometheus``); skipped without it.
Everything listens on 127.0.0.1; Prometheus runs in its own process group and is killed with it.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from runtime.metrics import METRICS, LiveMetrics, publish_replay

ROOT = Path(__file__).resolve().parents[2]
SMA_CROSS = ROOT / "specs" / "strategies" / "sma_cross.yaml"
PROMETHEUS = shutil.which("prometheus")
DEADLINE_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for(what: str, check, process: subprocess.Popen, log: Path):
    """Poll ``check()`` until it returns something truthy; fail with Prometheus' log after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode} before {what}:\n{log.read_text()[-3000:]}")
        try:
            found = check()
        except OSError:  # not listening yet
            found = None
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out after {DEADLINE_S:.0f} s waiting for {what}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def session():
    """A paper-session endpoint fed by a real replay of sma_cross, one event at a time, until the test ends."""
    metrics = LiveMetrics(spec="sma_cross", spec_hash="replay", stage="paper")
    port = metrics.serve(0)
    stop = threading.Event()

    def feed():
        while not stop.is_set():  # replay again when the history ends: a session keeps receiving
            publish_replay(metrics, SMA_CROSS, pace_s=0.002, should_stop=stop.is_set)

    worker = threading.Thread(target=feed, daemon=True)
    worker.start()
    yield metrics, port
    stop.set()
    worker.join(timeout=30)
    metrics.stop()


@pytest.mark.skipif(PROMETHEUS is None, reason="needs the prometheus binary: apt-get install -y prometheus "
                                               "(Debian's package); not installed on this machine")
def test_a_prometheus_server_scrapes_every_series_of_a_running_session(tmp_path, session):
    metrics, metrics_port = session
    web_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: tickloom\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    log = tmp_path / "prometheus.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    api = f"http://127.0.0.1:{web_port}/api/v1"

    def query(expr: str) -> list:
        return get_json(f"{api}/query?{urllib.parse.urlencode({'query': expr})}")["data"]["result"]

    try:
        wait_for("the target to be up", lambda: query('up{job="tickloom"} == 1'), process, log)
        wait_for("two scrapes of the latency histogram", lambda: query(
            "histogram_quantile(0.99, rate(tickloom_tick_to_trade_seconds_bucket[10s])) > 0"), process, log)
        names = set(get_json(f"{api}/label/__name__/values")["data"])
        events = float(query('tickloom_events_total{source="bars"}')[0]["value"][1])
        info = query("tickloom_session_info")[0]["metric"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert process.returncode is not None
    # the series a replay of sma_cross produces (no queue, drop, reject, risk-halt or drift in it)
    produced = {"tickloom_tick_to_trade_seconds_bucket", "tickloom_node_latency_seconds_count", "tickloom_events_total",
                "tickloom_orders_total", "tickloom_fills_total", "tickloom_position", "tickloom_equity",
                "tickloom_pnl", "tickloom_drawdown", "tickloom_risk_state", "tickloom_session_info"}
    assert produced <= names, produced - names
    assert {n for n in names if n.startswith("tickloom_") and not n.endswith("_created")} <= {
        n + suffix for n in METRICS for suffix in ("", "_bucket", "_sum", "_count", "_info")}
    assert events > 0
    assert info["spec"] == "sma_cross" and info["stage"] == "paper" and info["job"] == "tickloom"
