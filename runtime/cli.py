"""The ``tickloom`` command line.

    tickloom demo                      backtest the shipped example on the shipped sample data
    tickloom run SPEC [--set k=v] [--place node=target] [--out DIR]
    tickloom validate SPEC... [--set k=v] [--explain]
    tickloom plan SPEC [--set k=v] [--place node=target] [--json]
    tickloom ops [--json]
    tickloom schema

Exit status: 0 on success, 1 when a spec or data is wrong (the error says where), 2 on bad usage.
"""

import argparse
import json
import sys
from pathlib import Path

from nodes.errors import TickloomError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = PROJECT_ROOT / "specs" / "strategies" / "sma_cross.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except TickloomError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickloom", description="Trading systems from YAML: one graph for research, backtest and live.")
    commands = parser.add_subparsers(dest="command")

    def spec_options(p, place=True):
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE", help="override a spec param")
        if place:
            p.add_argument("--place", dest="places", action="append", default=[], metavar="NODE=TARGET", help="place a node on cpu, numba or fpga")

    demo = commands.add_parser("demo", help="backtest the shipped SMA crossover on the shipped sample data")
    demo.add_argument("--out", type=Path, help="output folder (default: a new folder under runs/)")
    demo.set_defaults(handler=_demo)

    run = commands.add_parser("run", help="backtest a spec and write stats, trades, equity and a report")
    run.add_argument("spec", type=Path)
    spec_options(run)
    run.add_argument("--out", type=Path, help="output folder (default: a new folder under runs/)")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="check specs without running them")
    validate.add_argument("specs", type=Path, nargs="+")
    spec_options(validate)
    validate.add_argument("--explain", action="store_true", help="show each final value and which file or option set it")
    validate.set_defaults(handler=_validate)

    plan = commands.add_parser("plan", help="print the compiled plan: order, placement, segments, transfers")
    plan.add_argument("spec", type=Path)
    spec_options(plan)
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(handler=_plan)

    ops = commands.add_parser("ops", help="list every op with its ports and parameters")
    ops.add_argument("--json", action="store_true")
    ops.set_defaults(handler=_ops)

    schema = commands.add_parser("schema", help="print the JSON Schema of the spec format")
    schema.set_defaults(handler=_schema)
    return parser


def _demo(args) -> int:
    return _run(argparse.Namespace(spec=DEMO_SPEC, sets=[], places=[], out=args.out))


def _run(args) -> int:
    from nodes.backtest.stats import format_stats_table
    from pipelines.run import run_spec

    output = run_spec(args.spec, sets=args.sets, places=args.places, out_dir=args.out)
    for warning in output.spec.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{output.spec.name}  spec {output.spec.spec_hash[:12]}  {output.replay.events:,} events in {output.replay.seconds:.2f} s")
    if output.backtest is not None:
        print(format_stats_table(output.backtest.stats))
    print(f"\nwrote {output.out_dir}/: " + ", ".join(f.name for f in output.files))
    return 0


def _validate(args) -> int:
    from pipelines.spec import load_spec

    failed = 0
    for path in args.specs:
        try:
            spec = load_spec(path, sets=args.sets, places=args.places)
        except TickloomError as error:
            failed += 1
            print(f"{path}: invalid\n{error}", file=sys.stderr)
            continue
        print(f"{path}: valid  (spec {spec.spec_hash[:12]}, {len(spec.nodes)} nodes)")
        for warning in spec.warnings:
            print(f"  warning: {warning}")
        if args.explain:
            print(_explain(spec))
    return 1 if failed else 0


def _explain(spec) -> str:
    """Every final value of the resolved spec with the place that set it (base < overlay < command line)."""
    resolved = spec.resolved()
    lines = ["  precedence: base spec < overlays (extends) < command line (--set, --place)"]

    def walk(value, path, shown):
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(child, path + (key,), shown + (key,))
            return
        origin = spec.origin(*path)
        if origin is None and path[-1] == "place":
            op_kind = spec.nodes[path[1]].op.kind
            origin = spec.origin("defaults", "place") if op_kind == "stream" else f"{op_kind} ops run on cpu"
        if path in spec.references:
            used = ", ".join(f"{name} from {spec.origin('params', name) or 'default'}" for name in spec.references[path])
            origin = f"{origin} via ${{}}: {used}"
        lines.append(f"  {'.'.join(map(str, shown)):<40} = {json.dumps(value, default=str):<24} {origin or 'default'}")
        return

    walk(resolved["params"], ("params",), ("params",))
    for node_id, node in resolved["nodes"].items():
        for key in ("op", "in", "place"):
            walk(node[key], ("nodes", node_id, key), ("nodes", node_id, key))
        walk(node["with"], ("nodes", node_id, "with"), ("nodes", node_id, "with"))
    return "\n".join(lines)


def _plan(args) -> int:
    from pipelines.codegen import generate_segment
    from pipelines.plan import compile_plan
    from pipelines.spec import load_spec

    plan = compile_plan(load_spec(args.spec, sets=args.sets, places=args.places))
    if args.json:
        print(json.dumps({
            "spec": plan.spec.name,
            "spec_hash": plan.spec.spec_hash,
            "order": [
                {"node": n, "op": plan.graph.nodes[n].op.name, "place": plan.graph.nodes[n].definition.place,
                 "segment": plan.segment_of(n).index if plan.segment_of(n) else None,
                 "inputs": [str(a) for a in plan.graph.nodes[n].args]}
                for n in plan.graph.order
            ],
            "segments": [{"index": s.index, "target": s.target, "nodes": s.nodes, "reads": [f"{n}.{p}" for n, p in s.reads]} for s in plan.segments],
            "interleaved": plan.interleaved_because,
            "recorded": plan.recorded,
            "kernels": {f"segment_{s.index}": generate_segment(plan, s).source for s in plan.segments},
        }, indent=2))
    else:
        print(plan.describe())
    return 0


def _ops(args) -> int:
    from nodes.contract import default_registry

    described = [op.describe() for op in default_registry()]
    if args.json:
        print(json.dumps(described, indent=2, default=str))
        return 0
    for op in described:
        print(f"{op['name']}  [{op['kind']}; {', '.join(op['targets'])}]  {op['summary']}")
        if op["inputs"]:
            print("    in:   " + ", ".join(f"{k}: {v}" for k, v in op["inputs"].items()))
        if op["outputs"]:
            print("    out:  " + ", ".join(f"{k}: {v}" for k, v in op["outputs"].items()))
        for name, p in op["params"].items():
            default = "required" if p["required"] else f"default {json.dumps(p['default'], default=str)}"
            print(f"    with: {name} ({p['type']}, {default})  {p['description']}")
    return 0


def _schema(args) -> int:
    from pipelines.spec.model import spec_json_schema

    print(json.dumps(spec_json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
