"""Benchmark: ``source.binance_ws`` reading ``tickloom feed-server`` over loopback (server in its own process).

Printed for each pace (``--max-rate`` values in messages/s; ``inf`` = as fast as the server sends):

- **throughput**: rows (normalized events) and messages per second the reader delivered, first row to last;
- **socket → consumer latency**: for every row, the time from its socket read (``ts_recv``) to the moment
  ``chunks()`` handed it to the consumer (p50, p99, max): websocket framing, decode, update-id rules,
  snapshot handling, the thread hand-off;
- **decode cost**: the normalizer alone, one message per ``feed`` (what a message costs at low rate) and the
  whole capture in one ``feed`` (the cost per message when batches are large).

Usage::

    /work/venv/bin/python benchmarks/live_feed.py           # ../shared/data/binance/cm_btcusd_perp_20240808.gz
    /work/venv/bin/python benchmarks/live_feed.py FILE.gz --max-rate 2000 inf --schema book_and_trades
"""

import argparse
import gzip
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nodes.marketdata.binance.live import BinanceWs  # noqa: E402
from nodes.marketdata.binance.normalize import normalize_lines  # noqa: E402

DEFAULT = REPO.parent / "shared" / "data" / "binance" / "cm_btcusd_perp_20240808.gz"
SAMPLE = REPO / "data" / "samples" / "binance" / "cm_btcusd_perp_20240808.head2000.gz"


def _server(capture: Path, rate: float) -> tuple[subprocess.Popen, int]:
    pace = ["--speed", "inf"] if math.isinf(rate) else ["--max-rate", str(rate)]
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli_feed", str(capture), *pace, "--snapshot-wait", "10"],
                               cwd=REPO, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    return process, int(line.rsplit(":", 1)[1])


def run(capture: Path, rate: float, schema: str, market: str, symbol: str) -> dict:
    process, port = _server(capture, rate)
    try:
        params = BinanceWs.Params.model_validate({
            "url": f"ws://127.0.0.1:{port}", "rest_url": f"http://127.0.0.1:{port}", "market": market,
            "symbols": [symbol], "schema": schema, "depth_update_ms": 0 if market != "spot" else 100,
        })
        reader = BinanceWs.open(params)
        latencies, rows, first, last = [], 0, None, None
        for chunk in reader.chunks(4096):
            now = time.time_ns()
            latencies.append(now - chunk["ts_recv"])
            rows += len(chunk["ts_recv"])
            first = first if first is not None else now
            last = now
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    lat = np.concatenate(latencies) / 1e3
    seconds = (last - first) / 1e9
    report = reader.report
    return {"rate": rate, "rows": rows, "messages": report.messages, "seconds": seconds,
            "rows_per_s": rows / seconds, "messages_per_s": report.messages / seconds,
            "p50_us": float(np.percentile(lat, 50)), "p99_us": float(np.percentile(lat, 99)),
            "max_us": float(lat.max()),
            "gaps": report.gaps, "snapshots": report.snapshots}


def decode_cost(capture: Path, venue_kind: str, limit: int = 20_000) -> tuple[float, float]:
    with gzip.open(capture, "rb") as file:
        lines = [line for _, line in zip(range(limit), file)]
    single = normalize_lines("bench", venue_kind=venue_kind, clock_policy="report", reorder_max=0, buffer_max=1000)
    single.feed(b"".join(lines[:50]))
    began = time.perf_counter_ns()
    for line in lines[50:]:
        single.feed(line)
    per_message_us = (time.perf_counter_ns() - began) / (len(lines) - 50) / 1e3
    whole = normalize_lines("bench", venue_kind=venue_kind, clock_policy="report", reorder_max=0, buffer_max=1000)
    began = time.perf_counter_ns()
    whole.feed(b"".join(lines))
    batched_us = (time.perf_counter_ns() - began) / len(lines) / 1e3
    return per_message_us, batched_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("capture", nargs="?", type=Path, default=DEFAULT if DEFAULT.exists() else SAMPLE)
    parser.add_argument("--max-rate", nargs="+", default=["2000", "inf"], help="paces in messages/s (inf: unpaced)")
    parser.add_argument("--schema", default="book_and_trades")
    args = parser.parse_args()
    name = args.capture.name.lower()
    market, symbol = ("coinm", "BTCUSD_PERP") if name.startswith("cm_") else ("spot", name.split("_")[1].upper())
    venue_kind = "spot" if market == "spot" else "futures"
    per_message, batched = decode_cost(args.capture, venue_kind)
    print(f"{args.capture.name}: decode {per_message:.1f} µs per message fed alone, {batched:.2f} µs per message "
          "in one batch")
    for rate in args.max_rate:
        r = run(args.capture, float(rate), args.schema, market, symbol)
        print(f"pace {rate:>6} msg/s: {r['rows']:,} rows, {r['messages']:,} messages in {r['seconds']:.2f} s = "
              f"{r['rows_per_s']:,.0f} rows/s, {r['messages_per_s']:,.0f} msg/s; socket→consumer p50 "
              f"{r['p50_us']:.0f} µs, p99 {r['p99_us']:.0f} µs, max {r['max_us']:.0f} µs; gaps {r['gaps']}, "
              f"snapshots {r['snapshots']}")


if __name__ == "__main__":
    main()
