"""The numba kernel cache must never hand one op's compiled code to another.

A generated segment calls its steps by position (``step_n4``), so two specs that differ only by which op sits
at a node generate the same source text; the cache key must still tell them apart, within one process
(``sys.modules``) and across processes (numba's on-disk cache).
"""

import numpy as np

from pipelines.run import run_spec
from tests.support import SAMPLES, write_spec

STREAMS = ["fast", "slow", "cross", "target", "sim"]


def _spec(folder, op: str, side_input: str, params: dict):
    nodes = {
        "bars": {"op": "source.bars_csv", "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL",
                                                    "timezone": "America/New_York"}},
        "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 5}},
        "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 20}},
        "cross": {"op": "signal.crossover", "in": ["fast", "slow"]},
        "target": {"op": op, "in": {side_input: "cross", "price": "bars.close", "equity": "prev(sim.equity)"},
                   "with": params},
        "sim": {"op": "backtest.bar_venue", "in": {"market": "bars", "target": "target"}},
    }
    return write_spec(folder, op.replace(".", "_"), nodes)


def test_specs_differing_only_by_an_op_of_the_same_shape_get_their_own_kernels(tmp_path):
    # same ports, same state shape: the generated segments are the same text
    specs = [_spec(tmp_path, "sizing.fraction_of_equity", "side", {"fraction": 0.5}),
             _spec(tmp_path, "sizing.target_weights", "weight", {"lot_units": 1.0})]
    for path in specs:
        targets = {
            place: run_spec(path, places=[f"{n}={place}" for n in STREAMS], record=["target"], write=False)
            .replay.recorded["target"]["target"].to_numpy()
            for place in ("numba", "cpu")
        }
        np.testing.assert_array_equal(targets["numba"], targets["cpu"], err_msg=str(path.name))
