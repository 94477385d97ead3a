"""Engine hooks later rooms build on: op logs drained per chunk, per-instrument constants, source transforms.

A user op written here logs a row on every event whose close rose (sparse, like a venue's fills) and is not
recorded per event; its log must be the same whatever the chunk size and on cpu and numba, and must not be
there when the op is not logging.
"""

import numpy as np
import polars as pl
import pytest

from pipelines.run import run_spec
from tests.support import SAMPLES, assert_frames_identical, write_spec

LOGGING_OP = '''
import numpy as np
from nodes.contract import BAR, F64, OpParams, StreamOp


class RiseLogParams(OpParams):
    scale: float = 1.0


class RiseLog(StreamOp):
    """Log (key, time, close) of every bar that closed above its instrument's previous close."""

    name = "test.rise_log"
    Params = RiseLogParams
    keyed = False
    context = ("key", "ts_recv")
    inputs = {"bar": BAR}
    outputs = {"rises": F64}
    logs = ("rises",)
    record_events = False

    @classmethod
    def instrument_constants(cls, params, instruments):
        # a per-instrument multiplier: position of the instrument in the plan's order, plus one
        return (np.arange(1, len(instruments) + 1, dtype=np.float64) * params.scale,)

    @staticmethod
    def init(c, n_keys):
        # last close per key, the log (rows of key, ts, scaled close), its cursor, the count
        return (np.full(n_keys, np.nan), np.zeros((2, 3)), 0, 0.0)

    @staticmethod
    def step(c, s, key, ts_recv, open_, high, low, close, volume):
        last, log, cursor, count = s
        if close > last[key]:
            if cursor == log.shape[0]:
                grown = np.zeros((2 * log.shape[0], 3))
                grown[:cursor] = log
                log = grown
            log[cursor, 0] = key
            log[cursor, 1] = ts_recv
            log[cursor, 2] = close * c[1][key]
            cursor += 1
            count += 1.0
        last[key] = close
        return (last, log, cursor, count), count

    @staticmethod
    def drain(c, s):
        last, log, cursor, count = s
        rows = log[:cursor]
        columns = {"key": rows[:, 0].astype(np.int64), "ts_recv": rows[:, 1].astype(np.int64),
                   "scaled_close": rows[:, 2].copy()}
        return (last, log, 0, count), {"rises": columns}
'''


def _spec(tmp_path, place: str, chunk_events: int):
    (tmp_path / "rise_log.py").write_text(LOGGING_OP)
    nodes = {
        "aapl": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                "timezone": "America/New_York"}},
        "ko": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "KO.csv.gz"), "instrument": "KO",
                                             "timezone": "America/New_York"}},
        "rise": {"op": "test.rise_log", "in": "aapl", "with": {"scale": 2.0}, "place": place},
    }
    # the op reads AAPL only, but the plan knows both instruments: AAPL is key 0, KO key 1
    nodes["rise_ko"] = {"op": "test.rise_log", "in": "ko", "with": {"scale": 2.0}, "place": place}
    return write_spec(tmp_path, f"rise_{place}_{chunk_events}", nodes, modules=["rise_log.py"],
                      defaults={"chunk_events": chunk_events})


def test_logs_are_drained_per_chunk_and_do_not_depend_on_chunks_or_placement(tmp_path):
    runs = {(place, chunk): run_spec(_spec(tmp_path, place, chunk), write=False)
            for place in ("cpu", "numba") for chunk in (7, 65536)}
    reference = runs[("cpu", 65536)]
    assert "rise" not in reference.replay.recorded, "record_events = False: no per-event record"
    log = reference.replay.logs["rise"]["rises"]
    closes = pl.read_csv(SAMPLES / "AAPL.csv.gz")["close"].to_numpy()
    assert log.height == int((np.diff(closes) > 0).sum())  # the first bar is not above NaN
    assert log.columns == ["key", "instrument", "ts_recv", "scaled_close"]
    assert set(log["instrument"].to_list()) == {"AAPL"}
    # scale 2 times the per-instrument constant: AAPL is the first instrument (1), KO the second (2)
    rises_ko = reference.replay.logs["rise_ko"]["rises"]
    ko_closes = pl.read_csv(SAMPLES / "KO.csv.gz")["close"].to_numpy()
    rose = ko_closes[1:][np.diff(ko_closes) > 0]
    np.testing.assert_array_equal(rises_ko["scaled_close"].to_numpy(), rose * 4.0)
    for key, run in runs.items():
        assert_frames_identical(run.replay.logs["rise"]["rises"], log, f"log at {key}")


def test_a_logging_op_that_never_fires_still_has_its_columns(tmp_path):
    run = run_spec(_spec(tmp_path, "cpu", 65536), write=False,
                   source_transforms={"aapl": lambda chunks: iter(()), "ko": lambda chunks: iter(())})
    assert run.replay.logs["rise"]["rises"].height == 0
    assert "scaled_close" in run.replay.logs["rise"]["rises"].columns


def test_source_transforms_change_what_the_graph_sees(tmp_path):
    def halve(chunks):
        for chunk in chunks:
            yield {**chunk, "close": chunk["close"] / 2.0}

    base = run_spec(_spec(tmp_path, "numba", 65536), write=False)
    halved = run_spec(_spec(tmp_path, "numba", 65536), write=False, source_transforms={"aapl": halve})
    np.testing.assert_array_equal(halved.replay.logs["rise"]["rises"]["scaled_close"].to_numpy(),
                                  base.replay.logs["rise"]["rises"]["scaled_close"].to_numpy() / 2.0)
    with pytest.raises(KeyError, match="not sources"):
        run_spec(_spec(tmp_path, "cpu", 65536), write=False, source_transforms={"rise": halve})


def test_run_folder_holds_each_log(tmp_path):
    out = tmp_path / "run"
    run = run_spec(_spec(tmp_path, "cpu", 65536), out_dir=out)
    written = pl.read_parquet(out / "rise.rises.parquet")
    assert_frames_identical(written, run.replay.logs["rise"]["rises"], "written log")
