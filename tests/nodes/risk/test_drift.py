"""risk.drift: PSI and KS by hand and against scipy, a given reference, NaN handling, parity, prefix invariance."""

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from tests.nodes.op_examples import docstring_example
from tests.nodes.risk.driver import assert_cpu_numba_identical, op, run
from tests.nodes.strategies.real_book import btcusdt_tops
from tests.support import assert_bit_identical

NAME = "risk.drift"


def _drift(params: dict, x) -> tuple[np.ndarray, np.ndarray]:
    out, _ = assert_cpu_numba_identical(NAME, params, {"x": list(x)})
    return out["psi"], out["ks"]


def test_psi_and_ks_by_hand():
    # reference 1..6 in 3 equal-frequency bins: edges 3 and 5, so {1,2} {3,4} {5,6}, a third each
    psi, ks = _drift({"reference_events": 6, "bins": 3, "window": 5}, [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 7])
    assert np.isnan(psi[:10]).all() and np.isnan(ks[:10]).all()  # the reference, then a window filling up
    # window 1..5: fractions 0.4 0.4 0.2 against a third each
    third = 1 / 3
    expected = 2 * (0.4 - third) * math.log(0.4 / third) + (0.2 - third) * math.log(0.2 / third)
    assert psi[10] == pytest.approx(expected, rel=1e-15)
    assert ks[10] == pytest.approx(1 / 6)  # at 5: the window has all of its values, the reference 5 of 6
    # window 3..7: 0, 2/5, 3/5 (the empty bin floored at epsilon 1e-4); KS at 2: 2/6 of the reference, none of
    # the window
    floor = 1e-4
    assert psi[12] == pytest.approx((floor - third) * math.log(floor / third) + (0.4 - third) * math.log(1.2)
                                    + (0.6 - third) * math.log(1.8), rel=1e-14)
    assert ks[12] == pytest.approx(2 / 6)


def test_an_empty_bin_is_floored_at_epsilon():
    psi, _ = _drift({"reference_events": 4, "bins": 2, "window": 2, "epsilon": 0.01}, [1, 2, 3, 4, 9, 9])
    # reference halves 0.5 / 0.5, window all in the upper bin: (0.01 − 0.5) ln(0.02) + (1 − 0.5) ln 2
    assert psi[-1] == pytest.approx((0.01 - 0.5) * math.log(0.02) + 0.5 * math.log(2.0))


def test_ks_is_scipys_two_sample_statistic_with_ties():
    rng = np.random.default_rng(4)
    reference = np.round(rng.normal(0, 1, 300), 1)  # rounded: many ties
    later = np.round(rng.normal(0.3, 1.2, 400), 1)
    x = np.concatenate([reference, later])
    _, ks = _drift({"reference_events": 300, "window": 100, "bins": 10}, x)
    for end in (400, 555, 700):
        assert ks[end - 1] == pytest.approx(stats.ks_2samp(reference, x[end - 100:end]).statistic, abs=1e-12)


def test_psi_matches_numpy_on_quantile_bins():
    rng = np.random.default_rng(5)
    reference = rng.normal(0, 1, 1_000)
    later = rng.normal(0.5, 1, 500)
    psi, _ = _drift({"reference_events": 1_000, "window": 500, "bins": 10}, np.concatenate([reference, later]))
    ordered = np.sort(reference)
    edges = ordered[(np.arange(1, 10) * 1_000) // 10]
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=10) / 1_000
    w = np.bincount(np.searchsorted(edges, later, side="right"), minlength=10) / 500
    r, w = np.maximum(r, 1e-4), np.maximum(w, 1e-4)
    assert psi[-1] == pytest.approx(np.sum((w - r) * np.log(w / r)), rel=1e-12)
    assert psi[-1] > 0.1  # a half-sigma shift is a clear drift


def test_a_reference_given_in_the_spec_is_ready_from_the_first_event_and_nan_holds():
    params = {"reference": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "bins": 3, "window": 2}
    psi, ks = _drift(params, [1, np.nan, 6, np.nan])
    # window {1, 6}: at 1 half the window, a sixth of the reference
    assert np.isnan(psi[0]) and psi[2] == psi[3] and ks[2] == ks[3] == pytest.approx(1 / 2 - 1 / 6)
    streamed, _ = _drift({"reference_events": 6, "bins": 3, "window": 2}, [1, 2, 3, 4, 5, 6, 1, 6])
    assert psi[2] == streamed[-1]


def test_every_computes_on_every_nth_value_and_holds_in_between():
    x = np.random.default_rng(6).normal(0, 1, 60)
    x[40] = np.nan
    base = {"reference_events": 20, "window": 10, "bins": 4}
    psi, ks = _drift(base, x)
    sparse_psi, sparse_ks = _drift({**base, "every": 3}, x)
    full = 29  # the first full window: computed, then every third value (the NaN at 40 is not a value)
    computed = [29, 32, 35, 38, 42, 45, 48, 51, 54, 57]
    assert np.isnan(sparse_psi[:full]).all()
    for i in range(full, 60):
        at = max(j for j in computed if j <= i)
        assert sparse_psi[i] == psi[at] and sparse_ks[i] == ks[at], i


def test_int64_features_through_specialize():
    stream_op, _ = op(NAME, input_type="i64")
    assert str(stream_op.inputs["x"]) == "i64"
    out, _ = assert_cpu_numba_identical(NAME, {"input_type": "i64", "reference_events": 6, "bins": 3, "window": 5},
                                        {"x": [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5]})
    floats, _ = _drift({"reference_events": 6, "bins": 3, "window": 5}, [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5])
    assert_bit_identical(out["psi"], floats, "i64 vs f64 feature")


def test_bad_params_are_refused():
    with pytest.raises(ValidationError, match="at least bins"):
        op(NAME, reference=[1.0, 2.0], bins=3)
    with pytest.raises(ValidationError, match="finite"):
        op(NAME, reference=[1.0, float("nan"), 2.0], bins=2)


def test_parity_and_prefix_invariance_on_real_book_sizes():
    sizes = btcusdt_tops()["bid_size"][:4_000].astype(np.float64) / 1e9
    sizes[::97] = np.nan
    params = {"reference_events": 400, "window": 200, "bins": 12}
    out, _ = assert_cpu_numba_identical(NAME, params, {"x": sizes})
    assert np.isfinite(out["psi"][1_000:]).all() and np.unique(out["ks"][1_000:]).size > 10
    for t in (300, 700, 2_500):
        changed = sizes.copy()
        changed[t + 1:] = np.random.default_rng(t).normal(0, 5, len(sizes) - t - 1)
        after, _ = run(NAME, params, {"x": changed}, target="numba")
        for port in out:
            assert_bit_identical(out[port][:t + 1], after[port][:t + 1], f"{port} up to t={t}")


def test_docstring_example_names_this_op_with_valid_params():
    node = docstring_example(NAME)["drift"]
    assert op(NAME, **node["with"])[1].input_type == "i64"
