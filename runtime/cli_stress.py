"""``tickloom stress``: run a spec as it is and under stress scenarios, and write a report comparing them.

    tickloom stress SPEC [--scenarios FILE] [--scenario NAME]... [--monte-carlo N [--block-len L] [--seed S]]
                    [--set k=v] [--place node=target] [--out DIR]

``--scenario`` is repeatable; ``a+b`` composes two scenarios; none runs every scenario of the file
(default ``specs/stress/default.yaml``). See ``pipelines/stress.py`` for the scenario format and the files
written, ``pipelines/montecarlo.py`` for the Monte Carlo.
"""

import argparse
import math
import sys
from pathlib import Path

# what the terminal shows of a bar venue's statistics, else of a tick venue's
SHOWN = ("Equity Final [$]", "Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "# Trades")
TICK_SHOWN = ("final_equity", "pnl", "fees", "max_drawdown", "fills", "rejected")


def add_command(commands) -> None:
    """Add ``stress`` to the ``tickloom`` subcommands."""
    from pipelines.stress import DEFAULT_SCENARIOS

    stress = commands.add_parser(
        "stress", help="run a spec under stress scenarios (shocks, outages, costs) and compare with the base run",
        description="Each scenario is a full run of the spec with its market stream transformed (price shocks, "
        "wider spreads, thinner books, feed delays and outages, volatility regimes) or its nodes' params changed. "
        "Writes a run folder per run, stress.parquet, stress.json, equity.png and report.html; --monte-carlo "
        "adds bootstrap distributions of final equity, max drawdown and time to recovery.",
    )
    stress.add_argument("spec", type=Path)
    stress.add_argument("--scenarios", type=Path, default=DEFAULT_SCENARIOS, metavar="FILE",
                        help="scenario file (default: specs/stress/default.yaml)")
    stress.add_argument("--scenario", dest="names", action="append", default=[], metavar="NAME",
                        help="a scenario to run (repeatable; a+b composes a and b; default: all of the file)")
    stress.add_argument("--monte-carlo", type=int, default=0, metavar="N",
                        help="also resample the base run's trades and returns into N paths each")
    stress.add_argument("--block-len", type=int, metavar="L",
                        help="periods per block of the returns bootstrap (default: cube root of the periods)")
    stress.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo (default 0)")
    stress.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                        help="override a spec param (every run)")
    stress.add_argument("--place", dest="places", action="append", default=[], metavar="NODE=TARGET",
                        help="place a node on cpu, numba or fpga")
    stress.add_argument("--out", type=Path, help="output folder (default: a new folder under runs/)")
    stress.set_defaults(handler=_stress)


def _stress(args: argparse.Namespace) -> int:
    from pipelines.stress import run_stress

    if args.monte_carlo < 0 or (args.block_len is not None and args.block_len < 1):
        print("error: --monte-carlo must be >= 0 and --block-len >= 1", file=sys.stderr)
        return 2
    result = run_stress(args.spec, args.scenarios, args.names, args.sets, args.places, out_dir=args.out,
                        monte_carlo=args.monte_carlo, block_len=args.block_len, seed=args.seed)
    print(f"{result.spec_name}  spec {result.spec_hash[:12]}  base run and {len(result.runs)} scenario(s) "
          f"from {result.scenario_file}")
    print(_table(result.table))
    for mc in result.monte_carlo:
        print(f"\nMonte Carlo ({mc.method}: {mc.n_paths:,} paths of {mc.steps} {mc.step_unit}, seed {mc.seed}):")
        print(_quantiles(mc.quantiles()))
    print(f"\nwrote {result.out_dir}/: " + ", ".join(f.name for f in result.files))
    return 0


def _table(table) -> str:
    shown = [c for c in SHOWN if c in table.columns] or [c for c in TICK_SHOWN if c in table.columns]
    header = ["run", *shown]
    rows = []
    for row in table.iter_rows(named=True):
        cells = [row["scenario"]]
        for stat in shown:
            delta = row[f"Δ {stat}"]
            text = f"{delta:+,.0f}" if isinstance(row[stat], int) else f"{delta:+,.2f}"
            change = f" ({text})" if row["scenario"] != "base" and _finite(delta) and round(delta, 2) else ""
            cells.append(f"{_number(row[stat])}{change}")
        rows.append(cells)
    return _aligned(header, rows)


def _quantiles(table) -> str:
    header = table.columns
    rows = [[f"{v:g}" if i == 0 else ("never" if math.isinf(v) else _number(v)) for i, v in enumerate(row)]
            for row in table.iter_rows()]
    return _aligned(header, rows)


def _aligned(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)
