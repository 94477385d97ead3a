"""Real tops of book for the strategy op tests: the shipped Binance BTCUSDT cut through ``book.l2``.

Both strategy ops read a book's top and the market records' flags; these are the values ``book.l2`` gives
on the shipped capture (7,398 records: depth, the snapshot and trades in one stream), computed once.
"""

from functools import cache
from pathlib import Path

import numpy as np

from nodes.marketdata.binance.source import BinanceCapture
from nodes.marketdata.book.l2 import BookL2
from tests.support import drive

REPO = Path(__file__).resolve().parents[3]
CAPTURE = REPO / "data" / "samples" / "binance" / "spot_btcusdt_20240808.head2000.gz"


@cache
def btcusdt_tops() -> dict[str, np.ndarray]:
    """``book.l2``'s outputs and the stream's ``flags``/``action``, one value per record of the shipped cut."""
    params = BinanceCapture.Params.model_validate({"path": CAPTURE.name, "schema": "book_and_trades"})
    chunks = list(BinanceCapture.open(params, CAPTURE.parent).chunks(65_536))
    stream = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    outputs = drive(BookL2, BookL2.Params(), [], [stream[p] for p in BookL2.inputs], "cpu")
    tops = dict(zip(BookL2.outputs, outputs))
    tops["flags"], tops["action"] = stream["flags"], stream["action"]
    return tops


def random_walk_position(n: int, step_units: int, seed: int) -> np.ndarray:
    """A position (int64, 1e-9 units) that moves by one ``step_units`` now and then, as fills would move it."""
    rng = np.random.default_rng(seed)
    moves = rng.choice(np.array([-1, 0, 0, 0, 0, 0, 0, 1]), n)
    return (np.cumsum(moves) * step_units).astype(np.int64)


def run_example_on_capture(folder: Path, example: dict, venue: dict) -> tuple:
    """Run an op's docstring example in a whole spec on the shipped capture: source (named as the example
    names it), ``book.l2`` as ``book``, the example, and ``venue`` (a ``backtest.tick_venue`` node).

    Returns the run and, per the example node's inputs, the values the engine fed it (int64, from its
    producers' recordings; ``prev(...)`` one event back, its initial value first).
    """
    from pipelines.codegen import initial_value
    from pipelines.run import run_spec
    from tests.support import write_spec

    node_id, node = next(iter(example.items()))
    refs = [ref.split(".")[0] for ref in node["in"].values() if not ref.startswith("prev(")]
    source = next(ref for ref in refs if ref not in ("book", node_id))
    nodes = {
        source: {"op": "source.binance_capture", "with": {"path": str(CAPTURE), "schema": "book_and_trades"}},
        "book": {"op": "book.l2", "in": {p: f"{source}.{p}" for p in ("side", "price", "size", "action", "flags")}},
        **example,
        "venue": venue,
    }
    venue["in"] = {**{p: f"{source}.{p}" for p in ("side", "price", "size", "action", "flags")}, **venue["in"]}
    path = write_spec(folder, "example_" + node["op"].replace(".", "_"), nodes)
    run = run_spec(path, record=list(nodes), write=False)
    fed = []
    for ref in run.plan.graph.nodes[node_id].args:
        values = run.replay.recorded[ref.node][ref.port].to_numpy()
        if ref.delayed:
            values = np.concatenate([[initial_value(run.plan, ref.node, ref.port)], values[:-1]])
        fed.append(values.astype(np.int64))
    return run, fed
