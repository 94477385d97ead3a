"""Recovery of a live session: its state rebuilt from the inputs it recorded, checked against its journal, and
reconciled with the venue's own account (runtime/recovery.py)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipelines.plan import compile_plan
from pipelines.spec import load_spec
from runtime.journal import Journal, read_journal
from runtime.live import LiveOptions, run_live
from runtime.recovery import RecoveryError, recover_session
from tests.support import promoted_live_market_maker

@pytest.fixture(scope="module")
def finished_session(tmp_path_factory):
    """A paced paper session of the market maker on the shipped Binance cut, run to its end."""
    folder = tmp_path_factory.mktemp("recovery")
    path, registry = promoted_live_market_maker(folder)
    session = run_live(path, LiveOptions(speed=10.0, session_dir=folder / "session", registry=str(registry)))
    assert session.result.logs["venue"]["fills"].height > 0, "the test needs a session that filled orders"
    return path, folder / "session", session


def _copy(session_folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "session"
    shutil.copytree(session_folder, copy)
    return copy


def _rewrite_journal(folder: Path, keep) -> list:
    """Rewrite the journal keeping the records ``keep(record)`` returns (possibly changed); return the dropped."""
    records = read_journal(folder / "journal.tlj").records
    (folder / "journal.tlj").unlink()
    dropped = []
    with Journal(folder / "journal.tlj", fsync="never") as journal:
        for record in records:
            kept = keep(record)
            if kept is None:
                dropped.append(record)
            else:
                journal.append(record.kind, kept)
    return dropped


def test_a_finished_session_rebuilds_to_the_state_its_journal_and_its_venue_report(finished_session, tmp_path):
    path, session_folder, session = finished_session
    recovery = recover_session(_copy(session_folder, tmp_path), compile_plan(load_spec(path)))
    assert recovery.events == session.events
    assert recovery.recovered == {}
    assert recovery.journaled_rows["venue.fills"] == session.result.logs["venue"]["fills"].height
    assert recovery.reconciliation.differences == []
    fills = session.result.logs["venue"]["fills"]
    venue = recovery.reconciliation.venue["venue"]
    assert venue.positions["BTCUSDT"] == int(fills["position"][-1])  # the venue's account = its last fill's
    assert venue.fills == fills.height
    assert recovery.skip_rows == {"md": session.events}
    assert "state rebuilt from" in recovery.format()


def test_rows_decided_after_the_last_journal_write_are_found_and_named_once(finished_session, tmp_path):
    """A kill after a batch ran but before its journal write: the journal lacks its rows, the inputs have them."""
    path, session_folder, session = finished_session
    folder = _copy(session_folder, tmp_path)
    fill_records = [r for r in read_journal(folder / "journal.tlj").records if r.kind == "venue.fills"]
    last = fill_records[-1]
    dropped = _rewrite_journal(folder, lambda r: None if r.seq >= last.seq else r.payload)
    recovery = recover_session(folder, compile_plan(load_spec(path)))
    lost_fills = sum(len(r.payload["order_id"]) for r in dropped if r.kind == "venue.fills")
    assert lost_fills > 0
    assert len(recovery.recovered["venue.fills"]["order_id"]) == lost_fills
    assert recovery.recovered["venue.fills"]["order_id"] == [i for r in dropped if r.kind == "venue.fills"
                                                              for i in r.payload["order_id"]]
    # with the recovered rows the runtime's account equals the venue's
    assert recovery.reconciliation.differences == []


def test_a_journal_the_inputs_do_not_reproduce_is_refused_naming_the_row(finished_session, tmp_path):
    path, session_folder, _ = finished_session
    folder = _copy(session_folder, tmp_path)

    def tamper(record):
        if record.kind == "venue.fills" and not tamper.done:
            tamper.done = True
            payload = dict(record.payload)
            payload["qty"] = [q + 1 for q in payload["qty"]]
            return payload
        return record.payload

    tamper.done = False
    _rewrite_journal(folder, tamper)
    with pytest.raises(RecoveryError, match=r"venue.fills row 0: the journal says qty="):
        recover_session(folder, compile_plan(load_spec(path)))


def test_a_journal_ahead_of_its_inputs_is_refused(finished_session, tmp_path):
    """Inputs lost (written after the journal, against the write-ahead rule): the state cannot be explained."""
    path, session_folder, _ = finished_session
    folder = _copy(session_folder, tmp_path)
    for recorded in (folder / "inputs").glob("*.arrows"):
        data = recorded.read_bytes()
        recorded.write_bytes(data[: len(data) // 3])  # a torn recording: the last two thirds are gone
    with pytest.raises(RecoveryError, match="ahead of the inputs|not produce"):
        recover_session(folder, compile_plan(load_spec(path)))


def test_torn_tails_of_the_journal_and_the_recording_are_cut_and_the_rest_recovers(finished_session, tmp_path):
    path, session_folder, session = finished_session
    folder = _copy(session_folder, tmp_path)
    with open(folder / "journal.tlj", "ab") as journal:
        journal.write(b"\x40\x00\x00\x00garbage")  # a record cut by a kill inside its body
    recovery = recover_session(folder, compile_plan(load_spec(path)))
    assert recovery.truncated_bytes == 11
    assert recovery.reconciliation.differences == []
    assert np.isclose(recovery.events, session.events)

