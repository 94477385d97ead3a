"""The RTL simulated cycle by cycle on real samples: bit-exact with the golden model, latency and II as modeled.

Each op runs over a few thousand real events twice: back to back (every event waiting from cycle 0, so the
module runs at its II) and with random gaps and bursts. Per event the test checks the outputs against the
golden model bit for bit, ``out - accept`` against the modeled latency (plus the stall of a warm-up event),
and the accept cycles against the queueing model ``start = max(arrival, previous start + II)``.
Longer runs (whole captures, deeper books, other clocks) are marked extended (run with -m extended).
"""

import numpy as np
import pytest

from hardware.fpga.parity import golden_outputs
from hardware.fpga.path import ReferencePath, message_outputs
from hardware.fpga.registry import fpga_impl
from hardware.fpga.sim import arrivals_back_to_back, arrivals_with_gaps, simulate
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, queue_starts
from tests.hardware.fpga.fpga_samples import (
    DELTA_FIELDS,
    book_deltas,
    closes,
    encoder_feed,
    moving_averages,
    risk_feed,
)
from tests.support import assert_bit_identical

BOOK = {"max_levels": 8}
IMBALANCE = {"ratio": 2.0, "mode": "state"}
RISK = {"lots": 2, "max_position_lots": 2, "max_notional": 5_000, "lot_size": 0.01, "collar_bps": 1,
        "max_orders": 1000}
# each refuses for other reasons on the same real feed: notional and the order limit, the position limit
RISK_VARIANTS = [{**RISK, "max_notional": 2_000}, {**RISK, "lots": 3}, {**RISK, "max_orders": 10}]
N_DELTAS = 3000


def check_rtl(name: str, raw: dict, columns: list[np.ndarray], arrivals: np.ndarray,
              clock_hz: float = DEFAULT_CLOCK_HZ):
    """Simulate ``name`` over ``columns``; assert bit-exactness, latency, II and queueing; return the result."""
    impl = fpga_impl(name)
    params = impl.op.Params(**raw)
    golden = golden_outputs(impl, params, columns)
    result = simulate(impl.module(params, clock_hz), impl.rtl_inputs(params, columns), arrivals)
    for port, got, want in zip(impl.op.outputs, impl.rtl_outputs(params, result.outputs), golden):
        assert_bit_identical(np.asarray(got), np.asarray(want), f"{name}.{port} RTL vs golden")
    timing = impl.timing(params, clock_hz)
    stall = np.where(impl.rare_events(params, columns), timing.stall_cycles, 0)
    assert np.array_equal(result.latencies, timing.latency_cycles + stall), (
        f"{name}: measured latencies {sorted(set(result.latencies.tolist()))}, model {timing.latency_cycles}")
    expected_starts = queue_starts(np.asarray(arrivals, np.int64), timing.ii_cycles + stall)
    assert np.array_equal(result.accept_cycles, expected_starts), f"{name}: accept cycles differ from the queue model"
    return result, timing


def check_both_arrival_patterns(name: str, raw: dict, columns: list[np.ndarray], clock_hz=DEFAULT_CLOCK_HZ):
    n = len(columns[0])
    result, timing = check_rtl(name, raw, columns, arrivals_back_to_back(n), clock_hz)
    gaps = np.diff(result.accept_cycles)
    assert gaps.min() == timing.ii_cycles  # the measured II under back-to-back pressure
    assert np.median(gaps) == timing.ii_cycles
    with_gaps, _ = check_rtl(name, raw, columns, arrivals_with_gaps(n), clock_hz)
    assert with_gaps.cycles > result.cycles or timing.ii_cycles > 2  # the gaps really idled the module
    return timing


@pytest.fixture(scope="module")
def book_path():
    """A real BTCUSDT book (first 3,000 deltas) and what the reference path's ops compute from it."""
    deltas = [column[:N_DELTAS] for column in book_deltas()]
    book = golden_outputs(fpga_impl("book.l2"), fpga_impl("book.l2").op.Params(**BOOK), deltas)
    side = golden_outputs(fpga_impl("signal.book_imbalance"),
                          fpga_impl("signal.book_imbalance").op.Params(**IMBALANCE), [book[2], book[3]])[0]
    risk_columns = risk_feed(book, side)
    risk = golden_outputs(fpga_impl("risk.order_limits"), fpga_impl("risk.order_limits").op.Params(**RISK), risk_columns)
    return {"deltas": deltas, "book": book, "risk_columns": risk_columns, "risk": risk}


@pytest.mark.parametrize("raw, ii", [({"window": 20}, 4), ({"window": 31}, 1)])
def test_ema_rtl(raw, ii):
    timing = check_both_arrival_patterns("indicator.ema", raw, [closes()])
    assert timing.ii_cycles == ii


def test_ema_rtl_at_a_slower_clock_runs_its_loop_in_one_cycle():
    timing = check_both_arrival_patterns("indicator.ema", {"window": 20}, [closes()[:800]], clock_hz=100e6)
    assert (timing.ii_cycles, timing.latency_cycles) == (1, 2)


@pytest.mark.parametrize("raw", [{"window": 20}, {"window": 2}, {"window": 1}])
def test_sma_rtl(raw):
    check_both_arrival_patterns("indicator.sma", raw, [closes()])


@pytest.mark.parametrize("raw", [{"mode": "cross", "short": True}, {"mode": "state", "short": False}])
def test_crossover_rtl(raw):
    check_both_arrival_patterns("signal.crossover", raw, list(moving_averages(closes())))


@pytest.mark.parametrize("raw", [{"upper": 100.0, "lower": 80.0, "center": 90.0},
                                 {"upper": 110.0, "lower": 70.0, "center": 90.0, "short": True, "mode": "state"}])
def test_threshold_rtl(raw):
    check_both_arrival_patterns("signal.threshold", raw, [closes()])


def test_top_of_book_rtl(book_path):
    book = book_path["book"]
    assert book[7][-1] > 100 and book[4].min() < 8  # the real feed overflows 8 levels and empties them too
    check_both_arrival_patterns("book.l2", BOOK, book_path["deltas"])


def test_book_imbalance_rtl(book_path):
    book = book_path["book"]
    check_both_arrival_patterns("signal.book_imbalance", IMBALANCE, [book[2], book[3]])
    check_both_arrival_patterns("signal.book_imbalance", {"ratio": 1.5, "mode": "change"}, [book[2], book[3]])


@pytest.mark.parametrize("raw", [RISK] + RISK_VARIANTS)
def test_risk_check_rtl(raw, book_path):
    check_both_arrival_patterns("risk.order_limits", raw, book_path["risk_columns"])


def test_the_risk_feed_reaches_every_rule_but_crossed(book_path):
    """What the RTL tests above cover: orders, and every refusal but ``crossed`` (the first 3,000 deltas never
    cross; the slow whole-capture test does). ``price_range`` comes from the feed's injected fat-finger asks."""
    impl = fpga_impl("risk.order_limits")
    reasons = 0
    for raw in [RISK] + RISK_VARIANTS:
        outputs = golden_outputs(impl, impl.op.Params(**raw), book_path["risk_columns"])
        for value in np.unique(outputs[2]):
            reasons |= int(value)
    assert (book_path["risk"][0] != 0).sum() > 100
    assert reasons == 255 - 2, bin(reasons)


def test_order_encoder_rtl(book_path):
    risk, book = book_path["risk"], book_path["book"]
    columns = encoder_feed(risk[0], risk[1], book[0])
    check_both_arrival_patterns("order.encode", {"instrument_id": 7, "client_id_base": 1000, "tif": "ioc"}, columns)


def test_reference_path_rtl_latency_is_the_sum_of_its_ops(book_path):
    """book → imbalance → risk → encoder in one module: same messages as the chained golden models, and
    the end-to-end latency is the sum of the four modeled latencies."""
    path = ReferencePath(BOOK, IMBALANCE, RISK, {"instrument_id": 7, "client_id_base": 1000})
    deltas = book_path["deltas"]
    golden = path.golden(deltas)["order"]
    assert golden[4][-1] > 0  # messages were sent
    for arrivals in (arrivals_back_to_back(N_DELTAS), arrivals_with_gaps(N_DELTAS)):
        result = simulate(path.module(), dict(zip(DELTA_FIELDS, deltas)), arrivals)
        for got, want in zip(message_outputs(result.outputs), golden):
            assert_bit_identical(got, want, "path message words")
        assert set(result.latencies.tolist()) == {path.latency_cycles()}
    assert path.latency_cycles() * 1e9 / DEFAULT_CLOCK_HZ < 100


@pytest.mark.extended
@pytest.mark.parametrize("capture", ["spot_btcusdt_20240808.head2000.gz", "spot_ethusdt_20240808.head2000.gz",
                                     "cm_btcusd_perp_20240808.head2000.gz"])
@pytest.mark.parametrize("levels", [4, 16, 64])
def test_top_of_book_rtl_whole_captures(capture, levels):
    check_both_arrival_patterns("book.l2", {"max_levels": levels}, list(book_deltas(capture)))


@pytest.mark.extended
def test_reference_path_rtl_whole_captures():
    """The whole path on two whole captures with a 16-level book, which crosses at times (the risk check's
    ``crossed`` rule)."""
    path = ReferencePath({"max_levels": 16}, IMBALANCE, RISK, {"instrument_id": 7})
    reasons = 0
    for capture in ("spot_btcusdt_20240808.head2000.gz", "cm_btcusd_perp_20240808.head2000.gz"):
        deltas = list(book_deltas(capture))
        golden = path.golden(deltas)
        reasons |= int(np.bitwise_or.reduce(golden["risk"][2]))
        result = simulate(path.module(), dict(zip(DELTA_FIELDS, deltas)), arrivals_with_gaps(len(deltas[0])))
        for got, want in zip(message_outputs(result.outputs), golden["order"]):
            assert_bit_identical(got, want, "path message words")
        assert set(result.latencies.tolist()) == {path.latency_cycles()}
    assert reasons & 2, bin(reasons)


@pytest.mark.extended
@pytest.mark.parametrize("clock_hz", [150e6, 250e6, 400e6])
@pytest.mark.parametrize("name, raw", [
    ("indicator.ema", {"window": 20}), ("indicator.ema", {"window": 63}), ("indicator.sma", {"window": 300}),
    ("signal.book_imbalance", {"ratio": 3.703125}),
])
def test_rtl_follows_the_model_at_other_clocks(name, raw, clock_hz, book_path):
    columns = [closes()] if name.startswith("indicator") else [book_path["book"][2], book_path["book"][3]]
    check_both_arrival_patterns(name, raw, columns, clock_hz)
