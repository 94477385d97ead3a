"""tickloom book: replay feed files through a book and print the final state."""

import json
from pathlib import Path

import pytest

from runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
BINANCE = ROOT / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"


def test_binance_capture_gives_a_consistent_l2_book(capsys):
    assert main(["book", "--format", "binance", str(BINANCE), "--depth", "3", "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    book = state["books"]["BTCUSDT"]
    assert state["kind"] == "l2" and state["bad_records"] == 0
    assert book["best_bid"] < book["best_ask"] and not book["crossed"]
    assert [level["price"] for level in book["bids"]] == sorted((level["price"] for level in book["bids"]), reverse=True)
    assert len(book["asks"]) == 3 and all(level["size"] > 0 for level in book["asks"] + book["bids"])
    assert book["last_ts_recv"] > 0 and book["last_sequence"] > 0


def test_text_output_shows_both_sides(capsys):
    assert main(["book", "--format", "binance", str(BINANCE), "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("BTCUSDT:") and out.count("|") == 2


def test_unknown_format_is_a_clear_error(capsys):
    assert main(["book", str(BINANCE)]) == 1
    assert "give --format" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present (fresh clone)")
def test_cme_mbo_builds_the_l3_book_nautilus_trader_also_builds(capsys):
    mbo = SHARED / "dbn" / "esh4-glbx-mdp3-20231224.mbo.dbn.zst"
    assert main(["book", str(mbo), "--depth", "1", "--json"]) == 0
    book = json.loads(capsys.readouterr().out)["books"]["ESH4"]
    # the level counts tests/nodes/marketdata/test_book.py checks against NautilusTrader's L3 book
    assert (book["levels_bid"], book["levels_ask"]) == (892, 559)
    assert (book["best_bid"], book["best_ask"]) == (4799_000_000_000, 4799_500_000_000)
