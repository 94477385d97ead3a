"""The ``tickloom`` command line.

    tickloom demo                      backtest the shipped example on the shipped sample data
    tickloom run SPEC [--set k=v] [--place node=target] [--out DIR]
    tickloom validate SPEC... [--set k=v] [--explain]
    tickloom plan SPEC [--set k=v] [--place node=target] [--json]
    tickloom ops [--json]
    tickloom schema
    tickloom ingest SPEC [--set k=v] [--catalog DIR]
    tickloom ingest --format FORMAT FILE... [--venue V] [--symbol S] [--option k=v] [--max-bad-rate R] [--catalog DIR]
    tickloom catalog ls [--catalog DIR]
    tickloom catalog query "SQL" [--rows N] [--catalog DIR]

The catalog is --catalog DIR, else $TICKLOOM_CATALOG, else ./catalog.

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

    def catalog_option(p):
        p.add_argument("--catalog", type=Path, metavar="DIR", help="catalog folder (default: $TICKLOOM_CATALOG or ./catalog)")

    ingest = commands.add_parser(
        "ingest", help="write market data into the catalog: run an ingest spec, or decode files with --format",
        description="tickloom ingest SPEC runs an ingest spec (kind: ingest); tickloom ingest --format FORMAT FILE... "
        "decodes files without a spec. Re-ingesting a day replaces it. Every run is recorded in <catalog>/catalog.duckdb.",
    )
    ingest.add_argument("inputs", nargs="+", metavar="SPEC|FILE", help="an ingest spec, or with --format the files to decode")
    ingest.add_argument("--format", help="decode FILEs with this format (e.g. bars_csv) instead of running a spec")
    ingest.add_argument("--venue", help="venue of the files (formats whose files do not say it)")
    ingest.add_argument("--symbol", help="symbol of the files (default for bars_csv: the file name)")
    ingest.add_argument("--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="a format option, value parsed as YAML (e.g. timezone=America/New_York)")
    ingest.add_argument("--max-bad-rate", type=float, default=0.0, metavar="R",
                        help="fail when a file's bad records / records is above R (default 0)")
    spec_options(ingest, place=False)
    catalog_option(ingest)
    ingest.set_defaults(handler=_ingest)

    catalog = commands.add_parser("catalog", help="look at the catalog: ls, query")
    catalog_commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="{ls,query}")
    ls = catalog_commands.add_parser("ls", help="one line per schema, venue and symbol: dates, rows, bytes")
    catalog_option(ls)
    ls.set_defaults(handler=_catalog_ls)
    query = catalog_commands.add_parser("query", help="run DuckDB SQL over the catalog's views and metadata tables")
    query.add_argument("sql", help="e.g. \"select symbol, count(*) from bars group by symbol\"")
    query.add_argument("--rows", type=int, default=50, metavar="N", help="rows to print (default 50)")
    catalog_option(query)
    query.set_defaults(handler=_catalog_query)
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


def _ingest(args) -> int:
    import yaml

    from nodes.errors import SpecError
    from pipelines.ingest import ingest_files, ingest_spec

    quick_only = [f"--{name}" for name in ("venue", "symbol") if getattr(args, name) is not None]
    quick_only += ["--option"] * bool(args.options) + ["--max-bad-rate"] * (args.max_bad_rate != 0.0)
    try:
        if args.format is None:
            if len(args.inputs) != 1 or quick_only:
                extra = f"{', '.join(quick_only)} need" if quick_only else f"{len(args.inputs)} inputs need"
                print(f"error: {extra} --format; without it, give one ingest spec", file=sys.stderr)
                return 2
            result = ingest_spec(args.inputs[0], catalog=args.catalog, sets=args.sets)
        else:
            if args.sets:
                print("error: --set applies to an ingest spec, not to --format files", file=sys.stderr)
                return 2
            options = {}
            for item in args.options:
                key, sep, value = item.partition("=")
                if not sep or not key.strip():
                    raise SpecError.at(None, f"--option {item!r}: expected KEY=VALUE")
                options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
            result = ingest_files(args.catalog, args.format, args.inputs, venue=args.venue, symbol=args.symbol,
                                  options=options, max_bad_record_rate=args.max_bad_rate)
    except TickloomError as error:
        for note in getattr(error, "__notes__", []):
            print(note, file=sys.stderr)
        raise
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    spec = result.spec_name + (f"  spec {result.spec_hash[:12]}" if result.spec_hash else "")
    rows = ", ".join(f"{n:,} {schema}" for schema, n in sorted(result.rows.items())) or "no rows"
    outcomes = ", ".join(f"{n:,} {what}" for what, n in sorted(result.outcomes().items())) or "none"
    print(f"ingest run {result.run_id} succeeded  ({spec})")
    print(f"  {len(result.inputs)} input(s) → {rows}; partitions: {outcomes}; {result.seconds:.2f} s")
    print(f"  catalog {result.catalog.resolve()}")
    return 0


def _open_catalog(root):
    from nodes.catalog import Catalog, CatalogError

    catalog = Catalog(root)
    if not catalog.root.is_dir():
        raise CatalogError(f"no catalog at {catalog.root} (give --catalog DIR or set TICKLOOM_CATALOG)")
    return catalog


def _catalog_ls(args) -> int:
    import polars as pl

    catalog = _open_catalog(args.catalog)
    listing = catalog.ls()
    if listing.is_empty():
        print(f"catalog {catalog.root} has no partitions yet")
        return 0
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, fmt_str_lengths=60):
        print(listing)
    print(f"{listing.height} series, {listing['rows'].sum():,} rows in {listing['dates'].sum():,} partitions under {catalog.root}")
    return 0


def _catalog_query(args) -> int:
    import polars as pl

    frame = _open_catalog(args.catalog).query(args.sql)
    with pl.Config(tbl_rows=args.rows, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=80):
        print(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
