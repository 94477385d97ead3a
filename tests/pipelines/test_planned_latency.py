"""`compute_latency: plan`: the tick venue takes the modeled tick-to-trade of the spec's placement, so the same
strategy placed on slower hardware sends its orders later (and, where that matters, fills differently)."""

import yaml

from pipelines.plan import compile_plan
from pipelines.run import run_spec
from pipelines.spec import load_spec
from tests.support import REPO

MM_SPEC = REPO / "specs" / "strategies" / "market_making_binance.yaml"
SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"


def _spec(tmp_path):
    document = yaml.safe_load(MM_SPEC.read_text())
    document["nodes"]["md"]["with"]["path"] = str(SPOT)
    document["nodes"]["venue"]["with"]["compute_latency"] = "plan"
    for latency in ("entry_latency", "cancel_latency", "response_latency"):
        document["nodes"]["venue"]["with"][latency] = "20us"  # constant: only the placement differs
    path = tmp_path / "mm_planned.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_venue_waits_what_the_placement_costs_and_a_slower_placement_sends_later(tmp_path):
    path = _spec(tmp_path)
    fast = compile_plan(load_spec(path))
    slow = compile_plan(load_spec(path, places=["book=cpu", "quotes=cpu"]))
    for plan in (fast, slow):
        planned = plan.graph.nodes["venue"].definition.params.compute_latency
        assert planned == f"{int(round(plan.placement.placement.tick_to_trade_ns))}ns"
    fast_ns = fast.placement.placement.tick_to_trade_ns
    slow_ns = slow.placement.placement.tick_to_trade_ns
    assert slow_ns > fast_ns > 0, "cpu steps cost more than numba steps"
    orders = {}
    for name, places in (("fast", []), ("slow", ["book=cpu", "quotes=cpu"])):
        run = run_spec(path, places=places, write=False)
        orders[name] = run.replay.summaries["venue"].orders.filter(event="sent")
    # the same decisions, sent later by the difference of the modeled latencies (rounded to ns)
    delay = int(round(slow_ns)) - int(round(fast_ns))
    shared = min(orders["fast"].height, orders["slow"].height)
    assert shared > 0
    first_fast, first_slow = orders["fast"]["ts_local"][0], orders["slow"]["ts_local"][0]
    assert first_slow - first_fast == delay
