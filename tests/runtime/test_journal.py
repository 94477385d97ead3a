"""runtime.journal: records round-trip, torn tails are found and cut, and real writers killed with SIGKILL lose
nothing they acknowledged, duplicate nothing and corrupt nothing."""

import inspect
import json
import os
import random
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from runtime.journal import (
    FRAME, MAGIC, Journal, JournalError, encode_record, read_journal, recover, session_path,
)
from tests.support import REPO


def _payload(i: int) -> dict:
    """Record i's payload, rebuilt from i alone so a reader can tell a corrupted record: sizes from 10 bytes to
    256 KiB (a large write is what a kill can cut in half). The writers run this function's source."""
    size = random.Random(i).choice([10, 10, 200, 200, 5_000, 262_144])
    return {"i": i, "data": (f"{i:08d}" * (size // 8 + 1))[:size]}


PAYLOAD = inspect.getsource(_payload)


def test_records_round_trip_with_their_kinds_payloads_and_sequence(tmp_path):
    path = tmp_path / "s.journal"
    with Journal(path, fsync="always") as journal:
        assert journal.append("order", {"id": 1, "px": 61830.01, "side": "buy"}) == 0
        assert journal.append("fill", {"qty": np.int64(3), "prices": np.array([1.5, 2.5])}) == 1
        assert journal.append("blob", b"\x00\x01raw") == 2
        assert journal.durable_seq == 2
    scan = read_journal(path)
    assert not scan.torn and scan.end_offset == scan.file_size == path.stat().st_size
    assert [(r.seq, r.kind, r.payload) for r in scan.records] == [
        (0, "order", {"id": 1, "px": 61830.01, "side": "buy"}), (1, "fill", {"qty": 3, "prices": [1.5, 2.5]}),
        (2, "blob", b"\x00\x01raw")]


def test_reopening_continues_the_sequence_and_recover_replays_after_the_last_snapshot(tmp_path):
    path = tmp_path / "s.journal"
    with Journal(path) as journal:
        for i in range(3):
            journal.append("order", {"i": i})
        journal.append("snapshot", {"position": 5})
    with Journal(path, fsync="never") as journal:
        assert journal.recovered.last_seq == 3
        assert journal.append("fill", {"i": 4}) == 4
    state = recover(path)
    assert state.last_index == 4 and state.truncated_bytes == 0 and state.reason is None
    assert state.snapshot.payload == {"position": 5}
    assert [r.seq for r in state.replay] == [4]


def test_a_tail_cut_anywhere_in_the_last_record_is_found_and_truncated(tmp_path):
    whole = tmp_path / "whole.journal"
    with Journal(whole) as journal:
        for i in range(4):
            journal.append("order", {"i": i, "note": "é" * i})  # multi-byte characters: a cut inside one too
    data = whole.read_bytes()
    last = read_journal(whole).records[-1].offset
    for cut in range(last + 1, len(data)):  # every byte of the last record, header included
        path = tmp_path / f"cut{cut}.journal"
        path.write_bytes(data[:cut])
        scan = read_journal(path)
        assert [r.seq for r in scan.records] == [0, 1, 2] and scan.torn and scan.end_offset == last, cut
        state = recover(path)
        assert state.last_seq == 2 and state.truncated_bytes == cut - last
        assert path.stat().st_size == last and not read_journal(path).torn
        with Journal(path) as journal:  # appending after recovery continues cleanly
            assert journal.append("order", {"i": 3}) == 3
        assert [r.payload["i"] for r in read_journal(path).records] == [0, 1, 2, 3]


def test_a_flipped_bit_a_bad_length_and_a_repeated_record_stop_the_read_with_a_reason(tmp_path):
    path = tmp_path / "s.journal"
    with Journal(path) as journal:
        for i in range(3):
            journal.append("order", {"i": i})
    data = bytearray(path.read_bytes())
    second = read_journal(path).records[1].offset
    flipped = bytearray(data)
    flipped[second + FRAME.size + 20] ^= 0x04
    path.write_bytes(flipped)
    assert (len(read_journal(path).records), read_journal(path).reason) == (1, "crc mismatch")
    bad_length = bytearray(data)
    bad_length[second:second + 4] = (2**31).to_bytes(4, "little")
    path.write_bytes(bad_length)
    assert read_journal(path).reason.startswith("bad record length")
    path.write_bytes(bytes(data) + encode_record(1, "order", {"i": 1}))  # a duplicate of record 1
    scan = read_journal(path)
    assert len(scan.records) == 3 and scan.reason.startswith("sequence break: record 1 where 3")


def test_a_file_that_is_not_a_journal_is_refused_and_never_truncated(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, not a journal at all")
    with pytest.raises(JournalError, match="not a tickloom journal"):
        recover(path)
    with pytest.raises(JournalError, match="not a tickloom journal"):
        Journal(path)
    assert path.read_bytes() == b"hello, not a journal at all"
    header_cut = tmp_path / "new.journal"
    header_cut.write_bytes(MAGIC[:3])  # killed while creating the file: an empty journal
    with Journal(header_cut) as journal:
        assert journal.append("order", {}) == 0


def test_one_writer_at_a_time_and_no_truncation_under_a_writer(tmp_path):
    path = tmp_path / "s.journal"
    with Journal(path) as journal:
        with pytest.raises(JournalError, match="open for writing by another process"):
            Journal(path)
        journal.append("order", {"i": 0})
        with path.open("ab") as handle:
            handle.write(b"\x07")  # what a writer in the middle of a record looks like from outside
        with pytest.raises(JournalError, match="its tail cannot be cut now"):
            recover(path)
        state = recover(path, truncate=False)  # reading is always allowed
        assert state.last_seq == 0 and state.truncated_bytes == 1 and path.stat().st_size == state.end_offset + 1


def test_batch_policy_fsyncs_every_n_records_and_on_sync(tmp_path):
    with Journal(tmp_path / "s.journal", fsync="batch", batch_records=3, batch_interval_ms=60_000) as journal:
        seqs = [journal.append("order", {"i": i}) for i in range(4)]
        assert seqs == [0, 1, 2, 3] and journal.written_seq == 3 and journal.durable_seq == 2
        assert journal.sync() == 3
    with Journal(tmp_path / "n.journal", fsync="never") as journal:
        journal.append("order", {})
        assert journal.written_seq == 0 and journal.durable_seq == -1


def test_session_paths_are_distinct_and_name_the_start():
    import datetime as dt

    start = dt.datetime(2024, 8, 9, 1, 2, 3, 456789, tzinfo=dt.timezone.utc)
    assert session_path("/j", start).name == f"20240809T010203.456789Z-{os.getpid()}.journal"


# --- real writers killed with SIGKILL ------------------------------------------------------------------------

WRITER = r"""
import random, sys
sys.path.insert(0, {repo!r})
from runtime.journal import Journal
{payload}
path, policy = sys.argv[1], sys.argv[2]
journal = Journal(path, fsync=policy, batch_records=4, batch_interval_ms=2)
i = journal.recovered.last_seq + 1
while True:
    seq = journal.append("test", _payload(i))
    # "A seq durable_seq": append returned seq (in the OS), durable_seq is on disk
    sys.stdout.write(f"A {{seq}} {{journal.durable_seq}}\n")
    sys.stdout.flush()
    i += 1
"""


def _killed_writer(path, policy: str, rng: random.Random) -> tuple[int, int]:
    """Run a writer, SIGKILL it at a random moment; return the last seq it acknowledged appended and durable."""
    child = subprocess.Popen([sys.executable, "-c", WRITER.format(repo=str(REPO), payload=PAYLOAD), str(path),
                              policy], stdout=subprocess.PIPE, cwd=REPO)
    lines = [child.stdout.readline()]  # the writer is going: kill it at a random moment from now
    deadline = time.monotonic() + rng.uniform(0.0, 0.15)
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line)
    os.kill(child.pid, signal.SIGKILL)
    lines.extend(child.stdout.read().splitlines(keepends=True))  # acknowledgments still in the pipe
    child.wait()
    assert child.returncode == -signal.SIGKILL
    acked = [line.split() for line in lines if line.endswith(b"\n") and line.startswith(b"A ")]
    if not acked:
        return -1, -1
    return int(acked[-1][1]), int(acked[-1][2])


@pytest.mark.parametrize("policy", ["always", "batch", "never"])
def test_sigkilled_writers_lose_no_acknowledged_record_and_leave_a_recoverable_journal(tmp_path, policy):
    """Six writers in turn on one journal, each killed at a random moment: after each kill, every record whose
    append returned (so every record acknowledged fsynced) is read back intact, in sequence, once; a torn tail
    is reported and cut so the next writer continues the sequence."""
    path = tmp_path / f"{policy}.journal"
    rng = random.Random(sum(map(ord, policy)))
    acked_total = torn = 0
    for _ in range(6):
        appended, durable = _killed_writer(path, policy, rng)
        assert durable <= appended
        scan = read_journal(path)
        state = recover(path)
        torn += scan.torn
        assert state.truncated_bytes == scan.torn_bytes and path.stat().st_size == scan.end_offset
        seqs = [r.seq for r in state.records]
        assert seqs == list(range(len(seqs)))  # no gap, no duplicate
        assert state.last_seq >= appended, f"record {appended} was acknowledged but not recovered"
        for record in state.records:
            assert record.payload == _payload(record.seq), f"record {record.seq} is corrupted"
        acked_total = max(acked_total, appended + 1)
    assert acked_total > 6, "the writers never got going: the test proves nothing"
    assert not read_journal(path).torn


def test_a_writer_killed_in_the_middle_of_a_record_leaves_a_tail_that_recovery_cuts(tmp_path):
    """A real process writes a record's first half, is killed with SIGKILL, and the journal recovers to the
    records before it (the deterministic version of a kill during write())."""
    path = tmp_path / "s.journal"
    with Journal(path) as journal:
        journal.append("order", {"i": 0})
    frame = encode_record(1, "order", _payload(9))
    script = ("import os, sys, time\n"
              "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n"
              "os.write(fd, bytes.fromhex(sys.argv[2]))\n"
              "print('half', flush=True)\n"
              "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(path), frame[:len(frame) // 2].hex()],
                             stdout=subprocess.PIPE)
    assert child.stdout.readline() == b"half\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    scan = read_journal(path)
    assert [r.seq for r in scan.records] == [0] and scan.reason.startswith("incomplete record")
    state = recover(path)
    assert state.truncated_bytes == len(frame) // 2 and state.last_seq == 0
    assert zlib.crc32(path.read_bytes()) == zlib.crc32(path.read_bytes()[:state.end_offset])
    with Journal(path) as journal:
        assert journal.append("order", {"i": 1}) == 1


def test_the_command_line_prints_records_and_the_torn_tail(tmp_path):
    path = tmp_path / "s.journal"
    with Journal(path) as journal:
        journal.append("order", {"id": 7})
    with path.open("ab") as handle:
        handle.write(b"\x05\x00")
    out = subprocess.run([sys.executable, "-m", "runtime.journal", str(path)], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.splitlines()
    assert out[0].split("\t")[2:] == ["order", json.dumps({"id": 7})]
    assert out[1] == f"# torn tail: 2 bytes after offset {path.stat().st_size - 2} (incomplete record header)"
