"""Every stress transform on the AAPL sample bars: exact values on known rows, chunk-size invariance, order."""

import numpy as np
import pytest

from nodes.stress import TRANSFORMS
from tests.nodes.stress.support import APR_15_2013, APR_15_ROW, DAY_NS, assert_same, bars, joined, run

ORIGINAL = joined(bars())
# as the CSV has them: 2013-04-12 and 2013-04-15
APR_12 = {"open": 62.021427, "high": 62.021427, "low": 61.298573, "close": 61.400002, "volume": 59653300.0}
APR_15 = {"open": 61.0, "high": 61.127144, "low": 59.935715, "close": 59.978573, "volume": 79380000.0}

CASES = {
    "price_shock": {"at": "2013-04-15", "bps": -800, "halflife": "2d"},
    "spread_widening": {"start": "2013-04-15", "end": "2013-04-17", "bps": 100},
    "liquidity_drain": {"start": "2013-04-15", "end": "2013-04-17", "factor": 0.1},
    "latency_spike": {"start": "2013-04-15", "end": "2013-04-20", "extra_latency": "4d"},
    "feed_outage": {"start": "2013-04-15", "end": "2013-04-20"},
    "volatility_regime": {"start": "2013-04-15", "end": "2013-06-01", "factor": 2.0},
}


def test_the_rows_are_the_ones_the_expected_values_were_written_for():
    for row, values in ((APR_15_ROW - 1, APR_12), (APR_15_ROW, APR_15)):
        assert {k: float(ORIGINAL[k][row]) for k in values} == values
    assert ORIGINAL["ts_event"][APR_15_ROW] == APR_15_2013 + 13 * 3_600 * 10**9 + 30 * 60 * 10**9  # 9:30 New York


@pytest.mark.parametrize("name", CASES)
def test_chunk_size_does_not_change_the_output_and_rows_stay_sorted(name):
    small = run(TRANSFORMS[name], CASES[name], bars(7))
    whole = run(TRANSFORMS[name], CASES[name], bars(65_536))
    assert_same(small, whole)
    assert np.all(np.diff(whole["ts_recv"]) >= 0)
    assert np.all(whole["ts_recv"] >= whole["ts_event"])
    assert len(whole["ts_recv"]) == len(ORIGINAL["ts_recv"])  # bars are never dropped or added


def test_price_shock_gaps_the_bar_at_the_shock_and_fades_with_the_half_life():
    out = run(TRANSFORMS["price_shock"], CASES["price_shock"], bars())
    for k in ("open", "high", "low", "close", "volume"):
        assert out[k][APR_15_ROW - 1] == APR_12[k]  # before the shock: untouched
    # the 2013-04-15 bar opens 13.5 h after the shock: 8 % × 2^(-13.5 / 48) lower, all four prices
    factor = 1 - 0.08 * 2 ** (-13.5 / 48)
    for k in ("open", "high", "low", "close"):
        assert out[k][APR_15_ROW] == pytest.approx(APR_15[k] * factor, rel=1e-14)
    assert out["volume"][APR_15_ROW] == APR_15["volume"]
    # a day later the shock has faded by 2^(-1/2) more
    assert out["open"][APR_15_ROW + 1] / ORIGINAL["open"][APR_15_ROW + 1] == pytest.approx(
        1 - 0.08 * 2 ** (-37.5 / 48), rel=1e-14)
    # half a year later it is gone to within 1e-20
    assert out["close"][APR_15_ROW + 120] == pytest.approx(ORIGINAL["close"][APR_15_ROW + 120], rel=1e-15)


def test_a_shock_without_half_life_is_permanent():
    out = run(TRANSFORMS["price_shock"], {"at": "2013-04-15", "bps": 250}, bars())
    np.testing.assert_array_equal(out["close"][:APR_15_ROW], ORIGINAL["close"][:APR_15_ROW])
    np.testing.assert_allclose(out["close"][APR_15_ROW:], ORIGINAL["close"][APR_15_ROW:] * 1.025, rtol=1e-15)


def test_spread_widening_moves_highs_up_and_lows_down_inside_the_window_only():
    out = run(TRANSFORMS["spread_widening"], CASES["spread_widening"], bars())
    assert out["high"][APR_15_ROW] == pytest.approx(APR_15["high"] * 1.01, rel=1e-15)
    assert out["low"][APR_15_ROW] == pytest.approx(APR_15["low"] * 0.99, rel=1e-15)
    assert out["open"][APR_15_ROW] == APR_15["open"] and out["close"][APR_15_ROW] == APR_15["close"]
    changed = np.flatnonzero(out["high"] != ORIGINAL["high"])
    assert changed.tolist() == [APR_15_ROW, APR_15_ROW + 1]  # 15th and 16th; the 17th opens after the window


def test_liquidity_drain_scales_volume_inside_the_window_only():
    out = run(TRANSFORMS["liquidity_drain"], CASES["liquidity_drain"], bars())
    assert out["volume"][APR_15_ROW] == pytest.approx(7_938_000.0, rel=1e-15)
    assert np.flatnonzero(out["volume"] != ORIGINAL["volume"]).tolist() == [APR_15_ROW, APR_15_ROW + 1]
    for k in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(out[k], ORIGINAL[k])


def test_latency_spike_delays_the_window_and_later_bars_queue_behind():
    out = run(TRANSFORMS["latency_spike"], CASES["latency_spike"], bars())
    delay = out["ts_recv"] - ORIGINAL["ts_recv"]
    # bars received Monday 15th to Friday 19th are 4 days late; Monday 22nd's bar (received after the window)
    # cannot overtake the 19th's, which now arrives Tuesday 23rd 20:00 UTC: it waits a day; the 23rd is on time
    assert delay[APR_15_ROW: APR_15_ROW + 5].tolist() == [4 * DAY_NS] * 5
    assert delay[APR_15_ROW + 5] == DAY_NS
    assert out["ts_recv"][APR_15_ROW + 5] == out["ts_recv"][APR_15_ROW + 4]
    assert delay[APR_15_ROW + 6] == 0
    assert delay[:APR_15_ROW].max() == 0 and delay[APR_15_ROW + 6:].max() == 0
    for k in ("ts_event", "open", "close", "volume"):
        np.testing.assert_array_equal(out[k], ORIGINAL[k])


def test_feed_outage_delivers_the_backlog_when_it_ends():
    out = run(TRANSFORMS["feed_outage"], CASES["feed_outage"], bars())
    end = APR_15_2013 + 5 * DAY_NS
    inside = (ORIGINAL["ts_recv"] >= APR_15_2013) & (ORIGINAL["ts_recv"] < end)
    assert np.flatnonzero(inside).tolist() == list(range(APR_15_ROW, APR_15_ROW + 5))
    assert set(out["ts_recv"][inside].tolist()) == {end}
    np.testing.assert_array_equal(out["ts_recv"][~inside], ORIGINAL["ts_recv"][~inside])


def test_volatility_regime_scales_log_returns_around_the_last_close_before_it():
    out = run(TRANSFORMS["volatility_regime"], CASES["volatility_regime"], bars())
    anchor = APR_12["close"]
    for k in ("open", "high", "low", "close"):
        assert out[k][APR_15_ROW] == pytest.approx(anchor * (APR_15[k] / anchor) ** 2, rel=1e-14)
    inside = (ORIGINAL["ts_event"] >= APR_15_2013) & (ORIGINAL["ts_event"] < 1_370_044_800 * 10**9)  # to June 1st
    rows = np.flatnonzero(inside)
    original_returns = np.diff(np.log(ORIGINAL["close"][rows[0] - 1: rows[-1] + 1]))
    np.testing.assert_allclose(np.diff(np.log(out["close"][rows[0] - 1: rows[-1] + 1])), 2 * original_returns,
                               rtol=1e-9, atol=1e-12)
    # after the regime: returns as original, from the level the regime left
    after = slice(rows[-1], rows[-1] + 30)
    np.testing.assert_allclose(np.diff(np.log(out["close"][after])), np.diff(np.log(ORIGINAL["close"][after])),
                               rtol=1e-9, atol=1e-12)
    level = out["close"][rows[-1]] / ORIGINAL["close"][rows[-1]]
    np.testing.assert_allclose(out["open"][rows[-1] + 1:] / ORIGINAL["open"][rows[-1] + 1:], level, rtol=1e-12)
    assert np.all(out["high"] >= np.maximum(out["open"], out["close"]))
    assert np.all(out["low"] <= np.minimum(out["open"], out["close"]))


def test_transforms_compose_in_the_order_listed():
    shock = TRANSFORMS["price_shock"]
    outage = TRANSFORMS["feed_outage"]
    shocked = shock.transform(shock.Params.model_validate(CASES["price_shock"]), bars(7))
    both = joined(outage.transform(outage.Params.model_validate(CASES["feed_outage"]), shocked))
    alone = run(shock, CASES["price_shock"], bars())
    for k in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(both[k], alone[k])
    np.testing.assert_array_equal(both["ts_recv"], run(outage, CASES["feed_outage"], bars())["ts_recv"])


def test_the_input_chunks_are_not_modified():
    chunks = list(bars())
    before = {k: v.copy() for k, v in chunks[0].items()}
    for name, params in CASES.items():
        run(TRANSFORMS[name], params, iter(chunks))
    assert_same(chunks[0], before)
