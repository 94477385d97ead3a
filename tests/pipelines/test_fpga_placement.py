"""Nodes placed on `fpga` run their golden models in the same plan: outputs within each op's declared error
bound of the float placement on real bars, the same decisions, and a clear refusal for ops without one."""

import numpy as np
import pytest

from hardware.fpga.registry import fpga_impl
from nodes.errors import SpecError
from pipelines.run import run_spec
from pipelines.spec import load_spec
from tests.support import SMA_CROSS, sma_cross_copy


def test_sma_on_fpga_is_within_its_error_bound_and_trades_the_same(tmp_path):
    path = sma_cross_copy(tmp_path)
    numba = run_spec(path, places=["fast=numba", "slow=numba"], record=["fast", "slow", "cross"], write=False)
    fpga = run_spec(path, places=["fast=fpga", "slow=fpga"], record=["fast", "slow", "cross"], write=False)
    spec = load_spec(path)
    for node in ("fast", "slow"):
        a = numba.replay.recorded[node]["out"].to_numpy()
        b = fpga.replay.recorded[node]["out"].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{node}: warm-up differs"
        bound = fpga_impl("indicator.sma").error_bound(spec.nodes[node].params)
        scale = max(1.0, float(np.nanmax(np.abs(a))))  # the largest input is about the largest average
        error = np.nanmax(np.abs(a - b))
        assert error <= bound * scale, f"{node}: |fpga - float| = {error} > {bound} x {scale}"
        assert error > 0 or bound == 0, "the golden model is fixed point: some rounding is expected"
    assert numba.backtest.trades.height == fpga.backtest.trades.height
    a, b = numba.replay.recorded["cross"]["side"].to_numpy(), fpga.replay.recorded["cross"]["side"].to_numpy()
    assert np.array_equal(a, b, equal_nan=True)


def test_an_op_without_an_fpga_implementation_is_refused_at_its_place(tmp_path):
    with pytest.raises(SpecError) as error:
        load_spec(SMA_CROSS, places=["target=fpga"])
    text = str(error.value)
    assert "--place target=fpga" in text and "fpga" in text
    assert "sizing.fraction_of_equity" in text
