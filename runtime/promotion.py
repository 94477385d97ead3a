"""Promote a spec hash research → paper → live through gates, and keep who did what, when and why.

    tickloom baseline SPEC [--reason TEXT]            record the regression baseline (the spec as it is now)
    tickloom promote SPEC --to paper|live [--by NAME] [--reason TEXT]
    tickloom status                                   what is promoted where, and what runs where
    tickloom rollback SPEC --stage paper|live         back to the hash promoted before the current one

Every spec starts in research; a hash reaches paper, then live, never live directly: promoting to live needs
the same hash to be the one promoted to paper. Each promotion runs every gate (none stops the others) and
records the outcome, passed or not, in the registry:

- ``validate``: the spec loads (``load_spec``) and is a ``kind: strategy`` spec.
- ``stage``: the hash is not already promoted to that stage, and for live it is the hash promoted to paper.
- ``regression``: a backtest on the pinned regression window reproduces the recorded baseline's statistics
  within the baseline's tolerances. The baseline is the latest one recorded for the spec's name and window
  (``record_baseline``, who/when/why recorded too); a spec whose params changed since is compared with the
  baseline of the spec as it was, so it fails until someone records a new baseline on purpose.
- ``parity``: batch and replay agree on a sample day D (see ``parity_gate`` for exactly what is compared).
- ``risk``: pre-trade risk nodes (``RISK_OPS``) with size limits cover every instrument the spec trades; for
  live, every order the spec's venue reads comes out of a risk node or a node downstream of one.
- ``latency``: the placement (``pipelines.placement.place_spec``) meets the spec's ``placement.latency_budget``.
  A spec without a budget passes for paper (nothing is at stake in latency there) and fails for live.

Where the regression window, tolerances and sample day are declared: a sidecar file next to the spec,
``<spec stem>.promotion.yaml`` (format: ``PromotionSettings``; errors name file:line:col). The spec format
has no ``promotion:`` key yet; see docs/operations.md.

The registry is a DuckDB file: ``--registry PATH``, else ``$TICKLOOM_REGISTRY``, else
``.tickloom/registry.duckdb``. Tables ``promotions``, ``baselines`` and ``deployments`` (schemas in
``TABLES_SQL``). Connections are short-lived (a live session writing heartbeats never locks out
``tickloom promote``); a writer waits up to 10 s for another.
"""

import datetime as dt
import getpass
import json
import math
import os
import re
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nodes.errors import SourceLocation, SpecError, TickloomError

STAGES = ("research", "paper", "live")
PROMOTED_STAGES = ("paper", "live")
REGISTRY_ENV = "TICKLOOM_REGISTRY"
DEFAULT_REGISTRY = Path(".tickloom") / "registry.duckdb"
SIDECAR_SUFFIX = ".promotion.yaml"
# Pre-trade risk ops and the params of each that limit size: a node of one of them with at least one of its
# size limits set is a risk limit for every instrument of the sources it runs on.
RISK_OPS = {
    "risk.pre_trade_limits": ("max_position", "max_order_qty"),  # nodes/risk/pre_trade.py
    "risk.order_limits": ("max_position_lots",),  # nodes/execution/order_limits.py (its FPGA twin)
    "risk.pre_trade": ("max_position", "max_order_qty"),  # the name the issue gives
}
DAY_NS = 86_400 * 10**9
HEARTBEAT_STALE_S = 30.0
_LOCK_WAIT_S = 10.0

TABLES_SQL = """
CREATE SEQUENCE IF NOT EXISTS promotion_ids START 1;
CREATE SEQUENCE IF NOT EXISTS baseline_ids START 1;
CREATE SEQUENCE IF NOT EXISTS deployment_ids START 1;
CREATE TABLE IF NOT EXISTS promotions (
    id BIGINT PRIMARY KEY DEFAULT nextval('promotion_ids'),
    spec VARCHAR NOT NULL,            -- the spec's name
    spec_hash VARCHAR NOT NULL,       -- '' when the spec did not load
    stage VARCHAR NOT NULL,           -- paper | live
    action VARCHAR NOT NULL,          -- promote | rollback
    passed BOOLEAN NOT NULL,          -- false: refused; the stage's hash did not change
    who VARCHAR NOT NULL,
    at_utc TIMESTAMP NOT NULL,        -- UTC
    why VARCHAR NOT NULL,
    gates VARCHAR NOT NULL,           -- JSON: [{gate, passed, detail, data}], every gate run
    previous_hash VARCHAR,            -- the stage's hash before this row (NULL: none)
    spec_path VARCHAR
);
CREATE TABLE IF NOT EXISTS baselines (
    id BIGINT PRIMARY KEY DEFAULT nextval('baseline_ids'),
    spec VARCHAR NOT NULL,
    spec_hash VARCHAR NOT NULL,
    regression_window VARCHAR NOT NULL,  -- JSON: {start_ns, end_ns, warmup_start_ns}
    stats VARCHAR NOT NULL,              -- JSON: the backtest's numeric statistics on that window
    tolerances VARCHAR NOT NULL,         -- JSON: stat -> {abs, rel}
    who VARCHAR NOT NULL,
    at_utc TIMESTAMP NOT NULL,
    why VARCHAR NOT NULL,
    spec_path VARCHAR
);
CREATE TABLE IF NOT EXISTS deployments (
    id BIGINT PRIMARY KEY DEFAULT nextval('deployment_ids'),
    spec VARCHAR NOT NULL,
    spec_hash VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    pid INTEGER NOT NULL,
    host VARCHAR NOT NULL,
    started_utc TIMESTAMP NOT NULL,
    heartbeat_utc TIMESTAMP NOT NULL,
    ended_utc TIMESTAMP                  -- NULL while it runs
);
"""


class PromotionError(TickloomError):
    """Raised when a hash is not promoted where it is asked to run, or a registry operation cannot be done."""


# --- the sidecar: what a spec's promotion is checked against -----------------------------------------------


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToleranceModel(_Closed):
    """How far a statistic may move from the baseline: ``|now − base| <= abs + rel × |base|``."""

    abs: float = Field(0.0, ge=0, description="absolute tolerance, in the statistic's unit")
    rel: float = Field(0.0, ge=0, description="relative tolerance, a fraction of the baseline's value")


class WindowModel(_Closed):
    """A time window: ISO dates or times (UTC), end excluded; warm-up events from ``warmup_start``."""

    start: dt.date | dt.datetime | str = Field(description="first time in the window, e.g. 2013-01-01")
    end: dt.date | dt.datetime | str = Field(description="first time after the window, e.g. 2014-01-01")
    warmup_start: dt.date | dt.datetime | str | None = Field(
        None, description="warm indicators up from here (default: no warm-up)")

    @model_validator(mode="after")
    def _is_a_window(self):
        from pipelines.time_window import to_ns

        start_ns, end_ns = to_ns(self.start), to_ns(self.end)  # raise ValueError on an unreadable time
        if end_ns <= start_ns:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if self.warmup_start is not None and to_ns(self.warmup_start) > start_ns:
            raise ValueError(f"warmup_start {self.warmup_start} must not be after start {self.start}")
        return self


class RegressionModel(_Closed):
    """The pinned regression window and how close its backtest must stay to the recorded baseline."""

    window: WindowModel
    tolerances: dict[str, float | ToleranceModel] = Field(
        min_length=1, description="statistic (as in stats.json) → absolute tolerance, or {abs, rel}")


class ParityModel(_Closed):
    """The sample day of the batch/replay parity gate."""

    day: dt.date | str | None = Field(
        None, description="UTC date; default: the last day with events in the regression window (or history)")
    chunk_events: int = Field(
        1, ge=1, description="events per batch of the replayed run (1: one at a time, as a live session)")


class PromotionSettings(_Closed):
    """A spec's promotion settings (``<spec stem>.promotion.yaml``)."""

    regression: RegressionModel | None = None
    parity: ParityModel = Field(default_factory=ParityModel)


def sidecar_path(spec_path: str | Path) -> Path:
    """The promotion settings file of a spec: ``specs/x/foo.yaml`` → ``specs/x/foo.promotion.yaml``."""
    spec_path = Path(spec_path)
    return spec_path.with_name(spec_path.stem + SIDECAR_SUFFIX)


def load_settings(spec_path: str | Path) -> tuple[PromotionSettings, Path | None]:
    """Read a spec's promotion settings; ``(defaults, None)`` when it has no sidecar.

    Raises:
        SpecError: the sidecar is not valid YAML or not a valid ``PromotionSettings`` (file:line:col).
    """
    from pipelines.spec.yaml_source import read_yaml

    path = sidecar_path(spec_path)
    if not path.exists():
        return PromotionSettings(), None
    located = read_yaml(path)
    try:
        return PromotionSettings.model_validate(located.data), path
    except ValidationError as error:
        problems = []
        for e in error.errors():
            # pydantic names the member of a union a value failed ("float", "ToleranceModel"): not a key
            loc = tuple(p for p in e["loc"] if isinstance(p, int) or not _TYPE_TAG.match(p))
            if e["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}"
            elif e["type"] == "value_error":
                message = f"{'.'.join(map(str, loc))}: {e['ctx']['error']}"
            else:
                message = f"{'.'.join(map(str, loc))}: {e['msg']}"
            problems.append((located.where(loc), message))
        raise SpecError(list(dict.fromkeys(problems))) from None


_TYPE_TAG = re.compile(r"^(str|int|float|bool|date|datetime|none|list\[.*\]|dict\[.*\]|function-.*|[A-Z]\w*Model)$")


def _window_of(model: "WindowModel"):
    from pipelines.time_window import TimeWindow, to_ns

    return TimeWindow(start_ns=to_ns(model.start), end_ns=to_ns(model.end),
                      warmup_start_ns=to_ns(model.warmup_start) if model.warmup_start is not None else None)


def _tolerances(model: RegressionModel) -> dict[str, dict[str, float]]:
    return {stat: ({"abs": float(t), "rel": 0.0} if isinstance(t, (int, float)) else t.model_dump())
            for stat, t in model.tolerances.items()}


# --- gate results ----------------------------------------------------------------------------------------


@dataclass
class GateResult:
    """One gate's verdict: its name, pass or fail, one line a person reads, and the numbers behind it."""

    gate: str
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromotionResult:
    """A promotion attempt as recorded: passed (the stage now runs ``spec_hash``) or refused, with every gate."""

    id: int
    spec: str
    spec_hash: str
    stage: str
    passed: bool
    who: str
    at_utc: dt.datetime
    why: str
    gates: list[GateResult]
    previous_hash: str | None
    spec_path: str

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def format(self) -> str:
        """The attempt as text: one line per gate, then the verdict."""
        lines = [f"promote {self.spec} ({_short(self.spec_hash)}) to {self.stage}  by {self.who}, "
                 f"{_iso(self.at_utc)}" + (f": {self.why}" if self.why else "")]
        for gate in self.gates:
            lines.append(f"  {'PASS' if gate.passed else 'FAIL'}  {gate.gate:<10} {gate.detail}")
        if self.passed:
            before = f" (was {_short(self.previous_hash)})" if self.previous_hash else ""
            lines.append(f"promoted: {self.stage} now runs {self.spec} {_short(self.spec_hash)}{before}; record {self.id}")
        else:
            failed = ", ".join(g.gate for g in self.gates if not g.passed)
            lines.append(f"REFUSED ({failed}); recorded as {self.id}, {self.stage} still runs "
                         f"{_short(self.previous_hash) if self.previous_hash else 'nothing'}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["at_utc"] = _iso(self.at_utc)
        return data


def _short(spec_hash: str | None) -> str:
    return spec_hash[:12] if spec_hash else "—"


def _iso(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else "—"


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


# --- the registry ------------------------------------------------------------------------------------------


def registry_path(path: str | Path | None = None) -> Path:
    """The registry file: ``path``, else ``$TICKLOOM_REGISTRY``, else ``.tickloom/registry.duckdb``."""
    return Path(path or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY)


class Registry:
    """The promotion registry in one DuckDB file; every method opens and closes its own connection."""

    def __init__(self, path: str | Path | None = None):
        self.path = registry_path(path)

    @contextmanager
    def connect(self):
        """A short-lived connection with the tables created; waits up to 10 s while another process writes.

        Raises:
            PromotionError: the file stayed locked or is not a DuckDB database.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                connection = duckdb.connect(str(self.path))
                break
            except duckdb.Error as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise PromotionError(f"cannot open the registry {self.path}: {error}") from error
                time.sleep(0.05)
        try:
            connection.execute(TABLES_SQL)
            yield connection
        finally:
            connection.close()

    def _rows(self, sql: str, params: list | None = None) -> list[dict]:
        with self.connect() as connection:
            cursor = connection.execute(sql, params or [])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # promotions

    def record_promotion(self, *, spec: str, spec_hash: str, stage: str, action: str, passed: bool, who: str,
                         why: str, gates: list[GateResult], previous_hash: str | None,
                         spec_path: str) -> tuple[int, dt.datetime]:
        at_utc = _now_utc()
        with self.connect() as connection:
            row = connection.execute(
                "INSERT INTO promotions (spec, spec_hash, stage, action, passed, who, at_utc, why, gates, previous_hash, "
                "spec_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [spec, spec_hash, stage, action, passed, who, at_utc, why,
                 json.dumps([asdict(g) for g in gates], default=_json_default), previous_hash, spec_path],
            ).fetchone()
        return int(row[0]), at_utc

    def history(self, spec: str | None = None, stage: str | None = None) -> list[dict]:
        """Every promotion row (refusals included), oldest first, optionally of one spec and stage."""
        where, params = [], []
        if spec is not None:
            where.append("spec = ?")
            params.append(spec)
        if stage is not None:
            where.append("stage = ?")
            params.append(stage)
        sql = "SELECT * FROM promotions" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        rows = self._rows(sql, params)
        for row in rows:
            row["gates"] = json.loads(row["gates"])
        return rows

    def stack(self, spec: str, stage: str) -> list[dict]:
        """The rows that made each hash current, as a stack: a promotion pushes, a rollback pops and replaces the
        new top with itself (the row under which that hash runs again)."""
        stack: list[dict] = []
        for row in self.history(spec, stage):
            if not row["passed"]:
                continue
            if row["action"] == "rollback":
                stack.pop()
                stack[-1] = row
            else:
                stack.append(row)
        return stack

    def current(self, spec: str, stage: str) -> dict | None:
        """The row of the hash the stage runs now, or None."""
        stack = self.stack(spec, stage)
        return stack[-1] if stack else None

    # baselines

    def record_baseline(self, *, spec: str, spec_hash: str, window: dict, stats: dict, tolerances: dict, who: str,
                        why: str, spec_path: str) -> int:
        with self.connect() as connection:
            row = connection.execute(
                "INSERT INTO baselines (spec, spec_hash, regression_window, stats, tolerances, who, at_utc, why, spec_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [spec, spec_hash, json.dumps(window, sort_keys=True), json.dumps(stats), json.dumps(tolerances), who,
                 _now_utc(), why, spec_path],
            ).fetchone()
        return int(row[0])

    def baseline(self, spec: str, window: dict) -> dict | None:
        """The latest baseline of ``spec`` on exactly ``window``, or None."""
        rows = self._rows("SELECT * FROM baselines WHERE spec = ? AND regression_window = ? ORDER BY id DESC LIMIT 1",
                          [spec, json.dumps(window, sort_keys=True)])
        if not rows:
            return None
        row = rows[0]
        for key in ("regression_window", "stats", "tolerances"):
            row[key] = json.loads(row[key])
        return row

    def baseline_windows(self, spec: str) -> list[dict]:
        return [json.loads(r["regression_window"]) for r in
                self._rows("SELECT DISTINCT regression_window FROM baselines WHERE spec = ?", [spec])]

    # deployments (written by the live runtime)

    def start_deployment(self, spec: str, spec_hash: str, stage: str, pid: int | None = None,
                         host: str | None = None) -> int:
        """Record a session that starts running ``spec_hash`` at ``stage``; return its id for heartbeats."""
        now = _now_utc()
        with self.connect() as connection:
            row = connection.execute(
                "INSERT INTO deployments (spec, spec_hash, stage, pid, host, started_utc, heartbeat_utc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [spec, spec_hash, stage, pid if pid is not None else os.getpid(), host or socket.gethostname(), now, now],
            ).fetchone()
        return int(row[0])

    def heartbeat(self, deployment_id: int) -> None:
        """Say the session ``deployment_id`` is alive (call every few seconds; ``status`` calls it stale after 30 s)."""
        with self.connect() as connection:
            connection.execute("UPDATE deployments SET heartbeat_utc = ? WHERE id = ?", [_now_utc(), deployment_id])

    def end_deployment(self, deployment_id: int) -> None:
        """Record that the session ``deployment_id`` stopped."""
        with self.connect() as connection:
            connection.execute("UPDATE deployments SET ended_utc = ? WHERE id = ?", [_now_utc(), deployment_id])

    def deployments(self, running_only: bool = True) -> list[dict]:
        sql = "SELECT * FROM deployments" + (" WHERE ended_utc IS NULL" if running_only else "") + " ORDER BY id"
        return self._rows(sql)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _registry(registry: Registry | str | Path | None) -> Registry:
    return registry if isinstance(registry, Registry) else Registry(registry)


# --- gates ---------------------------------------------------------------------------------------------------


def validate_gate(spec_path: Path):
    """The spec loads and is a strategy. Returns ``(GateResult, LoadedSpec or None)``."""
    from pipelines.spec import load_spec

    try:
        spec = load_spec(spec_path)
    except TickloomError as error:
        return GateResult("validate", False, f"the spec does not load: {error}"), None
    if spec.model.kind != "strategy":
        return GateResult("validate", False, f"kind is {spec.model.kind!r}: only strategy specs are promoted"), spec
    warned = f"; {len(spec.warnings)} warning(s): {'; '.join(spec.warnings)}" if spec.warnings else ""
    return GateResult("validate", True, f"valid, {len(spec.nodes)} nodes, spec {_short(spec.spec_hash)}{warned}",
                      {"spec_hash": spec.spec_hash, "warnings": spec.warnings}), spec


def stage_gate(registry: Registry, spec, stage: str) -> GateResult:
    """The hash is not already at ``stage``; for live, it is the hash promoted to paper (no stage is skipped)."""
    current = registry.current(spec.name, stage)
    if current is not None and current["spec_hash"] == spec.spec_hash:
        return GateResult("stage", False, f"{_short(spec.spec_hash)} is already promoted to {stage} "
                                          f"(record {current['id']}, {_iso(current['at_utc'])})")
    if stage == "paper":
        return GateResult("stage", True, "research → paper")
    paper = registry.current(spec.name, "paper")
    if paper is None or paper["spec_hash"] != spec.spec_hash:
        on_paper = f"paper runs {_short(paper['spec_hash'])}" if paper else "nothing of it is promoted to paper"
        return GateResult("stage", False, f"live needs the hash promoted to paper first: {_short(spec.spec_hash)} is "
                                          f"not ({on_paper}); stages go research → paper → live")
    return GateResult("stage", True, f"paper → live (on paper since {_iso(paper['at_utc'])})")


def backtest_stats(spec_path: Path, window) -> tuple[dict, str]:
    """The numeric statistics of the spec's backtest on ``window`` and the spec's hash.

    Raises:
        PromotionError: the spec has no venue, so no backtest.
    """
    from pipelines.run import run_spec

    output = run_spec(spec_path, write=False, window=window)
    # a bar venue's BacktestResult or a tick venue's TickBacktestResult: both carry ``stats``
    summary = output.backtest or next((s for s in output.replay.summaries.values() if hasattr(s, "stats")), None)
    if summary is None:
        raise PromotionError(f"{output.spec.name} has no venue: its run has no backtest statistics to compare")
    stats = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in summary.stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    stats["events"] = output.replay.events
    return stats, output.spec.spec_hash


def regression_gate(registry: Registry, spec_path: Path, spec, settings: PromotionSettings) -> GateResult:
    """The backtest on the pinned window reproduces the latest baseline within its tolerances."""
    if settings.regression is None:
        return GateResult("regression", False, f"no regression window declared: add `regression:` (window, "
                                               f"tolerances) to {sidecar_path(spec_path)}")
    window = _window_of(settings.regression.window)
    baseline = registry.baseline(spec.name, window.as_dict())
    if baseline is None:
        known = registry.baseline_windows(spec.name)
        others = f" (baselines exist for other windows: {known})" if known else ""
        return GateResult("regression", False, f"no baseline recorded for {spec.name} on {window}{others}; "
                                               f"record one with `tickloom baseline {spec_path}`",
                          {"window": window.as_dict()})
    try:
        stats, _ = backtest_stats(spec_path, window)
    except TickloomError as error:
        return GateResult("regression", False, str(error))
    checked, failures = compare_stats(stats, baseline["stats"], baseline["tolerances"])
    data = {"window": window.as_dict(), "baseline_id": baseline["id"], "baseline_hash": baseline["spec_hash"],
            "compared": checked}
    since = (f"baseline {baseline['id']} of {_short(baseline['spec_hash'])}"
             + (" (this hash)" if baseline["spec_hash"] == spec.spec_hash else " (another hash: the spec changed since)"))
    if _tolerances(settings.regression) != baseline["tolerances"]:
        since += "; note: the sidecar's tolerances differ from the baseline's, record a new baseline to use them"
    if failures:
        return GateResult("regression", False, f"{'; '.join(failures)} vs {since}", data)
    return GateResult("regression", True, f"{len(checked)} statistics within tolerance of {since}", data)


def compare_stats(stats: dict, baseline: dict, tolerances: dict) -> tuple[dict, list[str]]:
    """Each toleranced statistic now vs its baseline: ``({stat: {now, baseline, allowed}}, [failures])``."""
    checked, failures = {}, []
    for stat, tolerance in tolerances.items():
        base, now = baseline.get(stat, "missing"), stats.get(stat, "missing")
        if base == "missing" or now == "missing":
            failures.append(f"{stat}: missing from the {'baseline' if base == 'missing' else 'run'}")
            continue
        allowed = tolerance["abs"] + tolerance["rel"] * abs(base or 0.0)
        checked[stat] = {"now": now, "baseline": base, "allowed": allowed}
        if base is None or now is None:
            if base is not now:
                failures.append(f"{stat}: {now} now vs {base}")
            continue
        if abs(now - base) > allowed:
            failures.append(f"{stat}: {now:.6g} now vs {base:.6g} (allowed ±{allowed:.3g})")
    return checked, failures


def parity_gate(spec_path: Path, spec, settings: PromotionSettings) -> GateResult:
    """Batch and replay agree on the sample day D, bit for bit (NaN equals NaN).

    Three runs of the spec, every stream node recorded:

    - **batch**: the whole history in default chunks (``run_spec``, no window), as a backtest runs;
    - **replay**: the history cut at the end of D (``TimeWindow(end_ns=D+1)``, nothing after D is read) fed
      ``parity.chunk_events`` events at a time (default 1, as a live session drives the plan);
    - **window**: D alone (``run_spec(window=TimeWindow(D, D+1, warmup_start_ns=first event))``), warmed up
      on every event before D.

    Passes when, on every event received during D, replay equals batch for every stream node and port (the
    decisions: orders, targets, the account), and window equals batch for every node outside the account (the
    signals). The account nodes (a venue and every node reading it, ``pipelines.time_window.account_nodes``)
    restart flat at a window's start by design, so window runs are not compared on them.
    """
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.run import run_spec
    from pipelines.time_window import TimeWindow, account_nodes, event_times

    times = event_times(spec)
    if len(times) == 0:
        return GateResult("parity", False, "the spec's sources have no events")
    try:
        day_ns = _sample_day(settings, times)
    except ValueError as error:
        return GateResult("parity", False, str(error))
    day_end_ns = day_ns + DAY_NS
    on_day = int(((times >= day_ns) & (times < day_end_ns)).sum())
    day = _iso(dt.datetime.fromtimestamp(day_ns / 1e9, dt.UTC))[:10]
    if on_day == 0:
        return GateResult("parity", False, f"no event on the sample day {day}: choose a day with events (parity.day)")
    graph = spec.graph
    stream = [n for n in graph.order if graph.nodes[n].op.kind == "stream"]
    account = set(account_nodes(graph))
    batch = run_spec(spec_path, write=False, record=stream).replay.recorded
    chunked = spec.model.model_copy(update={"defaults": spec.model.defaults.model_copy(
        update={"chunk_events": settings.parity.chunk_events})})
    streamed = replay(compile_plan(replace(spec, model=chunked), record=stream),
                      window=TimeWindow(end_ns=day_end_ns), summarize=False).recorded
    first_ns = int(times[0])
    window = TimeWindow(start_ns=day_ns, end_ns=day_end_ns, warmup_start_ns=first_ns if first_ns < day_ns else None)
    windowed = run_spec(spec_path, write=False, record=stream, window=window).replay.recorded
    differences = []
    for node_id in stream:
        expected = _day_rows(batch[node_id], day_ns, day_end_ns)
        differences += _differences(node_id, "replay", expected, _day_rows(streamed[node_id], day_ns, day_end_ns))
        if node_id not in account:
            differences += _differences(node_id, "window", expected, _day_rows(windowed[node_id], day_ns, day_end_ns))
    data = {"day": day, "events": on_day, "nodes": stream, "account_nodes": sorted(account),
            "chunk_events": settings.parity.chunk_events, "differences": differences[:20]}
    if differences:
        return GateResult("parity", False, f"{day}: {len(differences)} difference(s), first: {differences[0]}", data)
    return GateResult("parity", True, f"{day}: {on_day} event(s), {len(stream)} stream nodes equal in batch and "
                                      f"replay ({settings.parity.chunk_events}-event batches), "
                                      f"{len(stream) - len(account & set(stream))} signal nodes equal in a window run",
                      data)


def _sample_day(settings: PromotionSettings, times: np.ndarray) -> int:
    from pipelines.time_window import to_ns

    if settings.parity.day is not None:
        return to_ns(settings.parity.day) // DAY_NS * DAY_NS
    last = int(times[-1])
    if settings.regression is not None:
        window = _window_of(settings.regression.window)
        inside = times[(times >= window.start_ns) & (times < window.end_ns)]
        if len(inside):
            last = int(inside[-1])
    return last // DAY_NS * DAY_NS


def _day_rows(frame: pl.DataFrame, start_ns: int, end_ns: int) -> pl.DataFrame:
    return frame.filter((pl.col("ts_recv") >= start_ns) & (pl.col("ts_recv") < end_ns))


def _differences(node_id: str, run: str, expected: pl.DataFrame, got: pl.DataFrame) -> list[str]:
    if expected.height != got.height:
        return [f"{node_id}: {expected.height} event(s) in batch, {got.height} in {run}"]
    found = []
    for column in expected.columns:
        a, b = expected[column].to_numpy(), got[column].to_numpy()
        if a.dtype.kind == "f":
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            same = a == b
        if not np.all(same):
            row = int(np.argmin(same))
            found.append(f"{node_id}.{column} at ts_recv {expected['ts_recv'][row]}: batch {a[row]!r}, {run} {b[row]!r}")
    return found


def risk_gate(spec, stage: str) -> GateResult:
    """Pre-trade risk nodes with size limits cover every traded instrument; for live, every order passes one.

    The traded instruments are those of the sources a venue runs on (every source's without a venue). A risk
    node is a node of a ``RISK_OPS`` op with at least one of its size limits set; it covers the instruments of
    the sources it runs on.
    """
    installed = [op for op in RISK_OPS if spec.registry.get(op) is not None]
    if not installed:
        return GateResult("risk", False, f"no pre-trade risk op is installed ({', '.join(RISK_OPS)}): no risk limits "
                                         "can exist")
    graph = spec.graph
    venues = graph.venues()
    traded = _instruments(graph, venues) if venues else list(graph.instruments)
    limits = {n: _size_limits(graph.nodes[n]) for n in graph.order if graph.nodes[n].op.name in RISK_OPS}
    unlimited = [n for n, set_limits in limits.items() if not set_limits]
    risks = [n for n, set_limits in limits.items() if set_limits]
    if not risks:
        why = (f"{', '.join(unlimited)} set{'s' if len(unlimited) == 1 else ''} no size limit" if unlimited
               else f"no {' or '.join(installed)} node")
        return GateResult("risk", False, f"no risk limits for {', '.join(traded) or 'any instrument'}: {why}",
                          {"traded": traded, "unlimited": unlimited})
    covered = _instruments(graph, risks)
    missing = [i for i in traded if i not in covered]
    orders = graph.order_nodes(venues)
    unguarded = [o for o in orders if not set(risks) & (_ancestors(graph, o) | {o})]
    data = {"traded": traded, "covered": covered, "limits": {n: limits[n] | {"instruments": _instruments(graph, [n])}
                                                             for n in risks},
            "unlimited": unlimited, "order_nodes": orders, "unguarded": unguarded}
    if missing:
        return GateResult("risk", False, f"no risk limits for {', '.join(missing)} (risk nodes {', '.join(risks)} "
                                         f"cover {', '.join(covered) or 'nothing'})", data)
    path_note = (f"orders of {', '.join(unguarded)} do not pass a risk node" if unguarded
                 else "every order passes a risk node")
    if unguarded and stage == "live":
        return GateResult("risk", False, f"live needs every order checked: {path_note}", data)
    return GateResult("risk", True, f"limits for {', '.join(traded)} ({', '.join(risks)}); {path_note}", data)


def _size_limits(node) -> dict:
    params = node.definition.params
    return {name: getattr(params, name) for name in RISK_OPS[node.op.name] if getattr(params, name, None) is not None}


def _instruments(graph, node_ids: list[str]) -> list[str]:
    names: list[str] = []
    for source in graph.sources:
        if any(source in graph.nodes[n].sources for n in node_ids):
            names += [i for i in graph.source_instruments[source] if i not in names]
    return names


def _ancestors(graph, node_id: str) -> set[str]:
    """Nodes ``node_id`` reads within the event, directly or through others (feedback edges left out)."""
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        for arg in graph.nodes[todo.pop()].args:
            if not arg.delayed and arg.node not in seen:
                seen.add(arg.node)
                todo.append(arg.node)
    return seen


def latency_gate(spec, stage: str) -> GateResult:
    """The placement meets ``placement.latency_budget``; no budget passes for paper and fails for live."""
    from pipelines.placement import place_spec

    settings = spec.model.placement
    if settings is None or settings.latency_budget is None:
        why = "no latency budget declared (placement.latency_budget)"
        return GateResult("latency", stage == "paper",
                          f"{why}: fine for paper, live needs one" if stage == "paper" else f"{why}: live needs one")
    try:
        _, report = place_spec(spec)
    except TickloomError as error:
        return GateResult("latency", False, f"no placement: {error}")
    p = report.placement
    data = {"tick_to_trade_ns": p.tick_to_trade_ns, "budget_ns": p.budget_ns, "slack_ns": p.slack_ns,
            "assignment": dict(p.assignment)}
    text = f"modeled tick-to-trade {p.tick_to_trade_ns:,.0f} ns, budget {p.budget_ns:,.0f} ns"
    if not (p.feasible and p.budget_met):
        return GateResult("latency", False, f"{text}: over budget{f' ({p.problem})' if p.problem else ''}", data)
    return GateResult("latency", True, f"{text}, slack {p.slack_ns:,.0f} ns", data)


# --- the operations ----------------------------------------------------------------------------------------


def promote(spec_path: str | Path, to_stage: str, by: str | None = None, reason: str = "",
            registry: Registry | str | Path | None = None) -> PromotionResult:
    """Run every gate for promoting the spec at ``spec_path`` to ``to_stage`` and record the outcome.

    The stage's hash changes only when every gate passes; a refusal is recorded too. ``by`` defaults to
    ``$USER``.

    Raises:
        PromotionError: ``to_stage`` is not paper or live; the registry cannot be opened.
        SpecError: the promotion sidecar is invalid.
    """
    if to_stage not in PROMOTED_STAGES:
        raise PromotionError(f"cannot promote to {to_stage!r}: the stages are {' → '.join(STAGES)} "
                             f"(promote to {' or '.join(PROMOTED_STAGES)})")
    registry = _registry(registry)
    spec_path = Path(spec_path)
    validated, spec = validate_gate(spec_path)
    if spec is None:
        name, spec_hash = _name_of(spec_path), ""
        gates = [validated] + [GateResult(g, False, "not run: the spec does not load")
                               for g in ("stage", "regression", "parity", "risk", "latency")]
    else:
        name, spec_hash = spec.name, spec.spec_hash
        gates = [validated, stage_gate(registry, spec, to_stage)]
        try:
            settings, settings_file = load_settings(spec_path)
        except SpecError as error:
            gates += [GateResult(g, False, f"the promotion file is invalid: {error}") for g in ("regression", "parity")]
        else:
            gates += [_guarded("regression", lambda: regression_gate(registry, spec_path, spec, settings)),
                      _guarded("parity", lambda: parity_gate(spec_path, spec, settings))]
        gates += [_guarded("risk", lambda: risk_gate(spec, to_stage)),
                  _guarded("latency", lambda: latency_gate(spec, to_stage))]
    previous = registry.current(name, to_stage)
    passed = all(g.passed for g in gates)
    who = _who(by)
    record_id, at_utc = registry.record_promotion(
        spec=name, spec_hash=spec_hash, stage=to_stage, action="promote", passed=passed, who=who, why=reason,
        gates=gates, previous_hash=previous["spec_hash"] if previous else None, spec_path=str(spec_path))
    return PromotionResult(record_id, name, spec_hash, to_stage, passed, who, at_utc, reason, gates,
                           previous["spec_hash"] if previous else None, str(spec_path))


def _guarded(gate: str, run) -> GateResult:
    """Run a gate; a spec or data error inside it fails that gate (with the error) instead of the promotion."""
    try:
        return run()
    except TickloomError as error:
        return GateResult(gate, False, f"{type(error).__name__}: {error}")


def _name_of(spec_path: Path) -> str:
    """The spec's name as written, for recording a spec that does not load (its file stem if unreadable)."""
    try:
        import yaml

        data = yaml.safe_load(spec_path.read_text())
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            return data["name"]
    except (OSError, ValueError, yaml.YAMLError):
        pass
    return spec_path.stem


def record_baseline(spec_path: str | Path, by: str | None = None, reason: str = "",
                    registry: Registry | str | Path | None = None) -> dict:
    """Backtest the spec on its regression window and record the statistics as its baseline.

    Raises:
        PromotionError: no sidecar with a ``regression`` section, or the spec has no venue.
        SpecError, GraphError, DataQualityError: the spec, its sidecar or its data is wrong.
    """
    spec_path = Path(spec_path)
    settings, settings_file = load_settings(spec_path)
    if settings.regression is None:
        raise PromotionError(f"no regression window declared for {spec_path}: write {sidecar_path(spec_path)} "
                             "with `regression: {window: {start, end}, tolerances: {...}}`")
    window = _window_of(settings.regression.window)
    stats, spec_hash = backtest_stats(spec_path, window)
    from pipelines.spec import load_spec

    name = load_spec(spec_path).name
    tolerances = _tolerances(settings.regression)
    missing = [s for s in tolerances if s not in stats]
    if missing:
        raise SpecError.at(SourceLocation(str(settings_file), 0, 0),
                           f"regression.tolerances: no statistic {', '.join(map(repr, missing))}; the backtest has "
                           f"{', '.join(sorted(stats))}")
    baseline_id = _registry(registry).record_baseline(
        spec=name, spec_hash=spec_hash, window=window.as_dict(), stats=stats, tolerances=tolerances, who=_who(by),
        why=reason, spec_path=str(spec_path))
    return {"id": baseline_id, "spec": name, "spec_hash": spec_hash, "window": window.as_dict(), "stats": stats,
            "tolerances": tolerances}


def rollback(spec: str, stage: str, by: str | None = None, reason: str = "",
             registry: Registry | str | Path | None = None) -> dict:
    """Return ``stage`` of ``spec`` (a name) to the hash promoted before the current one; record it; return the row.

    Rolling back twice goes two promotions back. Gates are not run again: the hash passed them when promoted.

    Raises:
        PromotionError: a bad stage, or nothing to roll back to.
    """
    if stage not in PROMOTED_STAGES:
        raise PromotionError(f"cannot roll back {stage!r}: only {' and '.join(PROMOTED_STAGES)} have promotions")
    registry = _registry(registry)
    stack = registry.stack(spec, stage)
    if len(stack) < 2:
        now = (f"it runs {_short(stack[-1]['spec_hash'])}, the first hash promoted there" if stack
               else "nothing was promoted")
        raise PromotionError(f"cannot roll back {spec} on {stage}: no earlier promoted hash ({now})")
    current, target = stack[-1], stack[-2]
    why = reason or f"rollback from {_short(current['spec_hash'])}"
    gates = [GateResult("rollback", True, f"{_short(current['spec_hash'])} → {_short(target['spec_hash'])} "
                                          f"(promoted {_iso(target['at_utc'])} by {target['who']})")]
    record_id, at_utc = registry.record_promotion(
        spec=spec, spec_hash=target["spec_hash"], stage=stage, action="rollback", passed=True, who=_who(by), why=why,
        gates=gates, previous_hash=current["spec_hash"], spec_path=target["spec_path"])
    return {"id": record_id, "spec": spec, "stage": stage, "spec_hash": target["spec_hash"],
            "previous_hash": current["spec_hash"], "who": _who(by), "at_utc": at_utc, "why": why}


def require_promoted(spec_hash: str, stage: str, registry: Registry | str | Path | None = None,
                     spec: str | None = None) -> dict:
    """Return the promotion row under which ``spec_hash`` may run at ``stage`` (``tickloom live`` calls this).

    Raises:
        PromotionError: ``spec_hash`` is not the hash currently promoted to ``stage`` (for ``spec`` when given);
            the message names the spec, the hash, the stage and what is promoted there instead.
    """
    if stage not in PROMOTED_STAGES:
        raise PromotionError(f"cannot run at stage {stage!r}: sessions run at {' or '.join(PROMOTED_STAGES)}")
    registry = _registry(registry)
    names = [spec] if spec is not None else sorted({r["spec"] for r in registry.history(stage=stage)})
    for name in names:
        current = registry.current(name, stage)
        if current is not None and current["spec_hash"] == spec_hash:
            return current
    label = spec or "any spec"
    if spec is not None:
        current = registry.current(spec, stage)
        instead = (f"{stage} runs {_short(current['spec_hash'])}, promoted {_iso(current['at_utc'])} by "
                   f"{current['who']}" if current else f"nothing of {spec} is promoted to {stage}")
    else:
        instead = "no spec has it promoted there"
    raise PromotionError(f"refusing to run {label} hash {_short(spec_hash)} at {stage}: it is not promoted to "
                         f"{stage} ({instead}); promote it with `tickloom promote SPEC --to {stage}` "
                         f"(registry {registry.path})")


@dataclass
class Status:
    """What is promoted where, and which sessions run what."""

    registry: Path
    promoted: list[dict]  # one row per spec and stage: the current hash
    deployments: list[dict]  # running sessions, each with ``state`` and ``promoted`` (its hash is the current one)

    def format(self) -> str:
        lines = [f"registry {self.registry}"]
        if not self.promoted:
            lines.append("nothing promoted yet (every spec is in research)")
        else:
            lines.append(f"{'spec':<24} {'stage':<6} {'hash':<13} {'since':<21} {'by':<12} why")
            for row in self.promoted:
                lines.append(f"{row['spec']:<24} {row['stage']:<6} {_short(row['spec_hash']):<13} "
                             f"{_iso(row['since_utc']):<21} {row['who']:<12} {row['why']}")
        lines.append("")
        if not self.deployments:
            lines.append("no session running")
        else:
            lines.append(f"{'spec':<24} {'stage':<6} {'hash':<13} {'host':<16} {'pid':>7} {'started':<21} heartbeat")
            for row in self.deployments:
                flags = [row["state"]] + ([] if row["promoted"] else ["NOT the promoted hash: restart or roll back"])
                lines.append(f"{row['spec']:<24} {row['stage']:<6} {_short(row['spec_hash']):<13} {row['host']:<16} "
                             f"{row['pid']:>7} {_iso(row['started_utc']):<21} {row['heartbeat_age_s']:.0f} s ago "
                             f"({', '.join(flags)})")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        convert = lambda rows: [{k: (_iso(v) if isinstance(v, dt.datetime) else v) for k, v in r.items()}  # noqa: E731
                                for r in rows]
        return {"registry": str(self.registry), "promoted": convert(self.promoted),
                "deployments": convert(self.deployments)}


def status(registry: Registry | str | Path | None = None, stale_after_s: float = HEARTBEAT_STALE_S) -> Status:
    """The current hash of every spec at every stage, and every session not recorded as ended."""
    registry = _registry(registry)
    promoted = []
    for name in sorted({r["spec"] for r in registry.history()}):
        for stage in PROMOTED_STAGES:
            current = registry.current(name, stage)
            if current is None:
                continue
            promoted.append({"spec": name, "stage": stage, "spec_hash": current["spec_hash"],
                             "since_utc": current["at_utc"], "who": current["who"], "why": current["why"],
                             "action": current["action"], "record": current["id"], "spec_path": current["spec_path"]})
    now = _now_utc()
    current_hash = {(r["spec"], r["stage"]): r["spec_hash"] for r in promoted}
    deployments = []
    for row in registry.deployments():
        age_s = (now - row["heartbeat_utc"]).total_seconds()
        alive = age_s <= stale_after_s
        deployments.append({**row, "heartbeat_age_s": age_s, "state": "running" if alive else "stale",
                            "promoted": current_hash.get((row["spec"], row["stage"])) == row["spec_hash"]})
    return Status(registry.path, promoted, deployments)
