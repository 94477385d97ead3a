"""The bar venue's ``entry_price``: average entry price of the instrument's position, NaN when flat.

- Hand-made bars and targets, stepped directly: entry from flat, adding (size-weighted average), a partial
  close (unchanged), a reversal (the reversal's fill price), back to flat (NaN); per instrument; with
  slippage and ``fill: close``; cpu and numba identical.
- Through the engine on real data: an independent average-cost replay of the recorded fills gives the same
  bits, every lot opened from flat or by a reversal has the entry price the trades report, and
  ``prev(sim.entry_price)`` is the value of the same instrument's previous event.
"""

import math

import numpy as np
import polars as pl
import pytest

from nodes.contract import default_registry
from pipelines.codegen import initial_value
from pipelines.run import run_spec
from tests.support import assert_bit_identical, drive, multi_instrument_nodes, write_spec

nan = np.nan
VENUE = default_registry().get("backtest.bar_venue")
PORTS = list(VENUE.outputs)

# One instrument; opens 10, 11, …, 16 so every fill price is its bar number + 10.
OPENS = np.arange(10.0, 17.0)
CLOSES = OPENS + 0.5
TARGETS = np.array([10.0, 20.0, 5.0, -10.0, -20.0, 0.0, nan])


def _venue(params: dict, opens, closes, targets, keys=None, target="cpu") -> dict[str, np.ndarray]:
    n = len(opens)
    keys = np.zeros(n, np.int64) if keys is None else np.asarray(keys, np.int64)
    opens, closes = np.asarray(opens, float), np.asarray(closes, float)
    inputs = [opens, np.maximum(opens, closes) + 1.0, np.minimum(opens, closes) - 1.0, closes, np.full(n, 1e3),
              np.asarray(targets, float)]
    out = drive(VENUE, VENUE.Params.model_validate(params), [keys], inputs, target, n_keys=int(keys.max()) + 1)
    return dict(zip(PORTS, out))


def test_entry_from_flat_adding_partial_close_reversal_and_flat():
    out = _venue({"cash": 10_000}, OPENS, CLOSES, TARGETS)
    np.testing.assert_array_equal(out["position"], [0, 10, 20, 5, -10, -20, 0])
    np.testing.assert_array_equal(
        out["entry_price"],
        [
            nan,  # bar 0: the order is pending, nothing held
            11.0,  # bar 1: +10 filled at 11 from flat
            11.5,  # bar 2: +10 more at 12: (10 × 11 + 10 × 12) / 20
            11.5,  # bar 3: -15 at 13 closes part of it: the average cost of what is left does not move
            14.0,  # bar 4: -15 at 14 reverses 5 long to 10 short: all of it entered at 14
            14.5,  # bar 5: -10 more short at 15: (-10 × 14 + -10 × 15) / -20
            nan,  # bar 6: +20 at 16 closes it
        ],
    )


def test_fill_on_close_sets_the_entry_at_the_signal_bar():
    out = _venue({"cash": 10_000, "fill": "close"}, OPENS, CLOSES, TARGETS)
    np.testing.assert_array_equal(out["position"], [10, 20, 5, -10, -20, 0, 0])
    np.testing.assert_array_equal(out["entry_price"], [10.5, 11.0, 11.0, 13.5, 14.0, nan, nan])


def test_slippage_is_in_the_entry_price_and_commission_is_not():
    out = _venue({"cash": 10_000, "slippage_bps": 25, "commission": 0.01, "commission_per_unit": 0.5},
                 OPENS, CLOSES, TARGETS)
    fills = out["fill_price"]
    # from flat and on a reversal: the fill's own price, slippage included
    assert out["entry_price"][1] == fills[1] == 11.0 * (1 + 0.0025)
    assert out["entry_price"][4] == fills[4] == 14.0 * (1 - 0.0025)
    assert out["entry_price"][2] == (10.0 * fills[1] + 10.0 * fills[2]) / 20.0


def test_each_instrument_has_its_own_entry():
    # A and B interleaved; B enters one bar after A at other prices, A's trades never move B's entry
    keys = [0, 1, 0, 1, 0, 1, 0, 1]
    opens = [10.0, 50.0, 11.0, 51.0, 12.0, 52.0, 13.0, 53.0]
    targets = [1.0, nan, 3.0, 2.0, 0.0, nan, nan, -2.0]
    out = _venue({"cash": 10_000}, opens, np.asarray(opens) + 0.5, targets, keys=keys)
    np.testing.assert_array_equal(out["position"], [0, 0, 1, 0, 3, 2, 0, 2])
    np.testing.assert_array_equal(out["entry_price"], [nan, nan, 11.0, nan, (11.0 + 2 * 12.0) / 3, 52.0, nan, 52.0])


@pytest.mark.parametrize("params", [{"cash": 10_000}, {"cash": 10_000, "fill": "close", "slippage_bps": 3}])
def test_cpu_and_numba_are_bit_identical(params):
    rng = np.random.default_rng(3)
    n = 2_000
    opens = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    targets = np.where(rng.random(n) < 0.4, rng.integers(-30, 31, n).astype(float), nan)
    keys = rng.integers(0, 3, n)
    on_cpu = _venue(params, opens, opens * 1.001, targets, keys=keys)
    on_numba = _venue(params, opens, opens * 1.001, targets, keys=keys, target="numba")
    for port in PORTS:
        assert_bit_identical(on_cpu[port], on_numba[port], f"bar_venue {params}: {port} cpu vs numba")
    assert np.isfinite(on_cpu["entry_price"]).sum() > n // 2


def _average_cost(sim: pl.DataFrame) -> np.ndarray:
    """The entry price after each event, replayed from the recorded fills in plain Python."""
    held: dict[str, float] = {}
    entry: dict[str, float] = {}
    out = np.empty(sim.height)
    for i, (name, qty, price) in enumerate(sim.select("instrument", "fill_qty", "fill_price").iter_rows()):
        before, after = held.get(name, 0.0), held.get(name, 0.0) + qty
        if qty != 0.0:
            if after == 0.0:
                entry[name] = nan
            elif before == 0.0 or math.copysign(1, after) != math.copysign(1, before):
                entry[name] = price
            elif abs(after) > abs(before):
                entry[name] = (before * entry[name] + qty * price) / after
        held[name] = after
        out[i] = entry.get(name, nan)
    return out


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_real_run_entry_price_is_the_average_cost_of_the_recorded_fills(tmp_path, fill):
    nodes = multi_instrument_nodes(0.3)
    nodes["cross"]["with"] = {"mode": "state", "short": True}
    nodes["sim"]["with"] = {**nodes["sim"]["with"], "fill": fill}
    run = run_spec(write_spec(tmp_path, "four", nodes), write=False, record=["sim"])
    sim = run.replay.recorded["sim"]
    entry = sim["entry_price"].to_numpy()
    assert_bit_identical(entry, _average_cost(sim), "entry_price vs an average-cost replay of the fills")
    flat = sim["position"].to_numpy() == 0.0
    assert np.isnan(entry[flat]).all() and np.isfinite(entry[~flat]).all()
    # every lot opened from flat or by a reversal was entered at the price the venue reports for that event
    before = sim.select(pl.col("position").shift(1).over("instrument").fill_null(0.0)).to_series().to_numpy()
    after = sim["position"].to_numpy()
    fresh = (after != 0.0) & (np.sign(after) != np.sign(before))
    opened = run.backtest.trades.filter(pl.col("entry_event_index").is_in(np.flatnonzero(fresh).tolist()))
    assert opened.height > 50
    np.testing.assert_array_equal(entry[opened["entry_event_index"].to_numpy()], opened["entry_price"].to_numpy())


def test_prev_entry_price_reads_the_same_instruments_previous_event(tmp_path):
    """Four instruments interleaved: an exit op reading ``prev(sim.entry_price)`` sees, per instrument, the
    venue's value at that instrument's previous event (NaN on its first), never another instrument's."""
    nodes = multi_instrument_nodes(0.3)
    nodes["stop"] = {
        "op": "exit.stop_loss",
        "in": {"target": "target", "high": "bars.high", "low": "bars.low", "position": "prev(sim.position)",
               "entry_price": "prev(sim.entry_price)"},
        "with": {"stop_pct": 0.02},
    }
    nodes["sim"]["in"]["target"] = "stop"
    run = run_spec(write_spec(tmp_path, "prev_entry", nodes), write=False, record=["bars", "target", "stop", "sim"])
    assert math.isnan(initial_value(run.plan, "sim", "entry_price"))
    recorded = run.replay.recorded
    sim = recorded["sim"].with_columns(pl.col("instrument").cast(pl.String))
    previous = [pl.col(c).shift(1).over("instrument").fill_null(nan) for c in ("position", "entry_price")]
    frame = sim.select("instrument", *previous).with_columns(
        target=recorded["target"]["target"], high=recorded["bars"]["high"], low=recorded["bars"]["low"],
        stop=recorded["stop"]["target"],
    )
    stop = default_registry().get("exit.stop_loss")
    params = stop.Params.model_validate({"stop_pct": 0.02})
    stopped = 0
    for (name,), rows in frame.group_by("instrument", maintain_order=True):
        columns = [rows[c].to_numpy() for c in ("target", "high", "low", "position", "entry_price")]
        by_hand = drive(stop, params, [], columns, "cpu")[0]
        assert_bit_identical(rows["stop"].to_numpy(), by_hand, f"{name}: exit.stop_loss engine vs by hand")
        stopped += int(((by_hand == 0.0) & (columns[0] > 0.0)).sum())
    assert stopped > 4, "the stop must fire, or this proves nothing about the entry prices it read"
