"""The entries the library-wide parity and prefix tests need for ``backtest.tick_venue`` (tests/support.py),
checked here the way those tests use them: example params and a feed built from bars, on the registry's op."""

import numpy as np
import pytest

from nodes.contract import default_registry
from nodes.marketdata.schemas import F_LAST, UNDEF_PRICE
from tests.support import (
    TICK_VENUE_EXAMPLE_PARAMS, _tick_venue_feed, assert_bit_identical, drive, op_context, perturb_after, random_bars,
    read_bars,
)

# --- how test_parity.py / test_prefix_invariance.py use them ---------------------------------------------

OP = default_registry().get("backtest.tick_venue")


def _inputs(bars: dict) -> list[np.ndarray]:
    with np.errstate(all="ignore"):
        feed = _tick_venue_feed(bars)
    return [np.ascontiguousarray(feed[name], dtype=t.dtype) for name, _, t in OP.flat_inputs()]


def _params():
    return [OP.Params.model_validate(raw) for raw in TICK_VENUE_EXAMPLE_PARAMS]


def test_every_example_over_real_bars_trades_and_is_bit_identical_on_numba():
    bars = read_bars("AAPL")
    inputs = _inputs(bars)
    context = op_context(OP, len(bars["close"]))
    for params in _params():
        on_cpu = drive(OP, params, context, inputs, "cpu")
        on_numba = drive(OP, params, context, inputs, "numba")
        for port, a, b in zip(OP.outputs, on_cpu, on_numba):
            assert_bit_identical(a, b, f"{params!r}: {port}")
        position = on_cpu[list(OP.outputs).index("position")]
        assert np.unique(position).size > 2, f"{params!r}: the feed does not make the venue trade"


@pytest.mark.parametrize("how", ["noise", "nan", "zero", "negative", "huge", "mixed"])
def test_outputs_up_to_t_ignore_later_inputs_even_garbage(how):
    n, t = 150, 80
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 3, n).astype(np.int64)
    bars = random_bars(9, n, from_aapl=True)
    inputs = _inputs(bars)
    changed = [perturb_after(column, t, how, rng) for column in inputs]
    context = op_context(OP, n, keys=keys)
    for params in _params():
        before = drive(OP, params, context, inputs, "cpu", n_keys=3)
        after = drive(OP, params, context, changed, "cpu", n_keys=3)
        for port, a, b in zip(OP.outputs, before, after):
            assert_bit_identical(a[: t + 1], b[: t + 1], f"{params!r} {how}: {port} up to t")


def test_zero_bars_run_the_same_on_both_targets():
    bars = {k: v[:200].copy() for k, v in read_bars("AAPL").items() if k != "date"}
    for field in ("open", "high", "low", "close", "volume"):
        bars[field][60:90] = 0.0
    inputs = _inputs(bars)
    context = op_context(OP, 200)
    for params in _params():
        for port, a, b in zip(OP.outputs, drive(OP, params, context, inputs, "cpu"),
                              drive(OP, params, context, inputs, "numba")):
            assert_bit_identical(a, b, f"{params!r} zero bars: {port}")
