"""``tickloom resume | halt | flatten``: an operator's command to a spec's circuit breaker.

    tickloom resume SPEC --operator NAME --reason TEXT [--control FILE] [--set k=v]
    tickloom halt SPEC --operator NAME --reason TEXT
    tickloom flatten SPEC --operator NAME --reason TEXT

The command is appended durably (written and fsynced) to the spec's control file — the ``path`` of its
``source.control`` node, relative to the spec's folder, or ``--control FILE`` — as one JSON line with the time,
operator and reason. The circuit breaker reads it as an event (a live session tails the file) and logs the
state change with them; ``resume`` is the only way from HALTED back to RUNNING.
"""

from pathlib import Path

COMMANDS = {
    "resume": "bring a HALTED system back to RUNNING (logged with operator and reason)",
    "halt": "halt trading now: working orders cancelled, only risk-reducing orders pass",
    "flatten": "halt and work the position down to 0",
}


def add_command(commands) -> None:
    """Add ``resume``, ``halt`` and ``flatten`` to the ``tickloom`` subcommands."""
    for name, help_text in COMMANDS.items():
        command = commands.add_parser(name, help=help_text)
        command.add_argument("spec", type=Path)
        command.add_argument("--operator", required=True, help="who decides (logged)")
        command.add_argument("--reason", required=True, help="why (logged)")
        command.add_argument("--control", type=Path, metavar="FILE",
                             help="the control file (default: the spec's source.control path)")
        command.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                             help="override a spec param (e.g. control_path=...)")
        command.set_defaults(handler=_send, risk_command=name)


def _send(args) -> int:
    from nodes.risk.control import append_command

    path = args.control or control_path(args.spec, args.sets)
    line = append_command(path, args.risk_command, operator=args.operator, reason=args.reason)
    print(f"{args.risk_command} by {args.operator} at ts {line['ts']} appended to {path}")
    return 0


def control_path(spec_path: Path, sets: list[str]) -> Path:
    """The control file of the spec's one ``source.control`` node, resolved against the spec's folder.

    Raises:
        SpecError: the spec has no control source, or several.
    """
    from nodes.errors import SpecError
    from pipelines.spec.load import load_spec

    spec = load_spec(spec_path, sets=sets)
    controls = [node for node in spec.nodes.values() if node.op.name == "source.control"]
    if len(controls) != 1:
        found = ", ".join(node.id for node in controls) or "none"
        raise SpecError.at(None, f"{spec_path}: expected one source.control node to send the command to, found "
                                 f"{found}; name the file with --control")
    return spec.path.parent / controls[0].params.path
