"""``source.control``: operator commands and runtime measurements as events of the graph, from a JSON-lines file.

One command per line::

    {"ts": "2024-08-09T00:00:05Z", "command": "resume", "operator": "alice", "reason": "feed checked"}
    {"ts": 1723161260000000000, "command": "halt", "operator": "bob", "reason": "exchange notice"}
    {"ts": 1723161261000000000, "command": "latency", "latency": "7ms"}
    {"ts": 1723161262000000000, "command": "heartbeat"}

``ts`` is int ns UTC or an ISO-8601 time with its offset (``Z``); lines must not go back in time. Commands
(``nodes.risk.codes``): ``resume``, ``halt``, ``flatten`` (each needs ``operator`` and ``reason``),
``heartbeat`` (a tick of the runtime's clock, so a silent market is seen as stale) and ``latency`` (a
measured latency: a duration such as ``7ms`` or int ns). Blank lines are skipped.

Ports (int64): ``command`` (code), ``seq`` (the line number: a control event is one whose seq changed),
``operator`` and ``reason`` (codes into the file's text table, 0 for none: ``control_texts(path)`` or the
reader's ``texts``), ``latency_ns`` (-1 when the line has none). ``ts_event`` = ``ts_recv`` = ``ts``.

A replay reads the file whole; a missing file is no commands (a backtest usually has none), not an error.
``follow: true`` tails the file: new complete lines become events as they are written. A live session (which
follows the file whatever the spec says) takes them with ``poll()``, without waiting, at most every
``poll_interval``: each line taken is stamped ``ts_recv`` = the wall time it was taken (when the runtime
learnt of it; lines taken together share it) and keeps its ``ts`` as ``ts_event``, so the session's recorded
inputs replay the command exactly where the session saw it. ``append_command`` writes a line durably (what
``tickloom resume`` calls).
"""

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import Field

from nodes.backtest.tick.latency import Duration, duration_ns
from nodes.contract import I64, OpParams, SourceOp
from nodes.errors import DataQualityError
from nodes.risk.codes import CMD_FLATTEN, CMD_HALT, CMD_HEARTBEAT, CMD_LATENCY, CMD_RESUME

COMMANDS = {"resume": CMD_RESUME, "halt": CMD_HALT, "flatten": CMD_FLATTEN, "heartbeat": CMD_HEARTBEAT,
            "latency": CMD_LATENCY}
_NEEDS_OPERATOR = {"resume", "halt", "flatten"}
PORTS = ("command", "seq", "operator", "reason", "latency_ns")


class ControlParams(OpParams):
    path: str = Field(description="the JSON-lines control file, relative to the spec's folder; a missing file "
                      "means no commands")
    follow: bool = Field(False, description="tail the file for new lines (a live session); false: read it whole")
    poll_interval: Duration = Field("100ms", description="how often a followed file is checked for new lines")
    instrument: str = Field("control", description="the instrument name of control events")


class ControlSource(SourceOp):
    """Read operator commands (resume, halt, flatten) and runtime measurements (heartbeat, latency) as events.

    See the module docstring for the file format. Events are ordered by their ``ts``; the circuit breaker reads
    the ports (``control.command``, ``control.seq``, ...) and resumes only on a ``resume`` event.

    Raises ``DataQualityError`` naming the file and line for a line that is not a JSON object, an unknown
    command, a missing operator/reason/latency, a bad time, or a time before the previous line's.

    Example::

        control: {op: source.control, with: {path: control/market_making_paper.jsonl}}
    """

    name = "source.control"
    Params = ControlParams
    outputs = {port: I64 for port in PORTS}

    @classmethod
    def instruments(cls, params: ControlParams, base_dir: Path) -> list[str]:
        return [params.instrument]

    @classmethod
    def open(cls, params: ControlParams, base_dir: Path) -> "ControlReader":
        path = Path(base_dir) / params.path
        return ControlReader(path, params.instrument, params.follow, duration_ns(params.poll_interval) / 1e9)


class ControlReader:
    """An opened control file: ``instruments``, ``texts`` (the text table: operators and reasons, ``texts[0]``
    is empty) and ``chunks``."""

    def __init__(self, path: Path, instrument: str, follow: bool = False, poll_s: float = 0.1):
        self.path = path
        self.instruments = [instrument]
        self.follow = follow
        self.poll_s = poll_s
        self.texts: list[str] = [""]
        self._text_codes = {"": 0}
        self._last_ts = None
        self._offset, self._line_no = 0, 1  # where the lines not taken yet start
        self._next_look_ns = 0  # poll: the monotonic time of the next look at the file
        self._read_whole = False
        self._skip = 0  # rows still to pass over: the lines a resumed session had taken already

    def skip(self, rows: int) -> None:
        """Pass over the first ``rows`` rows (parsed, so operators and reasons keep their codes): a resumed live
        session continues after the commands it had taken."""
        self._skip = rows

    @property
    def endless(self) -> bool:
        """A followed file never ends: a session does not wait for it to."""
        return self.follow

    @property
    def ended(self) -> bool:
        """True once a file read whole (no follow) was taken by ``poll``."""
        return self._read_whole

    def poll(self) -> dict[str, np.ndarray] | None:
        """Take the lines completed since the last look, without waiting (None: nothing new, or not time yet).

        Following, the file is looked at no more often than every ``poll_interval`` (``next_poll_ns``); the lines
        taken are stamped ``ts_recv`` = now (``time.time_ns``), ``ts_event`` = their ``ts``. Not following, the
        first call takes the whole file with its times, and the reader has ended.

        Raises:
            DataQualityError: a bad line (named with file and line).
        """
        if not self.follow:
            if self._read_whole:
                return None
            self._read_whole = True
            rows = self._new_rows()
            return _columns(rows) if rows else None
        now = time.monotonic_ns()
        if now < self._next_look_ns:
            return None
        self._next_look_ns = now + int(self.poll_s * 1e9)
        rows = self._new_rows()
        if not rows:
            return None
        columns = _columns(rows)
        columns["ts_recv"] = np.full(len(rows), time.time_ns(), np.int64)
        return columns

    def next_poll_ns(self) -> int | None:
        """When ``poll`` looks at a followed file next (``time.monotonic_ns``); None when not following."""
        return self._next_look_ns if self.follow else None

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        if self.follow:
            yield from self._tail(max_rows)
            return
        if not self.path.exists():
            return
        rows = [row for row in self._rows(self.path.read_bytes(), 1) if row is not None]
        for start in range(0, len(rows), max_rows):
            yield _columns(rows[start:start + max_rows])

    def _tail(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        while True:
            rows = self._new_rows()
            if not rows:
                time.sleep(self.poll_s)
            for start in range(0, len(rows), max_rows):
                yield _columns(rows[start:start + max_rows])

    def _new_rows(self) -> list[tuple]:
        """Parse the complete lines written since the last call (a line still being written waits for its
        newline); blank lines give no row."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self._offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            data = handle.read(size - self._offset)
        complete = data[:data.rfind(b"\n") + 1] if self.follow else data
        if not complete:
            return []
        rows = [row for row in self._rows(complete, self._line_no) if row is not None]
        self._offset += len(complete)
        self._line_no += complete.count(b"\n")
        passed = min(self._skip, len(rows))
        self._skip -= passed
        return rows[passed:]

    def _rows(self, data: bytes, first_line: int):
        for index, raw in enumerate(data.decode("utf-8").split("\n")):
            if raw.strip():
                yield self._parse(raw, first_line + index)

    def _parse(self, raw: str, line_no: int) -> tuple:
        where = f"{self.path}:{line_no}"
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DataQualityError(f"{where}: not a JSON object ({error.msg})") from None
        if not isinstance(item, dict):
            raise DataQualityError(f"{where}: not a JSON object")
        name = item.get("command")
        if name not in COMMANDS:
            raise DataQualityError(f"{where}: unknown command {name!r}; expected one of {', '.join(COMMANDS)}")
        ts = _timestamp_ns(item.get("ts"), where)
        if self._last_ts is not None and ts < self._last_ts:
            raise DataQualityError(f"{where}: ts {ts} is before the previous line's ({self._last_ts}); control "
                                   "lines must be in time order")
        self._last_ts = ts
        operator = reason = 0
        if name in _NEEDS_OPERATOR:
            operator = self._text(item.get("operator"), "operator", where)
            reason = self._text(item.get("reason"), "reason", where)
        latency_ns = -1
        if name == "latency" or "latency" in item:
            try:
                latency_ns = duration_ns(item["latency"])
            except (KeyError, ValueError) as error:
                raise DataQualityError(f"{where}: 'latency' must be a duration such as 7ms or int ns "
                                       f"({error})") from None
        return ts, COMMANDS[name], line_no, operator, reason, latency_ns

    def _text(self, value, field: str, where: str) -> int:
        if not isinstance(value, str) or not value.strip():
            raise DataQualityError(f"{where}: a command that changes the risk state needs a non-empty {field!r}")
        code = self._text_codes.get(value)
        if code is None:
            code = self._text_codes[value] = len(self.texts)
            self.texts.append(value)
        return code


def _timestamp_ns(value, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            since = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
            return (since // dt.timedelta(microseconds=1)) * 1_000
    raise DataQualityError(f"{where}: 'ts' must be int ns UTC or an ISO-8601 time with its offset "
                           f"(2024-08-09T00:00:05Z), not {value!r}")


def _columns(rows: list[tuple]) -> dict[str, np.ndarray]:
    table = np.array(rows, dtype=np.int64).reshape(-1, 6)
    columns = {"ts_event": table[:, 0].copy(), "ts_recv": table[:, 0].copy(),
               "instrument": np.zeros(len(rows), np.int32)}
    for index, port in enumerate(PORTS):
        columns[port] = table[:, index + 1].copy()
    return columns


def control_texts(path: Path | str) -> list[str]:
    """The text table of a control file (operators and reasons by code; code 0 is the empty text)."""
    reader = ControlReader(Path(path), "control")
    for _ in reader.chunks(1 << 16):
        pass
    return reader.texts


def append_command(path: Path | str, command: str, operator: str = "", reason: str = "",
                   ts_ns: int | None = None, latency: str | int | None = None) -> dict:
    """Append one command to a control file durably (written and fsynced before returning); return the line.

    Raises ValueError for an unknown command, or a resume/halt/flatten without operator and reason.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    if command in _NEEDS_OPERATOR and not (operator.strip() and reason.strip()):
        raise ValueError(f"{command} needs an operator and a reason (they are logged with the state change)")
    item: dict = {"ts": time.time_ns() if ts_ns is None else int(ts_ns), "command": command}
    if operator:
        item["operator"] = operator
    if reason:
        item["reason"] = reason
    if latency is not None:
        duration_ns(latency)
        item["latency"] = latency
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(item, separators=(",", ":")) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return item
