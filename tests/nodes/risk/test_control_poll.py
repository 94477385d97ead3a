"""``ControlReader.poll``: a followed control file as a live session's feed: new complete lines, without waiting.

A line taken is stamped ``ts_recv`` = the wall time it was taken and keeps its ``ts`` as ``ts_event``; the file
is looked at no more often than its poll interval; a line still being written waits for its newline; a file
that does not exist yet is no command; a followed file never ends.
"""

import time

from nodes.contract import default_registry
from nodes.risk.codes import CMD_HALT, CMD_HEARTBEAT, CMD_RESUME
from nodes.risk.control import append_command

OP = default_registry().get("source.control")


def _reader(tmp_path, poll_interval: str = "1ms", follow: bool = True):
    return OP.open(OP.Params(path="control.jsonl", follow=follow, poll_interval=poll_interval), tmp_path)


def test_new_lines_are_taken_stamped_with_the_time_they_were_taken(tmp_path):
    reader = _reader(tmp_path)
    assert reader.poll() is None and reader.endless and not reader.ended  # no file yet: no command
    append_command(tmp_path / "control.jsonl", "halt", operator="alice", reason="notice", ts_ns=1_000)
    time.sleep(0.002)
    before = time.time_ns()
    taken = reader.poll()
    assert taken["command"].tolist() == [CMD_HALT] and taken["seq"].tolist() == [1]
    assert taken["ts_event"].tolist() == [1_000] and before <= taken["ts_recv"][0] <= time.time_ns()
    assert reader.texts[taken["operator"][0]] == "alice"
    time.sleep(0.002)
    assert reader.poll() is None  # nothing new
    append_command(tmp_path / "control.jsonl", "resume", operator="bob", reason="read", ts_ns=2_000)
    append_command(tmp_path / "control.jsonl", "heartbeat", ts_ns=3_000)
    time.sleep(0.002)
    taken = reader.poll()
    assert taken["command"].tolist() == [CMD_RESUME, CMD_HEARTBEAT] and taken["seq"].tolist() == [2, 3]
    assert taken["ts_recv"][0] == taken["ts_recv"][1]  # taken together


def test_the_file_is_looked_at_once_a_poll_interval_and_a_half_written_line_waits(tmp_path):
    reader = _reader(tmp_path, poll_interval="200ms")
    path = tmp_path / "control.jsonl"
    assert reader.poll() is None
    looked = reader.next_poll_ns()
    append_command(path, "heartbeat", ts_ns=1)
    assert reader.poll() is None, "looked again before the poll interval"
    time.sleep(max(looked - time.monotonic_ns(), 0) / 1e9)
    with path.open("a") as handle:
        handle.write('{"ts": 2, "command": "heart')
    assert reader.poll()["command"].tolist() == [CMD_HEARTBEAT]
    with path.open("a") as handle:
        handle.write('beat"}\n')
    time.sleep(0.21)
    assert reader.poll()["ts_event"].tolist() == [2]


def test_a_file_read_whole_is_taken_at_the_first_poll_with_its_times(tmp_path):
    append_command(tmp_path / "control.jsonl", "halt", operator="alice", reason="notice", ts_ns=5)
    reader = _reader(tmp_path, follow=False)
    taken = reader.poll()
    assert taken["ts_recv"].tolist() == [5] and reader.ended and not reader.endless and reader.poll() is None
