"""The look-ahead audit: it blames a node that reads the future, and passes the shipped strategies.

The biased ops are user modules written here, as a user would write them: a bar source that adds the close
``ahead_bars`` bars later as a feature (it reads its whole file before emitting a row), and a stream op whose
``constants`` load the bars file and whose step emits the close ``ahead_bars`` events ahead. Both run on the
AAPL sample bars in an SMA-cross-like spec whose decisions use the peeked feature; the audit must name the
peeking node as the cause and the venue as affected. The library's own backward dividend adjustment, which
its docs say looks ahead, must be caught too; the shipped specs must audit clean.
"""

import argparse
import json

import numpy as np
import polars as pl
import pytest

from nodes.errors import SpecError
from nodes.sources.bars_csv import BarsCsv
from pipelines.audit import audit_spec
from runtime.cli_audit import add_command
from tests.support import REPO, SAMPLES, write_spec

AHEAD_BARS = 5
AAPL = SAMPLES / "AAPL.csv.gz"
AAPL_CLOSE = pl.read_csv(AAPL)["close"].cast(pl.Float64).to_numpy()

PEEKING_OPS = '''
import numpy as np
import polars as pl
from pydantic import Field

from nodes.contract import F64, OpParams, StreamOp
from nodes.sources.bars import BAR_OUTPUTS, iter_chunks
from nodes.sources.bars_csv import BarsCsv, BarsCsvParams


class TomorrowParams(BarsCsvParams):
    ahead_bars: int = Field(1, ge=1, description="how many bars ahead the feature peeks")


class BarsWithTomorrow(BarsCsv):
    """Read bars and add the close ``ahead_bars`` bars later as a feature: a deliberate look-ahead."""

    name = "user.bars_with_tomorrow"
    Params = TomorrowParams
    outputs = {**BAR_OUTPUTS, "next_close": F64}

    @classmethod
    def open(cls, params, base_dir):
        reader = BarsCsv.open(params, base_dir)
        parts = list(reader.chunks(1 << 30))
        columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        later = np.full(len(columns["close"]), np.nan)
        later[: -params.ahead_bars] = columns["close"][params.ahead_bars :]
        columns["next_close"] = later
        return _Reader(reader.instruments, columns)


class _Reader:
    def __init__(self, instruments, columns):
        self.instruments = instruments
        self.columns = columns

    def chunks(self, max_rows):
        return iter_chunks(self.columns, max_rows)


class CloseAheadParams(OpParams):
    path: str = Field(description="the bars file the op reads by itself")
    ahead_bars: int = Field(1, ge=1, description="how many events ahead it peeks")


class CloseAhead(StreamOp):
    """Emit the close ``ahead_bars`` events ahead, read from the file in constants(): a deliberate look-ahead."""

    name = "user.close_ahead"
    Params = CloseAheadParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        closes = pl.read_csv(params.path)["close"].cast(pl.Float64).to_numpy().copy()
        return (closes, params.ahead_bars)

    @staticmethod
    def init(c, n_keys):
        return (0,)

    @staticmethod
    def step(c, s, x):
        seen = s[0]
        j = seen + c[1]
        out = c[0][j] if j < len(c[0]) else np.nan
        return (seen + 1,), out
'''

# a sink that logs every bar whose close rose, with the value of its feature then: its per-event output (a
# count) does not depend on the feature, so only its log can show that the feature looked ahead
LOGGING_OP = '''
import numpy as np
from nodes.contract import F64, StreamOp


class RiseLog(StreamOp):
    """Log (key, time, feature) of every bar whose close rose; emit the running count."""

    name = "user.rise_log"
    keyed = False
    context = ("key", "ts_recv")
    inputs = {"close": F64, "feature": F64}
    outputs = {"rises": F64}
    logs = ("rises",)
    record_events = False

    @staticmethod
    def init(c, n_keys):
        return (np.full(n_keys, np.nan), np.zeros((4, 3)), 0, 0.0)

    @staticmethod
    def step(c, s, key, ts_recv, close, feature):
        last, log, cursor, count = s
        if close > last[key]:
            if cursor == log.shape[0]:
                grown = np.zeros((2 * log.shape[0], 3))
                grown[:cursor] = log
                log = grown
            log[cursor, 0] = key
            log[cursor, 1] = ts_recv
            log[cursor, 2] = feature
            cursor += 1
            count += 1.0
        last[key] = close
        return (last, log, cursor, count), count

    @staticmethod
    def drain(c, s):
        last, log, cursor, count = s
        rows = log[:cursor]
        columns = {"key": rows[:, 0].astype(np.int64), "ts_recv": rows[:, 1].astype(np.int64),
                   "feature": rows[:, 2].copy()}
        return (last, log, 0, count), {"rises": columns}
'''


def _bars(op: str = "source.bars_csv", path=AAPL, **extra) -> dict:
    return {"op": op, "with": {"path": str(path), "instrument": "AAPL", "timezone": "America/New_York", **extra}}


def _strategy(peek: str) -> dict:
    """SMA cross confirmed by a peek at the future close (``peek``: the reference to the peeked close)."""
    return {
        "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 10}},
        "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 30}},
        "cross": {"op": "signal.crossover", "in": ["fast", "slow"], "with": {"mode": "state"}},
        "peek": {"op": "signal.crossover", "in": [peek, "bars.close"], "with": {"mode": "state"}},
        "side": {"op": "signal.or", "in": ["cross", "peek"], "with": {"mode": "state"}},
        "target": {"op": "sizing.fraction_of_equity", "in": {"side": "side", "price": "bars.close",
                                                            "equity": "prev(sim.equity)"}, "with": {"fraction": 0.95}},
        "sim": {"op": "backtest.bar_venue", "in": {"market": "bars", "target": "target"},
                "with": {"cash": 10_000, "commission": 0.002}},
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    (folder / "peeking_ops.py").write_text(PEEKING_OPS)
    (folder / "rise_log.py").write_text(LOGGING_OP)
    return folder


def _write(folder, name: str, nodes: dict, modules=("peeking_ops.py",)):
    return write_spec(folder, name, nodes, modules=list(modules), defaults={"place": "cpu"})


@pytest.fixture(scope="module")
def biased_source_spec(folder):
    nodes = {"bars": _bars("user.bars_with_tomorrow", ahead_bars=AHEAD_BARS), **_strategy("bars.next_close")}
    return _write(folder, "peeking_source", nodes)


@pytest.fixture(scope="module")
def biased_source_report(biased_source_spec):
    return audit_spec(biased_source_spec, cuts=3)


def _cut_row(cut_ns: int) -> int:
    """Index of the first AAPL bar received at or after ``cut_ns``."""
    params = BarsCsv.Params(path=str(AAPL), instrument="AAPL", timezone="America/New_York")
    received = np.concatenate([c["ts_recv"] for c in BarsCsv.open(params, SAMPLES).chunks(1 << 20)])
    return int(np.searchsorted(received, cut_ns, "left"))


def test_a_source_emitting_tomorrows_close_is_the_cause(biased_source_report):
    report = biased_source_report
    assert report.biased and report.exit_code == 1
    assert report.causes == ["bars"]
    assert {"peek", "side", "target", "sim"} <= set(report.affected)
    assert "sim" in report.decisions
    # the indicators read only bars.close, which no cut changes
    assert not {"fast", "slow", "cross"} & set(report.affected)
    for cut in report.cuts:
        assert cut.causes == ["bars"], f"cut at {cut.cut_ns}: {cut.causes}"
        first = cut.differences["bars"]
        # the first bar whose feature reaches past the cut: the full run saw the real close, the cut run none
        row = _cut_row(cut.cut_ns) - AHEAD_BARS
        assert (first.port, first.row) == ("next_close", row)
        assert first.full == AAPL_CLOSE[row + AHEAD_BARS] and np.isnan(first.truncated)


def test_the_report_names_the_cause_its_op_and_module(biased_source_report, folder):
    text = biased_source_report.format()
    assert "verdict: BIASED" in text
    assert f"cause: bars  op user.bars_with_tomorrow  module {folder / 'peeking_ops.py'}" in text
    assert "port next_close: full run" in text and "vs truncated nan" in text
    assert "sim (decision)" in text
    assert len([line for line in text.splitlines() if "BIASED: bars → " in line]) == 3
    data = json.loads(json.dumps(biased_source_report.as_dict()))
    assert data["verdict"] == "biased"
    assert data["causes"][0]["node"] == "bars" and data["causes"][0]["first_difference"]["port"] == "next_close"


def test_a_stream_op_loading_the_file_in_constants_is_the_cause(folder):
    nodes = {"bars": _bars(), "ahead": {"op": "user.close_ahead", "in": "bars.close",
                                        "with": {"path": str(AAPL), "ahead_bars": AHEAD_BARS}},
             **_strategy("ahead")}
    report = audit_spec(_write(folder, "peeking_constants", nodes), cuts=2)
    assert report.causes == ["ahead"]
    assert "bars" not in report.affected and "sim" in report.affected
    first = report.first_difference("ahead")
    row = _cut_row(first.cut_ns) - AHEAD_BARS
    assert (first.port, first.row, first.full) == ("out", row, AAPL_CLOSE[row + AHEAD_BARS])
    assert report.ops["ahead"] == ("user.close_ahead", str(folder / "peeking_ops.py"))


def test_backward_dividend_adjustment_is_caught(folder):
    """The library's bar source adjusting for dividends looks ahead (nodes/sources/bars_adjust.py says so)."""
    nodes = {"bars": _bars(adjust="dividends"), **_strategy("slow")}
    report = audit_spec(_write(folder, "adjusted", nodes, modules=()), cuts=1)
    assert report.causes == ["bars"]
    first = report.first_difference("bars")
    assert first.row == 0 and first.port == "open"  # the first bar's price carries every later dividend


def test_a_log_difference_makes_a_node_affected(folder):
    """A sink whose per-event outputs are the same in both runs but whose logged rows are not."""
    nodes = {"bars": _bars("user.bars_with_tomorrow", ahead_bars=AHEAD_BARS),
             "rises": {"op": "user.rise_log", "in": {"close": "bars.close", "feature": "bars.next_close"}}}
    report = audit_spec(_write(folder, "logged", nodes, modules=("peeking_ops.py", "rise_log.py")), cuts=2)
    assert report.causes == ["bars"] and report.affected == ["rises"]
    first = report.first_difference("rises")
    assert first.port == "log rises.feature" and np.isnan(first.truncated) and not np.isnan(first.full)


@pytest.mark.parametrize("name", ["sma_cross", "four_stocks"])
def test_shipped_strategies_audit_clean(name):
    report = audit_spec(REPO / "specs" / "strategies" / f"{name}.yaml", cuts=3)
    assert not report.biased, report.format()
    assert report.exit_code == 0 and report.causes == [] and report.notes == []
    assert "sim" in report.nodes and "bars" in report.nodes
    total = report.cuts[-1].events
    for cut in report.cuts:
        # the files really were cut, and the comparison covered every node before the cut
        assert cut.files_cut == ["bars"] and 0 < cut.events <= total
        assert cut.nodes_checked == len(report.nodes) and cut.values_compared > cut.events
    assert "verdict: clean" in report.format()


def test_parquet_files_of_several_instruments_are_cut(folder):
    """Parquet cutting and an ``{instrument}`` template: a clean two-stock strategy stays clean."""
    for name in ("AAPL", "MSFT"):
        params = BarsCsv.Params(path=f"{name}.csv.gz", instrument=name, timezone="America/New_York")
        columns = next(iter(BarsCsv.open(params, SAMPLES).chunks(1 << 20)))
        pl.DataFrame({k: v for k, v in columns.items() if k != "instrument"}).write_parquet(folder / f"{name}.parquet")
    nodes = {"bars": {"op": "source.bars_parquet", "with": {"path": "{instrument}.parquet",
                                                            "instruments": ["AAPL", "MSFT"]}},
             **_strategy("slow")}
    report = audit_spec(_write(folder, "parquet", nodes, modules=()), cuts=2)
    assert not report.biased and report.notes == [], report.format()
    assert all(cut.files_cut == ["bars"] for cut in report.cuts)


def test_a_source_file_that_cannot_be_cut_is_noted(folder):
    """A biased source whose file has no cutter is cut by the engine only: the report says so."""
    (folder / "AAPL.prices").write_bytes(AAPL.read_bytes())  # a gzip CSV under a suffix the audit does not know
    nodes = {"bars": _bars("user.bars_with_tomorrow", path=folder / "AAPL.prices", ahead_bars=AHEAD_BARS),
             **_strategy("bars.next_close")}
    report = audit_spec(_write(folder, "uncuttable", nodes), cuts=1)
    assert report.cuts[0].files_cut == []
    assert any(note.startswith("source bars (user.bars_with_tomorrow): AAPL.prices: no cutter") and
               "look-ahead inside it is not audited" in note for note in report.notes), report.notes


def test_a_file_read_by_no_source_is_noted_as_not_cut(folder):
    nodes = {"bars": _bars(), "ahead": {"op": "user.close_ahead", "in": "bars.close",
                                        "with": {"path": str(SAMPLES / "MSFT.csv.gz"), "ahead_bars": 1}},
             **_strategy("ahead")}
    report = audit_spec(_write(folder, "uncut_file", nodes), cuts=1)
    assert any("node ahead: param 'path'" in note and "MSFT.csv.gz" in note and "cannot cut" in note
               for note in report.notes), report.notes


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tickloom")
    add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_cli_exit_status_and_json(biased_source_spec, capsys):
    assert _cli(["audit", str(biased_source_spec), "--cuts", "1"]) == 1
    assert "cause: bars" in capsys.readouterr().out
    assert _cli(["audit", str(biased_source_spec), "--at", "2013-06-28", "--at", "2014-01-02", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [c["cut"][:10] for c in data["cuts"]] == ["2013-06-28", "2014-01-02"]
    assert data["causes"][0]["node"] == "bars"
    clean = _cli(["audit", str(REPO / "specs" / "strategies" / "sma_cross.yaml"), "--cuts", "1",
                  "--place", "sim=cpu"])
    assert clean == 0 and "verdict: clean" in capsys.readouterr().out


def test_bad_cut_times_and_nodes_are_spec_errors(biased_source_spec):
    with pytest.raises(SpecError, match="no event before it"):
        audit_spec(biased_source_spec, cut_times=["2000-01-01"])
    with pytest.raises(SpecError, match="expected ISO 8601"):
        audit_spec(biased_source_spec, cut_times=["yesterday"])
    with pytest.raises(SpecError, match="--cuts must be"):
        audit_spec(biased_source_spec, cuts=0)
    with pytest.raises(SpecError, match="cannot audit 'nope'"):
        audit_spec(biased_source_spec, record=["nope"])
