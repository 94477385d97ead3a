"""tickloom bar backtest benchmark: SMA(10, 30) crossover through a spec, against the practical limit and peers.

Run from the repository root with tickloom's dev venv (2-3 minutes on an idle 2-core machine at default sizes):

    /work/venv/bin/python benchmarks/bar_backtest.py                   # 1M and 10M bars
    /work/venv/bin/python benchmarks/bar_backtest.py --quick           # 100k bars only, ~30 s
    /work/venv/bin/python benchmarks/bar_backtest.py --sizes 1000000 --no-rss

The workload is defined once, in ``benchmarks/peers/sma_cross.py`` (its docstring): the same synthetic bars
(``synthetic_bars``, imported from that file by path -- it imports nothing from tickloom), SMA(10) and SMA(30)
of close, backtesting.py's crossover rule, +-1 unit target, next-open fills, commission 0.001, cash 1e6,
positions still open at the end are marked, not closed.

What runs
---------
* **tickloom** -- the bars are written to a Parquet file in the normalized bar schema (``ts_event`` = bar
  open, ``ts_recv`` = ``ts_event`` + 60 s, int64 ns; ``open, high, low, close, volume`` float64) and a spec
  (``source.bars_parquet`` -> ``indicator.sma`` x2 -> ``signal.crossover`` -> ``sizing.fixed_units`` ->
  ``backtest.bar_venue``, ``defaults: {place: numba, chunk_events: 1000000}``) is loaded, compiled and
  replayed. ``numba`` is the spec's default placement; ``cpu`` overrides every stream node
  (``places=["fast=cpu", ...]``). cpu is pure Python (~0.3-0.5M bars/s), so it runs at sizes <= 1M only.
  Two figures per placement, from the same runs, and a third for numba:

  - **e2e**: wall time of ``replay(plan)`` -- Parquet read + checks, the fused segment kernel, recording the
    ``sim`` node's outputs into a polars frame, and the bar venue's ``summarize`` (trades, equity curve,
    stats), which ``replay`` always runs. ``load_spec`` + ``compile_plan`` are outside (printed once).
  - **engine**: the time spent in ``pipelines.replay._BoundSegment.run`` during that replay, i.e. the
    generated segment kernel(s) plus their argument binding, per chunk. It is measured by wrapping that
    method at run time in this process (tickloom's code is not changed). A per-phase breakdown (a separate
    read-only pass over the Parquet chunks, recording, summarize) is printed too.
  - **kernel-mem** (numba only): the plan's segments over the Parquet chunks already read into memory,
    mirroring the stream pass of ``replay`` (fresh state, one ``_Batch`` per chunk whose record arrays are
    allocated inside the timed ``_BoundSegment.run`` calls) without reading, recording or summarizing; one
    untimed pass, then the median of 3. Against ``engine`` it shows what the replay around the kernel costs
    the kernel itself -- chiefly first-touch page faults on the record arrays, whose memory a replay takes
    fresh from the OS (expensive in this VM: the first touch of guest memory costs ~1-2 ms per MiB).

  A warm-up replay on 2,000 bars loads the numba kernels first (compiled once, then cached on disk by
  tickloom). Timings are the median of 3 replays (2 when one replay takes more than 15 s).
* **hand loop** -- ``sma_cross.hand_loop``: one ``@numba.njit`` loop over in-memory arrays, returning the
  final equity, the fill count and the equity curve. Timed in this process (numba is a tickloom dependency):
  warm-up compile, then median of 3.
* **vectorbt**, **backtesting.py** -- run by ``sma_cross.run_vectorbt`` / ``run_backtesting`` in a
  subprocess of the peer venv (``/work/benchvenv``, ``--peer-python``), which regenerates the same bars
  (checked by a digest of the arrays), warms up on 2,000 bars and takes the median of 3. backtesting.py is
  measured at 100k bars only (~130k bars/s); its ratios divide tickloom's throughput at each size by
  backtesting.py's throughput at 100k. Peers are skipped with a message when the venv or package is missing.

Throughput is bars / median seconds. The ratio columns are tickloom-numba's throughput divided by the row's
(">= 0.5" against the hand loop and ">= 10" against vectorbt are the goals), for the engine figure and for
the e2e figure.

Peak memory
-----------
Every engine runs once more, alone, in a fresh process per size (``--no-rss`` skips this): imports and a
2,000-bar warm-up, then ``baseline`` = VmRSS; the in-memory engines then generate their bars; the peak-RSS
mark is reset (``echo 5 > /proc/self/clear_refs``, so data generation temporaries and the warm-up do not
count), the engine runs once, and ``peak`` = VmHWM from ``/proc/self/status`` (getrusage's ru_maxrss is
inherited across fork + exec). ``x input`` = (peak - baseline) / input bytes, with input = n x (2 int64 + 5
float64) = 56 n bytes: the memory the job needed above an idle process that has its libraries loaded. For
the in-memory engines that includes the input arrays themselves; tickloom reads them from Parquet instead.

Correctness
-----------
Every tickloom run checks its final equity (last ``equity`` of the recorded ``sim`` node, i.e. before any
end-of-run closing) and its fill count (rows with ``fill_qty != 0``) against the hand loop on the same
bars: equal within 1e-9 relative, fills exactly. A mismatch is flagged with the first bar where the equity
curves part and the exact SMA margin (``math.fsum`` over the window) of the decisions just before it; the
script exits 1 unless that margin is a near-tie (< 1e-9 of the price), i.e. the two summation orders round
a cross onto different bars. The peers are checked the same way and flagged ``DIFFERS (peer)`` with the known
cause (vectorbt at 10M bars, see the peer script's docstring); a peer's difference does not change the exit
code.
"""

import argparse
import gc
import hashlib
import importlib.util
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PEER_SCRIPT = HERE / "peers" / "sma_cross.py"
DEFAULT_PEER_PYTHON = "/work/benchvenv/bin/python"


def _load_peer_module():
    spec = importlib.util.spec_from_file_location("sma_cross_peer", PEER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peer = _load_peer_module()  # numpy + numba only; peers (vectorbt, backtesting) are imported lazily by it

FAST, SLOW, UNITS, CASH, COMMISSION = peer.FAST, peer.SLOW, peer.UNITS, peer.CASH, peer.COMMISSION
RECV_DELAY_NS = 60 * 1_000_000_000  # ts_recv = ts_event + 60 s: a 1-minute bar is known at its close
CHUNK_EVENTS = 1_000_000
STREAM_NODES = ("fast", "slow", "cross", "target", "sim")
BYTES_PER_BAR = 2 * 8 + 5 * 8  # ts_event, ts_recv int64 + open, high, low, close, volume float64
CPU_MAX_N = 1_000_000  # tickloom on cpu is pure Python
BACKTESTING_N = 100_000  # backtesting.py is per-bar Python
WARMUP_N = 2_000
SLOW_RUN_S = 15.0  # a replay slower than this: median of 2 instead of 3
REL_TOL = 1e-9


# ------------------------------------------------------------------------------------------ helpers
def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _rss_mib() -> float:
    return _proc_status_kib("VmRSS") / 1024


def _hwm_mib() -> float:
    return _proc_status_kib("VmHWM") / 1024


def _reset_hwm() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux >= 4.0). False when not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _digest(bars: dict) -> str:
    h = hashlib.sha1()
    for name in ("ts", "open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(bars[name]).view(np.uint8))
    return h.hexdigest()[:16]


def _median_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, out


def _emit(payload: dict) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def _child(python: str, args: list[str], timeout: float = 900) -> tuple[list[dict], str]:
    """Run this script in child mode; return its RESULT payloads and an error text ('' when fine)."""
    cmd = [python, str(Path(__file__).resolve()), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TQDM_DISABLE": "1"})
    except subprocess.TimeoutExpired:
        return [], f"timed out after {timeout:.0f} s"
    results = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        return results, f"exit {proc.returncode}: {tail}"
    return results, ""


# --------------------------------------------------------------------------------- tickloom plumbing
def write_parquet(bars: dict, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "ts_event": bars["ts"],
        "ts_recv": bars["ts"] + RECV_DELAY_NS,
        **{name: bars[name] for name in ("open", "high", "low", "close", "volume")},
    })
    pq.write_table(table, path)


def write_spec(parquet: Path, path: Path) -> None:
    path.write_text(f"""\
# written by benchmarks/bar_backtest.py: the SMA(10, 30) crossover of benchmarks/peers/sma_cross.py
tickloom: 1
name: bar_backtest_bench
kind: strategy
defaults: {{place: numba, chunk_events: {CHUNK_EVENTS}}}
nodes:
  bars: {{op: source.bars_parquet, with: {{path: "{parquet.resolve()}", instrument: SYN}}}}
  fast: {{op: indicator.sma, in: bars.close, with: {{window: {FAST}}}}}
  slow: {{op: indicator.sma, in: bars.close, with: {{window: {SLOW}}}}}
  cross: {{op: signal.crossover, in: [fast, slow]}}
  target: {{op: sizing.fixed_units, in: cross, with: {{units: {UNITS}}}}}
  sim:
    op: backtest.bar_venue
    in: {{market: bars, target: target}}
    with: {{cash: {CASH}, commission: {COMMISSION}}}
""")


def make_dataset(bars: dict, folder: Path, tag: str) -> Path:
    """Parquet file + spec for ``bars`` in ``folder``; returns the spec's path."""
    parquet = folder / f"bars_{tag}.parquet"
    write_parquet(bars, parquet)
    spec = folder / f"spec_{tag}.yaml"
    write_spec(parquet, spec)
    return spec


def places_for(placement: str) -> list[str]:
    return [] if placement == "numba" else [f"{node}={placement}" for node in STREAM_NODES]


def compile_tickloom(spec_path: Path, placement: str):
    from pipelines.plan import compile_plan
    from pipelines.spec import load_spec

    return compile_plan(load_spec(spec_path, places=places_for(placement)))


class PhaseTimer:
    """Wrap a few tickloom functions at run time (this process only) to split a replay into phases."""

    def __init__(self):
        import pipelines.replay as replay_module
        from nodes.backtest.bar_venue import BarVenue

        self.acc: dict[str, float] = {}
        self._wrap(replay_module._BoundSegment, "run", "engine")
        for name in ("_recorded_frame", "_concat", "_with_instrument_names"):
            self._wrap(replay_module, name, "record")
        self._wrap(BarVenue, "summarize", "summarize", classmethod_=True)

    def _wrap(self, owner, name: str, label: str, classmethod_: bool = False) -> None:
        original = getattr(owner, name).__func__ if classmethod_ else getattr(owner, name)
        acc = self.acc

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                acc[label] = acc.get(label, 0.0) + time.perf_counter() - t

        timed.__wrapped__ = original
        setattr(owner, name, classmethod(timed) if classmethod_ else timed)

    def reset(self) -> None:
        self.acc.clear()


def read_only_pass(plan) -> float:
    """Seconds to read the plan's Parquet source in chunks (the read + checks part of a replay)."""
    graph = plan.graph
    node = graph.nodes[graph.sources[0]]
    t = time.perf_counter()
    reader = node.op.open(node.definition.params, plan.spec.path.parent)
    rows = sum(len(chunk["ts_recv"]) for chunk in reader.chunks(plan.spec.model.defaults.chunk_events))
    dt = time.perf_counter() - t
    assert rows > 0
    return dt


def time_kernel_in_memory(plan, n: int, repeat: int = 3) -> dict:
    """Third figure: the plan's segments over Parquet chunks already read into memory.

    Mirrors the stream pass of ``pipelines.replay.replay`` (bound segments with fresh state, one ``_Batch`` per
    chunk, whose record arrays are allocated on first use inside ``_BoundSegment.run``, as in a replay) minus
    the reading, recording and summarizing. One untimed pass, then the median of ``repeat`` passes.
    """
    import pipelines.replay as replay_module
    from nodes.sources.merge import merge_chunks

    if plan.interleaved:
        raise ValueError("kernel-mem timing runs each segment over a whole chunk; an interleaved plan has no such pass")
    graph = plan.graph
    readers = [graph.nodes[s].op.open(graph.nodes[s].definition.params, plan.spec.path.parent) for s in graph.sources]
    key_maps = [np.array([graph.instruments.index(i) for i in r.instruments], dtype=np.int64) for r in readers]
    columns = [["ts_event", "ts_recv", "instrument", *graph.nodes[s].op.outputs] for s in graph.sources]
    source_index = {s: i for i, s in enumerate(graph.sources)}
    chunk_events = plan.spec.model.defaults.chunk_events
    merged = list(merge_chunks([r.chunks(chunk_events) for r in readers], columns))
    many_sources = len(graph.sources) > 1

    def one_pass() -> float:
        holds = replay_module._hold_arrays(plan)
        segments = [replay_module._BoundSegment(plan, segment, holds) for segment in plan.segments]
        for segment in segments:
            segment.code.arguments = [
                (name, kind, (source_index[detail[0]], detail[1]) if kind == "column" else detail)
                for name, kind, detail in segment.code.arguments
            ]
        batches = [replay_module._Batch(m, key_maps, many_sources) for m in merged]
        t = time.perf_counter()
        for batch in batches:
            for segment in segments:
                segment.run(batch, 0, batch.n)
        dt = time.perf_counter() - t
        assert sum(b.n for b in batches) == n
        return dt

    first = one_pass()
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(one_pass())
    return {"seconds": statistics.median(times), "first": first, "all": times}


def tickloom_outcome(result) -> tuple[float, int]:
    sim = result.recorded["sim"]
    return float(sim["equity"][-1]), int((sim["fill_qty"] != 0.0).sum())


def time_tickloom(plan, timer: PhaseTimer, n: int) -> dict:
    from pipelines.replay import replay

    e2e, engine, record, summarize, outcome, equity_curve = [], [], [], [], None, None
    for attempt in range(3):
        gc.collect()
        timer.reset()
        t = time.perf_counter()
        result = replay(plan)
        e2e.append(time.perf_counter() - t)
        engine.append(timer.acc.get("engine", 0.0))
        record.append(timer.acc.get("record", 0.0))
        summarize.append(timer.acc.get("summarize", 0.0))
        assert result.events == n, (result.events, n)
        outcome = tickloom_outcome(result)
        if equity_curve is None:
            equity_curve = result.recorded["sim"]["equity"].to_numpy()
        del result
        if attempt == 1 and max(e2e) > SLOW_RUN_S:
            break
    return {
        "runs": len(e2e), "e2e": statistics.median(e2e), "engine": statistics.median(engine),
        "e2e_all": e2e, "engine_all": engine,
        "record": statistics.median(record), "summarize": statistics.median(summarize),
        "read": read_only_pass(plan), "equity": outcome[0], "fills": outcome[1], "curve": equity_curve,
    }


# ------------------------------------------------------------------------------------ child modes
def child_time_peer(engine: str, sizes: list[int], seed: int) -> None:
    """Peer venv: median of 3 for ``engine`` at each size, one RESULT line per size."""
    fn = peer.ENGINES.get(engine)
    if fn is None:
        _emit({"engine": engine, "missing": True})
        return
    fn(peer.synthetic_bars(WARMUP_N, 1))
    for n in sizes:
        bars = peer.synthetic_bars(n, seed)
        dt, times, out = _median_time(lambda: fn(bars), 3)
        _emit({"engine": engine, "n": n, "seconds": dt, "times": times, "equity": out[0], "fills": out[1],
               "digest": _digest(bars)})
        del bars
        gc.collect()


def child_rss(engine: str, n: int, seed: int, spec: str, warm_spec: str) -> None:
    """Fresh process: warm up, reset the peak-RSS mark, run ``engine`` once on ``n`` bars, report peak RSS."""
    if engine.startswith("tickloom-"):
        from pipelines.replay import replay

        placement = engine.split("-", 1)[1]
        replay(compile_tickloom(Path(warm_spec), placement))
        plan = compile_tickloom(Path(spec), placement)
        gc.collect()
        baseline = _rss_mib()
        reset = _reset_hwm()
        t = time.perf_counter()
        result = replay(plan)
        dt = time.perf_counter() - t
        peak = _hwm_mib()
        equity, fills = tickloom_outcome(result)
    else:
        fn = peer.ENGINES.get(engine)
        if fn is None:
            _emit({"engine": engine, "n": n, "missing": True})
            return
        fn(peer.synthetic_bars(WARMUP_N, 1))
        gc.collect()
        baseline = _rss_mib()
        bars = peer.synthetic_bars(n, seed)
        gc.collect()
        reset = _reset_hwm()
        t = time.perf_counter()
        out = fn(bars)
        dt = time.perf_counter() - t
        peak = _hwm_mib()
        equity, fills = out[0], out[1]
    _emit({"engine": engine, "n": n, "baseline": baseline, "peak": peak, "reset": reset, "seconds": dt,
           "equity": equity, "fills": fills})


# ------------------------------------------------------------------------------------------- report
def check(name: str, got: tuple[float, int], ref: tuple[float, int], bad: str = "MISMATCH") -> tuple[bool, str]:
    rel = abs(got[0] - ref[0]) / abs(ref[0])
    ok = rel <= REL_TOL and got[1] == ref[1]
    text = (f"{name:22s} final equity {got[0]:.10f}  fills {got[1]:>7d}   rel diff {rel:.1e}"
            f"{'' if got[1] == ref[1] else f'  FILLS DIFFER ({got[1] - ref[1]:+d})'}"
            f"   {'ok' if ok else bad}")
    return ok, text


def peer_difference_note(engine: str, n: int, rel: float, same_fills: bool) -> str:
    """The known reason a peer can differ from the hand loop (benchmarks/peers/sma_cross.py, its docstring)."""
    if engine == "vectorbt" and same_fills and rel < 1e-7:
        return (f"known peer difference: vectorbt's MA is a difference of one global cumulative sum (error up to "
                f"~4e-8 relative at 10M bars), so a cross decided by a margin smaller than that lands on a "
                f"neighbouring bar (at seed 0, 10M bars: bar 8,857,945, see benchmarks/peers/README.md); "
                f"tickloom and the hand loop both match an exact per-window sum there")
    return "unexplained peer difference"



def explain_divergence(bars: dict, curve_a: np.ndarray, curve_b: np.ndarray) -> tuple[str, bool]:
    """Where two equity curves part and how close the SMA cross was at the bars that decided it.

    Returns the text and whether it is explained as a near-tie (exact |fast - slow| < 1e-9 x slow at one of
    the decision bars just before the curves part).
    """
    diff = np.abs(curve_a - curve_b) > REL_TOL * np.abs(curve_b)
    if not diff.any():
        return "equity curves agree bar by bar (within 1e-9 relative); only the last value differs", False
    i = int(np.argmax(diff))
    close = bars["close"]
    lines = [f"equity curves part at bar {i:,d} (an order decided at bar j's close fills at bar j+1's open):"]
    near_tie = False
    for j in range(max(SLOW - 1, i - 3), i):
        fast = math.fsum(close[j - FAST + 1 : j + 1]) / FAST
        slow = math.fsum(close[j - SLOW + 1 : j + 1]) / SLOW
        near_tie |= abs(fast - slow) < 1e-9 * slow
        lines.append(f"    bar {j:,d}: exact fast - slow = {fast - slow:+.3e} (slow = {slow:.6f})")
    lines.append("    -> a near-tie: the two SMA summation orders round this cross differently" if near_tie
                 else "    -> NOT a near-tie: unexplained")
    return "\n".join(lines), near_tie


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000", help="comma-separated bar counts")
    ap.add_argument("--quick", action="store_true", help="100k bars only (a fast check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="interpreter of the peer venv")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--_child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        mode, rest = args._child[0], args._child[1:]
        if mode == "time-peer":
            child_time_peer(rest[0], [int(x) for x in rest[1].split(",")], int(rest[2]))
        elif mode == "rss":
            child_rss(rest[0], int(rest[1]), int(rest[2]), rest[3], rest[4])
        return 0

    sizes = [100_000] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tickloom-bar-bench-"))
    try:
        return run(args, sizes, work, started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, sizes: list[int], work: Path, started: float) -> int:
    import importlib.metadata as md

    import pipelines  # noqa: F401  -- fail early if tickloom is not importable

    versions = []
    for dist in ("numpy", "numba", "polars", "pyarrow"):
        try:
            versions.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"python {sys.version.split()[0]}; {', '.join(versions)}; {os.cpu_count()} cores ({cpu})")
    print(f"workload: SMA({FAST},{SLOW}) cross, units={UNITS}, cash={CASH:g}, commission={COMMISSION}, "
          f"next-open fills, seed {args.seed}; sizes {', '.join(f'{n:,d}' for n in sizes)}")
    load_before = os.getloadavg()
    print(f"load average before the run: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min)"
          + ("  -- WARNING: other processes are busy, timings will be inflated" if load_before[0] > 0.7 else ""))
    rc = 0

    # ---------------------------------------------------------------- data, warm-up
    from pipelines.replay import replay

    warm_spec = make_dataset(peer.synthetic_bars(WARMUP_N, 1), work, "warmup")
    timer = PhaseTimer()
    t = time.perf_counter()
    for placement in ("numba", "cpu"):
        replay(compile_tickloom(warm_spec, placement))
    print(f"warm-up (tickloom numba + cpu on {WARMUP_N:,d} bars, kernels from the disk cache or compiled): "
          f"{time.perf_counter() - t:.2f} s")
    peer.hand_loop(peer.synthetic_bars(WARMUP_N, 1))  # numba compile of the hand loop

    rows: dict[tuple[str, int], dict] = {}  # (engine, n) -> seconds, runs, ...
    refs: dict[int, tuple[float, int]] = {}  # n -> hand loop (equity, fills)
    specs: dict[int, Path] = {}
    digests: dict[int, str] = {}
    checks: dict[int, list[str]] = {}  # n -> lines
    breakdown: list[str] = []

    hand_sizes = sorted(set(sizes) | {BACKTESTING_N})
    for n in hand_sizes:
        bars = peer.synthetic_bars(n, args.seed)
        digests[n] = _digest(bars)
        dt, times, out = _median_time(lambda: peer.hand_loop(bars), 3)
        refs[n] = (out[0], out[1])
        if n in sizes:
            rows[("hand loop (numba)", n)] = {"seconds": dt, "runs": 3}
            checks.setdefault(n, []).insert(0, f"{'hand loop (numba)':22s} final equity {out[0]:.10f}  fills {out[1]:>7d}   (reference)")
        else:
            continue
        hand_curve = out[2]
        t = time.perf_counter()
        specs[n] = make_dataset(bars, work, str(n))
        print(f"n = {n:>10,d}: bars generated, Parquet written in {time.perf_counter() - t:.2f} s "
              f"({specs[n].with_name(f'bars_{n}.parquet').stat().st_size / 2**20:.0f} MiB on disk, "
              f"{n * BYTES_PER_BAR / 2**20:.0f} MiB as arrays)", flush=True)
        for placement in ("numba", "cpu"):
            name = f"tickloom {placement}"
            if placement == "cpu" and n > CPU_MAX_N:
                print(f"    {name}: skipped at {n:,d} bars (pure Python, ~0.4M bars/s; run at <= {CPU_MAX_N:,d})")
                continue
            t = time.perf_counter()
            plan = compile_tickloom(specs[n], placement)
            compile_s = time.perf_counter() - t
            r = time_tickloom(plan, timer, n)
            rows[(f"{name} e2e", n)] = {"seconds": r["e2e"], "runs": r["runs"], "equity": r["equity"], "fills": r["fills"]}
            rows[(f"{name} engine", n)] = {"seconds": r["engine"], "runs": r["runs"]}
            kernel_text = ""
            if placement == "numba":
                k = time_kernel_in_memory(plan, n)
                rows[(f"{name} kernel-mem", n)] = {"seconds": k["seconds"], "runs": len(k["all"])}
                kernel_text = (f"\n{'':15s} {'':13s}  kernel-mem (chunks in memory) {k['seconds']:.3f} s: untimed first "
                               f"pass {k['first']:.3f}, then {', '.join(f'{x:.3f}' for x in k['all'])}")
            other = r["e2e"] - r["read"] - r["engine"] - r["record"] - r["summarize"]
            breakdown.append(
                f"{name:15s} n={n:>10,d}: e2e {r['e2e']:7.3f} s = read {r['read']:.3f} (separate read-only pass)"
                f" + engine {r['engine']:.3f} + record {r['record']:.3f} + summarize {r['summarize']:.3f}"
                f" + other {other:+.3f};  load+compile {compile_s:.3f} s;  runs e2e "
                f"{', '.join(f'{x:.3f}' for x in r['e2e_all'])} / engine {', '.join(f'{x:.3f}' for x in r['engine_all'])}"
                + kernel_text)
            ok, text = check(name, (r["equity"], r["fills"]), refs[n])
            checks[n].append(text)
            if not ok:
                text, explained = explain_divergence(bars, r["curve"], hand_curve)
                checks[n].append(text)
                if not explained:
                    rc = 1
            kernel_short = f", kernel-mem {rows[(f'{name} kernel-mem', n)]['seconds']:.3f} s" if placement == "numba" else ""
            print(f"    {name}: e2e {r['e2e']:.3f} s, engine {r['engine']:.3f} s{kernel_short} (median of {r['runs']})"
                  f"{'' if ok else '  -- RESULT MISMATCH, see below'}", flush=True)
            del plan, r
            gc.collect()
        del bars, hand_curve, out
        gc.collect()

    # ---------------------------------------------------------------- peers (peer venv, subprocess)
    peer_python = args.peer_python
    peer_notes: list[str] = []
    if not Path(peer_python).exists():
        peer_notes.append(f"vectorbt, backtesting.py: skipped, no peer interpreter at {peer_python}")
        peer_engines = []
    else:
        peer_engines = [("vectorbt", sizes), ("backtesting", [BACKTESTING_N])]
    available_peers = []
    for engine, engine_sizes in peer_engines:
        t = time.perf_counter()
        results, error = _child(peer_python, ["--_child", "time-peer", engine, ",".join(map(str, engine_sizes)),
                                              str(args.seed)])
        if results and results[0].get("missing"):
            peer_notes.append(f"{engine}: skipped, not installed in the peer venv")
            continue
        if error:
            peer_notes.append(f"{engine}: FAILED ({error})")
            rc = 1
        available_peers.append(engine)
        for res in results:
            n = res["n"]
            rows[(engine, n)] = {"seconds": res["seconds"], "runs": len(res["times"])}
            if res["digest"] != digests[n]:
                peer_notes.append(f"{engine} n={n:,d}: DIFFERENT BARS in the peer venv (digest "
                                  f"{res['digest']} vs {digests[n]})")
                rc = 1
            rows[(engine, n)].update(equity=res["equity"], fills=res["fills"])
            ok, text = check(engine, (res["equity"], res["fills"]), refs[n], bad="DIFFERS (peer)")
            if n not in sizes:
                checks.setdefault(n, []).append(f"{'hand loop (numba)':22s} final equity {refs[n][0]:.10f}  "
                                                f"fills {refs[n][1]:>7d}   (reference)")
            checks[n].append(text)
            if not ok:  # a peer's own arithmetic; reported, not a tickloom failure
                rel = abs(res["equity"] - refs[n][0]) / abs(refs[n][0])
                checks[n].append("    " + peer_difference_note(engine, n, rel, res["fills"] == refs[n][1]))
        print(f"{engine}: timed in the peer venv in {time.perf_counter() - t:.1f} s (process included)", flush=True)

    # ---------------------------------------------------------------- peak memory (fresh process each)
    rss: dict[tuple[str, int], dict] = {}
    rss_notes: list[str] = []
    if not args.no_rss:
        jobs = []
        for n in sizes:
            jobs.append(("tickloom numba e2e", "tickloom-numba", n, sys.executable))
            if n <= CPU_MAX_N:
                jobs.append(("tickloom cpu e2e", "tickloom-cpu", n, sys.executable))
            jobs.append(("hand loop (numba)", "hand_loop", n, sys.executable))
            if "vectorbt" in available_peers:
                jobs.append(("vectorbt", "vectorbt", n, peer_python))
        if "backtesting" in available_peers:
            jobs.append(("backtesting", "backtesting", BACKTESTING_N, peer_python))
        t = time.perf_counter()
        for label, engine, n, python in jobs:
            spec = str(specs.get(n, warm_spec))
            results, error = _child(python, ["--_child", "rss", engine, str(n), str(args.seed), spec, str(warm_spec)])
            if error or not results:
                rss_notes.append(f"{label} n={n:,d}: FAILED ({error or 'no result'})")
                continue
            res = results[-1]
            rss[(label, n)] = res
            if not res["reset"]:
                rss_notes.append(f"{label} n={n:,d}: could not reset VmHWM; peak includes warm-up and data generation")
            timed = rows.get((label, n), {})
            expected = (timed["equity"], timed["fills"]) if "equity" in timed else refs[n]
            if not check(label, (res["equity"], res["fills"]), expected)[0]:
                rss_notes.append(f"{label} n={n:,d}: the memory run's result differs from the timed runs'")
        print(f"peak-memory subprocesses: {len(jobs)} in {time.perf_counter() - t:.1f} s", flush=True)

    # ---------------------------------------------------------------- tables
    print()
    print("Results (seconds = median; M bars/s = n / seconds; peak MiB = VmHWM of a fresh process running the "
          "engine once;")
    print("         tl÷ columns = tickloom-numba throughput ÷ this row's, engine figure and e2e figure)")
    header = (f"{'engine':24s} {'n':>11s} {'runs':>4s} {'seconds':>9s} {'M bars/s':>9s} {'peak MiB':>9s}"
              f" {'x input':>8s} {'tl-engine÷':>11s} {'tl-e2e÷':>8s}")
    print(header)
    print("-" * len(header))
    order = ["tickloom numba kernel-mem", "tickloom numba engine", "tickloom numba e2e", "tickloom cpu engine", "tickloom cpu e2e",
             "hand loop (numba)", "vectorbt", "backtesting"]
    input_bytes = {}
    for n in sizes:
        input_bytes[n] = n * BYTES_PER_BAR
        tl_engine = n / rows[("tickloom numba engine", n)]["seconds"]
        tl_e2e = n / rows[("tickloom numba e2e", n)]["seconds"]
        for name in order:
            row_n = BACKTESTING_N if name == "backtesting" else n
            row = rows.get((name, row_n))
            if row is None:
                continue
            throughput = row_n / row["seconds"]
            mem = rss.get((name, row_n))
            if mem:
                peak = f"{mem['peak']:9.0f}"
                ratio = f"{(mem['peak'] - mem['baseline']) * 2**20 / (row_n * BYTES_PER_BAR):7.2f}x"
            else:
                peak, ratio = f"{'-':>9s}", f"{'-':>8s}"
            shown_n = f"{row_n:,d}" + ("*" if row_n != n else " ")
            print(f"{name:24s} {shown_n:>11s} {row['runs']:>4d} {row['seconds']:9.4f} {throughput / 1e6:9.2f}"
                  f" {peak} {ratio} {tl_engine / throughput:10.2f}x {tl_e2e / throughput:7.2f}x")
        print()
    if "backtesting" in available_peers and sizes != [BACKTESTING_N]:
        print(f"* backtesting.py is measured at {BACKTESTING_N:,d} bars only; its ratios divide tickloom's "
              f"throughput at the row's size by backtesting.py's at {BACKTESTING_N:,d}.")
    print("x input = (peak RSS - RSS of the idle, warmed-up process) / input arrays (56 bytes per bar: "
          "2 int64 + 5 float64).")
    print("tickloom 'engine' rows: time inside _BoundSegment.run (the fused kernel) during the e2e replays; "
          "memory is measured for e2e only.")
    for note in peer_notes + rss_notes:
        print("note: " + note)

    print("\nWhere tickloom's e2e time goes (medians of the same runs):")
    for line in breakdown:
        print("  " + line)

    if rss:
        print("\nPeak memory detail (fresh process per engine; MiB):")
        for (label, n), res in rss.items():
            delta = res["peak"] - res["baseline"]
            print(f"  {label:22s} n={n:>10,d}: idle {res['baseline']:6.0f}, peak {res['peak']:6.0f}, "
                  f"above idle {delta:6.0f} = {delta * 2**20 / (n * BYTES_PER_BAR):5.2f}x input "
                  f"({n * BYTES_PER_BAR / 2**20:.0f} MiB); one run {res['seconds']:.3f} s")

    print("\nCorrectness (final equity before any end-of-run closing, fills = bars where the position changed):")
    for n in sorted(checks):
        print(f"  n = {n:,d}:")
        for line in checks[n]:
            print("    " + line.replace("\n", "\n    "))

    print("\nGoals (tickloom placed on numba; kernel-mem / engine / e2e figures):")
    for n in sizes:
        figures = [(label, n / rows[(f"tickloom numba {label}", n)]["seconds"])
                   for label in ("kernel-mem", "engine", "e2e") if (f"tickloom numba {label}", n) in rows]
        lines = []
        for peer_name, goal in (("hand loop (numba)", 0.5), ("vectorbt", 10.0)):
            if (peer_name, n) not in rows:
                continue
            other = n / rows[(peer_name, n)]["seconds"]
            shown = ", ".join(f"{label} {tl / other:.3g}x {'MET' if tl / other >= goal else 'MISSED'}"
                              for label, tl in figures)
            lines.append(f"vs {peer_name} (goal >= {goal:g}x): {shown}")
        mem = rss.get(("tickloom numba e2e", n))
        if mem:
            ratio = (mem["peak"] - mem["baseline"]) * 2**20 / (n * BYTES_PER_BAR)
            lines.append(f"peak memory (goal <= 3x input): {ratio:.2f}x above the idle process "
                         f"{'MET' if ratio <= 3 else 'MISSED'} ({mem['peak'] * 2**20 / (n * BYTES_PER_BAR):.2f}x "
                         f"counting the whole process)")
        print(f"  n = {n:,d}:\n    " + "\n    ".join(lines))

    import resource

    cpu_s = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                for f in ("ru_utime", "ru_stime"))
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    print(f"\nCPU time of this run (all processes) {cpu_s:.0f} s in {wall:.0f} s wall; load average now "
          f"{load_after[0]:.2f} (1 min)"
          + ("  -- WARNING: the machine was shared, timings are inflated" if cpu_s < 0.6 * wall else ""))
    print(f"total wall time {time.perf_counter() - started:.0f} s; exit {rc} "
          f"({'tickloom agrees with the hand loop' if rc == 0 else 'see MISMATCH / FAILED above'})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
