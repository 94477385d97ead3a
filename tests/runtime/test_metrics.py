"""Live metrics: served over HTTP on loopback and scraped; the dashboard names only metrics that exist."""

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats as scipy_stats

from pipelines.run import run_spec
from runtime.metrics import LATENCY_BUCKETS_NS, METRICS, LiveMetrics, exported_series, ks_statistic, psi, publish_replay

ROOT = Path(__file__).resolve().parents[2]
SMA_CROSS = ROOT / "specs" / "strategies" / "sma_cross.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tickloom_dashboard.json"
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"


def scrape(port: int) -> dict[str, dict]:
    """GET /metrics and parse it as Prometheus does: sample name → {labels tuple: value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture
def served():
    metrics = LiveMetrics(spec="sma_cross", spec_hash="ab" * 32, stage="paper")
    port = metrics.serve(0)
    yield metrics, port
    metrics.stop()


def test_every_metric_is_served_on_loopback_and_scraped_with_its_value(served):
    metrics, port = served
    for latency_ns in (1_000, 1_001, 7_500, 10_000_001):
        metrics.observe_tick_to_trade(latency_ns)
    metrics.observe_node_latency("fast+slow", 3_000)
    metrics.add_events("bars", 10, now_ns=0)
    metrics.add_events("bars", 30, now_ns=2_000_000_000)
    metrics.set_queue_depth("orders", 3)
    metrics.add_dropped("bars", "gap", 2)
    metrics.add_quarantined("bars", "crossed_book")
    metrics.add_orders("AAPL", 4)
    metrics.add_fills("AAPL", 3)
    metrics.add_rejects("max_position")
    metrics.set_position("AAPL", -90.0)
    for equity in (10_000.0, 12_000.0, 9_000.0):
        metrics.set_equity(equity)
    metrics.set_risk_state(1)
    metrics.add_trips("max_drawdown")
    metrics.set_drift_reference("sma_fast", np.arange(100.0))
    metrics.update_drift("sma_fast", np.arange(50.0, 150.0))

    samples = scrape(port)

    t2t = {dict(k)["le"]: v for k, v in samples["tickloom_tick_to_trade_seconds_bucket"].items()}
    assert t2t["1e-06"] == 1  # 1,000 ns is "less or equal" 1 µs
    assert t2t["2e-06"] == 2 and t2t["0.01"] == 3 and t2t["+Inf"] == 4
    assert samples["tickloom_tick_to_trade_seconds_count"][()] == 4
    assert samples["tickloom_tick_to_trade_seconds_sum"][()] == pytest.approx((1_000 + 1_001 + 7_500 + 10_000_001) / 1e9)
    assert samples["tickloom_node_latency_seconds_count"][(("node", "fast+slow"),)] == 1
    assert samples["tickloom_events_total"][(("source", "bars"),)] == 40
    assert samples["tickloom_event_rate_per_second"][(("source", "bars"),)] == pytest.approx(20.0)  # 40 in 2 s
    assert samples["tickloom_queue_depth"][(("queue", "orders"),)] == 3
    assert samples["tickloom_dropped_events_total"][(("reason", "gap"), ("source", "bars"))] == 2
    assert samples["tickloom_quarantined_events_total"][(("reason", "crossed_book"), ("source", "bars"))] == 1
    assert samples["tickloom_orders_total"][(("instrument", "AAPL"),)] == 4
    assert samples["tickloom_fills_total"][(("instrument", "AAPL"),)] == 3
    assert samples["tickloom_rejects_total"][(("reason", "max_position"),)] == 1
    assert samples["tickloom_position"][(("instrument", "AAPL"),)] == -90
    assert samples["tickloom_pnl"][()] == -1_000
    assert samples["tickloom_drawdown"][()] == pytest.approx(0.25)  # 9,000 after a 12,000 peak
    assert samples["tickloom_risk_state"][()] == 1
    assert samples["tickloom_risk_trips_total"][(("reason", "max_drawdown"),)] == 1
    assert samples["tickloom_feature_drift_ks"][(("feature", "sma_fast"),)] == pytest.approx(0.5)
    assert samples["tickloom_feature_drift_psi"][(("feature", "sma_fast"),)] > 0.25
    assert samples["tickloom_session_info"] == {(("spec", "sma_cross"), ("spec_hash", "ab" * 32), ("stage", "paper")): 1}
    served_names = {n for n in samples if not n.endswith("_created")}
    assert served_names == exported_series()


def test_stop_frees_the_port_and_serve_refuses_twice():
    metrics = LiveMetrics()
    port = metrics.serve(0)
    with pytest.raises(RuntimeError, match="already serving"):
        metrics.serve(0)
    metrics.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    metrics.stop()  # a second stop is a no-op


def test_buckets_are_log_spaced_from_one_microsecond_to_ten_milliseconds():
    assert LATENCY_BUCKETS_NS[0] == 1_000 and LATENCY_BUCKETS_NS[-1] == 10_000_000
    ratios = np.diff(np.log10(LATENCY_BUCKETS_NS))
    assert np.all(ratios > 0) and np.all(ratios < 0.41)  # 1-2-5: steps of log10 2, 2.5, 2


def test_many_observations_at_once_land_where_single_ones_do():
    one, many = LiveMetrics(), LiveMetrics()
    latencies = np.random.default_rng(3).integers(0, 20_000_000, 5_000)
    for value in latencies.tolist():
        one.observe_tick_to_trade(value)
    many.observe_tick_to_trade_many(latencies)
    assert one.exposition() == many.exposition()


def test_equity_samples_of_one_batch_all_count_toward_the_peak():
    metrics = LiveMetrics()
    metrics.set_equity(100.0)
    metrics.observe_equity(np.array([110.0, np.nan, 120.0, 90.0]))  # the peak is inside the batch
    metrics.observe_equity(np.array([np.nan]))  # nothing known: nothing changes
    samples = {s.name: s.value for f in text_string_to_metric_families(metrics.exposition().decode())
               for s in f.samples}
    assert samples["tickloom_equity"] == 90.0 and samples["tickloom_pnl"] == -10.0
    assert samples["tickloom_drawdown"] == pytest.approx(0.25)


def test_drift_statistics_match_scipy_and_grow_with_the_shift():
    rng = np.random.default_rng(7)
    reference = rng.normal(0.0, 1.0, 5_000)
    same = rng.normal(0.0, 1.0, 2_000)
    shifted = rng.normal(1.0, 1.0, 2_000)
    for recent in (same, shifted):
        assert ks_statistic(reference, recent) == pytest.approx(scipy_stats.ks_2samp(reference, recent).statistic)
    assert psi(reference, same) < 0.02
    assert psi(reference, shifted) > 0.25
    assert np.isnan(psi(reference, [np.nan]))
    with pytest.raises(KeyError, match="set_drift_reference"):
        LiveMetrics().update_drift("unknown", [1.0])


def test_a_replay_publishes_the_account_the_backtest_computes():
    metrics = LiveMetrics()
    events = publish_replay(metrics, SMA_CROSS)
    batch = run_spec(SMA_CROSS, write=False)
    sim = batch.replay.recorded["sim"]
    samples = {s.name: s.value for f in text_string_to_metric_families(metrics.exposition().decode())
               for s in f.samples if not s.labels or "le" not in s.labels}
    assert events == batch.replay.events == samples["tickloom_events_total"]
    assert samples["tickloom_tick_to_trade_seconds_count"] == events
    assert samples["tickloom_position"] == sim["position"][-1]
    assert samples["tickloom_equity"] == sim["equity"][-1]
    fills = int((sim["fill_qty"].fill_nan(0) != 0).sum())
    assert samples["tickloom_fills_total"] == fills > 0
    assert samples["tickloom_orders_total"] >= fills


def _expressions(dashboard: dict) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_dashboard_queries_only_exported_metrics_and_shows_every_one():
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = _expressions(dashboard) + [v["query"] for v in dashboard["templating"]["list"]]
    named = {name for e in expressions for name in re.findall(r"\btickloom_[a-z_]+", e)}
    assert named and named <= exported_series(), named - exported_series()
    families = {n for n in METRICS if any(s.startswith(n) for s in named)}
    assert families == set(METRICS)
    quantiles = [e for e in expressions if "tick_to_trade_seconds_bucket" in e]
    assert {re.search(r"histogram_quantile\(([\d.]+)", e).group(1) for e in quantiles} == {"0.5", "0.99", "0.999"}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_scrape_config_targets_the_default_metrics_port():
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "tickloom")
    assert job["metrics_path"] == "/metrics"
    assert "127.0.0.1:9464" in job["static_configs"][0]["targets"]
