"""Every signal and sizing example in one spec: placed on numba it gives the same bits as on cpu.

The op-level tests step each op on both targets in a plain loop; this runs them fused into generated
segments, with transfers, the venue's feedback edge and small chunks, the way a backtest runs them.
"""

import yaml

from pipelines.run import run_spec
from tests.nodes.op_examples import SIZING_OPS, all_examples_spec
from tests.support import assert_frames_identical, assert_stats_identical


def test_all_examples_numba_equals_cpu(tmp_path):
    path = all_examples_spec(tmp_path, defaults={"chunk_events": 100})
    nodes = list(yaml.safe_load(path.read_text())["nodes"])
    streams = [n for n in nodes if n != "bars"]
    runs = {
        target: run_spec(path, places=[f"{n}={target}" for n in streams], record=nodes, write=False)
        for target in ("cpu", "numba")
    }
    assert {s.target for s in runs["numba"].plan.segments if s.target != "cpu"} == {"numba"}
    cpu, numba = runs["cpu"], runs["numba"]
    for node_id in nodes:
        assert_frames_identical(cpu.replay.recorded[node_id], numba.replay.recorded[node_id], f"node {node_id}")
    assert_stats_identical(cpu.backtest.stats, numba.backtest.stats, "stats")
    assert cpu.backtest.stats["# Trades"] >= 5
    for name in SIZING_OPS:
        target = cpu.replay.recorded[f"target_{name.split('.')[1]}"]["target"].to_numpy()
        assert (target > 0).any() and (target < 0).any(), name
