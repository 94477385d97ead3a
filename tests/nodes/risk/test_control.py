"""source.control: the JSON-lines command file read whole or tailed, its text table, errors with lines, and
durable appends."""

import json
import threading
import time

import numpy as np
import pytest

from nodes.contract import default_registry
from nodes.errors import DataQualityError
from nodes.risk.codes import CMD_HEARTBEAT, CMD_LATENCY, CMD_RESUME, COMMAND_NAMES
from nodes.risk.control import append_command, control_texts
from tests.nodes.op_examples import docstring_example

OP = default_registry().get("source.control")


def _read(folder, lines: list, **params) -> dict:
    path = folder / "control.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    reader = OP.open(OP.Params(path="control.jsonl", **params), folder)
    chunks = list(reader.chunks(2))
    if not chunks:
        return {}
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def test_commands_become_events_with_codes_line_numbers_and_a_text_table(tmp_path):
    columns = _read(tmp_path, [
        {"ts": "2024-08-09T00:00:05Z", "command": "halt", "operator": "alice", "reason": "exchange notice"},
        "",
        {"ts": 1723161605000000000, "command": "heartbeat"},
        {"ts": 1723161606000000000, "command": "latency", "latency": "7ms"},
        {"ts": "2024-08-09T00:00:06.5+00:00", "command": "resume", "operator": "alice", "reason": "checked"},
    ])
    assert columns["ts_recv"].tolist() == [1723161605000000000, 1723161605000000000, 1723161606000000000,
                                           1723161606500000000]
    assert (columns["ts_event"] == columns["ts_recv"]).all() and columns["instrument"].dtype == np.int32
    assert [COMMAND_NAMES[c] for c in columns["command"]] == ["halt", "heartbeat", "latency", "resume"]
    assert columns["seq"].tolist() == [1, 3, 4, 5]  # the file's line numbers: a blank line is skipped
    assert columns["latency_ns"].tolist() == [-1, -1, 7_000_000, -1]
    texts = control_texts(tmp_path / "control.jsonl")
    assert texts == ["", "alice", "exchange notice", "checked"]
    assert [texts[c] for c in columns["operator"]] == ["alice", "", "", "alice"]
    assert [texts[c] for c in columns["reason"]] == ["exchange notice", "", "", "checked"]


def test_a_missing_file_is_no_commands(tmp_path):
    reader = OP.open(OP.Params(path="nowhere.jsonl"), tmp_path)
    assert list(reader.chunks(100)) == [] and OP.instruments(OP.Params(path="x"), tmp_path) == ["control"]


@pytest.mark.parametrize("line, message", [
    ("not json", "control.jsonl:2: not a JSON object"),
    ({"ts": 5, "command": "reboot"}, "control.jsonl:2: unknown command 'reboot'"),
    ({"ts": 5, "command": "resume", "operator": "bob"}, "control.jsonl:2: .* needs a non-empty 'reason'"),
    ({"ts": "2024-08-09T00:00:05", "command": "heartbeat"}, "control.jsonl:2: 'ts' must be int ns UTC"),
    ({"ts": 0, "command": "heartbeat"}, "control.jsonl:2: ts 0 is before the previous line's"),
    ({"ts": 5, "command": "latency"}, "control.jsonl:2: 'latency' must be a duration"),
])
def test_bad_lines_name_the_file_and_line(tmp_path, line, message):
    with pytest.raises(DataQualityError, match=message):
        _read(tmp_path, [{"ts": 1, "command": "heartbeat"}, line])


def test_append_command_writes_a_line_the_source_reads_and_refuses_an_anonymous_resume(tmp_path):
    path = tmp_path / "ops" / "control.jsonl"
    append_command(path, "resume", operator="carol", reason="drawdown reviewed", ts_ns=10)
    append_command(path, "latency", latency="2ms", ts_ns=11)
    reader = OP.open(OP.Params(path="ops/control.jsonl"), tmp_path)
    chunk = next(iter(reader.chunks(10)))
    assert chunk["command"].tolist() == [CMD_RESUME, CMD_LATENCY] and reader.texts[1:] == ["carol",
                                                                                        "drawdown reviewed"]
    with pytest.raises(ValueError, match="needs an operator and a reason"):
        append_command(path, "resume", operator="carol")
    with pytest.raises(ValueError, match="unknown command"):
        append_command(path, "restart", operator="carol", reason="x")


def test_follow_tails_lines_as_they_are_written_and_waits_for_a_line_to_end(tmp_path):
    path = tmp_path / "control.jsonl"
    reader = OP.open(OP.Params(path="control.jsonl", follow=True, poll_interval="5ms"), tmp_path)
    seen = []

    def consume():
        for chunk in reader.chunks(10):
            seen.extend(chunk["command"].tolist())
            if len(seen) >= 3:
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.03)  # the file does not exist yet: the reader waits
    append_command(path, "heartbeat", ts_ns=1)
    _wait_for(lambda: len(seen) == 1)
    with path.open("a") as handle:  # half a line: not an event until its newline
        handle.write('{"ts": 2, "command": "heart')
        handle.flush()
        time.sleep(0.05)
        assert seen == [CMD_HEARTBEAT]
        handle.write('beat"}\n')
    append_command(path, "resume", operator="dan", reason="ok", ts_ns=3)
    thread.join(timeout=5)
    assert seen == [CMD_HEARTBEAT, CMD_HEARTBEAT, CMD_RESUME]


def _wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the followed file's line never arrived"
        time.sleep(0.002)


def test_docstring_example():
    node = docstring_example("source.control")["control"]
    assert OP.Params.model_validate(node["with"]).follow is False
