"""``tickloom hw``: hardware commands.

    tickloom hw export SPEC --node ID [--out FILE] [--clock-mhz MHZ] [--set k=v]

Writes the Verilog of the node's FPGA implementation (its op and validated params from the spec) to FILE, or
to standard output. The node's own placement does not matter: any node whose op has RTL can be exported.
"""

import sys
from pathlib import Path

from nodes.errors import SpecError


def add_command(commands) -> None:
    """Add ``hw`` (with ``export``) to the ``tickloom`` subcommands."""
    hw = commands.add_parser("hw", help="hardware: export an FPGA node's RTL as Verilog")
    actions = hw.add_subparsers(dest="hw_command")
    export = actions.add_parser("export", help="write the Verilog of a node's FPGA implementation")
    export.add_argument("spec", type=Path)
    export.add_argument("--node", required=True, help="the node id in the spec")
    export.add_argument("--out", type=Path, help="output file (default: standard output)")
    export.add_argument("--clock-mhz", type=float, default=None,
                        help="device clock the pipeline is cut for (default 322.265625)")
    export.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                        help="override a spec param")
    export.set_defaults(handler=_export)
    hw.set_defaults(handler=lambda args: (hw.print_help(), 2)[1])


def _export(args) -> int:
    from hardware.fpga.export import export_verilog, module_name
    from hardware.fpga.timing import DEFAULT_CLOCK_HZ
    from pipelines.spec import load_spec

    spec = load_spec(args.spec, sets=args.sets)
    node = spec.nodes.get(args.node)
    if node is None:
        known = ", ".join(spec.nodes)
        raise SpecError.at(None, f"{args.spec}: no node {args.node!r}; nodes: {known}")
    clock_hz = args.clock_mhz * 1e6 if args.clock_mhz else DEFAULT_CLOCK_HZ
    text = export_verilog(node.op, node.params, clock_hz, name=module_name(node.op.name, node.id))
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out} ({node.op.name}, {len(text.splitlines())} lines)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
