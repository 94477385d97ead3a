"""Benchmark: tick-to-trade of a paper session fed over a loopback websocket at fixed message rates.

A `tickloom feed-server` process (its own process, so its work does not share our interpreter) plays a Binance
capture at ``--rates`` messages per second (one session per rate; the capture's depth diffs and trades: its
bookTicker lines, which the session does not subscribe to, are left out so the rate is what the session gets;
the capture loops, with a resync at each seam). This process runs `tickloom live` on the market-making spec with
its source swapped for ``source.binance_ws``, placed all on ``numba`` and then all on ``cpu``.

Tick-to-trade is socket receive (the reader stamps ``ts_recv`` when the socket read returns) → the batch that
decided orders has run its kernels (orders handed to the paper venue), measured over the decisions of a window
that starts ``--warmup`` seconds into the session. Printed per placement and rate: p50 / p99 / p99.9, the
medians of where the time goes in deciding batches (receive → the loop has the batch: read, decode, merge;
→ inputs written ahead; → kernels run), the events per second the session processed, and whether it kept up:
the server delivered at least 95% of the rate (a client that falls behind slows the server's sends) and no
backlog built up (the receive → batch lag stayed under 5 ms at p99). Last: per placement, the highest rate it
kept up with.

    /work/venv/bin/python benchmarks/live_latency.py [--capture FILE] [--rates 1000,5000,20000]
                                   [--cpu-rates 100,300,1000] [--seconds 4] [--places numba,cpu] [--busy-poll]
"""

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPOT = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"
SHARED_SPOT = REPO.parent / "shared" / "data" / "binance" / "spot_btcusdt_20240808.gz"
MM_SPEC = REPO / "specs" / "strategies" / "market_making_binance.yaml"
KEPT_UP_SHARE = 0.95  # of the rate the server must have delivered
LAG_P99_NS = 5_000_000  # receive → batch at p99 beyond this: a backlog


def _without_quotes(capture: Path, folder: Path) -> Path:
    """The capture without its bookTicker lines (the session subscribes to depth and trades only)."""
    with gzip.open(capture, "rb") as source:
        kept = [line for line in source if b"@bookTicker" not in line[:120]]
    path = folder / capture.name
    with gzip.open(path, "wb") as out:
        out.writelines(kept)
    return path


def _server(capture: Path, rate: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "runtime.cli", "feed-server", str(capture), "--max-rate",
                                str(rate), "--snapshot-wait", "10", "--restamp", "--loop"], cwd=REPO,
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    return process, int(line.rsplit(":", 1)[1])


def _sent(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        return json.loads(response.read())["messages_sent"]


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


def measure(capture: Path, rate: float, place: str, seconds: float, warmup_s: float, busy_poll: bool) -> dict:
    """One session at ``rate`` messages/s: its trace over a window of ``seconds`` after ``warmup_s``."""
    from pipelines.spec import load_spec
    from runtime.live import LiveOptions, run_live
    from runtime.promotion import Registry

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server, port = _server(capture, rate)
        window: dict[str, int] = {}
        stop, started = threading.Event(), threading.Event()

        def watch() -> None:  # the window: from warmup_s after the start, for seconds; then the session stops
            started.wait()
            time.sleep(warmup_s)
            window["begin_ns"], window["sent_before"] = time.time_ns(), _sent(port)
            time.sleep(seconds)
            window["end_ns"], window["sent_after"] = time.time_ns(), _sent(port)
            stop.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            path = _spec(folder, port, place)
            spec = load_spec(path)
            Registry(folder / "r.duckdb").record_promotion(
                spec=spec.name, spec_hash=spec.spec_hash, stage="paper", action="promote", passed=True,
                who="benchmark", why="latency benchmark", gates=[], previous_hash=None, spec_path=str(path))
            session = run_live(path, LiveOptions(session_dir=folder / "s", registry=str(folder / "r.duckdb"),
                                                 fsync="never", trace=True, busy_poll=busy_poll),
                               stop=stop, started=started)
        finally:
            server.terminate()
            server.wait(10)
        watcher.join(5)
    return _summary(session.trace, window, rate, place)


def _summary(trace: dict[str, np.ndarray], window: dict[str, int], rate: float, place: str) -> dict:
    inside = (trace["taken_ns"] >= window["begin_ns"]) & (trace["taken_ns"] < window["end_ns"])
    span_s = (window["end_ns"] - window["begin_ns"]) / 1e9
    decided = inside & (trace["decided"] == 1)
    tick_to_trade = (trace["ran_ns"] - trace["received_ns"])[decided]
    lag = (trace["taken_ns"] - trace["received_ns"])[inside]
    delivered = (window["sent_after"] - window["sent_before"]) / span_s

    def median(values: np.ndarray) -> float:
        return float(np.median(values)) / 1e3 if len(values) else float("nan")

    p50, p99, p999 = (np.percentile(tick_to_trade, [50, 99, 99.9]) / 1e3) if len(tick_to_trade) else [np.nan] * 3
    return {
        "place": place, "rate": rate, "decisions": int(decided.sum()), "p50_us": p50, "p99_us": p99,
        "p999_us": p999, "events_per_s": trace["events"][inside].sum() / span_s, "delivered_per_s": delivered,
        "events_per_decision": float(np.median(trace["events"][decided])) if decided.any() else float("nan"),
        "receive_to_batch_us": median((trace["taken_ns"] - trace["received_ns"])[decided]),
        "write_ahead_us": median((trace["recorded_ns"] - trace["taken_ns"])[decided]),
        "kernels_us": median((trace["ran_ns"] - trace["recorded_ns"])[decided]),
        "lag_p99_us": float(np.percentile(lag, 99)) / 1e3 if len(lag) else float("nan"),
        "kept_up": bool(delivered >= KEPT_UP_SHARE * rate and len(lag) and np.percentile(lag, 99) < LAG_P99_NS),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=SHARED_SPOT if SHARED_SPOT.exists() else SPOT)
    parser.add_argument("--rates", default="1000,5000,20000", help="messages per second, comma-separated")
    parser.add_argument("--cpu-rates", default="100,300,1000", help="the rates of the cpu placement (it runs every "
                        "step as Python)")
    parser.add_argument("--seconds", type=float, default=4.0, help="the measured window of each session")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of each session before the window")
    parser.add_argument("--places", default="numba,cpu")
    parser.add_argument("--busy-poll", action="store_true", help="the session's loop spins instead of sleeping")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        capture = _without_quotes(args.capture, Path(tmp))
        print(f"capture {args.capture.name} (depth diffs and trades); tick-to-trade = socket receive → orders "
              f"handed to the paper venue; {'busy-poll' if args.busy_poll else 'sleeping'} loop", flush=True)
        for place in args.places.split(","):
            kept = []
            for rate in (float(r) for r in (args.cpu_rates if place == "cpu" else args.rates).split(",")):
                r = measure(capture, rate, place, args.seconds, args.warmup, args.busy_poll)
                kept += [r] if r["kept_up"] else []
                print(f"  {place:<6} {rate:>7,.0f} msg/s (delivered {r['delivered_per_s']:>7,.0f}): "
                      f"{r['events_per_s']:>8,.0f} events/s, {r['decisions']:>5,} decisions "
                      f"(~{r['events_per_decision']:.0f} events each); tick-to-trade p50 {r['p50_us']:.1f} µs, "
                      f"p99 {r['p99_us']:.1f} µs, p99.9 {r['p999_us']:.1f} µs; medians: receive→batch "
                      f"{r['receive_to_batch_us']:.1f}, write-ahead {r['write_ahead_us']:.1f}, kernels "
                      f"{r['kernels_us']:.1f} µs; lag p99 {r['lag_p99_us']:.0f} µs; "
                      f"{'kept up' if r['kept_up'] else 'FELL BEHIND'}", flush=True)
            best = max(kept, key=lambda r: r["rate"], default=None)
            print(f"  {place}: highest rate kept up with: " + (f"{best['rate']:,.0f} msg/s = "
                  f"{best['events_per_s']:,.0f} events/s" if best else "none of those tried"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
