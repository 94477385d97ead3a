"""Parity: every indicator gives bit-identical outputs on cpu (Python) and numba over real AAPL bars.

The step is driven event by event through ``step_function(step, target)``; numba compiles each step once per
process (``step_function`` caches it), so the other indicator tests reuse these compilations. The feed with
NaN holes exercises the skip path of every op.
"""

import numpy as np
import pytest

from tests.nodes.indicators.support import INDICATOR_EXAMPLE_PARAMS, bars, indicator_names, run
from tests.support import assert_bit_identical


def _with_holes() -> dict:
    holed = {k: v.copy() for k, v in bars("AAPL").items()}
    for name in ("open", "high", "low", "close", "volume"):
        holed[name][5::37] = np.nan
    return holed


HOLED = _with_holes()


def test_every_indicator_has_example_params():
    missing = [name for name in indicator_names() if name not in INDICATOR_EXAMPLE_PARAMS]
    assert not missing, f"add example params to INDICATOR_EXAMPLE_PARAMS for: {missing}"
    stale = [name for name in INDICATOR_EXAMPLE_PARAMS if name not in indicator_names()]
    assert not stale, f"INDICATOR_EXAMPLE_PARAMS names ops that do not exist: {stale}"


@pytest.mark.parametrize("name", indicator_names())
def test_cpu_and_numba_are_bit_identical(name):
    for params in INDICATOR_EXAMPLE_PARAMS[name]:
        for label, data in (("AAPL", bars("AAPL")), ("AAPL with NaN holes", HOLED)):
            on_cpu = run(name, params, data, "cpu")
            on_numba = run(name, params, data, "numba")
            for port in on_cpu:
                assert_bit_identical(on_cpu[port], on_numba[port], f"{name} {params} over {label}: port {port!r}")
            assert any(np.unique(v[~np.isnan(v)]).size > 1 for v in on_cpu.values()), (
                f"{name} {params}: every output is constant over {label}; the feed does not exercise it"
            )
