"""Ingest benchmarks in one run: Binance capture normalization (vs hftbacktest's converter) and DBN decoding
(vs databento-dbn's bare decode), each printing its own figures and ratios.

    python benchmarks/ingest.py            # both, on ../shared/data
    python benchmarks/ingest_binance.py    # one of them, with its own options
    python benchmarks/ingest_dbn.py

The two are separate scripts because their peers and options differ; this one runs both in sequence so the
issue's single command prints every ingest figure.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in ("ingest_binance.py", "ingest_dbn.py"):
        print(f"=== {script} ===", flush=True)
        status |= subprocess.call([sys.executable, str(HERE / script), *sys.argv[1:]])
        print(flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
