"""The HTML report: every run writes one, it holds every section with its pictures inside the file, links to
nothing outside, caps what would be too long with a note, and `tickloom report` re-renders it without a run."""

import base64
import json
import re

import polars as pl
import pytest

import pipelines.run
from nodes.backtest.html_report import MAX_INSTRUMENTS, MAX_TRADE_ROWS, ReportData, render_html_report
from nodes.backtest.trades import TRADE_SCHEMA
from pipelines.run import run_spec
from runtime.cli import main
from tests.support import SAMPLES, SMA_CROSS, write_spec

DAY_NS = 86_400 * 10**9
PNG = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "sma"
    run_spec(SMA_CROSS, sets=["fast=20"], out_dir=out)
    return out


def assert_self_contained(page: str) -> list[bytes]:
    """No script, stylesheet link or URL outside the page; returns the embedded PNGs."""
    images = [base64.b64decode(m) for m in DATA_URI.findall(page)]
    rest = DATA_URI.sub("", page)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", rest, re.IGNORECASE), "the page refers outside itself"
    assert "<script" not in rest and "<link" not in rest and "@import" not in rest
    assert all(src.startswith("data:") for src in re.findall(r"src='([^']*)'", page))
    assert all(image[:8] == PNG for image in images)
    return images


def test_every_run_writes_a_self_contained_report_with_every_section(run_dir):
    page = (run_dir / "report.html").read_text()
    for section in ("parameters", "statistics", "equity", "price", "monthly", "trades"):
        assert f"<section id='{section}'>" in page, section
    stats_hash = json.loads((run_dir / "spec.json").read_text())["spec_hash"]
    assert stats_hash in page and "sma_cross" in page
    assert "<td class='key'>fast</td><td>20</td>" in page  # the overridden param
    assert "Sharpe Ratio" in page and "Max. Drawdown [%]" in page
    images = assert_self_contained(page)
    assert len(images) >= 2  # equity and drawdown, AAPL with its trades
    for name in ("report.png", "monthly_returns.png", "trades_AAPL.png"):
        assert (run_dir / name).read_bytes()[:8] == PNG


def test_report_rerenders_from_the_folder_without_running(run_dir, monkeypatch, capsys):
    def no_runs(*args, **kwargs):
        raise AssertionError("tickloom report must not re-run the spec")

    monkeypatch.setattr(pipelines.run, "run_spec", no_runs)
    before = (run_dir / "report.html").read_text()
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    after = (run_dir / "report.html").read_text()
    # the same report, but for the footer's time of rendering
    strip = lambda text: re.sub(r"Rendered by tickloom at [^<]*", "", text)  # noqa: E731
    assert strip(after) == strip(before)


def test_report_of_a_folder_that_is_no_run_fails_with_a_reason(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "not a run folder" in capsys.readouterr().err


def _trades(n: int, instruments: list[str]) -> pl.DataFrame:
    rows = [{"instrument": instruments[i % len(instruments)], "size": 1.0 if i % 2 else -1.0, "entry_ts": i * DAY_NS,
             "exit_ts": (i + 1) * DAY_NS, "entry_price": 10.0, "exit_price": 11.0, "pnl": 1.0, "return_pct": 10.0,
             "commission": 0.0, "duration_ns": DAY_NS, "entry_event_index": i, "exit_event_index": i + 1}
            for i in range(n)]
    return pl.DataFrame(rows, schema=TRADE_SCHEMA)


def test_long_trade_lists_and_many_instruments_are_capped_with_a_note():
    instruments = [f"I{i}" for i in range(MAX_INSTRUMENTS + 2)]
    n = MAX_TRADE_ROWS + 50
    equity = pl.DataFrame({"ts": [i * DAY_NS for i in range(n + 1)], "equity": [100.0 + i for i in range(n + 1)]})
    marks = pl.DataFrame({"ts": [i * DAY_NS for i in range(n + 1) for _ in instruments],
                          "instrument": [name for _ in range(n + 1) for name in instruments],
                          "mark_price": [10.0] * ((n + 1) * len(instruments))})
    page, pngs = render_html_report(ReportData("many", {"spec": "many"}, {}, {"Return [%]": 1.0}, equity,
                                               _trades(n, instruments), marks))
    assert f"Showing the first {MAX_TRADE_ROWS} of {n} trades" in page
    assert page.count("<tr><td class=key>") == MAX_TRADE_ROWS
    assert f"Showing {MAX_INSTRUMENTS} of {len(instruments)} instruments" in page
    assert len([name for name in pngs if name.startswith("trades_")]) == MAX_INSTRUMENTS
    assert_self_contained(page)


def test_a_run_without_a_venue_still_gets_a_report(tmp_path):
    nodes = {"bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                        "timezone": "America/New_York"}},
             "avg": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 5}}}
    output = run_spec(write_spec(tmp_path, "research", nodes), out_dir=tmp_path / "out")
    page = (output.out_dir / "report.html").read_text()
    assert "no backtest" in page and "<section id='equity'>" not in page
    assert_self_contained(page)


def test_html_escapes_what_it_shows():
    page, _ = render_html_report(ReportData("<b>x</b>", {"spec": "<script>"}, {"p": "<i>"}, None))
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;i&gt;" in page
