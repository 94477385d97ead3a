"""Golden models against the float ops they implement, on real data: within each declared error bound.

Value ops (EMA, SMA) on the sample closes; side ops (crossover, threshold) on the closes and their moving
averages; integer ops (book, imbalance, risk check, encoder) on the vendored Binance captures, bit for bit.
"""

import numpy as np
import pytest

from hardware.fpga.fixed import quantize_array
from hardware.fpga.parity import float_outputs, golden_outputs, parity
from hardware.fpga.registry import PRICE, fpga_impl, fpga_impls
from tests.hardware.fpga.fpga_samples import aapl_closes, book_deltas, closes, moving_averages, risk_feed
from tests.support import assert_bit_identical

VALUE_CASES = [("indicator.ema", {"window": w}) for w in (1, 3, 20, 31, 200)] + [
    ("indicator.sma", {"window": w}) for w in (1, 2, 20, 30, 256)]
BINANCE = ["spot_btcusdt_20240808.head2000.gz", "spot_ethusdt_20240808.head2000.gz",
           "cm_btcusd_perp_20240808.head2000.gz"]
RISK = {"lots": 2, "max_position_lots": 2, "max_notional": 5_000, "lot_size": 0.01, "collar_bps": 3,
        "max_orders": 60}


def _params(name, raw):
    return fpga_impl(name).op.Params(**raw)


@pytest.mark.parametrize("name, raw", VALUE_CASES)
def test_value_ops_stay_within_their_error_bound_on_real_closes(name, raw):
    impl, params = fpga_impl(name), _params(name, raw)
    for series in (aapl_closes(), closes()):
        result = parity(impl, params, [series])
        assert result.ok, result.problems
    bound = impl.error_bound(params)
    assert bound < 2e-5  # a few input LSBs: the bound says something
    assert 0 < result.max_scaled_error <= bound  # the datapath really is fixed point


@pytest.mark.parametrize("raw", [{"mode": "cross", "short": True}, {"mode": "state", "short": False}])
def test_crossover_is_exact_on_the_grid_and_on_real_averages(raw):
    impl, params = fpga_impl("signal.crossover"), _params("signal.crossover", raw)
    fast, slow = moving_averages(closes())
    assert parity(impl, params, [fast, slow]).ok
    # off the grid (raw float averages) a side could differ only where |fast - slow| < 1 LSB: none here
    assert np.nanmin(np.abs(fast - slow)) > PRICE.lsb
    got = golden_outputs(impl, params, [fast, slow])[0]
    assert_bit_identical(got, float_outputs(impl, params, [fast, slow])[0], "crossover on raw averages")
    assert np.isfinite(got).sum() > 20


@pytest.mark.parametrize("raw", [{"upper": 100.0, "lower": 80.0, "center": 90.0},
                                 {"upper": 110.0, "lower": 70.0, "center": 90.0, "short": True, "mode": "state"},
                                 {"upper": 33.3333, "lower": 30.00001}])
def test_threshold_is_exact_on_the_grid_and_on_real_closes(raw):
    impl, params = fpga_impl("signal.threshold"), _params("signal.threshold", raw)
    x = closes()
    assert parity(impl, params, [x]).ok
    got = golden_outputs(impl, params, [x])[0]
    assert_bit_identical(got, float_outputs(impl, params, [x])[0], "threshold on raw closes")


def test_threshold_levels_off_the_grid_compare_exactly_for_grid_inputs():
    """x > 30.00001 for the grid value just above it, and not for the one just below."""
    impl, params = fpga_impl("signal.threshold"), _params("signal.threshold", {"upper": 30.00001, "lower": 20.0})
    step = (30.00001 * 2**16 // 1) / 2**16
    x = np.array([step, step + 2.0**-16, step, 19.0, step + 2.0**-16])
    assert parity(impl, params, [x]).ok
    assert golden_outputs(impl, params, [x])[0][:2].tolist()[1] == 1.0


@pytest.mark.parametrize("capture", BINANCE)
def test_integer_ops_are_bit_identical_on_real_books(capture):
    deltas = list(book_deltas(capture))
    book = fpga_impl("book.l2")
    for levels in (4, 16, 64):
        result = parity(book, _params("book.l2", {"max_levels": levels}), deltas)
        assert result.ok, result.problems
    outputs = golden_outputs(book, _params("book.l2", {"max_levels": 16}), deltas)
    for raw in ({"ratio": 2.0, "mode": "state"}, {"ratio": 1.5}):
        result = parity(fpga_impl("signal.book_imbalance"), _params("signal.book_imbalance", raw),
                        [outputs[2], outputs[3]])
        assert result.ok, result.problems
    side = golden_outputs(fpga_impl("signal.book_imbalance"), _params("signal.book_imbalance", {"ratio": 2.0,
                          "mode": "state"}), [outputs[2], outputs[3]])[0]
    risk_columns = risk_feed(outputs, side)
    assert parity(fpga_impl("risk.order_limits"), _params("risk.order_limits", RISK), risk_columns).ok
    risk = golden_outputs(fpga_impl("risk.order_limits"), _params("risk.order_limits", RISK), risk_columns)
    assert (risk[0] != 0).sum() > 10 and len(np.unique(risk[2])) >= 4  # orders and several reasons
    encoder = _params("order.encode", {"instrument_id": 7, "client_id_base": 1000})
    assert parity(fpga_impl("order.encode"), encoder, [risk[0], risk[1]]).ok


@pytest.mark.parametrize("name", sorted(fpga_impls()))
def test_golden_models_agree_on_cpu_and_numba(name):
    impl = fpga_impl(name)
    raw = {"indicator.ema": {"window": 20}, "indicator.sma": {"window": 20}, "signal.crossover": {},
           "signal.threshold": {"upper": 100.0, "lower": 80.0}, "book.l2": {"max_levels": 8},
           "signal.book_imbalance": {"ratio": 2.0, "mode": "state"}, "risk.order_limits": RISK,
           "order.encode": {"instrument_id": 7}}[name]
    params = _params(name, raw)
    deltas = [c[:2000] for c in book_deltas()]
    book = golden_outputs(fpga_impl("book.l2"), _params("book.l2", {"max_levels": 8}), deltas)
    columns = {
        "indicator.ema": [closes()], "indicator.sma": [closes()], "signal.threshold": [closes()],
        "signal.crossover": list(moving_averages(closes())), "book.l2": deltas,
        "signal.book_imbalance": [book[2], book[3]],
        "risk.order_limits": risk_feed(book, np.where(np.arange(2000) % 3 == 0, np.nan, 1.0)),
        "order.encode": [np.arange(2000) % 5 - 2, book[0]],
    }[name]
    for got, want in zip(golden_outputs(impl, params, columns, "cpu"), golden_outputs(impl, params, columns, "numba")):
        assert_bit_identical(np.asarray(got), np.asarray(want), f"{name} cpu vs numba")


def test_input_quantization_is_half_an_lsb():
    x = closes(with_gaps=False)
    q, _ = quantize_array(x, PRICE)
    assert np.max(np.abs(q * PRICE.lsb - x)) <= PRICE.lsb / 2
