"""Benchmark: a tick-level market-making backtest of a whole Binance capture, and hftbacktest on the same file.

Workload (both engines): on every market event, quote ``qty`` on each side at mid ∓ ``half_spread_ticks``
shifted against inventory by ``skew_ticks_per_unit`` ticks per unit held, post-only, within ±``max_position``;
a changed quote is cancelled and replaced. Venue: L2 book rebuilt from the capture's depth diffs and snapshot,
trades in the same stream, power-law probabilistic queue model (n = 3), constant 1 ms entry and response
latency, maker/taker fees on traded value. tickloom runs ``source.binance_capture`` (book_and_trades) →
``book.l2`` → ``strategy.market_maker`` → ``backtest.tick_venue``, all placed on numba; hftbacktest runs
``benchmarks/peers/hft_market_making.py`` in the peer environment (HashMapMarketDepthBacktest, per-feed loop
with ``wait_next_feed``, its no-partial-fill exchange: one-lot quotes fill whole).

Printed, medians of ``--repeats`` warm runs (kernels compiled by a first run):

- **engine**: tickloom's replay over chunks decoded beforehand (the capture is normalized once, outside the
  timing, and fed through ``replay(source_transforms=...)``) vs hftbacktest's backtest loop over its
  converted array — the same work: book, strategy, matching, queues, latency, fees; events/s of each and the
  ratio. The event counts differ a little (each engine's own normalization of the same lines); the rate is
  per each engine's own events.
- **end to end**: tickloom from the raw capture (decode included) vs hftbacktest's converter + backtest.
- **memory**: peak RSS (VmHWM) of a fresh process running the backtest on the capture, and on ``--scale N``
  concatenated copies of it: with chunked replay and drained logs it must not grow with the capture.

Usage::

    /work/venv/bin/python benchmarks/tick_backtest.py                      # ../shared/data/binance/cm_btcusd_perp_20240808.gz
    /work/venv/bin/python benchmarks/tick_backtest.py FILE.gz --repeats 5 --scale 4
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.ingest_binance import _peer_available, _write_scaled  # noqa: E402

DEFAULT_CAPTURE = REPO.parent / "shared" / "data" / "binance" / "cm_btcusd_perp_20240808.gz"
DEFAULT_PEER = Path("/work/benchvenv/bin/python")
PEER_SCRIPT = REPO / "benchmarks" / "peers" / "hft_market_making.py"

WORKLOAD = {"tick_size": 0.1, "qty": 1.0, "half_spread_ticks": 2, "max_position": 5.0, "skew_ticks_per_unit": 1.0,
            "latency": "1ms", "queue_power": 3.0, "maker_fee": -0.0001, "taker_fee": 0.0005}


def write_spec(folder: Path, capture: Path, chunk_events: int = 65536) -> Path:
    """The benchmark's spec: the workload above as tickloom nodes, all on numba."""
    w = WORKLOAD
    spec = {
        "tickloom": 1, "name": "tick_mm_bench", "kind": "strategy",
        "defaults": {"place": "numba", "chunk_events": chunk_events},
        "nodes": {
            "md": {"op": "source.binance_capture",
                   "with": {"path": str(capture), "schema": "book_and_trades", "clock_policy": "shift"}},
            "book": {"op": "book.l2", "in": {p: f"md.{p}" for p in ("side", "price", "size", "action", "flags")}},
            "quotes": {"op": "strategy.market_maker",
                       "in": {"best_bid": "book.best_bid", "best_ask": "book.best_ask",
                              "position": "prev(venue.position)", "flags": "md.flags"},
                       "with": {"tick_size": w["tick_size"], "half_spread_ticks": w["half_spread_ticks"],
                                "quote_qty": w["qty"], "max_position": w["max_position"],
                                "skew_ticks_per_unit": w["skew_ticks_per_unit"]}},
            "venue": {"op": "backtest.tick_venue",
                      "in": {**{p: f"md.{p}" for p in ("side", "price", "size", "action", "flags")},
                             **{p: f"quotes.{p}" for p in ("bid_px", "bid_qty", "ask_px", "ask_qty")}},
                      "with": {"book": "l2", "orders": "quotes",
                               "queue_model": {"model": "prob_power", "n": w["queue_power"]}, "maker_fee": w["maker_fee"],
                               "taker_fee": w["taker_fee"], "feed_latency": "data", "compute_latency": "0",
                               "entry_latency": w["latency"], "cancel_latency": w["latency"],
                               "response_latency": w["latency"]}},
        },
    }
    path = folder / "tick_mm_bench.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _decoded_chunks(plan, chunk_events: int) -> list:
    graph = plan.graph
    reader = graph.nodes["md"].op.open(graph.nodes["md"].definition.params, plan.spec.path.parent)
    return list(reader.chunks(chunk_events))


def measure_tickloom(capture: Path, repeats: int) -> dict:
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        plan = compile_plan(load_spec(write_spec(Path(tmp), capture)))
        started = time.perf_counter()
        chunks = _decoded_chunks(plan, plan.spec.model.defaults.chunk_events)
        decode_s = time.perf_counter() - started
        events = sum(len(c["ts_recv"]) for c in chunks)
        cached = {"md": lambda _unused: iter(chunks)}
        first = replay(plan, source_transforms=cached)  # compiles (or loads) the kernels
        engine = []
        for _ in range(repeats):
            result = replay(plan, source_transforms=cached)
            engine.append(result.seconds)
        e2e = []
        for _ in range(repeats):
            started = time.perf_counter()
            replay(plan)
            e2e.append(time.perf_counter() - started)
    summary = first.summaries["venue"]
    return {"events": events, "decode_s": decode_s, "engine_s": engine, "e2e_s": e2e,
            "fills": int(summary.stats.get("fills", 0)), "stats": {k: v for k, v in summary.stats.items()
                                                                  if isinstance(v, (int, float))}}


_MEMORY_CHILD = """
import sys, json, tempfile
from pathlib import Path
sys.path.insert(0, {repo!r})
from benchmarks.tick_backtest import write_spec
from pipelines.plan import compile_plan
from pipelines.replay import replay
from pipelines.spec import load_spec
with tempfile.TemporaryDirectory() as tmp:
    result = replay(compile_plan(load_spec(write_spec(Path(tmp), Path({capture!r})))))
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{"events": result.events, "seconds": result.seconds, "vmhwm_kb": int(hwm)}}))
"""


def _child(code: str, python: str, *args: str) -> dict:
    out = subprocess.run([python, *(["-c", code] if code else []), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_memory(capture: Path, scale: int) -> list[dict]:
    runs = [{"copies": 1, **_child(_MEMORY_CHILD.format(repo=str(REPO), capture=str(capture)), sys.executable)}]
    if scale > 1:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / capture.name  # same name: the source reads the symbol from it
            _write_scaled(capture, big, scale)
            runs.append({"copies": scale,
                         **_child(_MEMORY_CHILD.format(repo=str(REPO), capture=str(big)), sys.executable)})
    return runs


def measure_peer(capture: Path, peer: Path, repeats: int) -> dict:
    w = WORKLOAD
    args = [str(PEER_SCRIPT), str(capture), "--repeats", str(repeats), "--tick-size", str(w["tick_size"]),
            "--qty", str(w["qty"]), "--half-spread-ticks", str(w["half_spread_ticks"]),
            "--max-position", str(w["max_position"]), "--skew-ticks-per-unit", str(w["skew_ticks_per_unit"]),
            "--entry-latency-ns", "1000000", "--response-latency-ns", "1000000",
            "--queue-power", str(w["queue_power"]), "--maker-fee", str(w["maker_fee"]),
            "--taker-fee", str(w["taker_fee"])]
    started = time.perf_counter()
    out = _child("", str(peer), *args)
    out["wall_s"] = time.perf_counter() - started
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", nargs="?", type=Path, default=DEFAULT_CAPTURE)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1, help="also run N concatenated copies (memory check)")
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER)
    args = parser.parse_args(argv)
    if not args.capture.exists():
        print(f"no capture at {args.capture} (../shared/data is not in a fresh clone)", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONHASHSEED", "0")
    ours = measure_tickloom(args.capture, args.repeats)
    engine = statistics.median(ours["engine_s"])
    e2e = statistics.median(ours["e2e_s"])
    print(f"{args.capture.name}: tickloom {ours['events']:,} events "
          f"(decode once {ours['decode_s']:.2f} s), fills {ours['fills']}")
    print(f"  tickloom engine   median {engine * 1e3:8.1f} ms = {ours['events'] / engine / 1e6:6.2f} M events/s "
          f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in ours['engine_s'])} ms)")
    print(f"  tickloom e2e      median {e2e * 1e3:8.1f} ms = {ours['events'] / e2e / 1e6:6.2f} M events/s (decode included)")
    if _peer_available(args.peer_python):
        peer = measure_peer(args.capture, args.peer_python, args.repeats)
        p = statistics.median(peer["seconds"])
        print(f"  hftbacktest loop  median {p * 1e3:8.1f} ms = {peer['events'] / p / 1e6:6.2f} M events/s "
              f"({peer['events']:,} events, fills {peer['fills']}, peak RSS {peer['vmhwm_kb'] / 1024:.0f} MB, "
              f"end code {peer['end_code']}: 1 = end of data)")
        ratio = (ours["events"] / engine) / (peer["events"] / p)
        print(f"  engine speed ratio tickloom/hftbacktest per event: {ratio:.2f}x")
    else:
        print(f"  (hftbacktest not importable by {args.peer_python}: tickloom alone)")
    for run in measure_memory(args.capture, args.scale):
        print(f"  memory x{run['copies']}: {run['events']:,} events in {run['seconds']:.2f} s, "
              f"peak RSS {run['vmhwm_kb'] / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
