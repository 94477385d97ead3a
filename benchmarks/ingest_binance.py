"""Benchmark: normalize Binance websocket captures, and hftbacktest's Binance futures converter on the same files.

Prints, per capture: raw lines/s and MB/s of uncompressed input for tickloom's ``normalize_capture`` (warm:
numba kernels loaded from their cache, best and median of ``--repeats`` runs in this process, and the CPU time
of all its threads; cold: a fresh process, imports and kernel loading included), the peak memory of a fresh process that streams the file
(``VmHWM``), and — when hftbacktest is importable by the peer interpreter (``--peer-python``, default
``/work/benchvenv/bin/python``) — its ``binancefutures.convert`` on the same file in a subprocess, warm and
cold, and the ratio. hftbacktest's converter reads futures captures only (it needs ``T`` on depth diffs), so
spot files are measured for tickloom alone.

The peer does less: float prices (no exact decimals), no update-id checks, no dedup, no quarantine; it does
sort events and correct the local timestamps, like the ``shift`` policy here. Both are run with bookTicker
(``opt='t'``) so they read the same streams.

``--scale N`` also streams a file made of N copies of each capture, receive times moved on by the capture's
span for each copy, in a fresh process, to show that peak memory does not grow with the file.

Usage::

    /work/venv/bin/python benchmarks/ingest_binance.py                     # the captures in ../shared/data/binance
    /work/venv/bin/python benchmarks/ingest_binance.py FILE.gz --repeats 7 --scale 8
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

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "binance"
DEFAULT_PEER = Path("/work/benchvenv/bin/python")

_TICKLOOM_CHILD = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {repo!r})
from nodes.marketdata.binance import normalize_capture
rows = 0
run = normalize_capture({path!r}, max_bad_fraction=1.0)
for chunk in run:
    rows += chunk.book_deltas.height + chunk.trades.height + chunk.quotes.height
elapsed = time.perf_counter() - t0
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(json.dumps({{"seconds": elapsed, "vmhwm_kb": int(hwm), "rows": rows, "lines": run.report.lines_total}}))
"""

_PEER_CHILD = """
import json, os, sys, time, contextlib, io
t0 = time.perf_counter()
from hftbacktest.data.utils import binancefutures
path = {path!r}
def convert():
    with contextlib.redirect_stdout(io.StringIO()):
        return binancefutures.convert(path, opt='t', buffer_size={buffer_size})
data = convert()
cold = time.perf_counter() - t0
times, cpu = [], []
for _ in range({repeats}):
    t, c = time.perf_counter(), time.process_time()
    data = convert()
    times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
import hftbacktest
print(json.dumps({{"cold_seconds": cold, "times": times, "cpu": cpu, "rows": int(len(data)), "vmhwm_kb": int(hwm),
                  "version": getattr(hftbacktest, '__version__', '?')}}))
"""


def _child(code: str, python: str) -> dict:
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_scaled(path: Path, out: Path, copies: int) -> None:
    """``copies`` back-to-back copies of a capture, receive times moved on by the capture's span each time (so
    time advances as in a longer capture; update and trade ids repeat, so later copies' depth diffs and quotes
    are stale and dropped, while trades flow through)."""
    import gzip

    lines = gzip.decompress(path.read_bytes()).splitlines()
    first, last = int(lines[0].split(b" ", 1)[0]), int(lines[-1].split(b" ", 1)[0])
    span = last - first + 1_000_000_000
    with gzip.open(out, "wb", compresslevel=1) as f:
        for k in range(copies):
            f.write(b"\n".join(b"%d %s" % (int(ts) + k * span, rest) for ts, rest in
                                (line.split(b" ", 1) for line in lines)) + b"\n")


def _peer_available(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import hftbacktest.data.utils.binancefutures"], capture_output=True)
    return probe.returncode == 0


def _is_futures(path: Path) -> bool:
    import gzip

    with gzip.open(path, "rt") as f:
        for _, line in zip(range(200), f):
            if '"depthUpdate"' in line:
                return '"pu":' in line
    return False


def measure(path: Path, repeats: int, peer: Path | None, scale: int) -> dict:
    sys.path.insert(0, str(REPO))
    from nodes.marketdata.binance import normalize_capture

    def run_once():
        run = normalize_capture(path, max_bad_fraction=1.0)
        rows = 0
        for chunk in run:
            rows += chunk.book_deltas.height + chunk.trades.height + chunk.quotes.height
        return run.report, rows

    report, rows = run_once()  # warm-up: loads (or compiles) the numba kernels
    times, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        run_once()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    lines = report.lines_total
    mb = report.capture["bytes_decompressed"] / 1e6
    best, median = min(times), statistics.median(times)
    result = {
        "file": path.name, "lines": lines, "uncompressed_mb": round(mb, 2), "rows": rows,
        "tickloom": {
            "best_s": best, "median_s": median,
            "lines_per_s": lines / best, "mb_per_s": mb / best,
            "median_lines_per_s": lines / median, "cpu_best_s": min(cpu), "cpu_median_s": statistics.median(cpu),
            "slow_path_lines": report.slow_path_lines, "decompressor": report.capture["decompressor"],
        },
    }
    cold = _child(_TICKLOOM_CHILD.format(repo=str(REPO), path=str(path)), sys.executable)
    result["tickloom"]["cold_s"] = cold["seconds"]
    result["tickloom"]["vmhwm_mb"] = cold["vmhwm_kb"] / 1024
    if scale > 1:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / f"x{scale}_{path.name}"
            _write_scaled(path, big, scale)
            scaled = _child(_TICKLOOM_CHILD.format(repo=str(REPO), path=str(big)), sys.executable)
        result["tickloom"]["scaled"] = {"copies": scale, "lines": scaled["lines"], "seconds": scaled["seconds"],
                                        "vmhwm_mb": scaled["vmhwm_kb"] / 1024}
    if peer is not None and _is_futures(path):
        buffer_size = max(1_000_000, 12 * lines)
        out = _child(_PEER_CHILD.format(path=str(path), repeats=repeats, buffer_size=buffer_size), str(peer))
        pbest, pmedian = min(out["times"]), statistics.median(out["times"])
        result["hftbacktest"] = {
            "version": out["version"], "rows": out["rows"], "best_s": pbest, "median_s": pmedian,
            "lines_per_s": lines / pbest, "mb_per_s": mb / pbest, "cold_s": out["cold_seconds"],
            "cpu_best_s": min(out["cpu"]), "cpu_median_s": statistics.median(out["cpu"]),
            "vmhwm_mb": out["vmhwm_kb"] / 1024,
        }
        result["speedup_best"] = pbest / best
        result["speedup_median"] = pmedian / median
        result["speedup_cold"] = out["cold_seconds"] / cold["seconds"]
        result["speedup_cpu"] = min(out["cpu"]) / min(cpu)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="captures (default: ../shared/data/binance/*.gz)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per file (default 5)")
    parser.add_argument("--peer-python", type=Path, default=DEFAULT_PEER, help="interpreter with hftbacktest")
    parser.add_argument("--scale", type=int, default=1, help="also stream N concatenated copies (memory check)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    files = args.files or sorted(DEFAULT_DATA.glob("*.gz"))
    if not files:
        print(f"no captures given and none in {DEFAULT_DATA}", file=sys.stderr)
        return 2
    peer = args.peer_python if _peer_available(args.peer_python) else None
    if peer is None:
        print(f"(hftbacktest not importable by {args.peer_python}: tickloom alone)")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    results = [measure(f, args.repeats, peer, args.scale) for f in files]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        t = r["tickloom"]
        print(f"{r['file']}: {r['lines']:,} lines, {r['uncompressed_mb']} MB uncompressed, {r['rows']:,} rows out")
        print(f"  tickloom     warm best {t['best_s'] * 1e3:7.1f} ms = {t['lines_per_s'] / 1e6:5.2f} M lines/s, "
              f"{t['mb_per_s']:6.1f} MB/s (median {t['median_s'] * 1e3:.1f} ms; CPU {t['cpu_best_s'] * 1e3:.1f} ms); "
              f"cold {t['cold_s']:.2f} s; peak RSS {t['vmhwm_mb']:.0f} MB; {t['decompressor']}")
        if "scaled" in t:
            s = t["scaled"]
            print(f"  tickloom x{s['copies']}  {s['lines']:,} lines in {s['seconds']:.2f} s (cold), peak RSS "
                  f"{s['vmhwm_mb']:.0f} MB")
        if "hftbacktest" in r:
            h = r["hftbacktest"]
            print(f"  hftbacktest  warm best {h['best_s'] * 1e3:7.1f} ms = {h['lines_per_s'] / 1e6:5.2f} M lines/s, "
                  f"{h['mb_per_s']:6.1f} MB/s (median {h['median_s'] * 1e3:.1f} ms; CPU {h['cpu_best_s'] * 1e3:.1f} ms); "
                  f"cold {h['cold_s']:.2f} s; peak RSS {h['vmhwm_mb']:.0f} MB; v{h['version']}")
            print(f"  speed-up vs hftbacktest: {r['speedup_best']:.1f}x best wall, {r['speedup_median']:.1f}x median "
                  f"wall, {r['speedup_cpu']:.1f}x CPU time, {r['speedup_cold']:.1f}x cold (fresh processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
