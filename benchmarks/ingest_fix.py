"""FIX market-data decoding benchmark: messages/s and MB/s, stage by stage, plain vs gzip vs zstd.

Run from the repository root with the dev venv (one to two minutes on 2 cores):

    /work/venv/bin/python benchmarks/ingest_fix.py              # each sample version, x20 (5-12 MB each)
    /work/venv/bin/python benchmarks/ingest_fix.py --repeat 100 # bigger logs

The logs are the vendored samples (``data/samples/fix``, real Binance prices in FIX 4.4, 5.0 SP2 and 4.2)
repeated ``--repeat`` times; each copy is re-encoded with MsgSeqNum continuing and SendingTime/prefix times
shifted past the previous copy, so sequence and clock checks see a clean, growing session (one W snapshot of
~2,000 levels per copy, then its incrementals: ~11 entries per 35=X on the spot samples).

Per log, three stages, each timed as the best of ``--runs`` rounds (the machine is shared; the best time is
the closest to the code's own cost):

* **frame** -- ``parse.frame_messages`` over the decompressed pieces: find, cut by BodyLength, CheckSum.
* **validate** -- framing plus ``Validator.validate`` against the QuickFIX dictionary (every field's type
  and enum, required fields, repeating groups).
* **decode** -- ``decode_fix`` end to end: the above, MsgSeqNum tracking, normalization to int64 rows and
  polars frames, the quality report.

MB/s counts decompressed log bytes; for gzip and zstd the decompression is included in every stage.
"""

import argparse
import gzip
import sys
import tempfile
import time
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nodes.marketdata.fix import decode_fix  # noqa: E402
from nodes.marketdata.fix.encode import encode_message, utc_timestamp_text  # noqa: E402
from nodes.marketdata.fix.parse import Frame, frame_messages, utc_timestamp_ns  # noqa: E402
from nodes.marketdata.fix.stream import StreamStatus, read_pieces  # noqa: E402
from nodes.marketdata.fix.validate import Rejection, Validator  # noqa: E402

SAMPLES = REPO / "data" / "samples" / "fix"
LOGS = ["spot_btcusdt.fix44.log.gz", "spot_ethusdt.fix50sp2.log.zst", "cm_btcusd_perp.fix42.log"]


def repeated_log(name: str, times: int) -> bytes:
    """The sample ``name`` decompressed and repeated ``times``, re-encoded so every copy continues the session."""
    status = StreamStatus(name)
    frames = [f for f in frame_messages(read_pieces(SAMPLES / name, status)) if isinstance(f, Frame)]
    first = min(f.ts_recv or utc_timestamp_ns(_field(f, "52")) for f in frames)
    last = max(f.ts_recv or utc_timestamp_ns(_field(f, "52")) for f in frames)
    span = last - first + 1_000_000_000
    out = []
    seq = 0
    for copy in range(times):
        shift = copy * span
        for frame in frames:
            seq += 1
            fields = [tuple(p.split("=", 1)) for p in frame.body.split(frame.delimiter)[:-1]]
            digits = len(_field(frame, "52").partition(".")[2])
            rewritten = []
            for tag, value in fields:
                if tag == "34":
                    value = str(seq)
                elif tag in ("52", "779"):
                    value = utc_timestamp_text(utc_timestamp_ns(value) + shift, digits)
                rewritten.append((tag, value))
            message = encode_message(frame.begin_string, rewritten, frame.delimiter)
            if frame.ts_recv is not None:
                message = f"{utc_timestamp_text(frame.ts_recv + shift, 9)} : ".encode() + message
            out.append(message)
    return b"\n".join(out) + b"\n"


def _field(frame: Frame, tag: str) -> str:
    d = frame.delimiter
    start = frame.body.index(f"{d}{tag}=") + len(tag) + 2
    return frame.body[start : frame.body.index(d, start)]


def run_frame(path: Path) -> int:
    return sum(1 for _ in frame_messages(read_pieces(path, StreamStatus(str(path)))))


def run_validate(path: Path) -> int:
    validator = Validator()
    count = 0
    for frame in frame_messages(read_pieces(path, StreamStatus(str(path)))):
        if isinstance(frame, Frame) and not isinstance(validator.validate(frame), Rejection):
            count += 1
    return count


def run_decode(path: Path) -> int:
    decoding = decode_fix(path, max_bad_fraction=0.0)
    for _ in decoding:
        pass
    return decoding.report.messages_good


def best_time(function, path: Path, runs: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = function(path)
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="copies of each sample in the timed log")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds per stage (best kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        header = (f"{'log':42} {'MB':>6} {'msgs':>8} {'frame msg/s':>12} {'MB/s':>6} {'validate msg/s':>15} "
                  f"{'MB/s':>6} {'decode msg/s':>13} {'MB/s':>6}")
        print(f"repeat={args.repeat}, best of {args.runs}\n{header}\n{'-' * len(header)}")
        for name in LOGS:
            data = repeated_log(name, args.repeat)
            stem = name.split(".log")[0]
            variants = {
                f"{stem}.log": data,
                f"{stem}.log.gz": gzip.compress(data, compresslevel=6),
                f"{stem}.log.zst": zstandard.ZstdCompressor(level=3).compress(data),
            }
            for variant, content in variants.items():
                path = Path(folder) / variant
                path.write_bytes(content)
                megabytes = len(data) / 1e6
                row = [f"{variant:42} {megabytes:>6.1f}"]
                counts = []
                for function in (run_frame, run_validate, run_decode):
                    seconds, count = best_time(function, path, args.runs)
                    counts.append(count)
                    if function is run_frame:
                        row.append(f"{count:>8,}")
                    width = 12 if function is run_frame else (15 if function is run_validate else 13)
                    row.append(f"{count / seconds:>{width},.0f} {megabytes / seconds:>6.1f}")
                assert counts[0] == counts[1] == counts[2], (variant, counts)  # every message is good
                print(" ".join(row))


if __name__ == "__main__":
    main()
