"""``tickloom promote``, ``baseline``, ``status`` and ``rollback``: the promotion registry from the command line.

    tickloom baseline SPEC [--by NAME] [--reason TEXT] [--registry PATH]
    tickloom promote SPEC --to paper|live [--by NAME] [--reason TEXT] [--registry PATH] [--json]
    tickloom status [--registry PATH] [--json]
    tickloom rollback SPEC --stage paper|live [--by NAME] [--reason TEXT] [--registry PATH]

The registry is --registry PATH, else $TICKLOOM_REGISTRY, else ./.tickloom/registry.duckdb. Gates, stages and
tables: ``runtime/promotion.py`` and docs/operations.md.

Exit status: 0 on success; 1 when a gate refused the promotion (the refusal is recorded), nothing can be
rolled back, or a spec or the registry is wrong; 2 on bad usage.
"""

import json
import sys
from pathlib import Path

from runtime.promotion import PROMOTED_STAGES


def add_command(commands) -> None:
    """Add ``baseline``, ``promote``, ``status`` and ``rollback`` to ``commands`` (the ``tickloom`` subparsers)."""

    def registry_option(p):
        p.add_argument("--registry", type=Path, metavar="PATH",
                       help="registry file (default: $TICKLOOM_REGISTRY or ./.tickloom/registry.duckdb)")

    def who_options(p):
        p.add_argument("--by", metavar="NAME", help="who does it (default: $USER)")
        p.add_argument("--reason", default="", metavar="TEXT", help="why, kept with the record")

    promote = commands.add_parser(
        "promote", help="run the gates and promote a spec's hash to paper or live (research → paper → live)",
        description="Runs every gate (stage, validate, regression, parity, risk, latency) and records the outcome "
        "with who, when and why; the stage's hash changes only when all pass. Exit status 0 promoted, 1 refused.",
    )
    promote.add_argument("spec", type=Path)
    promote.add_argument("--to", required=True, choices=PROMOTED_STAGES, help="the stage to promote to")
    who_options(promote)
    registry_option(promote)
    promote.add_argument("--json", action="store_true", help="print the record as JSON")
    promote.set_defaults(handler=run_promote)

    baseline = commands.add_parser(
        "baseline", help="backtest a spec on its regression window and record the result as its baseline",
        description="Reads the regression window and tolerances from <spec stem>.promotion.yaml next to the spec.",
    )
    baseline.add_argument("spec", type=Path)
    who_options(baseline)
    registry_option(baseline)
    baseline.set_defaults(handler=run_baseline)

    status = commands.add_parser("status", help="show which hash is promoted to each stage and which sessions run")
    registry_option(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)

    rollback = commands.add_parser(
        "rollback", help="return a stage to the hash promoted before the current one (recorded as a new row)")
    rollback.add_argument("spec", help="the spec's name, or its file")
    rollback.add_argument("--stage", required=True, choices=PROMOTED_STAGES)
    who_options(rollback)
    registry_option(rollback)
    rollback.set_defaults(handler=run_rollback)


def run_promote(args) -> int:
    """Promote and print every gate; 0 when promoted, 1 when refused."""
    from runtime.promotion import promote

    result = promote(args.spec, args.to, by=args.by, reason=args.reason, registry=args.registry)
    print(json.dumps(result.as_dict(), indent=2, default=str) if args.json else result.format())
    return result.exit_code


def run_baseline(args) -> int:
    from runtime.promotion import record_baseline

    recorded = record_baseline(args.spec, by=args.by, reason=args.reason, registry=args.registry)
    print(f"baseline {recorded['id']} of {recorded['spec']} ({recorded['spec_hash'][:12]}) on "
          f"{_window_text(recorded['window'])}:")
    for stat, tolerance in recorded["tolerances"].items():
        print(f"  {stat:<28} {recorded['stats'][stat]!r:<24} ± {tolerance['abs']:g} + {tolerance['rel']:g} × |value|")
    return 0


def _window_text(window: dict) -> str:
    from pipelines.time_window import TimeWindow

    return repr(TimeWindow(**window))


def run_status(args) -> int:
    from runtime.promotion import status

    current = status(args.registry)
    print(json.dumps(current.as_dict(), indent=2, default=str) if args.json else current.format())
    return 0


def run_rollback(args) -> int:
    from runtime.promotion import rollback

    name = args.spec
    if Path(name).is_file():
        from pipelines.spec import load_spec

        name = load_spec(name).name
    row = rollback(name, args.stage, by=args.by, reason=args.reason, registry=args.registry)
    print(f"rolled back {row['spec']} on {row['stage']}: {row['previous_hash'][:12]} → {row['spec_hash'][:12]} "
          f"(record {row['id']}, by {row['who']}: {row['why']})")
    sys.stdout.flush()
    return 0
