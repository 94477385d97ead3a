"""``StreamRun.step`` / ``take_logs``: the lean path a live session drives, one event (or a few) at a time.

What must hold: stepping the events one at a time gives the logs a replay gives (same kernels, same state,
arguments bound once), on numba, on cpu and in an interleaved plan; the states the run shows afterwards are
the ones a replay's run holds; warming up changes nothing; stepping and ``run_batch`` can alternate.
"""

import numpy as np
import pytest

from nodes.sources.merge import MergedBatch
from pipelines.plan import compile_plan
from pipelines.replay import StreamRun, replay
from pipelines.spec import load_spec
from tests.support import REPO

BASE = REPO / "specs" / "strategies" / "market_making_binance.yaml"
PAPER = REPO / "specs" / "deploy" / "market_making_paper.yaml"


def _events(plan, limit: int | None = None) -> list[MergedBatch]:
    """Every event of the plan's sources as a batch of its own (the live path's usual batch)."""
    single = []
    for merged in StreamRun(plan, record=False).merged_batches():
        for i in range(len(merged)):
            source, row = int(merged.stream[i]), int(merged.row[i])
            parts = [{k: v[row:row + 1] if j == source else v[:0] for k, v in p.items()}
                     for j, p in enumerate(merged.parts)]
            single.append(MergedBatch(np.array([source], np.int32), np.zeros(1, np.int64), merged.ts_recv[i:i + 1],
                                      parts))
    return single[:limit]


def _stepped(plan, batches: list[MergedBatch], every_run_batch: int = 0):
    run = StreamRun(plan, record=False)
    run.warm_up()
    for k, merged in enumerate(batches):
        if every_run_batch and k % every_run_batch == 0:
            run.run_batch(merged)
        else:
            run.step(merged)
            run.take_logs()
    return run


def _replayed(plan, batches: list[MergedBatch]):
    run = StreamRun(plan, record=False)
    for merged in batches:
        run.run_batch(merged)
    return run


def _assert_same_logs(a, b) -> None:
    assert a.keys() == b.keys()
    for node_id, logs in a.items():
        for name, frame in logs.items():
            assert frame.equals(b[node_id][name]), f"{node_id}.{name}: {frame.height} vs {b[node_id][name].height}"


@pytest.mark.parametrize("path,places,limit", [
    (BASE, [], None),
    (PAPER, [], None),
    (PAPER, ["quotes=cpu", "risk=cpu"], 2500),  # interleaved: feedback crosses segments
    (BASE, ["book=cpu", "quotes=cpu", "venue=cpu"], 1500),
], ids=["numba", "paper-numba", "paper-interleaved", "cpu"])
def test_stepping_event_by_event_logs_what_a_replay_logs(path, places, limit):
    plan = compile_plan(load_spec(path, places=places))
    batches = _events(plan, limit)
    stepped = _stepped(plan, batches)
    # the whole capture against a replay; a prefix (cpu is slow) against run_batch event by event
    reference = replay(plan, summarize=False) if limit is None else _replayed(plan, batches).finish(summarize=False)
    _assert_same_logs(stepped.finish(summarize=False).logs, reference.logs)
    assert stepped.events == len(batches)


def test_the_states_after_stepping_are_the_replays_and_stepping_and_run_batch_alternate():
    plan = compile_plan(load_spec(PAPER))
    batches = _events(plan, 3000)
    stepped, mixed, replayed = _stepped(plan, batches), _stepped(plan, batches, 7), _replayed(plan, batches)
    for run in (stepped, mixed):
        for segment, reference in zip(run.segments, replayed.segments):
            assert segment.values.keys() == reference.values.keys()
            for detail, value in reference.values.items():
                assert segment.values[detail] == value or (np.isnan(value) and np.isnan(segment.values[detail]))
            venue = plan.graph.nodes["venue"].op
            assert np.array_equal(venue.account(segment.constants["venue"], segment.states["venue"])["position"],
                                  venue.account(reference.constants["venue"], reference.states["venue"])["position"])
    _assert_same_logs(mixed.finish(summarize=False).logs, replayed.finish(summarize=False).logs)


def test_a_batch_of_several_events_steps_as_run_batch_runs_it():
    plan = compile_plan(load_spec(PAPER))
    merged = list(StreamRun(plan, record=False).merged_batches())
    stepped = StreamRun(plan, record=False)
    for batch in merged:
        stepped.step(batch)
        stepped.take_logs()
    _assert_same_logs(stepped.finish(summarize=False).logs, replay(plan, summarize=False).logs)
