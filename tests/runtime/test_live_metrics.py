"""A paper session's metrics come from what its batches drain: the Binance market maker behind pre-trade limits
and circuit breakers, run batch by batch as ``tickloom live`` runs it, publishes the account, orders, fills,
rejects, trips and drift that its logs (read back after the run) and an independent drift computation say."""

from dataclasses import replace

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.plan import compile_plan
from pipelines.replay import StreamRun
from pipelines.spec import load_spec
from runtime.metrics import FeedHealthPublisher, LiveMetrics, SessionPublisher, ks_statistic, publish_replay
from tests.support import REPO

PAPER = REPO / "specs" / "deploy" / "market_making_paper.yaml"
BTC = (("instrument", "BTCUSDT"),)


def _session(sets=(), chunk_events: int = 500):
    """Run the paper spec as a live session does (no per-event record, logs drained per batch) and publish it.

    Returns the samples, the run's result and the md stream's sizes (the drift node's feature).
    """
    spec = load_spec(PAPER, sets=list(sets))
    defaults = spec.model.defaults.model_copy(update={"chunk_events": chunk_events})
    spec = replace(spec, model=spec.model.model_copy(update={"defaults": defaults}))
    run = StreamRun(compile_plan(spec), record=False)
    metrics = LiveMetrics(spec.name, spec.spec_hash, "paper")
    publisher = SessionPublisher(metrics, run)
    md = spec.graph.sources.index("md")
    sizes, batches = [], 0
    for merged in run.merged_batches():
        publisher.batch(merged, run.run_batch(merged))
        sizes.append(np.asarray(merged.parts[md]["size"]))
        batches += 1
    assert batches > 5  # several batches: what carries from batch to batch is exercised
    return _samples(metrics), run.finish(summarize=False), np.concatenate(sizes)


def _samples(metrics: LiveMetrics) -> dict[str, dict]:
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture(scope="module")
def running():
    return _session()


def test_the_account_is_what_the_venue_logged(running):
    samples, result, _ = running
    venue = result.logs["venue"]
    fills, orders, equity = venue["fills"], venue["orders"], venue["equity"]
    assert fills.height > 0 and equity.height > 0
    assert samples["tickloom_position"][BTC] == fills["position"][-1] / 1e9
    assert samples["tickloom_position"][BTC] == equity.filter(instrument="BTCUSDT")["position"][-1] / 1e9
    assert samples["tickloom_equity"][()] == equity["equity"][-1]
    cash = result.plan.graph.nodes["venue"].definition.params.cash
    assert samples["tickloom_pnl"][()] == pytest.approx(equity["equity"][-1] - cash)
    peak = max(cash, equity["equity"].max())
    assert peak > equity["equity"][-1]  # the sample ends below its peak: the drawdown is not trivially 0
    assert samples["tickloom_drawdown"][()] == pytest.approx((peak - equity["equity"][-1]) / peak)
    assert samples["tickloom_orders_total"][BTC] == orders.filter(event="sent").height > 0
    assert samples["tickloom_fills_total"][BTC] == fills.height
    # the control source (a missing file: no commands) is a source whose count is there, at 0
    assert samples["tickloom_events_total"] == {(("source", "md"),): result.events, (("source", "control"),): 0}
    assert ("instrument", "control") not in {label for key in samples["tickloom_position"] for label in key}
    assert samples["tickloom_risk_state"][()] == 0 and "tickloom_risk_trips_total" not in samples
    assert samples["tickloom_node_latency_seconds_count"]  # every segment timed, once per batch
    assert all(count > 5 for count in samples["tickloom_node_latency_seconds_count"].values())


def test_drift_is_the_ks_statistic_of_the_last_computed_window(running):
    samples, _, sizes = running
    # risk.drift in the spec: the first 5,000 sizes are the reference; KS over windows of 2,000, computed on the
    # first full window and every 100th value after it, held in between
    values = sizes.astype(np.float64)
    computed_at = 6_999 + (len(values) - 7_000) // 100 * 100
    expected = ks_statistic(values[:5_000], values[computed_at - 1_999:computed_at + 1])
    ks = samples["tickloom_feature_drift_ks"][(("feature", "md.size"),)]
    assert ks == pytest.approx(expected, abs=1e-12) and 0 < ks < 0.5
    assert samples["tickloom_feature_drift_psi"][(("feature", "md.size"),)] > 0


def test_a_breaker_trip_shows_as_halted_with_its_reason_and_the_refusals_that_follow():
    samples, result, _ = _session(sets=["max_drawdown=0.5"])  # USDT: the sample falls further than that
    trips = result.logs["breaker"]["trips"]
    assert trips["breaker"].to_list() == ["max_drawdown"] and trips["state"][-1] == "halted"
    assert samples["tickloom_risk_state"][()] == 1
    assert samples["tickloom_risk_trips_total"] == {(("reason", "max_drawdown"),): 1}
    refused = dict(result.logs["risk"]["rejects"]["check"].value_counts().iter_rows())
    assert refused.get("halted", 0) > 0
    assert {dict(k)["reason"]: v for k, v in samples["tickloom_rejects_total"].items()} == refused


def test_one_event_per_batch_publishes_what_large_batches_do(running):
    samples, _, _ = running
    metrics = LiveMetrics()
    events = publish_replay(metrics, PAPER)  # chunks of one event, the same publisher
    one_by_one = _samples(metrics)
    assert events == samples["tickloom_events_total"][(("source", "md"),)]
    for name in ("tickloom_position", "tickloom_equity", "tickloom_pnl", "tickloom_drawdown", "tickloom_orders_total",
                 "tickloom_fills_total", "tickloom_events_total", "tickloom_feature_drift_ks", "tickloom_risk_state"):
        assert one_by_one[name] == samples[name], name


def test_feed_health_publishes_what_the_feeds_report_dropped_and_quarantined_as_deltas():
    from nodes.marketdata.binance.live import LiveFeedReport
    from nodes.marketdata.binance.report import BinanceQualityReport

    quality = BinanceQualityReport(path="wss://loopback")
    report = LiveFeedReport(url="wss://loopback", quality=quality)

    class Reader:  # the part of a live reader the publisher reads: its report
        def __init__(self):
            self.report = report

    metrics = LiveMetrics()
    health = FeedHealthPublisher(metrics, ["md", "control"], [Reader(), object()])
    report.gaps, quality.bad_reasons["not_json"] = 2, 3
    quality.duplicates["count"] = 1
    health.publish()
    health.publish()  # nothing changed: nothing added
    report.gaps, quality.bad_reasons["not_json"] = 3, 5
    health.publish()
    dropped = _samples(metrics)["tickloom_dropped_events_total"]
    quarantined = _samples(metrics)["tickloom_quarantined_events_total"]
    assert dropped[(("reason", "gap"), ("source", "md"))] == 3
    assert dropped[(("reason", "duplicate"), ("source", "md"))] == 1
    assert quarantined[(("reason", "not_json"), ("source", "md"))] == 5
