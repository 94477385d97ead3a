"""Audit a spec for look-ahead: re-run it on histories cut at times T and diff every node's outputs before T.

    tickloom audit specs/strategies/sma_cross.yaml [--cuts 5] [--at 2013-06-28 ...] [--set k=v] [--place n=t]

A node looks ahead when what it emits at time t depends on data from after t. The audit replays the spec once
over the whole history, recording every source and stream node, then once per cut time T over the history
**as it was at T**, and compares, node by node and port by port, every output on events with
``ts_recv < T`` (bit-exact; NaN equals NaN). Logs (a venue's fills and orders) are compared as a prefix: the
rows a cut run logged must be the first rows of the full run's log. Default cuts: ``cuts`` distinct event
times spread evenly over the history, the first and last excluded.

The history as it was at T. The engine already withholds every event at or after T (a ``TimeWindow`` ending at
T), but that alone proves nothing here: a source reads its files before it emits its first event, so a source
that backward-adjusts prices, normalizes by whole-file statistics or emits tomorrow's close computes the same
rows with or without the window. So the audit also **cuts the data files**: for a source whose params name
files (``path``, with ``{instrument}``, as every bar source has), each file is copied into a temporary folder
with only its rows received before T (CSV and other line files: the header, if any, and the first rows;
Parquet: the first rows), and the cut run reads the copies. The rows to keep are counted from the full run:
such a source emits one event per row, in file order (this is checked: a file whose row count is not its
event count is not cut). Any other node param that names one of those files (a user op that loads the file in
``constants``) is pointed at the cut copy too.

Blame. A node whose outputs before T differ is **biased**. The **cause** is a biased node none of whose inputs
(the nodes it reads, ``prev`` included) is biased: it changed by itself, so it read the future. Nodes
downstream that differ are **affected**; sinks among them are the decisions. When every biased node reads
another biased node (a feedback loop), the one that differs earliest is blamed.

Limits (stated in every report that hits them): a source whose data cannot be cut at the file (a catalog, a
socket, an unsupported format) is only cut by the engine, so look-ahead inside it goes unseen; a node param
naming a file that no source reads is not cut; code that opens files it is not given in its params is not
cut either. Table ops run after the stream and feed no decision: they are not compared. Each cut copies the
kept part of every cut file once and replays once (cut files are held in memory while the audit runs); the
sample specs audit in well under a second once their kernels are cached.
"""

import gzip
import inspect
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from nodes.backtest.html_report import format_time
from nodes.errors import SpecError
from pipelines.plan import compile_plan
from pipelines.replay import ReplayResult, replay
from pipelines.spec import LoadedSpec, load_spec
from pipelines.time_window import TimeWindow, to_ns

_FRAME_KEYS = ("ts_event", "ts_recv", "instrument")
_LINE_SUFFIXES = (".csv", ".tsv", ".txt", ".psv", ".jsonl", ".ndjson")  # one row per line (plain or .gz)


@dataclass(frozen=True)
class Difference:
    """The first event where a node's output before a cut differs between the full and the cut run."""

    node: str
    cut_ns: int
    row: int  # index of the event among the node's events (or log rows) before the cut
    ts_recv: int | None
    instrument: str | None
    port: str  # an output port, "ts_recv"/"instrument", "<events>" (a count) or "log <name>.<column>"
    full: Any
    truncated: Any

    def describe(self) -> str:
        when = format_time(self.ts_recv) if self.ts_recv is not None else "--"
        where = f" {self.instrument}" if self.instrument else ""
        return (f"{when}{where}, port {self.port}: full run {_shown(self.full)} vs truncated {_shown(self.truncated)} "
                f"(cut at {format_time(self.cut_ns)}, event {self.row} of the node)")

    def as_dict(self) -> dict:
        return {"node": self.node, "cut_ns": self.cut_ns, "row": self.row, "ts_recv": self.ts_recv,
                "instrument": self.instrument, "port": self.port, "full": _json_value(self.full),
                "truncated": _json_value(self.truncated)}


@dataclass
class CutResult:
    """One cut: what was compared and which nodes changed when the history stopped at ``cut_ns``."""

    cut_ns: int
    events: int  # events before the cut (full run)
    nodes_checked: int
    values_compared: int
    differences: dict[str, Difference]  # biased node → its first difference
    causes: list[str]
    affected: list[str]
    files_cut: list[str]  # sources whose files were cut at this time

    @property
    def biased(self) -> bool:
        return bool(self.differences)

    def as_dict(self) -> dict:
        return {"cut_ns": self.cut_ns, "cut": format_time(self.cut_ns), "events": self.events,
                "nodes_checked": self.nodes_checked, "values_compared": self.values_compared,
                "verdict": "biased" if self.biased else "clean", "causes": self.causes, "affected": self.affected,
                "files_cut": self.files_cut, "differences": {n: d.as_dict() for n, d in self.differences.items()}}


@dataclass
class AuditReport:
    """Every cut of a look-ahead audit, the nodes blamed and what the audit could not see."""

    spec_name: str
    spec_hash: str
    spec_path: Path
    nodes: list[str]  # audited nodes, in topological order
    ops: dict[str, tuple[str, str]]  # node → (op name, file of the op's module)
    decisions: list[str]  # sinks: the nodes whose outputs are the strategy's decisions
    cuts: list[CutResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def biased(self) -> bool:
        return any(c.biased for c in self.cuts)

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when some node looked ahead (``tickloom audit``'s exit status)."""
        return 1 if self.biased else 0

    @property
    def causes(self) -> list[str]:
        blamed = {n for c in self.cuts for n in c.causes}
        return [n for n in self.nodes if n in blamed]

    @property
    def affected(self) -> list[str]:
        hit = {n for c in self.cuts for n in c.affected}
        return [n for n in self.nodes if n in hit and n not in self.causes]

    def first_difference(self, node_id: str) -> Difference | None:
        """The earliest differing event of ``node_id`` over all cuts (None when it never differed)."""
        found = [c.differences[node_id] for c in self.cuts if node_id in c.differences]
        return min(found, key=lambda d: (d.ts_recv if d.ts_recv is not None else math.inf, d.cut_ns), default=None)

    def format(self) -> str:
        """The report as text: one row per cut, the verdict, the cause with its first difference, the notes."""
        lines = [f"look-ahead audit of {self.spec_name}  (spec {self.spec_hash[:12]}, {self.spec_path})",
                 f"{len(self.nodes)} nodes checked ({', '.join(self.nodes)}), {len(self.cuts)} cuts, "
                 f"{self.seconds:.2f} s", ""]
        lines.append(f"{'cut T (events before it)':<26} {'events':>8} {'nodes':>6} {'values':>11}  verdict")
        for cut in self.cuts:
            if cut.biased:
                verdict = f"BIASED: {', '.join(cut.causes)}"
                verdict += f" → {', '.join(cut.affected)}" if cut.affected else ""
            else:
                verdict = "clean"
            lines.append(f"{format_time(cut.cut_ns):<26} {cut.events:>8,} {cut.nodes_checked:>6} "
                         f"{cut.values_compared:>11,}  {verdict}")
        lines.append("")
        if not self.biased:
            lines.append("verdict: clean: no output before a cut changed when the history after it was removed")
        else:
            lines.append("verdict: BIASED: outputs before a cut change when the history after it is removed")
            for node_id in self.causes:
                op_name, module = self.ops[node_id]
                lines.append(f"cause: {node_id}  op {op_name}  module {module}")
                lines.append(f"  first difference: {self.first_difference(node_id).describe()}")
            if self.affected:
                shown = [f"{n} (decision)" if n in self.decisions else n for n in self.affected]
                lines.append(f"affected downstream: {', '.join(shown)}")
                for node_id in self.affected:
                    lines.append(f"  {node_id}: {self.first_difference(node_id).describe()}")
        if self.notes:
            lines.append("notes:")
            lines.extend(f"  - {note}" for note in self.notes)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """The report as plain data (``tickloom audit --json``)."""
        return {
            "spec": self.spec_name, "spec_hash": self.spec_hash, "spec_path": str(self.spec_path),
            "verdict": "biased" if self.biased else "clean", "nodes": self.nodes, "decisions": self.decisions,
            "causes": [{"node": n, "op": self.ops[n][0], "module": self.ops[n][1],
                        "first_difference": self.first_difference(n).as_dict()} for n in self.causes],
            "affected": self.affected, "cuts": [c.as_dict() for c in self.cuts], "notes": self.notes,
            "seconds": self.seconds,
        }


def audit_spec(
    spec_path: str | Path,
    *,
    sets=(),
    places=(),
    cuts: int = 5,
    cut_times=None,
    record=None,
) -> AuditReport:
    """Audit the spec at ``spec_path`` for look-ahead (see the module docstring) and return the report.

    ``cuts``: how many cut times to spread over the history (ignored when ``cut_times`` is given);
    ``cut_times``: the cut times themselves (int ns, ISO 8601 text or datetimes); ``record``: the nodes to
    compare (default every source and stream node; blame is only as fine as the nodes compared).

    Raises:
        SpecError: the spec is invalid, ``cuts`` < 1, a cut time is unreadable or has no event before it,
            or ``record`` names a node that is not a source or stream node.
        DataQualityError: a source holds bad data.
    """
    started = time.perf_counter()
    spec_path = Path(spec_path)
    spec = load_spec(spec_path, sets=list(sets), places=list(places))
    graph = spec.graph
    audited = _audited_nodes(spec, record)
    recorded = list(dict.fromkeys(audited + list(graph.sources)))  # sources: their rows are what files are cut by
    full = replay(compile_plan(spec, record=recorded), summarize=False)
    times = _event_times(full, graph.sources)
    cut_list = _cut_times(times, cuts, cut_times)
    base_dir = spec_path.parent
    files = _SourceFiles(spec, base_dir, full)
    results = []
    with tempfile.TemporaryDirectory(prefix="tickloom-audit-") as scratch:
        for index, cut_ns in enumerate(cut_list):
            updates, files_cut = files.cut(cut_ns, Path(scratch) / f"cut{index}")
            cut_plan = compile_plan(_with_params(spec, updates), record=recorded)
            cut_run = replay(cut_plan, base_dir=base_dir, window=TimeWindow(end_ns=cut_ns), summarize=False)
            results.append(_compare_cut(spec, audited, full, cut_run, cut_ns, files_cut))
    ops = {n: (graph.nodes[n].op.name, _module_file(graph.nodes[n].op)) for n in audited}
    decisions = [n for n in audited if graph.nodes[n].op.kind == "stream" and not graph.consumers(n)]
    notes = [f"spec warning: {w}" for w in spec.warnings] + files.notes + _table_note(spec)
    return AuditReport(spec.name, spec.spec_hash, spec_path, audited, ops, decisions, results, notes,
                       time.perf_counter() - started)


def _audited_nodes(spec: LoadedSpec, record) -> list[str]:
    graph = spec.graph
    streamed = [n for n in graph.order if graph.nodes[n].op.kind in ("source", "stream")]
    if record is None:
        return streamed
    unknown = [n for n in record if n not in streamed]
    if unknown:
        raise SpecError.at(None, f"cannot audit {', '.join(map(repr, unknown))}: not a source or stream node of "
                                 f"{spec.name} (those are {', '.join(streamed)})")
    return [n for n in streamed if n in record]


def _event_times(full: ReplayResult, sources: list[str]) -> np.ndarray:
    parts = [full.recorded[s]["ts_recv"].to_numpy() for s in sources]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)


def _cut_times(times: np.ndarray, cuts: int, cut_times) -> list[int]:
    """The cut times: the given ones (checked), else ``cuts`` distinct event times spread evenly, ends excluded."""
    if len(times) < 2:
        raise SpecError.at(None, f"the history has {len(times)} distinct event time(s): nothing to cut")
    if cut_times:
        chosen = []
        for value in cut_times:
            try:
                cut_ns = to_ns(value)
            except ValueError as error:
                raise SpecError.at(None, f"--at {value!r}: {error}") from None
            if cut_ns <= times[0]:
                raise SpecError.at(None, f"--at {value!r}: no event before it (the history starts at "
                                         f"{format_time(int(times[0]))})")
            chosen.append(cut_ns)
        return sorted(set(chosen))
    if not isinstance(cuts, (int, np.integer)) or cuts < 1:
        raise SpecError.at(None, f"--cuts must be a whole number >= 1, got {cuts!r}")
    positions = {min(max(round(len(times) * k / (cuts + 1)), 1), len(times) - 1) for k in range(1, cuts + 1)}
    return [int(times[p]) for p in sorted(positions)]


# --- cutting the data files ----------------------------------------------------------------------------------


class _SourceFiles:
    """The data files of each source that can be cut at a time T, and the node params that name them."""

    def __init__(self, spec: LoadedSpec, base_dir: Path, full: ReplayResult):
        self.spec = spec
        self.base_dir = base_dir
        self.notes: list[str] = []
        self.sources: dict[str, list[tuple[str, Path, "_DataFile"]]] = {}
        self.ts_recv: dict[tuple[str, str], np.ndarray] = {}  # (source, instrument) → its events' ts_recv
        graph = spec.graph
        for source_id in graph.sources:
            frame = full.recorded[source_id]
            for name in graph.source_instruments[source_id]:
                self.ts_recv[(source_id, name)] = frame.filter(pl.col("instrument") == name)["ts_recv"].to_numpy()
            files, why = self._files_of(source_id)
            if files is None:
                self.notes.append(f"source {source_id} ({graph.nodes[source_id].op.name}): {why}; it is cut by the "
                                  "engine only (no event at or after T), so look-ahead inside it is not audited")
            else:
                self.sources[source_id] = files
        self.readers = self._nodes_naming_files()

    def _files_of(self, source_id: str):
        params = self.spec.graph.nodes[source_id].definition.params
        if not isinstance(getattr(params, "path", None), str) or not hasattr(params, "files"):
            return None, "its params name no data file (path)"
        files = []
        for name, path in params.files(self.base_dir):
            if not path.is_file():
                return None, f"{path} is not a file"
            data_file = _DataFile.open(path)
            if data_file is None:
                formats = ", ".join(_LINE_SUFFIXES)
                return None, f"{path.name}: no cutter for this format (line files {formats}, plain or gzip; Parquet)"
            events = len(self.ts_recv[(source_id, name)])
            problem = data_file.check_rows(events)
            if problem:
                return None, f"{path}: {problem}"
            files.append((name, path, data_file))
        return files, ""

    def _nodes_naming_files(self) -> dict[tuple[str, str], str]:
        """(node, param) → source whose path it names, for stream nodes; notes params naming other files."""
        graph = self.spec.graph
        named = {}
        for source_id in self.sources:
            template = graph.nodes[source_id].definition.params.path
            named[_normal(self.base_dir, template)] = source_id
        readers = {}
        for node_id in graph.order:
            node = graph.nodes[node_id]
            if node.op.kind != "stream":
                continue
            for param, value in node.definition.params:
                if not isinstance(value, str):
                    continue
                if _normal(self.base_dir, value) in named:
                    readers[(node_id, param)] = named[_normal(self.base_dir, value)]
                elif _is_file(self.base_dir, value):
                    self.notes.append(f"node {node_id}: param {param!r} names {value}, which no cut source reads; "
                                      "the audit cannot cut it (code reading it could look ahead unseen)")
        return readers

    def cut(self, cut_ns: int, folder: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
        """Write every cuttable file as of ``cut_ns`` under ``folder``; return the param updates that read them."""
        graph = self.spec.graph
        updates: dict[str, dict[str, str]] = {}
        for source_id, files in self.sources.items():
            template = graph.nodes[source_id].definition.params.path
            cut_template = str(folder / source_id / _inside(template))
            for name, _, data_file in files:
                kept = int(np.searchsorted(self.ts_recv[(source_id, name)], cut_ns, "left"))
                target = Path(cut_template.replace("{instrument}", name))
                target.parent.mkdir(parents=True, exist_ok=True)
                data_file.write_head(kept, target)
            updates[source_id] = {"path": cut_template}
        for (node_id, param), source_id in self.readers.items():
            updates.setdefault(node_id, {})[param] = updates[source_id]["path"]
        return updates, list(self.sources)


class _DataFile:
    """A data file whose rows are its events in order: it can write a copy holding only its first rows."""

    @staticmethod
    def open(path: Path) -> "_DataFile | None":
        """The cutter for ``path`` by its suffix, or None for a format the audit cannot cut."""
        name = path.name.lower().removesuffix(".gz")
        if path.name.lower().endswith(".parquet"):
            return _ParquetFile(path)
        if name.endswith(_LINE_SUFFIXES):
            return _LineFile(path)
        return None

    def check_rows(self, events: int) -> str:
        raise NotImplementedError  # each format counts its rows

    def write_head(self, rows: int, target: Path) -> None:
        raise NotImplementedError  # each format writes its own copy


class _LineFile(_DataFile):
    """CSV or any text file with one row per line and maybe one header line (plain or gzip)."""

    def __init__(self, path: Path):
        self.path = path
        self.gzipped = path.name.endswith(".gz")
        try:
            with (gzip.open(path, "rb") if self.gzipped else open(path, "rb")) as handle:
                self.lines = handle.read().splitlines(keepends=True)
        except (OSError, EOFError):
            self.lines = None
        while self.lines and not self.lines[-1].strip():
            self.lines.pop()
        self.header_lines = 0

    def check_rows(self, events: int) -> str:
        if self.lines is None:
            return "cannot be read as text"
        if any(not line.strip() for line in self.lines):
            return "has blank lines: its rows cannot be matched to events"
        if len(self.lines) not in (events, events + 1):
            return f"{len(self.lines)} lines for {events} events: its rows cannot be matched to events"
        self.header_lines = len(self.lines) - events
        return ""

    def write_head(self, rows: int, target: Path) -> None:
        text = b"".join(self.lines[: self.header_lines + rows])
        if self.gzipped:
            with gzip.open(target, "wb", compresslevel=1) as handle:  # the copy lives for one replay
                handle.write(text)
        else:
            target.write_bytes(text)


class _ParquetFile(_DataFile):
    def __init__(self, path: Path):
        self.path = path
        self.frame = pl.read_parquet(path)

    def check_rows(self, events: int) -> str:
        return "" if self.frame.height == events else f"{self.frame.height} rows for {events} events"

    def write_head(self, rows: int, target: Path) -> None:
        self.frame.head(rows).write_parquet(target)


def _normal(base_dir: Path, value: str) -> str:
    return os.path.normpath(base_dir / value)


def _is_file(base_dir: Path, value: str) -> bool:
    try:
        return (base_dir / value).is_file()
    except (OSError, ValueError):
        return False


def _inside(template: str) -> Path:
    """``template`` as a relative path under a folder: anchor dropped, ``..`` renamed (``{instrument}`` kept)."""
    path = Path(template)
    parts = [("up" if part == ".." else part) for part in path.parts if part not in (path.anchor, ".")]
    return Path(*parts)


def _with_params(spec: LoadedSpec, updates: dict[str, dict[str, str]]) -> LoadedSpec:
    """A copy of ``spec`` whose nodes in ``updates`` read other values for those params (the graph is reused)."""
    if not updates:
        return spec
    nodes = dict(spec.nodes)
    graph_nodes = dict(spec.graph.nodes)
    for node_id, fields in updates.items():
        definition = nodes[node_id]
        nodes[node_id] = replace(definition, params=definition.params.model_copy(update=fields))
        graph_nodes[node_id] = replace(graph_nodes[node_id], definition=nodes[node_id])
    return replace(spec, nodes=nodes, graph=replace(spec.graph, nodes=graph_nodes))


def _table_note(spec: LoadedSpec) -> list[str]:
    graph = spec.graph
    tables = [n for n in graph.order if graph.nodes[n].op.kind == "table"]
    if not tables:
        return []
    return [f"table nodes {', '.join(tables)} are not compared: they run on whole recordings after the stream "
            "and feed no decision"]


# --- comparing runs ------------------------------------------------------------------------------------------


def _compare_cut(spec: LoadedSpec, audited: list[str], full: ReplayResult, cut_run: ReplayResult, cut_ns: int,
                 files_cut: list[str]) -> CutResult:
    graph = spec.graph
    differences: dict[str, Difference] = {}
    values = 0
    for node_id in audited:
        before = full.recorded[node_id].filter(pl.col("ts_recv") < cut_ns)
        found = _first_difference(node_id, cut_ns, before, cut_run.recorded[node_id])
        values += before.height * (before.width - len(_FRAME_KEYS))
        for log, frame in full.logs.get(node_id, {}).items():
            cut_frame = cut_run.logs.get(node_id, {}).get(log)
            log_found, compared = _first_log_difference(node_id, cut_ns, log, frame, cut_frame)
            values += compared
            if found is None:
                found = log_found
        if found is not None:
            differences[node_id] = found
    events = sum(int((full.recorded[s]["ts_recv"] < cut_ns).sum()) for s in graph.sources)
    causes, affected = _blame(graph, audited, differences)
    return CutResult(cut_ns, events, len(audited), values, differences, causes, affected, files_cut)


def _first_difference(node_id: str, cut_ns: int, full: pl.DataFrame, cut: pl.DataFrame) -> Difference | None:
    """The first event where ``cut`` (the cut run) differs from ``full`` (the full run, before the cut)."""
    rows = min(full.height, cut.height)
    columns = ["ts_recv", "instrument"] + [c for c in full.columns if c not in _FRAME_KEYS]
    first_row, first_column = rows, None
    for column in columns:
        differs = _differs(_values(full[column])[:rows], _values(cut[column])[:rows])
        hits = np.flatnonzero(differs[:first_row])
        if len(hits):
            first_row, first_column = int(hits[0]), column
    if first_column is not None:
        at = full.row(first_row, named=True)
        return Difference(node_id, cut_ns, first_row, at["ts_recv"], str(at["instrument"]), first_column,
                          at[first_column], cut[first_column][first_row])
    if full.height != cut.height:
        longer = full if full.height > cut.height else cut
        at = longer.row(rows, named=True)
        return Difference(node_id, cut_ns, rows, at["ts_recv"], str(at["instrument"]), "<events>",
                          f"{full.height} events", f"{cut.height} events")
    return None


def _first_log_difference(node_id: str, cut_ns: int, log: str, full: pl.DataFrame,
                          cut: pl.DataFrame | None) -> tuple[Difference | None, int]:
    """Whether the cut run's log is a prefix of the full run's; and how many values were compared."""
    cut = cut if cut is not None else full.clear()
    rows = min(full.height, cut.height)
    for column in full.columns:
        if column not in cut.columns:
            return Difference(node_id, cut_ns, 0, None, None, f"log {log}.{column}", "present", "missing"), 0
        differs = np.flatnonzero(_differs(_values(full[column])[:rows], _values(cut[column])[:rows]))
        if len(differs):
            row = int(differs[0])
            return Difference(node_id, cut_ns, row, _log_time(full, row), _log_instrument(full, row),
                              f"log {log}.{column}", full[column][row], cut[column][row]), rows * full.width
    if cut.height > full.height:
        return Difference(node_id, cut_ns, rows, _log_time(cut, rows), _log_instrument(cut, rows),
                          f"log {log} rows", f"{full.height} rows", f"{cut.height} rows (more than the full run)"), 0
    return None, rows * full.width


def _values(series: pl.Series) -> np.ndarray:
    if series.dtype == pl.Enum or series.dtype == pl.Categorical:
        series = series.to_physical()
    elif series.dtype == pl.String:
        return np.asarray(series.to_list(), dtype=object)
    return series.to_numpy()


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per element: not the same value, bit for bit (any NaN equals any NaN)."""
    if a.dtype.kind == "f" and b.dtype.kind == "f" and a.dtype == b.dtype:
        a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        unsigned = np.dtype(f"u{a.dtype.itemsize}")
        return (a.view(unsigned) != b.view(unsigned)) & ~(np.isnan(a) & np.isnan(b))
    if a.dtype != b.dtype:
        return np.ones(len(a), dtype=bool)
    return np.asarray(a != b, dtype=bool)


def _log_time(frame: pl.DataFrame, row: int) -> int | None:
    column = next((c for c in frame.columns if c.startswith("ts") and frame[c].dtype.is_integer()), None)
    return int(frame[column][row]) if column else None


def _log_instrument(frame: pl.DataFrame, row: int) -> str | None:
    return str(frame["instrument"][row]) if "instrument" in frame.columns else None


def _blame(graph, audited: list[str], differences: dict[str, Difference]) -> tuple[list[str], list[str]]:
    """The causes (biased nodes reading no biased node) and the affected nodes (the other biased ones)."""
    reads = {n: {a.node for a in graph.nodes[n].args} for n in audited}
    causes = [n for n in audited if n in differences and not reads[n] & differences.keys()]
    if differences and not causes:
        # every biased node reads another one: a feedback loop; the earliest difference started it
        causes = [min(differences, key=lambda n: (differences[n].ts_recv or 0, audited.index(n)))]
    affected = [n for n in audited if n in differences and n not in causes]
    return causes, affected


def _module_file(op) -> str:
    try:
        return inspect.getsourcefile(op) or "?"
    except TypeError:
        module = sys.modules.get(op.__module__)
        return getattr(module, "__file__", None) or op.__module__


def _shown(value) -> str:
    return repr(float(value)) if isinstance(value, (float, np.floating)) else repr(value)


def _json_value(value):
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, np.generic):
        return value.item()
    return value
