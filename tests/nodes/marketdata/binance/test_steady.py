"""``LineNormalization.feed_steady``: one live message the common way, in one compiled call.

What must hold: feeding a capture's lines one at a time through the steady path (and ``feed`` for the lines it
refuses) gives the rows and the report that ``feed`` alone gives; a refused line changes nothing; the columns a
live source copies as one block are its ports in order.
"""

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

from nodes.marketdata.binance.normalize import STEADY_COLUMNS, STEADY_DEPTH, STEADY_TRADE, normalize_lines
from nodes.marketdata.stream_ports import PORTS

SAMPLES = Path(__file__).resolve().parents[4] / "data" / "samples" / "binance"
SPOT = SAMPLES / "spot_btcusdt_20240808.head2000.gz"
COINM = SAMPLES / "cm_btcusd_perp_20240808.head2000.gz"


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as file:
        return file.read().splitlines(keepends=True)


def _decoder(path: Path, policy: str):
    return normalize_lines("fed", clock_policy=policy, venue_kind="futures" if path is COINM else "spot",
                           reorder_max=0, buffer_max=1000)


def _feed_all(decoder, lines: list[bytes], steady: bool) -> tuple[dict[str, list[dict]], int]:
    parts: dict[str, list[dict]] = {"book_deltas": [], "trades": [], "quotes": []}
    taken = 0
    for line in lines:
        if steady:
            kind, rows = decoder.feed_steady(line)
            if kind:
                taken += 1
                out = decoder.steady_out[:, :rows]
                parts["book_deltas" if kind == STEADY_DEPTH else "trades"].append(
                    {name: out[i].copy() for i, name in enumerate(STEADY_COLUMNS)})
                continue
        for schema, cols in decoder.feed(line).items():
            if cols is not None:
                parts[schema].append(cols)
    for schema, cols in decoder.close().items():
        if cols is not None:
            parts[schema].append(cols)
    return parts, taken


@pytest.mark.parametrize("policy", ["report", "shift"])
@pytest.mark.parametrize("path", [SPOT, COINM], ids=["spot", "coinm"])
def test_steady_lines_give_the_rows_and_the_report_feed_gives(path, policy):
    lines = _lines(path)
    steady, fed = _decoder(path, policy), _decoder(path, policy)
    steady_parts, taken = _feed_all(steady, lines, steady=True)
    fed_parts, _ = _feed_all(fed, lines, steady=False)
    assert taken > len(lines) / 5  # depth diffs and trades: the rest are quotes and snapshots
    for schema in ("book_deltas", "trades"):
        for column in fed_parts[schema][0]:
            if column == "sequence" and schema == "trades":
                continue  # null in ``feed``'s trades, 0 in the steady rows (a source's port takes 0 for null)
            expected = np.concatenate([p[column] for p in fed_parts[schema]]).astype(np.int64)
            got = np.concatenate([p[column] for p in steady_parts[schema]])
            np.testing.assert_array_equal(got, expected, err_msg=f"{schema}.{column}")
    assert dataclasses.asdict(steady.report) == dataclasses.asdict(fed.report)


def test_a_refused_line_changes_nothing():
    lines = _lines(SPOT)
    decoder = _decoder(SPOT, "report")
    for line in lines[:600]:
        if not decoder.feed_steady(line)[0]:
            decoder.feed(line)
    trade = next(line for line in lines[600:] if b"@trade" in line[:80])
    assert decoder.feed_steady(trade)[0] == STEADY_TRADE
    before = dataclasses.asdict(decoder.report)
    # the same message again (a repeat), and a message stamped before the last one (the clock went back)
    stamp, _, payload = trade.partition(b" ")
    for line in (trade, b"%d %s" % (int(stamp) - 1, payload)):
        assert decoder.feed_steady(line) == (0, 0)
        assert dataclasses.asdict(decoder.report) == before
    repeats = decoder.report.duplicates["count"]
    decoder.feed(trade)
    assert decoder.report.duplicates["count"] == repeats + 1  # feed, not the steady path, counts the repeat


def test_the_block_a_live_source_copies_is_its_ports_in_order():
    assert STEADY_COLUMNS[: 2 + len(PORTS)] == ("ts_event", "ts_recv", *PORTS)
