"""Market impact in the bar venue (``nodes/backtest/impact``): prices by hand, per-instrument selection, size,
parity, prefix invariance, and real AAPL fills.

- Each model's fill prices on hand-made bars, every number worked out in comments (partial fills and a bar
  without volume included).
- ``impact_by_instrument`` on the four-stock sample: each instrument fills by its own model, the others at
  exactly ``open × (1 ± slippage)``; an unknown instrument name is refused with the instruments listed.
- Impact grows with the size of the fill, for every model; ``none`` (and models set to zero) give the same
  bits as a venue without impact params; accounting identities hold with impact.
- cpu and numba give the same bits; outputs up to t ignore every input after t.
- On AAPL, 100× larger orders pay √100 = 10× the square-root impact per unit on every fill.

The step is driven here with ``constants(params) + instrument_constants(params, instruments)``, as the engine
builds ``c`` (engine hook 2).
"""

import math
import textwrap

import numpy as np
import polars as pl
import pytest
import yaml

from hardware.targets import step_function
from nodes.backtest.impact import ImpactParams, impact_price
from nodes.backtest.impact import MODEL_CODES, impact_constants
from nodes.contract import default_registry
from nodes.errors import SpecError
from pipelines.run import run_spec
from tests.nodes.backtest.test_bar_venue import check_accounting
from tests.support import (
    REPO,
    SAMPLES,
    assert_bit_identical,
    assert_frames_identical,
    assert_stats_identical,
    op_inputs,
    perturb_after,
    random_bars,
    read_bars,
    write_spec,
)

# cpu steps see numpy scalars: a NaN or zero input warns where numba stays silent; the outputs are what count
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

nan = np.nan
VENUE = default_registry().get("backtest.bar_venue")
PORTS = list(VENUE.outputs)
FOUR = ["AAPL", "MSFT", "IBM", "KO"]

# One params set per model (and a mix by instrument), small enough that AAPL's volumes cap volume_share fills.
IMPACT_PARAMS = {
    "fixed_bps": {"cash": 100_000, "slippage_bps": 2, "impact": {"model": "fixed_bps", "bps": 7}},
    "volume_share": {"cash": 100_000, "commission": 0.001,
                     "impact": {"model": "volume_share", "coef": 0.2, "max_participation": 1e-6}},
    "square_root": {"cash": 100_000, "slippage_bps": 2, "fill": "close",
                    "impact": {"model": "square_root", "y": 0.7, "sigma_halflife_bars": 10, "adv_halflife_bars": 5}},
    "almgren_chriss": {"cash": 100_000, "impact": {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.05,
                                                   "permanent_halflife_bars": 10}},
    "by_instrument": {"cash": 100_000, "commission_per_unit": 0.01, "impact": {"model": "square_root"},
                      "impact_by_instrument": {
                          "B": {"model": "almgren_chriss", "eta": 0.2, "gamma": 0.1},
                          "C": {"model": "volume_share", "max_participation": 1e-6},
                          "D": {"model": "fixed_bps", "bps": 3}}},
}


def _c(params, instruments):
    return tuple(VENUE.constants(params)) + tuple(VENUE.instrument_constants(params, instruments))


def drive_venue(raw: dict, columns: list[np.ndarray], keys=None, instruments=None, target="cpu") -> dict:
    """Step the venue over ``columns`` (open, high, low, close, volume, target) as the engine would."""
    params = VENUE.Params.model_validate(raw)
    n = len(columns[0])
    keys = np.zeros(n, np.int64) if keys is None else np.asarray(keys, np.int64)
    instruments = instruments or [chr(ord("A") + k) for k in range(int(keys.max()) + 1)]
    c = _c(params, instruments)
    s = VENUE.init(c, len(instruments))
    step = step_function(VENUE.step, target)
    out = {port: np.empty(n) for port in PORTS}
    for i in range(n):
        returned = step(c, s, keys[i], *(column[i] for column in columns))
        s = returned[0]
        for port, value in zip(PORTS, returned[1:]):
            out[port][i] = value
    return out


def hand_bars(opens, closes=None, volumes=1000.0, highs=None, lows=None, targets=()) -> list[np.ndarray]:
    opens = np.asarray(opens, float)
    closes = opens.copy() if closes is None else np.asarray(closes, float)
    highs = np.maximum(opens, closes) + 1.0 if highs is None else np.asarray(highs, float)
    lows = np.minimum(opens, closes) - 1.0 if lows is None else np.asarray(lows, float)
    volumes = np.broadcast_to(np.asarray(volumes, float), opens.shape).copy()
    targets = np.asarray(list(targets) + [nan] * (len(opens) - len(targets)), float)
    return [opens, highs, lows, closes, volumes, targets]


# --- params ------------------------------------------------------------------------------------------------


def test_params_take_only_the_models_own_keys_and_fill_its_defaults():
    assert ImpactParams().model == "none"
    assert ImpactParams(model="square_root").y == 1.0
    assert ImpactParams(model="volume_share").max_participation == 0.025
    with pytest.raises(ValueError, match=r"y: not a param of impact model 'fixed_bps' \(it takes: bps\)"):
        ImpactParams(model="fixed_bps", bps=3, y=1.0)
    with pytest.raises(ValueError, match="impact model 'almgren_chriss' needs eta, gamma"):
        ImpactParams(model="almgren_chriss")
    with pytest.raises(ValueError, match="needs bps"):
        ImpactParams(model="fixed_bps")
    with pytest.raises(ValueError, match="Input should be 'none'"):
        ImpactParams(model="sqrt")
    with pytest.raises(ValueError, match="less than or equal to 1"):
        ImpactParams(model="volume_share", max_participation=2.0)


def test_unknown_instrument_in_impact_by_instrument_lists_the_instruments():
    params = VENUE.Params.model_validate({"impact_by_instrument": {"APPL": {"model": "fixed_bps", "bps": 1}}})
    with pytest.raises(ValueError, match=r"'APPL', not an instrument of this spec \(its instruments: AAPL, MSFT, "
                                         r"IBM, KO\); did you mean 'AAPL'"):
        VENUE.instrument_constants(params, FOUR)


# --- each model's price by hand ----------------------------------------------------------------------------


def test_fixed_bps_moves_the_price_against_the_order_on_top_of_slippage():
    raw = {"cash": 10_000, "slippage_bps": 5, "impact": {"model": "fixed_bps", "bps": 20}}
    out = drive_venue(raw, hand_bars([100.0, 101.0, 102.0, 103.0], targets=[10.0, nan, -10.0]))
    # bar 1 buys 10:  101 × 1.0005 + 101 × 0.002 = 101.0505 + 0.202 = 101.2525
    # bar 3 sells 20: 103 × 0.9995 − 103 × 0.002 = 102.9485 − 0.206 = 102.7425
    np.testing.assert_array_equal(out["fill_qty"], [0.0, 10.0, 0.0, -20.0])
    np.testing.assert_allclose(out["fill_price"], [nan, 101.2525, nan, 102.7425], rtol=1e-14)
    assert out["entry_price"][1] == out["fill_price"][1], "impact is in the entry price, as slippage is"


def test_volume_share_fills_up_to_the_cap_and_carries_the_rest():
    raw = {"cash": 10_000, "impact": {"model": "volume_share", "coef": 0.1, "max_participation": 0.025}}
    bars = hand_bars([100.0, 104.0, 108.0, 112.0, 116.0], volumes=[1000.0, 1000.0, 0.0, 2000.0, 1000.0],
                     targets=[40.0])
    out = drive_venue(raw, bars)
    # bar 1 (volume 1000, cap 25): 25 of 40 at 104 + 104 × 0.1 × 25/1000 = 104.26; 15 stay pending
    # bar 2 (no volume): nothing fills
    # bar 3 (volume 2000, cap 50): the last 15 at 112 + 112 × 0.1 × 15/2000 = 112.084
    np.testing.assert_array_equal(out["fill_qty"], [0.0, 25.0, 0.0, 15.0, 0.0])
    np.testing.assert_array_equal(out["position"], [0.0, 25.0, 25.0, 40.0, 40.0])
    np.testing.assert_allclose(out["fill_price"], [nan, 104.26, nan, 112.084, nan], rtol=1e-14)


def test_volume_share_a_new_target_replaces_the_rest():
    raw = {"cash": 10_000, "impact": {"model": "volume_share", "coef": 0.1, "max_participation": 0.025}}
    bars = hand_bars([100.0, 104.0, 108.0, 112.0, 116.0], volumes=[1000.0, 1000.0, 0.0, 2000.0, 1000.0],
                     targets=[40.0, 10.0])
    out = drive_venue(raw, bars)
    # bar 1 fills 25 of 40, then target 10 makes the order 10 − 25 = −15 (the 15 left to buy are dropped);
    # bar 3 sells 15 at 112 − 112 × 0.1 × 15/2000 = 111.916
    np.testing.assert_array_equal(out["fill_qty"], [0.0, 25.0, 0.0, -15.0, 0.0])
    np.testing.assert_array_equal(out["position"], [0.0, 25.0, 25.0, 10.0, 10.0])
    np.testing.assert_allclose(out["fill_price"][3], 111.916, rtol=1e-14)


def test_volume_share_partial_fills_at_the_close():
    raw = {"cash": 10_000, "fill": "close",
           "impact": {"model": "volume_share", "coef": 0.1, "max_participation": 0.025}}
    out = drive_venue(raw, hand_bars([100.0, 104.0, 108.0], closes=[101.0, 105.0, 109.0], targets=[40.0]))
    # bar 0 close: 25 at 101 + 101 × 0.1 × 0.025 = 101.2525; bar 1 close: 15 at 105 + 105 × 0.1 × 0.015 = 105.1575
    np.testing.assert_array_equal(out["fill_qty"], [25.0, 15.0, 0.0])
    np.testing.assert_allclose(out["fill_price"], [101.2525, 105.1575, nan], rtol=1e-14)


# bar 0: range 99–101; bar 1 closes 2 % up on 3000; bar 2 opens at 102
SQRT_BARS = dict(opens=[100.0, 100.0, 102.0], closes=[100.0, 102.0, 101.0], volumes=[1000.0, 3000.0, 2000.0],
                 highs=[101.0, 102.5, 103.0], lows=[99.0, 99.5, 100.0])
SQRT = {"model": "square_root", "y": 1.0, "sigma_halflife_bars": 1, "adv_halflife_bars": 1}


def test_square_root_uses_causal_sigma_and_adv():
    out = drive_venue({"cash": 1e6, "impact": SQRT}, hand_bars(**SQRT_BARS, targets=[400.0, 800.0]))
    # bar 1 open 100 fills 400 with what was known at bar 0's close: no return yet, so σ² is bar 0's Parkinson
    # range variance ln(101/99)² / (4 ln 2); ADV = 1000 (bar 0 only)
    sigma0 = math.log(101 / 99) / math.sqrt(4 * math.log(2))
    expected1 = 100 + 100 * sigma0 * math.sqrt(400 / 1000)
    # bar 2 open 102 fills 400 with bar 1 known: σ = |ln(102/100)| (one return, weight 1); half-life 1 bar
    # weighs bar 0 by 0.5: ADV = (0.5 × 1000 + 3000) / 1.5 = 2333.33…
    expected2 = 102 + 102 * math.log(1.02) * math.sqrt(400 / (3500 / 1.5))
    np.testing.assert_array_equal(out["fill_qty"], [0.0, 400.0, 400.0])
    np.testing.assert_allclose(out["fill_price"][1:], [expected1, expected2], rtol=1e-13)
    assert 0.75 < expected1 - 100 < 0.77 and 0.83 < expected2 - 102 < 0.84  # about 0.76 and 0.836 per unit


def test_square_root_fill_at_close_includes_its_own_bar():
    out = drive_venue({"cash": 1e6, "fill": "close", "impact": SQRT}, hand_bars(**SQRT_BARS, targets=[nan, -400.0]))
    # sold at bar 1's close 102, with bar 1 in the estimates: σ = ln(1.02), ADV = 3500 / 1.5
    expected = 102 - 102 * math.log(1.02) * math.sqrt(400 / (3500 / 1.5))
    np.testing.assert_allclose(out["fill_price"], [nan, expected, nan], rtol=1e-13)


def test_square_root_matches_polars_ewm_on_real_bars():
    """σ and ADV as the venue uses them equal polars' ewm_mean(adjust=True) of squared log returns and volumes
    up to the previous close: one fill per bar of 1000 units, alternating sides, on AAPL."""
    bars = read_bars("AAPL")
    n = 300
    cols = [bars[f][:n].copy() for f in ("open", "high", "low", "close", "volume")]
    targets = np.where(np.arange(n) % 2 == 0, 500.0, -500.0)
    impact = {"model": "square_root", "y": 1.0, "sigma_halflife_bars": 15, "adv_halflife_bars": 7}
    out = drive_venue({"cash": 1e6, "impact": impact}, cols + [targets])
    closes = pl.Series(cols[3])
    returns2 = (closes / closes.shift(1)).log() ** 2
    var = returns2.ewm_mean(half_life=15, adjust=True, ignore_nulls=True).to_numpy()
    adv = pl.Series(cols[4]).ewm_mean(half_life=7, adjust=True).to_numpy()
    i = np.arange(2, n)  # the fill at bar i's open uses estimates through bar i − 1
    move = (out["fill_price"][i] - cols[0][i]) * np.sign(out["fill_qty"][i])
    expected = cols[0][i] * np.sqrt(var[i - 1]) * np.sqrt(1000.0 / adv[i - 1])
    assert (np.abs(out["fill_qty"][i]) == 1000.0).all()
    np.testing.assert_allclose(move, expected, rtol=1e-9)


AC_BARS = dict(opens=[100.0, 100.0, 100.0, 100.0], volumes=[1000.0, 2000.0, 1000.0, 1000.0])


@pytest.mark.parametrize("halflife, expected_sell", [(0, 100.4), (1, 99.4)])
def test_almgren_chriss_temporary_and_permanent(halflife, expected_sell):
    impact = {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.2, "adv_halflife_bars": 1,
              "permanent_halflife_bars": halflife}
    out = drive_venue({"cash": 1e6, "impact": impact}, hand_bars(**AC_BARS, targets=[100.0, 0.0]))
    # bar 1 buys 100 (volume 2000, ADV 1000): temporary 0.1 × 100/2000 = 0.005, own permanent 0.2 × 100/1000
    #   = 0.02 of which it pays half: 100 × (0.005 + 0 + 0.01) = 1.5 → 101.5; offset 0.02 afterwards
    # bar 2 sells 100 (volume 1000, ADV (0.5 × 1000 + 2000)/1.5 = 1666.67): temporary −0.01, own −0.012:
    #   no decay: 100 × (−0.01 + 0.02 − 0.006) = 0.4 → 100.4
    #   half-life 1 bar: offset 0.02 → 0.01 at bar 2: 100 × (−0.01 + 0.01 − 0.006) = −0.6 → 99.4
    np.testing.assert_array_equal(out["fill_qty"], [0.0, 100.0, -100.0, 0.0])
    np.testing.assert_allclose(out["fill_price"][1:3], [101.5, expected_sell], rtol=1e-13)


def test_almgren_chriss_round_trip_pays_only_the_temporary_impact():
    """Constant volume, no decay: buy q then sell q; the permanent parts cancel (own half + the offset), so the
    round trip loses 2 × price × η × q/V per unit: no gain from the account's own footprint."""
    impact = {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.3}
    out = drive_venue({"cash": 1e6, "impact": impact}, hand_bars([50.0] * 4, volumes=2000.0, targets=[200.0, 0.0]))
    round_trip = -(out["fill_qty"][1:3] * out["fill_price"][1:3]).sum()
    assert round_trip == pytest.approx(-2 * 50.0 * 0.1 * (200 / 2000) * 200, rel=1e-12)


# --- size, and none --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["fixed_bps", "volume_share", "square_root", "almgren_chriss"])
def test_impact_per_unit_is_monotone_in_size(model):
    raw = {"fixed_bps": {"model": "fixed_bps", "bps": 5}, "volume_share": {"model": "volume_share", "coef": 0.1},
           "square_root": {"model": "square_root"},
           "almgren_chriss": {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.05}}[model]
    code, row = impact_constants(ImpactParams.model_validate(raw))
    assert code == MODEL_CODES[model]
    numbers = row[None, :]  # one instrument, key 0
    sizes = np.geomspace(1.0, 1e6, 61)
    for side in (1.0, -1.0):
        moves = np.array([side * impact_price(code, numbers, 0, side * q, 50.0, 1e5, 0.02, 2e5, 0.0)[0]
                          for q in sizes])
        assert (moves >= 0).all(), "impact is against the order"
        assert (np.diff(moves) >= 0).all(), f"{model}: a larger order moved the price less"
        if model != "fixed_bps":
            assert moves[-1] > 100 * moves[0], f"{model}: impact should grow with size"


def _four_stocks(tmp_path, with_: dict | None = None, name: str = "four_stocks"):
    document = yaml.safe_load((REPO / "specs" / "strategies" / "four_stocks.yaml").read_text())
    document["name"] = name
    document["nodes"]["bars"]["with"]["path"] = str(SAMPLES / "{instrument}.csv.gz")
    document["nodes"]["sim"]["with"].update(with_ or {})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_none_is_bit_identical_to_a_venue_without_impact_params(tmp_path):
    plain = run_spec(_four_stocks(tmp_path, name="plain"), write=False)
    none = run_spec(_four_stocks(tmp_path, {"impact": {"model": "none"},
                                            "impact_by_instrument": {"KO": {"model": "none"}}}, "none"), write=False)
    assert plain.backtest.stats["# Trades"] > 20
    assert_frames_identical(plain.replay.recorded["sim"], none.replay.recorded["sim"], "sim")
    assert_stats_identical(plain.backtest.stats, none.backtest.stats, "stats")


def test_zero_impact_models_are_bit_identical_to_none():
    """A model set to zero goes through the impact arithmetic (slipped price + 0.0) and must change no bit."""
    bars = read_bars("AAPL")
    cols = [bars[f] for f in ("open", "high", "low", "close", "volume")]
    base = {"cash": 100_000, "commission": 0.001, "slippage_bps": 3}
    feed = cols + [np.round(10.0 * (bars["close"] - np.convolve(bars["close"], np.ones(10) / 10, "same")))]
    expected = drive_venue(base, feed)
    for impact in ({"model": "fixed_bps", "bps": 0}, {"model": "volume_share", "coef": 0, "max_participation": 1},
                   {"model": "square_root", "y": 0}, {"model": "almgren_chriss", "eta": 0, "gamma": 0}):
        got = drive_venue({**base, "impact": impact}, feed)
        for port in PORTS:
            assert_bit_identical(expected[port], got[port], f"{impact['model']} at zero: {port}")


# --- per instrument, on the four-stock sample --------------------------------------------------------------


def _fill_moves(run) -> pl.DataFrame:
    """Each fill with its bar's open and the move beyond slippage: side × (fill − open × (1 ± 2 bps))."""
    sim = run.replay.recorded["sim"].select("ts_recv", "instrument", "fill_qty", "fill_price")
    bars = run.replay.recorded["bars"].select("ts_recv", "instrument", "open")
    fills = sim.join(bars, on=["ts_recv", "instrument"], how="left").filter(pl.col("fill_qty") != 0.0)
    side = pl.col("fill_qty").sign()
    slipped = pl.col("open") * (1.0 + side * 0.0002)
    return fills.with_columns(slipped.alias("slipped"), (side * (pl.col("fill_price") - slipped)).alias("move"))


def test_impact_by_instrument_on_four_stocks(tmp_path):
    with_ = {"impact_by_instrument": {"KO": {"model": "fixed_bps", "bps": 50},
                                      "AAPL": {"model": "square_root", "y": 0.8}}}
    run = run_spec(_four_stocks(tmp_path, with_), record=["bars"], write=False)
    fills = _fill_moves(run)
    by = {name: fills.filter(pl.col("instrument") == name) for name in FOUR}
    assert all(by[name].height >= 5 for name in FOUR), {name: by[name].height for name in FOUR}
    # KO: 50 bps of the open beyond slippage, against the order
    np.testing.assert_allclose(by["KO"]["move"].to_numpy(), by["KO"]["open"].to_numpy() * 0.005, rtol=1e-9)
    # AAPL: square-root impact, against the order, below 1 % for a quarter of 100k on AAPL's volume
    aapl = by["AAPL"]["move"].to_numpy() / by["AAPL"]["open"].to_numpy()
    assert (aapl > 0).all() and (aapl < 0.01).all()
    # MSFT and IBM keep the default (none): exactly the slipped open, every bit
    for name in ("MSFT", "IBM"):
        assert_bit_identical(by[name]["fill_price"].to_numpy(), by[name]["slipped"].to_numpy(), f"{name} fills")
    check_accounting(run, run.plan.graph.nodes["sim"].definition.params)


def test_unknown_instrument_is_refused_by_a_run(tmp_path):
    """Today a ValueError from the first replay; a SpecError at the node once the graph checks it (either way the
    run stops before any event with the instruments listed)."""
    path = _four_stocks(tmp_path, {"impact_by_instrument": {"XOM": {"model": "fixed_bps", "bps": 5}}})
    refused = r"'XOM', not an instrument of this spec \(its instruments: AAPL, MSFT"
    with pytest.raises((ValueError, SpecError), match=refused):
        run_spec(path, write=False)


@pytest.mark.parametrize("model", ["volume_share", "square_root", "almgren_chriss"])
def test_accounting_identities_hold_with_impact(tmp_path, model):
    impact = {"volume_share": {"model": "volume_share", "max_participation": 1e-6},
              "square_root": {"model": "square_root"},
              "almgren_chriss": {"model": "almgren_chriss", "eta": 0.5, "gamma": 0.2,
                                 "permanent_halflife_bars": 5}}[model]
    run = run_spec(_four_stocks(tmp_path, {"impact": impact}), record=["bars"], write=False)
    if model == "volume_share":
        # orders of ~25k $ (100–800 shares) against a 1e-6 share of the bar's volume (4–85 shares): partial fills
        sim = run.replay.recorded["sim"].join(run.replay.recorded["bars"], on=["ts_recv", "instrument"])
        capped = sim.filter(pl.col("fill_qty").abs() == 1e-6 * pl.col("volume"))
        assert capped.height >= 50
    check_accounting(run, run.plan.graph.nodes["sim"].definition.params)


# --- parity and prefix invariance --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(IMPACT_PARAMS))
def test_cpu_and_numba_are_bit_identical_over_four_instruments(name):
    per = [read_bars(n) for n in FOUR]
    n = len(per[0]["close"])
    interleaved = {f: np.stack([b[f] for b in per], axis=1).reshape(-1) for f in ("open", "high", "low", "close",
                                                                                   "volume")}
    keys = np.tile(np.arange(4, dtype=np.int64), n)
    columns = op_inputs(VENUE, interleaved)
    on_cpu = drive_venue(IMPACT_PARAMS[name], columns, keys)
    on_numba = drive_venue(IMPACT_PARAMS[name], columns, keys, target="numba")
    assert (on_cpu["fill_qty"] != 0).sum() > 1000
    for port in PORTS:
        assert_bit_identical(on_cpu[port], on_numba[port], f"{name}: port {port!r} cpu vs numba")


@pytest.mark.parametrize("name", list(IMPACT_PARAMS))
def test_cpu_and_numba_are_bit_identical_on_bad_values(name):
    """Random walks and jittered AAPL with NaN, zeros, negatives and huge values after a point."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 120
        keys = rng.integers(0, 4, n).astype(np.int64)
        for how in ("nan", "zero", "negative", "huge", "mixed"):
            bars = random_bars(seed, n, seed % 2 == 0)
            columns = [perturb_after(col, 60, how, rng) for col in op_inputs(VENUE, bars)]
            on_cpu = drive_venue(IMPACT_PARAMS[name], columns, keys, instruments=list("ABCD"))
            on_numba = drive_venue(IMPACT_PARAMS[name], columns, keys, instruments=list("ABCD"), target="numba")
            for port in PORTS:
                assert_bit_identical(on_cpu[port], on_numba[port], f"{name} seed {seed} {how}: {port!r}")


@pytest.mark.parametrize("name", list(IMPACT_PARAMS))
def test_outputs_up_to_t_ignore_inputs_after_t(name):
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        n = int(rng.integers(50, 200))
        t = int(rng.integers(0, n))
        keys = rng.integers(0, 4, n).astype(np.int64)
        columns = op_inputs(VENUE, random_bars(seed, n, seed % 2 == 1))
        before = drive_venue(IMPACT_PARAMS[name], columns, keys, instruments=list("ABCD"))
        for how in ("noise", "nan", "zero", "negative", "huge", "mixed"):
            changed = [perturb_after(col, t, how, rng) for col in columns]
            changed_keys = np.concatenate([keys[: t + 1], rng.integers(0, 4, n - t - 1)]).astype(np.int64)
            after = drive_venue(IMPACT_PARAMS[name], changed, changed_keys, instruments=list("ABCD"))
            for port in PORTS:
                assert_bit_identical(before[port][: t + 1], after[port][: t + 1], f"{name} t={t} {how}: {port!r}")


# --- real data: size costs -------------------------------------------------------------------------------


def _aapl_run(tmp_path, units: float, impact: dict):
    nodes = {
        "bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                   "timezone": "America/New_York"}},
        "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 10}},
        "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 30}},
        "cross": {"op": "signal.crossover", "in": ["fast", "slow"], "with": {"mode": "state", "short": True}},
        "target": {"op": "sizing.fixed_units", "in": "cross", "with": {"units": units}},
        "sim": {"op": "backtest.bar_venue", "in": {"market": "bars", "target": "target"},
                "with": {"cash": 1e9, "slippage_bps": 2, "impact": impact}},
    }
    return run_spec(write_spec(tmp_path, f"aapl_{int(units)}", nodes), record=["bars"], write=False)


def test_larger_orders_cost_more_on_aapl(tmp_path):
    """Same signals, 100, 10 000 and 1 000 000 units: the square-root impact per unit of every fill is √100 = 10×
    larger at each step (σ and ADV are the market's, not the account's), and the total impact cost grows."""
    runs = {units: _fill_moves(_aapl_run(tmp_path, units, {"model": "square_root"})) for units in (100, 10_000, 1e6)}
    small, medium, large = (runs[u] for u in (100, 10_000, 1e6))
    assert small.height >= 20 and small.height == medium.height == large.height
    assert (small["move"] > 0).all()
    np.testing.assert_allclose(medium["move"].to_numpy(), 10 * small["move"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(large["move"].to_numpy(), 10 * medium["move"].to_numpy(), rtol=1e-9)
    costs = [float((r["move"] * r["fill_qty"].abs()).sum()) for r in (small, medium, large)]
    assert costs[0] < costs[1] < costs[2]
    bps = 1e4 * (large["move"] / large["open"]).mean()
    # 1M shares (up to 2M on a reversal) of AAPL's ~10–100M a day with σ ≈ 1.5–2 %: tens of bps
    assert 10 < bps < 300, bps


def test_larger_orders_cost_more_on_aapl_almgren_chriss(tmp_path):
    """Same trades at 1 000, 100 000 and 1 000 000 units: Almgren–Chriss costs grow linearly with size per unit,
    so the PnL per unit traded falls with size."""
    impact = {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.05, "permanent_halflife_bars": 5}
    pnl_per_unit = []
    for units in (1_000, 100_000, 1_000_000):
        run = _aapl_run(tmp_path, units, impact)
        pnl_per_unit.append((run.backtest.stats["Equity Final [$]"] - 1e9) / units)
    assert pnl_per_unit[0] > pnl_per_unit[1] > pnl_per_unit[2], pnl_per_unit


def test_docstring_impact_example_runs_on_four_stocks(tmp_path):
    """The venue docstring's impact example, as written, drives the four-stock sample: square-root impact on
    every stock, a flat 3 bps more on KO."""
    block = VENUE.__doc__.split("With impact", 1)[1].split("::", 1)[1]
    example = yaml.safe_load(textwrap.dedent(block))["sim"]
    assert example["op"] == VENUE.name
    run = run_spec(_four_stocks(tmp_path, example["with"]), record=["bars"], write=False)
    fills = _fill_moves(run)
    ko = fills.filter(pl.col("instrument") == "KO")
    np.testing.assert_allclose(ko["move"].to_numpy(), ko["open"].to_numpy() * 3e-4, rtol=1e-9)
    others = fills.filter(pl.col("instrument") != "KO")
    assert others.height > 20 and (others["move"] > 0).all()
