"""``tickloom audit``: re-run a spec on histories cut at several times and report any node that looked ahead.

    tickloom audit SPEC [--cuts N] [--at ISO-TIME ...] [--set k=v] [--place node=target] [--json]

Exit status: 0 when the audit is clean, 1 when a node's outputs before a cut change once the history after it
is removed (the report names the cause, its op and module, and the first differing event), or when the spec
or its data is wrong.
"""

import json
import sys
from pathlib import Path


def add_command(commands) -> None:
    """Add the ``audit`` command to ``commands`` (the subparsers of the ``tickloom`` parser)."""
    audit = commands.add_parser(
        "audit", help="look-ahead audit: re-run on histories cut at times T and diff every output before T",
        description="Replays the spec on the whole history, then once per cut time T on the history as it was at T "
        "(source files cut at T, no event at or after T), and compares every source and stream node's outputs on "
        "events before T, bit for bit. A node that changes by itself looked ahead: it is reported as the cause, "
        "with the nodes downstream it changed. Exit status 0 when clean, 1 when biased.",
    )
    audit.add_argument("spec", type=Path)
    audit.add_argument("--cuts", type=int, default=5, metavar="N",
                       help="cut times spread evenly over the history, ends excluded (default 5)")
    audit.add_argument("--at", dest="at", action="append", default=[], metavar="ISO-TIME",
                       help="cut at this time instead (e.g. 2013-06-28 or 2013-06-28T20:00:00Z); repeat for more")
    audit.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                       help="override a spec param")
    audit.add_argument("--place", dest="places", action="append", default=[], metavar="NODE=TARGET",
                       help="place a node on cpu, numba or fpga")
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.set_defaults(handler=run_audit)


def run_audit(args) -> int:
    """Run the audit the parsed ``args`` ask for, print its report and return the exit status (0 clean, 1 biased)."""
    from pipelines.audit import audit_spec

    report = audit_spec(args.spec, sets=args.sets, places=args.places, cuts=args.cuts, cut_times=args.at or None)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(report.format())
    sys.stdout.flush()
    return report.exit_code
