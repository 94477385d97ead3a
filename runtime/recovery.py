"""Recover a live session after a crash or ``kill -9``: rebuild its state, check it against the journal, reconcile.

The engine is deterministic: the same events in the same order give the same state, bit for bit (the parity
the backtest is built on). A session records every batch of inputs before it runs it (``InputLog``,
write-ahead) and journals what the batch decided after it ran. So the state at the crash is rebuilt by running
the recorded inputs through a fresh ``StreamRun`` of the same compiled spec — the strategy's state, the risk
layer's (breaker HALTED or not, order-rate buckets), the paper venue's book, queue positions, working orders
and positions — and the journal says what the session had already done with it.

``recover_session`` then checks, log by log (the venue's orders and fills, risk rejects, breaker trips):

- the journal is a prefix of what the inputs decide: every journaled row is reproduced exactly. A journal that
  says more than its inputs explain, or something else, is refused (``RecoveryError``): trading must not go on
  from a state the runtime cannot explain; an operator looks first.
- rows the inputs decide beyond the journal were decided by the killed process after its last journal write
  (the batch ran, the kill came before the journal): they are journaled now, once, as ``recovered`` — so no
  order is lost and none is journaled twice. Orders are identified by the venue's order ids, which continue
  from the rebuilt state, so a resumed session never reuses one.

Reconciliation compares, per venue node, the runtime's view (the journal, completed with the recovered rows)
with the venue's (the rebuilt venue): position per instrument, open orders, fills. The paper venue lives in the
graph, so its view is the rebuilt one; ``Reconciliation.differences`` is what an operator must see before the
session trades again (a resumed session refuses to start when it is not empty).

A feed resumes after the last recorded event: a file source skips the rows it had released (``skip_rows``); a
websocket source starts from a fresh snapshot, as after any reconnect (events the session missed while it was
down are not in the market data it trades on: the book is rebuilt from the snapshot).
"""

import fcntl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nodes.errors import TickloomError
from pipelines.plan import Plan
from pipelines.replay import StreamRun
from runtime.journal import read_journal, recover
from runtime.session import recorded_inputs

TERMINAL_EVENTS = ("rejected", "cancelled", "filled")  # an order whose last event is one of these is not working
SESSION_KINDS = ("session", "resumed", "ended")  # journal records that are not a node's log rows


class RecoveryError(TickloomError):
    """Raised when a session's journal and its recorded inputs disagree: the state cannot be trusted."""


class RecordedReader:
    """A source reader over the chunks a session recorded for one source (the input of a rebuild)."""

    def __init__(self, instruments: list[str], parts: list[dict[str, np.ndarray]]):
        self.instruments = instruments
        self.parts = parts

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        for part in self.parts:
            for start in range(0, len(part["ts_recv"]), max_rows):
                yield {name: column[start:start + max_rows] for name, column in part.items()}


@dataclass
class VenueView:
    """One side's view of an account at a venue, per instrument: position (1e-9 units) and working orders."""

    positions: dict[str, int] = field(default_factory=dict)
    working: dict[str, int] = field(default_factory=dict)
    fills: int = 0

    @classmethod
    def from_logs(cls, orders: dict[str, list], fills: dict[str, list], instruments: list[str]) -> "VenueView":
        """The runtime's view: positions summed from the fills it journaled, orders it saw no end of."""
        view = cls(positions=dict.fromkeys(instruments, 0), working=dict.fromkeys(instruments, 0))
        for key, side, qty in zip(fills.get("key", ()), fills.get("side", ()), fills.get("qty", ())):
            view.positions[instruments[int(key)]] += int(side) * int(qty)
        view.fills = len(fills.get("key", ()))
        last_event: dict[int, tuple[str, str]] = {}
        for order_id, key, event in zip(orders.get("order_id", ()), orders.get("key", ()), orders.get("event", ())):
            last_event[int(order_id)] = (instruments[int(key)], str(event))
        for name, event in last_event.values():
            view.working[name] += event not in TERMINAL_EVENTS
        return view

    @classmethod
    def from_venue(cls, account: dict[str, np.ndarray], fills: int, instruments: list[str]) -> "VenueView":
        """The venue's view: its own account (``TickVenue.account``), as a gateway's query would return it."""
        return cls(positions={name: int(q) for name, q in zip(instruments, account["position"])},
                   working={name: int(n) for name, n in zip(instruments, account["working_orders"])}, fills=fills)


@dataclass
class Reconciliation:
    """The runtime's view of each venue account against the venue's own, and what differs.

    Positions and fill counts must be equal. Working orders: the runtime may know more than the venue (orders in
    flight, not arrived yet), never fewer (an order working at the venue that the runtime does not know of).
    """

    runtime: dict[str, VenueView]
    venue: dict[str, VenueView]
    differences: list[str]

    def format(self) -> str:
        lines = []
        for node_id, view in self.venue.items():
            held = {name: qty for name, qty in view.positions.items() if qty}
            positions = ", ".join(f"{name} {qty / 1e9:g}" for name, qty in sorted(held.items())) or "flat"
            lines.append(f"  {node_id}: position {positions}; {sum(view.working.values())} working orders at the "
                         f"venue ({sum(self.runtime[node_id].working.values())} open in the runtime's view, in "
                         f"flight included); {view.fills} fills")
        lines += [f"  DIFFERS: {difference}" for difference in self.differences]
        return "\n".join(lines)


@dataclass
class Recovery:
    """A rebuilt session: the run to continue, where each feed resumes, what the journal lacked, the reconciliation."""

    folder: Path
    run: StreamRun
    events: int
    skip_rows: dict[str, int]
    journaled_rows: dict[str, int]
    recovered: dict[str, dict[str, list]]
    reconciliation: Reconciliation
    truncated_bytes: int
    previous_deployment: int | None = None  # the registry row of the process that died (its journal says)

    def format(self) -> str:
        recovered = {log: len(next(iter(columns.values()), ())) for log, columns in self.recovered.items()}
        lines = [f"recovered {self.folder}: state rebuilt from {self.events:,} recorded events; journal "
                 f"{sum(self.journaled_rows.values()):,} rows reproduced"
                 + (f", torn tail of {self.truncated_bytes} bytes cut" if self.truncated_bytes else "")]
        if any(recovered.values()):
            lines.append("  decided before the crash but not journaled (journaled now): " +
                         ", ".join(f"{log} {n}" for log, n in recovered.items() if n))
        lines.append(self.reconciliation.format())
        return "\n".join(lines)


def recover_session(folder: str | Path, plan: Plan) -> Recovery:
    """Rebuild the session in ``folder`` for ``plan``: run its recorded inputs, check them against its journal.

    Raises:
        RecoveryError: the journal has rows the recorded inputs do not reproduce (see the module docstring).
    """
    folder = Path(folder)
    recovered_journal = recover(folder / "journal.tlj", truncate=True)
    journaled = _journal_logs(recovered_journal.records)
    inputs = recorded_inputs(folder)
    graph = plan.graph
    readers = [RecordedReader(graph.nodes[s].op.instruments(graph.nodes[s].definition.params, plan.spec.path.parent),
                              inputs.get(s, [])) for s in graph.sources]
    run = StreamRun(plan, readers=readers, record=False)
    rebuilt: dict[str, dict[str, list]] = {}
    events = 0
    for merged in run.merged_batches():
        events += len(merged)
        for node_id, logs in run.run_batch(merged).items():
            for log, columns in logs.items():
                _extend(rebuilt.setdefault(f"{node_id}.{log}", {}), columns)
    missing = {log: _beyond(log, journaled.get(log, {}), rebuilt.get(log, {})) for log in rebuilt}
    for log in journaled:
        if log not in rebuilt and _rows(journaled[log]):
            raise RecoveryError(f"{folder}: the journal has {_rows(journaled[log])} {log} rows the recorded inputs "
                                "do not produce")
    skip_rows = {s: sum(len(p["ts_recv"]) for p in inputs.get(s, [])) for s in graph.sources}
    venue_fills = {v: _rows(rebuilt.get(f"{v}.fills", {})) for v in graph.venues()}
    reconciliation = reconcile(run, journaled, missing, venue_fills)
    return Recovery(folder, run, events, skip_rows, {log: _rows(c) for log, c in journaled.items()},
                    {log: columns for log, columns in missing.items() if _rows(columns)}, reconciliation,
                    recovered_journal.truncated_bytes, _last_deployment(recovered_journal.records))


def reconcile(run: StreamRun, journaled: dict, missing: dict, venue_fills: dict[str, int]) -> Reconciliation:
    """Compare each venue account as the runtime knows it (the journal completed with ``missing``) with the
    venue's own (its state in ``run``); ``venue_fills`` counts the fills each venue logged."""
    graph = run.plan.graph
    instruments = graph.instruments
    runtime, venue, differences = {}, {}, []
    for node_id in graph.venues():
        mine = {log: _joined(journaled.get(f"{node_id}.{log}", {}), missing.get(f"{node_id}.{log}", {}))
                for log in ("orders", "fills")}
        runtime[node_id] = VenueView.from_logs(mine["orders"], mine["fills"], instruments)
        venue[node_id] = VenueView.from_venue(_venue_account(run, node_id), venue_fills.get(node_id, 0), instruments)
        ours, theirs = runtime[node_id], venue[node_id]
        for name in instruments:
            if ours.positions[name] != theirs.positions[name]:
                differences.append(f"{node_id} {name} position: runtime {ours.positions[name] / 1e9:g} vs venue "
                                   f"{theirs.positions[name] / 1e9:g}")
            if theirs.working[name] > ours.working[name]:
                differences.append(f"{node_id} {name}: {theirs.working[name]} orders working at the venue, the "
                                   f"runtime knows {ours.working[name]}")
        if ours.fills != theirs.fills:
            differences.append(f"{node_id} fills: runtime {ours.fills} vs venue {theirs.fills}")
    return Reconciliation(runtime, venue, differences)


def _venue_account(run: StreamRun, node_id: str) -> dict[str, np.ndarray]:
    op = run.plan.graph.nodes[node_id].op
    for segment in run.segments:
        if node_id in segment.states:
            return op.account(segment.constants[node_id], segment.states[node_id])
    raise RecoveryError(f"venue {node_id} has no state in the run")


def _last_deployment(records) -> int | None:
    """The registry deployment of the last process that ran the session (its ``session``/``resumed`` record)."""
    for record in reversed(records):
        if record.kind in ("session", "resumed") and isinstance(record.payload, dict):
            return record.payload.get("deployment")
    return None


def _journal_logs(records) -> dict[str, dict[str, list]]:
    """The log rows a session journaled, per ``<node>.<log>``, columns concatenated in journal order."""
    logs: dict[str, dict[str, list]] = {}
    for record in records:
        if record.kind in SESSION_KINDS or "." not in record.kind or not isinstance(record.payload, dict):
            continue
        _extend(logs.setdefault(record.kind, {}), record.payload)
    return logs


def _extend(into: dict[str, list], columns: dict) -> None:
    for name, values in columns.items():
        into.setdefault(name, []).extend(np.asarray(values).tolist())


def _joined(first: dict[str, list], second: dict[str, list]) -> dict[str, list]:
    return {name: list(first.get(name, [])) + list(second.get(name, [])) for name in set(first) | set(second)}


def _rows(columns: dict[str, list]) -> int:
    return len(next(iter(columns.values()), ()))


def _beyond(log: str, journaled: dict[str, list], rebuilt: dict[str, list]) -> dict[str, list]:
    """The rebuilt rows after the journaled ones, once the journaled ones are checked to be their prefix."""
    count = _rows(journaled)
    if count > _rows(rebuilt):
        raise RecoveryError(f"the journal has {count} {log} rows, the recorded inputs produce only "
                            f"{_rows(rebuilt)}: the journal is ahead of the inputs")
    for name, values in journaled.items():
        if name not in rebuilt:
            raise RecoveryError(f"the journal's {log} rows have a column {name!r} the graph does not log")
        ours, theirs = np.asarray(values), np.asarray(rebuilt[name][:count])
        same = np.array_equal(ours, theirs, equal_nan=True) if ours.dtype.kind == "f" else np.array_equal(ours, theirs)
        if not same:
            row = int(np.flatnonzero(ours != theirs)[0]) if ours.shape == theirs.shape else 0
            raise RecoveryError(f"{log} row {row}: the journal says {name}={ours[row]!r}, the recorded inputs "
                                f"give {theirs[row]!r}")
    return {name: values[count:] for name, values in rebuilt.items()}


def journal_recovery(journal, recovery: Recovery, deployment: int | None = None) -> None:
    """Journal a resumed start: the rows the killed process decided but had not journaled (as the log rows they
    are, once), then a ``resumed`` record with the reconciliation."""
    for log, columns in recovery.recovered.items():
        journal.append(log, columns)
    journal.append("resumed", {
        "deployment": deployment, "previous_deployment": recovery.previous_deployment,
        "events": recovery.events, "skip_rows": recovery.skip_rows, "truncated_bytes": recovery.truncated_bytes,
        "recovered_rows": {log: _rows(columns) for log, columns in recovery.recovered.items()},
        "positions": {v: view.positions for v, view in recovery.reconciliation.venue.items()},
        "working_orders": {v: view.working for v, view in recovery.reconciliation.venue.items()},
        "differences": recovery.reconciliation.differences,
    })


class SkipRows:
    """A source reader without its first ``rows`` rows: a file feed resumed after the rows a session had seen."""

    def __init__(self, reader, rows: int):
        self.reader = reader
        self.instruments = reader.instruments
        self.rows = rows

    def __getattr__(self, name):
        return getattr(self.reader, name)  # report, stop, ... of the wrapped reader

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        left = self.rows
        for chunk in self.reader.chunks(max_rows):
            n = len(chunk["ts_recv"])
            if left >= n:
                left -= n
                continue
            yield {name: column[left:] for name, column in chunk.items()} if left else chunk
            left = 0


def wait_to_take_over(folder: str | Path, poll_s: float = 0.05, stop=None) -> bool:
    """Wait while another process (the primary) holds the session's journal; then say whether to take over.

    A standby (``tickloom live --standby``) waits here: the primary holds the journal's lock for as long as it
    runs, and the kernel releases it when the process dies, however it dies. Returns True when the lock is free
    and the journal does not end with ``ended`` (the primary died: resume the session), False when it does (the
    session finished cleanly: nothing to take over) or when ``stop`` (a ``threading.Event``) is set.
    """
    path = Path(folder) / "journal.tlj"
    while stop is None or not stop.is_set():
        if path.exists():
            with open(path, "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                    records = read_journal(path).records
                    return not records or records[-1].kind != "ended"
        time.sleep(poll_s)
    return False
