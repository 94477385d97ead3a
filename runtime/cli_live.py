"""``tickloom live`` and ``tickloom shadow``: run a promoted spec on live feeds; check a session against a backtest.

    tickloom live SPEC --stage paper [--speed N] [--session DIR] [--metrics-port N] [--max-events N]
                  [--fsync always|batch|never] [--registry PATH] [--set k=v] [--place node=target]
                  [--busy-poll] [--resume | --standby]
    tickloom shadow SESSION_DIR

See ``runtime/live.py``. Exit status: 0; 1 when the spec is not promoted to the stage, is invalid, or the shadow
check finds different decisions.
"""

import math
import sys
from pathlib import Path


def add_command(commands) -> None:
    """Add ``live`` and ``shadow`` to the ``tickloom`` subcommands."""
    live = commands.add_parser("live", help="run a promoted spec on live feeds with the paper venue",
                               description="Runs the spec's compiled graph on its live sources (file sources are "
                               "paced to real time), journals every order, fill and risk event, records its inputs "
                               "for the shadow check and serves Prometheus metrics. Refuses a spec not promoted to "
                               "the stage.")
    live.add_argument("spec", type=Path)
    live.add_argument("--stage", choices=("paper", "live"), default="paper")
    live.add_argument("--speed", type=float, default=1.0, help="pace of file sources: 1 real time, N times faster, "
                      "inf as fast as possible (default 1)")
    live.add_argument("--session", type=Path, metavar="DIR", help="session folder (default runs/live/<spec>-<time>)")
    live.add_argument("--metrics-port", type=int, metavar="N", help="serve Prometheus metrics on 127.0.0.1:N (0: any)")
    live.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    live.add_argument("--fsync", choices=("always", "batch", "never"), default="batch", help="journal fsync policy")
    live.add_argument("--registry", metavar="PATH", help="promotion registry (default $TICKLOOM_REGISTRY or "
                      ".tickloom/registry.duckdb)")
    live.add_argument("--busy-poll", action="store_true", help="wait for feeds spinning instead of sleeping "
                      "(lower latency, a busy core)")
    live.add_argument("--resume", action="store_true", help="continue the session in --session after a crash or "
                      "kill -9: rebuild its state from its recorded inputs, check the journal, reconcile, go on")
    live.add_argument("--standby", action="store_true", help="wait while another process runs the session in "
                      "--session; resume it when that process dies (not when it ended cleanly)")
    live.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE")
    live.add_argument("--place", dest="places", action="append", default=[], metavar="NODE=TARGET")
    live.set_defaults(handler=_live)
    shadow = commands.add_parser("shadow", help="replay a live session's recorded inputs as a backtest and compare "
                                 "its decisions")
    shadow.add_argument("session", type=Path)
    shadow.set_defaults(handler=_shadow)


def _live(args) -> int:
    from runtime.live import LiveOptions, run_live

    options = LiveOptions(stage=args.stage, speed=args.speed if math.isfinite(args.speed) else math.inf,
                          session_dir=args.session, metrics_port=args.metrics_port, max_events=args.max_events,
                          fsync=args.fsync, registry=args.registry, busy_poll=args.busy_poll,
                          resume=args.resume, standby=args.standby)
    if (args.resume or args.standby) and args.session is None:
        print("error: --resume and --standby need the --session folder", file=sys.stderr)
        return 2
    session = run_live(args.spec, options, sets=args.sets, places=args.places)
    print(session.format())
    sys.stdout.flush()
    return 0


def _shadow(args) -> int:
    from runtime.session import shadow_check

    report = shadow_check(args.session)
    print(report.format())
    return 0 if report.ok else 1
