"""The ``tickloom`` command line.

    tickloom demo                      backtest the shipped example on the shipped sample data
    tickloom run SPEC [--set k=v] [--place node=target] [--out DIR]
    tickloom validate SPEC... [--set k=v] [--explain]
    tickloom plan SPEC [--set k=v] [--place node=target] [--json] [--costs] [--profile YAML] [--budget 2us]
    tickloom ops [--json]
    tickloom schema
    tickloom ingest SPEC [--set k=v] [--catalog DIR]
    tickloom ingest --format FORMAT FILE... [--venue V] [--symbol S] [--option k=v] [--max-bad-rate R] [--catalog DIR]
    tickloom catalog ls [--catalog DIR]
    tickloom catalog query "SQL" [--rows N] [--catalog DIR]
    tickloom sweep SPEC --grid NAME=START:STOP:STEP|NAME=A,B,C... [--where EXPR] [--metric STAT] [--minimize]
                   [--workers N] [--heatmap X,Y] [--top N] [--set k=v] [--place node=target] [--out DIR]
    tickloom walkforward SPEC --grid ... --train BARS --test BARS [--step BARS] [--anchored] [--warmup BARS]
                   [--where EXPR] [--metric STAT] [--minimize] [--workers N] [--set k=v] [--out DIR]
    tickloom report RUN_DIR [--open]
    tickloom hw export SPEC --node ID [--out FILE] [--clock-mhz MHZ]
    tickloom feed-server CAPTURE [--host H] [--port N] [--speed X | --max-rate R] [--drop-after N [--drop-repeat]
                   [--drop-mode close|abort]] [--loop] [--snapshot-wait S]
    tickloom resume|halt|flatten SPEC --operator NAME --reason TEXT [--control FILE]
    tickloom live SPEC --stage paper [--speed N] [--session DIR] [--metrics-port N] [--max-events N]
    tickloom shadow SESSION_DIR
    tickloom baseline SPEC [--by NAME] [--reason TEXT] [--registry PATH]
    tickloom promote SPEC --to paper|live [--by NAME] [--reason TEXT] [--registry PATH]
    tickloom status [--registry PATH]
    tickloom rollback SPEC --stage paper|live [--registry PATH]
    tickloom stress SPEC [--scenarios FILE] [--scenario NAME]... [--monte-carlo N [--block-len L] [--seed S]]
                   [--set k=v] [--place node=target] [--out DIR]
    tickloom audit SPEC [--cuts N] [--at ISO-TIME]... [--set k=v] [--place node=target] [--json]
    tickloom ui [--port N] [--host H] [--specs DIR] [--catalog DIR] [--home DIR]

The catalog is --catalog DIR, else $TICKLOOM_CATALOG, else ./catalog.

``tickloom ui`` starts the Dagster UI and daemon (``dagster dev``) on the specs folder (default ./specs): every
spec is assets, ingest nodes are partitioned with their checks, schedules and sensors. Open
http://127.0.0.1:3000 (or --port). Dagster keeps its runs and event log in --home (default
$TICKLOOM_DAGSTER_HOME, else ./.tickloom/dagster), where ``dagster.yaml`` (telemetry off, one catalog writer at a
time) and ``workspace.yaml`` are written. Ctrl-C stops it.

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
    plan.add_argument("--profile", type=Path, metavar="YAML", help="hardware profile to cost the placement against")
    plan.add_argument("--budget", metavar="DURATION", help="tick-to-trade budget, e.g. 2us (overrides the spec's)")
    plan.add_argument("--costs", action="store_true",
                      help="show the modeled costs and tick-to-trade path even when no node is placed auto")
    plan.set_defaults(handler=_plan)

    ops = commands.add_parser("ops", help="list every op with its ports and parameters")
    ops.add_argument("--json", action="store_true")
    ops.set_defaults(handler=_ops)

    book = commands.add_parser("book", help="replay feed files through an order book and print its final state")
    book.add_argument("files", type=Path, nargs="+")
    book.add_argument("--format", help="ingest format of the files (guessed for .dbn/.dbn.zst), e.g. binance, dbn")
    book.add_argument("--depth", type=int, default=10, help="levels per side to list (default 10)")
    book.add_argument("--json", action="store_true", help="print the state as JSON")
    book.set_defaults(handler=_book)

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

    def search_options(p):
        p.add_argument("spec", type=Path)
        p.add_argument("--grid", action="append", default=[], required=True, metavar="NAME=VALUES",
                       help="a param and its values: start:stop:step (stop included when reached) or a,b,c; repeat per param")
        p.add_argument("--where", metavar="EXPR", help='keep only combinations where EXPR holds, e.g. "fast < slow"')
        p.add_argument("--metric", default="Sharpe Ratio", metavar="STAT", help="statistic to rank by (default: Sharpe Ratio)")
        p.add_argument("--minimize", action="store_true", help="lower metric is better (e.g. Volatility (Ann.) [%%])")
        p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per CPU; 1 runs in this process)")
        spec_options(p)
        p.add_argument("--out", type=Path, help="output folder (default: a new folder under runs/)")

    sweep = commands.add_parser(
        "sweep", help="run every combination of a param grid and write them all as a table with a heatmap",
        description="Each combination is a full run (as tickloom run --set ...). Writes sweep.parquet (every "
        "combination: every param and every numeric statistic), sweep.json and heatmap.png, and prints the best rows.",
    )
    search_options(sweep)
    sweep.add_argument("--heatmap", metavar="X,Y", help="the two swept params of the heatmap (default: the first two)")
    sweep.add_argument("--top", type=int, default=10, metavar="N", help="rows to print, best first (default 10)")
    sweep.set_defaults(handler=_sweep)

    walkforward = commands.add_parser(
        "walkforward", help="walk forward: per fold, choose params in sample and score them out of sample",
        description="Windows are counted in bars (distinct event times). Per fold the grid is swept on the training "
        "window, the best combination by --metric runs on the test window; out-of-sample results are chained and "
        "their statistics computed separately. Each run gets --warmup bars (default: --train) before its window.",
    )
    search_options(walkforward)
    walkforward.add_argument("--train", type=int, required=True, metavar="BARS", help="in-sample bars per fold")
    walkforward.add_argument("--test", type=int, required=True, metavar="BARS", help="out-of-sample bars per fold")
    walkforward.add_argument("--step", type=int, metavar="BARS", help="bars between fold starts (default and minimum: --test)")
    walkforward.add_argument("--anchored", action="store_true", help="every training window starts at the first bar")
    walkforward.add_argument("--warmup", type=int, metavar="BARS", help="bars fed before each window to warm indicators up (default: --train)")
    walkforward.set_defaults(handler=_walkforward)

    report = commands.add_parser("report", help="re-render a run's (or walk-forward's) report.html from its files, print its path")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--open", action="store_true", help="also open the report in a browser")
    report.set_defaults(handler=_report)

    ui = commands.add_parser(
        "ui", help="start the Dagster UI (dagster dev) with every spec as assets, schedules, sensors and checks",
        description="Start `dagster dev` on the specs folder: ingest specs as daily-partitioned assets with checks, "
        "schedules and sensors; strategy and research specs as assets with lineage from ingested data. Ctrl-C stops it.",
    )
    ui.add_argument("--port", type=int, default=3000, help="port of the web UI (default 3000)")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ui.add_argument("--specs", type=Path, default=Path("specs"), metavar="DIR", help="specs folder (default ./specs)")
    catalog_option(ui)
    ui.add_argument("--home", type=Path, metavar="DIR",
                    help="DAGSTER_HOME: runs and event log (default $TICKLOOM_DAGSTER_HOME, else ./.tickloom/dagster)")
    ui.set_defaults(handler=_ui)
    # commands that live in their own modules
    from runtime import cli_audit, cli_feed, cli_hw, cli_live, cli_promote, cli_risk, cli_stress

    for module in (cli_audit, cli_feed, cli_hw, cli_live, cli_promote, cli_risk, cli_stress):
        module.add_command(commands)
    return parser


def _demo(args) -> int:
    return _run(argparse.Namespace(spec=DEMO_SPEC, sets=[], places=[], out=args.out))


def _run(args) -> int:
    from nodes.backtest.result import format_by_instrument
    from nodes.backtest.stats import format_stats_table
    from pipelines.run import run_spec

    output = run_spec(args.spec, sets=args.sets, places=args.places, out_dir=args.out)
    for warning in output.spec.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{output.spec.name}  spec {output.spec.spec_hash[:12]}  {output.replay.events:,} events in {output.replay.seconds:.2f} s")
    if output.backtest is not None:
        print(format_stats_table(output.backtest.stats))
        if output.backtest.by_instrument.height > 1:
            print("\nby instrument:")
            print(format_by_instrument(output.backtest.by_instrument))
    for node_id, summary in output.replay.summaries.items():
        if hasattr(summary, "format"):  # a tick venue's result
            print(f"\n{node_id}:\n{summary.format()}")
    print(f"\nwrote {output.out_dir}/: " + ", ".join(f.name for f in output.files))
    return 0


def _sweep(args) -> int:
    import polars as pl

    from pipelines.sweep import make_executor, run_sweep, write_sweep

    heatmap = None
    if args.heatmap:
        heatmap = tuple(n.strip() for n in args.heatmap.split(","))
        swept = [item.partition("=")[0].strip() for item in args.grid]
        if len(heatmap) != 2 or not set(heatmap) <= set(swept):
            print(f"error: --heatmap {args.heatmap!r}: expected two swept params X,Y (swept: {', '.join(swept)})",
                  file=sys.stderr)
            return 2
    result = run_sweep(args.spec, args.grid, sets=args.sets, places=args.places, where=args.where,
                       metric=args.metric, minimize=args.minimize, executor=make_executor(args.workers))
    files = write_sweep(result, args.out, heatmap=heatmap)
    skipped = f", {result.skipped} skipped by --where {result.where!r}" if result.where else ""
    print(f"{result.spec_name}  spec {result.spec_hash[:12]}  {result.table.height} of {result.combinations} combinations run{skipped}")
    shown = [a.name for a in result.axes]
    shown += [c for c in (result.metric, "Return [%]", "Max. Drawdown [%]", "# Trades") if c not in shown]
    with pl.Config(tbl_rows=args.top, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(f"best {min(args.top, result.table.height)} by {result.metric} ({'lowest' if result.minimize else 'highest'} first):")
        print(result.ranked().select(shown).head(args.top))
    print(f"\nwrote {files[0].parent}/: " + ", ".join(f.name for f in files))
    return 0


def _walkforward(args) -> int:
    import polars as pl

    from nodes.backtest.stats import format_stats_table
    from pipelines.sweep import make_executor
    from pipelines.walkforward import run_walkforward, write_walkforward

    result = run_walkforward(args.spec, args.grid, train_bars=args.train, test_bars=args.test, step_bars=args.step,
                             anchored=args.anchored, warmup_bars=args.warmup, sets=args.sets, places=args.places,
                             where=args.where, metric=args.metric, minimize=args.minimize,
                             executor=make_executor(args.workers))
    files = write_walkforward(result, args.out)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    settings = result.settings
    print(f"{result.spec_name}  spec {result.spec_hash[:12]}  {result.folds.height} folds over {settings['bars']} bars "
          f"({settings['bars_left_out']} left out after the last test window), {settings['combinations']} combinations per fold")
    metric = result.metric
    day = pl.col("test_start_ns").cast(pl.Datetime("ns", "UTC")).dt.date()
    shown = result.folds.select(
        "fold", day.alias("test from"), pl.col("test_end_ns").cast(pl.Datetime("ns", "UTC")).dt.date().alias("test to"),
        *[a.name for a in result.axes], f"IS {metric}", f"OOS {metric}", "OOS Return [%]", "OOS # Trades",
    )
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        print(shown)
    print("\nout-of-sample statistics (test windows chained):")
    print(format_stats_table(result.oos_stats))
    print(f"\nwrote {files[0].parent}/: " + ", ".join(f.name for f in files))
    return 0


def _report(args) -> int:
    from nodes.backtest.html_report import write_run_report
    from pipelines.walkforward import write_walkforward_report

    if (args.run_dir / "walkforward.json").is_file():
        report = write_walkforward_report(args.run_dir)
    else:
        report = write_run_report(args.run_dir)[0]
    print(report)
    if args.open:
        import webbrowser

        webbrowser.open(report.resolve().as_uri())
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
    from pipelines.placement import describe_placement, placement_json
    from pipelines.plan import compile_plan
    from pipelines.spec import load_spec

    spec = load_spec(args.spec, sets=args.sets, places=args.places)
    report = None
    if args.costs or args.profile or args.budget or spec.model.placement is not None or any(
        n.place == "auto" for n in spec.nodes.values()
    ):
        from hardware.profile import parse_duration_ns
        from pipelines.hardware_profile import load_profile
        from pipelines.placement import place_spec

        profile = load_profile(args.profile) if args.profile else None
        budget_ns = parse_duration_ns(args.budget) if args.budget else None
        spec, report = place_spec(spec, profile, budget_ns=budget_ns)
    plan = compile_plan(spec)
    plan.placement = report
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
            **({"placement": placement_json(report)} if report is not None else {}),
        }, indent=2))
    else:
        print(plan.describe())
        if report is not None:
            print()
            print(describe_placement(report))
    if report is not None and not (report.placement.feasible and report.placement.budget_met):
        return 2
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


def _book(args) -> int:
    from pipelines.book import book_state

    state = book_state(args.files, format=args.format, depth=args.depth)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    scale = state["price_scale"]
    for symbol, book in state["books"].items():
        print(f"{symbol or '(no symbol)'}: {book['events']:,} events, {book['levels_bid']} bid / {book['levels_ask']} ask "
              f"levels, last ts_recv {book['last_ts_recv']}, last sequence {book['last_sequence']}"
              + (", CROSSED" if book["crossed"] else ""))
        for bid, ask in zip(book["bids"] + [None] * len(book["asks"]), book["asks"] + [None] * len(book["bids"])):
            if bid is None and ask is None:
                break
            left = f"{bid['size'] / state['size_scale']:>14,.4f} @ {bid['price'] / scale:<14,.4f}" if bid else " " * 31
            right = f"{ask['price'] / scale:>14,.4f} x {ask['size'] / state['size_scale']:<14,.4f}" if ask else ""
            print(f"  {left} | {right}")
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


DAGSTER_YAML = """\
# Written by `tickloom ui` when missing; edit freely.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1  # the catalog has one writer: steps in the tickloom_catalog pool wait for each other
"""


def _ui(args) -> int:
    import os
    import shutil
    import signal

    from nodes.catalog.layout import resolve_root

    specs = args.specs.resolve()
    if not specs.is_dir():
        print(f"error: no specs folder at {specs} (give --specs DIR)", file=sys.stderr)
        return 2
    catalog = resolve_root(args.catalog).resolve()
    home = (args.home or Path(os.environ.get("TICKLOOM_DAGSTER_HOME") or ".tickloom/dagster")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(DAGSTER_YAML)
    workspace = home / "workspace.yaml"
    workspace.write_text(
        "# Written by `tickloom ui` at every start.\nload_from:\n  - python_module:\n"
        f"      module_name: pipelines.dagster.location\n      working_directory: {json.dumps(str(PROJECT_ROOT))}\n"
        "      location_name: tickloom\n"
    )
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    command = [dagster] if dagster else [sys.executable, "-m", "dagster"]
    command += ["dev", "-w", str(workspace), "-p", str(args.port), "-h", args.host]
    env = {**os.environ, "DAGSTER_HOME": str(home), "TICKLOOM_SPECS": str(specs), "TICKLOOM_CATALOG": str(catalog)}
    print(f"tickloom ui: specs {specs}, catalog {catalog}, DAGSTER_HOME {home}\n"
          f"  http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    # A shell without job control starts background commands with SIGINT ignored, and an ignored signal stays
    # ignored across exec: dagster and its children would then outlive Ctrl-C. Restore the defaults first.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    os.execve(command[0], command, env)
    return 0  # not reached: the process is dagster now


if __name__ == "__main__":
    sys.exit(main())
