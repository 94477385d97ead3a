"""Benchmark the order books: L3 (``book.l3``) and L2 (``book.l2``) updates per second on real CME MBO data.

Data: the Databento GLBX samples in ``../shared/data/dbn`` — ESH4 2023-12-24 (a full-book snapshot, 8,725
adds) and ESM4 2024-05-08 (a clear, a 13.6k-order snapshot, then two seconds of adds, cancels, modifies,
trades and fills). Each file is repeated to ``--events`` events, every repetition starting with a clear (R),
as replaying that many sessions back to back would; the L2 book gets the level deltas ``book.l3_mbp`` derives
from the same MBO records.

Figures (process CPU time, so other load on the machine matters less; wall time alongside):
- ``numba`` through ``replay_book``'s loop (the step inlined in one compiled loop, no NRT reference counting);
- ``numba`` through the plan: a spec whose ``book.l3`` node is placed on numba, run by ``pipelines`` (its
  generated segment loop, one and two instruments);
- ``cpu`` (the same step as plain Python) on a small slice;
- peak resident memory of the process and the size of one book's state.

Run: ``python benchmarks/book.py [--events 3000000]``. Prints figures; asserts nothing.
"""

import argparse
import resource
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes.marketdata.book.l2 import BookL2  # noqa: E402
from nodes.marketdata.book.l3 import BookL3  # noqa: E402
from nodes.marketdata.book.replay import mbo_to_mbp, replay_book  # noqa: E402
from nodes.marketdata.dbn import read_dbn_frames  # noqa: E402
from nodes.marketdata.schemas import UNDEF_PRICE  # noqa: E402

DBN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dbn"
FILES = {
    "ESH4": DBN / "esh4-glbx-mdp3-20231224.mbo.dbn.zst",
    "ESM4": DBN / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst",
}
L3_COLUMNS = list(BookL3.inputs)
L2_COLUMNS = list(BookL2.inputs)


def read_mbo(path: Path) -> dict[str, np.ndarray]:
    """A DBN MBO file's records (the project's decoder) as int64 columns."""
    orders = read_dbn_frames(path)[0]["orders"]
    columns = {}
    for name in L3_COLUMNS:
        values = orders[name].to_numpy()
        columns[name] = values.view(np.int64) if values.dtype == np.uint64 else values.astype(np.int64)
    return columns


def with_clear(columns: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """The file's records, starting with a clear unless they already do."""
    if columns["action"][0] == ord("R"):
        return {name: columns[name] for name in names}
    clear = {"order_id": 0, "side": 0, "price": UNDEF_PRICE, "size": 0, "action": ord("R"), "flags": 0}
    return {name: np.concatenate([[clear[name]], columns[name]]).astype(np.int64) for name in names}


def repeated(columns: dict[str, np.ndarray], events: int) -> dict[str, np.ndarray]:
    times = max(1, -(-events // len(columns["action"])))
    return {name: np.tile(values, times) for name, values in columns.items()}


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def rate(events: int, seconds: float) -> str:
    return f"{events / seconds / 1e6:7.2f} M/s"


def bench_replay(label: str, columns: dict, kind: str, target: str) -> None:
    replay_book({k: v[:1000] for k, v in columns.items()}, kind=kind, target=target, depth=0)  # compile or load
    n = len(columns["action"])
    summary, cpu, wall = timed(replay_book, columns, kind=kind, target=target, depth=1)
    book = summary["books"][""]
    print(f"  {label:<44} {n:>10,} events  {rate(n, cpu)} cpu-time  {rate(n, wall)} wall"
          f"   (levels {book['levels_bid']}/{book['levels_ask']}, inconsistent {book['inconsistent']})")


def bench_plan(columns: dict, instruments: int, events: int) -> None:
    """Run ``book.l3`` placed on numba through the plan (pipelines' generated loop) over ``instruments`` books."""
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    base = repeated(with_clear(columns, L3_COLUMNS), events // instruments)
    n = len(base["action"])
    merged = {name: np.repeat(values, instruments) for name, values in base.items()}
    merged["instrument"] = np.tile(np.arange(instruments), n).astype(np.int64)
    merged["ts_recv"] = np.arange(n * instruments, dtype=np.int64)
    merged["ts_event"] = merged["ts_recv"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        np.savez(folder / "mbo.npz", **merged)
        (folder / "mbo_source.py").write_text(_SOURCE)
        names = [f"I{i}" for i in range(instruments)]
        spec = {
            "tickloom": 1, "name": "book_bench", "kind": "research", "modules": ["mbo_source.py"],
            "defaults": {"place": "numba", "chunk_events": 1 << 20},
            "nodes": {
                "mbo": {"op": "bench.mbo_npz", "with": {"path": "mbo.npz", "instruments": names}},
                "book": {"op": "book.l3", "in": {p: f"mbo.{p}" for p in L3_COLUMNS}},
            },
        }
        path = folder / "book.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        replay(compile_plan(load_spec(path), record=["book"]))  # warm: compile or load the kernel
        result = replay(compile_plan(load_spec(path), record=["book"]))
    print(f"  {f'book.l3 through the plan, {instruments} instrument(s)':<44} {result.events:>10,} events  "
          f"{rate(result.events, result.seconds)} wall (whole replay: source, merge, loop, recording)")


_SOURCE = textwrap.dedent('''
    """Benchmark source: MBO rows from an .npz (an instrument index per row)."""
    from pathlib import Path

    import numpy as np
    from pydantic import Field

    from nodes.contract import I64, OpParams, SourceOp


    class NpzParams(OpParams):
        path: str = Field(description="npz file")
        instruments: list[str] = Field(description="instrument names")


    class MboNpz(SourceOp):
        """MBO rows from an npz file."""

        name = "bench.mbo_npz"
        Params = NpzParams
        outputs = {p: I64 for p in ("order_id", "side", "price", "size", "action", "flags")}

        @classmethod
        def instruments(cls, params, base_dir=None):
            return list(params.instruments)

        @classmethod
        def open(cls, params, base_dir):
            return _Reader(list(params.instruments), dict(np.load(Path(base_dir) / params.path)))


    class _Reader:
        def __init__(self, instruments, columns):
            self.instruments = instruments
            self._columns = columns

        def chunks(self, max_rows):
            n = len(self._columns["action"])
            for start in range(0, n, max_rows):
                chunk = {k: v[start:start + max_rows] for k, v in self._columns.items()}
                chunk["instrument"] = chunk["instrument"].astype(np.int32)
                yield chunk
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000_000, help="events per numba run (default 3M)")
    parser.add_argument("--cpu-events", type=int, default=20_000, help="events for the cpu runs (default 20k)")
    parser.add_argument("--skip-plan", action="store_true", help="skip the runs through pipelines")
    args = parser.parse_args()
    missing = [str(p) for p in FILES.values() if not p.exists()]
    if missing:
        sys.exit(f"the real DBN samples are not here: {missing} (../shared/data is on developer machines only)")

    for name, path in FILES.items():
        mbo = read_mbo(path)
        l3 = with_clear(mbo, L3_COLUMNS)
        deltas = mbo_to_mbp(pl.DataFrame(l3), target="numba")
        l2 = with_clear({c: deltas[c].to_numpy().astype(np.int64) for c in L2_COLUMNS}, L2_COLUMNS)
        actions = {chr(a): int((mbo["action"] == a).sum()) for a in np.unique(mbo["action"])}
        print(f"{name}: {len(mbo['action']):,} MBO records {actions} → {len(l2['action']):,} L2 deltas")
        bench_replay("book.l3 numba (replay loop)", repeated(l3, args.events), "l3", "numba")
        bench_replay("book.l2 numba (replay loop)", repeated(l2, args.events), "l2", "numba")
        bench_replay("book.l3 cpu (plain Python step)", repeated(l3, args.cpu_events), "l3", "cpu")
        bench_replay("book.l2 cpu (plain Python step)", repeated(l2, args.cpu_events), "l2", "cpu")
        if not args.skip_plan and name == "ESM4":
            for instruments in (1, 2):
                try:
                    bench_plan(mbo, instruments, min(args.events, 1_000_000))
                except ImportError as error:  # the plan's modules are someone's work in progress
                    print(f"  (through the plan: skipped, pipelines does not import: {error})")
                    break

    l3_bytes = sum(getattr(x, "nbytes", 0) for x in BookL3.init(tuple(BookL3.constants(BookL3.Params())), 1))
    l2_bytes = sum(getattr(x, "nbytes", 0) for x in BookL2.init(tuple(BookL2.constants(BookL2.Params())), 1))
    print(f"state per instrument (defaults): book.l3 {l3_bytes / 2**20:.1f} MiB (max_orders 65,536, max_levels 4,096),"
          f" book.l2 {l2_bytes / 2**10:.0f} KiB (max_levels 4,096)")
    print(f"peak resident memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
