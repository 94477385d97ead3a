"""Helpers for the research op tests: bar tables read by the real bar source, shared data, relative checks.

Tables are built by ``source.bars_csv`` itself (the reader a spec uses), so the tests see the ``ts_event`` /
``ts_recv`` a run would record. Files under ``../shared/data`` are not part of a fresh clone: ``shared_file``
skips the test when they are absent.
"""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from nodes.sources.bars_csv import BarsCsv

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "samples"
SHARED = REPO.parent / "shared" / "data"
SAMPLE_INSTRUMENTS = ["AAPL", "MSFT", "IBM", "KO"]
NS_PER_MINUTE = 60_000_000_000


def shared_file(relative: str) -> Path:
    """A file under ../shared/data; skips the test on a fresh clone, where that folder does not exist."""
    if not SHARED.exists():
        pytest.skip(f"../shared/data not present (fresh clone): {relative} is development data outside the project")
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def read_bars(path: str | Path, instruments: list[str] | None = None, **params) -> pl.DataFrame:
    """The table a run records for ``source.bars_csv`` over ``path``: ts_event, ts_recv, instrument, OHLCV.

    ``path`` may hold ``{instrument}`` (then ``instruments`` names them); ``params`` are the source's params.
    """
    params.setdefault("timezone", "America/New_York")
    if instruments is None:
        params["instrument"] = params.get("instrument", Path(path).name.split(".")[0])
    else:
        params["instruments"] = instruments
    source = BarsCsv.Params.model_validate({"path": str(path), **params})
    reader = BarsCsv.open(source, Path("/"))
    columns = next(iter(reader.chunks(10**9)))
    frame = pl.DataFrame(columns)
    names = pl.Series("instrument", reader.instruments, dtype=pl.String).gather(frame["instrument"])
    return frame.with_columns(names).select("ts_event", "ts_recv", "instrument", "open", "high", "low", "close", "volume")


def sample_bars(instruments: list[str] | None = None) -> pl.DataFrame:
    """The shipped daily bars (New York sessions 09:30–16:00) of ``instruments`` (default: all four)."""
    return read_bars(SAMPLES / "{instrument}.csv.gz", instruments or SAMPLE_INSTRUMENTS)


def assert_relative(actual, expected, rtol: float, what: str) -> None:
    """Every value within ``rtol`` of the expected one (relative; NaN must match NaN)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shapes differ {actual.shape} vs {expected.shape}"
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (
        f"{what}: NaN at different places: {np.flatnonzero(np.isnan(actual) != np.isnan(expected))[:5]}"
    )
    ok = ~np.isnan(expected)
    scale = np.maximum(np.abs(expected[ok]), np.finfo(np.float64).tiny)
    error = np.abs(actual[ok] - expected[ok]) / scale
    worst = int(np.argmax(error)) if error.size else 0
    assert not error.size or error[worst] <= rtol, (
        f"{what}: relative error {error[worst]:.3g} > {rtol:g} at {worst}: {actual[ok][worst]!r} vs {expected[ok][worst]!r}"
    )


def utc_ns(text: str) -> int:
    """'2024-03-08 14:30' (UTC) → int64 ns."""
    return int(np.datetime64(text.replace(" ", "T"), "ns").astype(np.int64))


def minute_bars(instrument: str, opens_utc_ns: list[int] | np.ndarray, minutes: int = 1, seed: int = 0) -> pl.DataFrame:
    """Synthetic bars of ``minutes`` length opening at the given UTC instants, with a random walk price."""
    rng = np.random.default_rng(seed)
    opens = np.asarray(opens_utc_ns, dtype=np.int64)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, len(opens))))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 5e-4, len(opens)))
    return pl.DataFrame({
        "ts_event": opens,
        "ts_recv": opens + minutes * NS_PER_MINUTE,
        "instrument": [instrument] * len(opens),
        "open": open_,
        "high": np.maximum(open_, close) * (1 + spread),
        "low": np.minimum(open_, close) * (1 - spread),
        "close": close,
        "volume": rng.integers(1, 100, len(opens)).astype(np.float64),
    })
