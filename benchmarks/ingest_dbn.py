"""DBN ingest benchmark: tickloom's decode + normalize against databento-dbn's bare decode.

Run from the repository root with the dev venv (about 30 s on 2 cores):

    /work/venv/bin/python benchmarks/ingest_dbn.py               # the GLBX samples + a 50x MBO file
    /work/venv/bin/python benchmarks/ingest_dbn.py --scale 200   # a bigger synthetic MBO file
    /work/venv/bin/python benchmarks/ingest_dbn.py --chunk 8192

Needs ``../shared/data/dbn`` (the GLBX samples); the vendored ``data/samples/dbn`` files are too small to time.

Per file, three figures: records / best seconds. The three are run in interleaved rounds (one warm-up round,
then at least ``--runs`` rounds and half a second), and the best time of each is kept: this machine is shared
and its load comes and goes, so the best time is the closest to each code's own cost.

* **tickloom** -- ``decode_dbn(path)`` iterated to the end: read (and zstd-decompress) the file, split the
  records, build every normalized polars frame (symbols, venue, scaled sizes, trades from quotes, ...) and the
  quality report. ``chunk_records`` = ``--chunk``.
* **dbn bare** -- the floor the task asks for: databento-dbn's ``DBNDecoder`` fed the file in 64 KiB pieces
  (``compression=ZSTD`` for ``.zst``), its record objects iterated without building anything. This is one
  Python object per record, which tickloom does not create.
* **numpy floor** -- decompress with ``zstandard`` and ``np.frombuffer`` the records with databento-dbn's
  dtype (what ``DBNStore.to_ndarray`` does): the cost of getting the bytes, no normalization. tickloom's own
  splitting starts from here.

``ratio`` = tickloom's records/s divided by dbn bare's (> 1: tickloom is faster than merely iterating
databento-dbn's objects). The ``--scale`` file repeats the largest MBO sample's records N times, each copy
shifted by one hour so the file stays sorted, to time a file large enough for a steady state.
"""

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import databento_dbn as dbn  # noqa: E402
import zstandard  # noqa: E402

from nodes.marketdata.dbn import decode_dbn  # noqa: E402
from nodes.marketdata.dbn.records import layout  # noqa: E402

SHARED_DBN = REPO.parent / "shared" / "data" / "dbn"
LARGEST_MBO = "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"
READ_BYTES = 64 * 1024


def is_zstd(path: Path) -> bool:
    return path.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


def decompressed(path: Path) -> bytes:
    raw = path.read_bytes()
    if is_zstd(path):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True).read()
    return raw


def run_tickloom(path: Path, chunk: int) -> int:
    records = 0
    decoding = decode_dbn(path, chunk_records=chunk)
    for _ in decoding:
        pass
    records = decoding.report.records
    return records


def run_dbn_bare(path: Path) -> int:
    compression = dbn.Compression.ZSTD if is_zstd(path) else dbn.Compression.NONE
    decoder = dbn.DBNDecoder(compression=compression)
    count = -1  # the first object is the metadata
    with open(path, "rb") as handle:
        while data := handle.read(READ_BYTES):
            for _ in decoder.write_and_decode(data):
                count += 1
    return count


def run_numpy_floor(path: Path) -> int:
    raw = decompressed(path)
    head = 8 + int.from_bytes(raw[4:8], "little")
    rtype, version = raw[head + 1], raw[3]
    dtype = layout(rtype, version, False).dtype
    records = np.frombuffer(raw, dtype=dtype, offset=head, count=(len(raw) - head) // dtype.itemsize)
    return len(records)


def timed_together(functions: dict, runs: int, min_seconds: float = 0.5) -> dict[str, tuple[float, int]]:
    """Best time of each function over interleaved rounds (fair under a load that comes and goes).

    One warm-up round, then at least ``runs`` rounds and until ``min_seconds`` have passed (small files).
    """
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    counts: dict[str, int] = {}
    started = time.perf_counter()
    rounds = 0
    while rounds < runs or (time.perf_counter() - started < min_seconds and rounds < 500):
        for name, function in functions.items():
            start = time.perf_counter()
            counts[name] = function()
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return {name: (min(times[name]), counts[name]) for name in functions}


def scaled_mbo(times: int, folder: Path) -> Path:
    raw = decompressed(SHARED_DBN / LARGEST_MBO)
    head = 8 + int.from_bytes(raw[4:8], "little")
    dtype = layout(raw[head + 1], raw[3], False).dtype
    one = np.frombuffer(raw, dtype=dtype, offset=head)
    copies = np.tile(one, times)
    shift = (np.arange(len(copies)) // len(one)).astype(np.uint64) * np.uint64(3_600 * 10**9)
    copies["ts_event"] += shift
    copies["ts_recv"] += shift
    target = folder / f"mbo_x{times}.dbn.zst"
    target.write_bytes(zstandard.ZstdCompressor(level=3).compress(raw[:head] + copies.tobytes()))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=50, help="repeat the largest MBO sample N times (0: skip)")
    parser.add_argument("--chunk", type=int, default=65_536, help="chunk_records for tickloom")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds at least (best time is kept)")
    args = parser.parse_args()
    if not SHARED_DBN.exists():
        sys.exit(f"{SHARED_DBN} not found: this benchmark needs the shared GLBX samples")
    files = sorted(SHARED_DBN.glob("*.dbn.zst"), key=lambda p: -p.stat().st_size)
    with tempfile.TemporaryDirectory() as folder:
        if args.scale:
            files.insert(0, scaled_mbo(args.scale, Path(folder)))
        header = f"{'file':48} {'records':>9} {'tickloom rec/s':>15} {'dbn bare rec/s':>15} {'numpy rec/s':>13} {'ratio':>6}"
        print(f"chunk_records={args.chunk}, best of >= {args.runs} interleaved rounds\n{header}\n{'-' * len(header)}")
        for path in files:
            best = timed_together({
                "tickloom": lambda: run_tickloom(path, args.chunk),
                "bare": lambda: run_dbn_bare(path),
                "numpy": lambda: run_numpy_floor(path),
            }, runs=args.runs)
            (t_ours, n_ours), (t_bare, n_bare), (t_np, _) = best["tickloom"], best["bare"], best["numpy"]
            assert n_ours == n_bare, (path, n_ours, n_bare)
            ours, bare, floor = n_ours / t_ours, n_bare / t_bare, n_ours / t_np
            print(f"{path.name[:48]:48} {n_ours:>9,} {ours:>15,.0f} {bare:>15,.0f} {floor:>13,.0f} {ours / bare:>6.2f}")

if __name__ == "__main__":
    main()
