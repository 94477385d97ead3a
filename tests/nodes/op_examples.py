"""Helpers for the signal and sizing op tests: hand-made sequences, cpu/numba parity, docstring examples as specs.

Every signal and sizing op documents a YAML example; ``example_spec`` turns that very text into a whole
strategy on the AAPL sample (bars → indicators → the example → a sizing op → the bar venue), pulling in
the nodes the example refers to. The inputs the library does not provide yet (an oscillator standing in for
an RSI, a z-score, a trend gap, return statistics, an average true range) come from small user ops written
into the test's folder and listed under ``modules:``, as a user would.
"""

import re
import textwrap
from pathlib import Path

import numpy as np
import yaml

from nodes.contract import default_registry
from pipelines.codegen import initial_value
from pipelines.run import run_spec
from tests.support import SAMPLES, assert_bit_identical, drive, write_spec

USER_OPS = '''
"""Inputs for the examples: trailing-window statistics, causal (each value sees events up to its own)."""

import numpy as np
from pydantic import Field

from nodes.contract import BAR, F64, OpParams, StreamOp, step_helper


@step_helper
def mean_and_var(ring):
    """Mean and population variance by plain loops: numpy's pairwise sums would differ from numba's in the
    last bit, and cpu/numba parity must hold for user ops too."""
    total = 0.0
    for v in ring:
        total += v
    mean = total / ring.shape[0]
    squares = 0.0
    for v in ring:
        squares += (v - mean) * (v - mean)
    return mean, squares / ring.shape[0]


class WindowParams(OpParams):
    window: int = Field(ge=2)


class RangePosition(StreamOp):
    """Place x in its range over the last window values, 0 at the low and 100 at the high (an RSI stand-in)."""

    name = "user.range_position"
    Params = WindowParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        count, pos, ring = s
        if x != x:
            return s, np.nan
        ring[pos] = x
        pos = (pos + 1) % ring.shape[0]
        count = min(count + 1, ring.shape[0])
        if count < ring.shape[0]:
            return (count, pos, ring), np.nan
        low, high = ring.min(), ring.max()
        out = 50.0 if high <= low else 100.0 * (x - low) / (high - low)
        return (count, pos, ring), out


class Zscore(StreamOp):
    """Z-score of x against the mean and (population) deviation of the last window values."""

    name = "user.zscore"
    Params = WindowParams
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        count, pos, ring = s
        if x != x:
            return s, np.nan
        ring[pos] = x
        pos = (pos + 1) % ring.shape[0]
        count = min(count + 1, ring.shape[0])
        if count < ring.shape[0]:
            return (count, pos, ring), np.nan
        mean, var = mean_and_var(ring)
        out = np.nan if var == 0.0 else (x - mean) / np.sqrt(var)
        return (count, pos, ring), out


class Difference(StreamOp):
    """a − b."""

    name = "user.difference"
    inputs = {"a": F64, "b": F64}
    outputs = {"out": F64}

    @staticmethod
    def constants(params):
        return ()

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, a, b):
        return s, a - b


class ReturnStats(StreamOp):
    """Mean, variance and deviation (population) of the last window simple returns x / x_prev − 1."""

    name = "user.return_stats"
    Params = WindowParams
    inputs = {"x": F64}
    outputs = {"mean": F64, "var": F64, "vol": F64}

    @staticmethod
    def init(c, n_keys):
        return (np.nan, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, x):
        previous, count, pos, ring = s
        if x != x:
            return s, np.nan, np.nan, np.nan
        if previous != previous:
            return (x, count, pos, ring), np.nan, np.nan, np.nan
        ring[pos] = x / previous - 1.0
        pos = (pos + 1) % ring.shape[0]
        count = min(count + 1, ring.shape[0])
        if count < ring.shape[0]:
            return (x, count, pos, ring), np.nan, np.nan, np.nan
        mean, var = mean_and_var(ring)
        return (x, count, pos, ring), mean, var, np.sqrt(var)


class TrueRangeMean(StreamOp):
    """Plain mean of the true range over the last window bars (an ATR without Wilder's smoothing)."""

    name = "user.true_range_mean"
    Params = WindowParams
    inputs = {"bar": BAR}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return (np.nan, 0, 0, np.zeros(c[0]))

    @staticmethod
    def step(c, s, open_, high, low, close, volume):
        previous, count, pos, ring = s
        true_range = high - low
        if previous == previous:
            true_range = max(true_range, abs(high - previous), abs(low - previous))
        ring[pos] = true_range
        pos = (pos + 1) % ring.shape[0]
        count = min(count + 1, ring.shape[0])
        out = mean_and_var(ring)[0] if count == ring.shape[0] else np.nan
        return (close, count, pos, ring), out
'''

# What every example may refer to besides other examples: AAPL bars, an SMA(10, 30) crossover and the inputs
# the user ops above provide. Only the nodes an example needs end up in its spec.
BASE_NODES = {
    "bars": {
        "op": "source.bars_csv",
        "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL", "timezone": "America/New_York"},
    },
    "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 10}},
    "slow": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 30}},
    "cross": {"op": "signal.crossover", "in": ["fast", "slow"]},
    "rsi": {"op": "user.range_position", "in": "bars.close", "with": {"window": 14}},
    "z": {"op": "user.zscore", "in": "bars.close", "with": {"window": 20}},
    "trend_gap": {"op": "user.difference", "in": ["fast", "slow"]},
    "returns": {"op": "user.return_stats", "in": "bars.close", "with": {"window": 20}},
    "atr": {"op": "user.true_range_mean", "in": "bars", "with": {"window": 14}},
}
SIM_NODE = {
    "op": "backtest.bar_venue",
    "in": {"market": "bars", "target": "target"},
    "with": {"cash": 10_000, "commission": 0.001},
}
SIGNAL_OPS = ["signal.threshold", "signal.zscore_bands", "signal.regime_filter", "signal.and", "signal.or",
              "signal.vote", "signal.cooldown"]
SIZING_OPS = ["sizing.volatility_target", "sizing.atr_risk", "sizing.kelly"]

_REF = re.compile(r"^\s*(?:prev\(\s*)?([A-Za-z_][\w\-]*)")


def op(name: str):
    found = default_registry().get(name)
    assert found is not None, f"op {name!r} is not in the registry"
    return found


def run_op(name: str, params: dict, *columns, target: str = "cpu") -> np.ndarray:
    """The op's first output over hand-made input columns, stepping once per value on ``target``."""
    stream_op = op(name)
    inputs = [np.asarray(column, dtype=np.float64) for column in columns]
    return drive(stream_op, stream_op.Params.model_validate(params), [], inputs, target)[0]


def assert_cpu_numba_identical(name: str, params: dict, *columns) -> np.ndarray:
    """Step the op on cpu and on numba over the columns; assert every output bit-identical; return cpu's."""
    stream_op = op(name)
    validated = stream_op.Params.model_validate(params)
    inputs = [np.asarray(column, dtype=np.float64) for column in columns]
    on_cpu = drive(stream_op, validated, [], inputs, "cpu")
    on_numba = drive(stream_op, validated, [], inputs, "numba")
    for port, a, b in zip(stream_op.outputs, on_cpu, on_numba):
        assert_bit_identical(a, b, f"{name} {params!r}: port {port!r} cpu vs numba")
    return on_cpu[0]


def random_sides(rng: np.random.Generator, n: int) -> np.ndarray:
    """A side port's values: mostly NaN (no change), now and then +1, -1 or 0."""
    return np.where(rng.random(n) < 0.3, rng.choice([-1.0, 0.0, 1.0], n), np.nan)


def docstring_example(name: str) -> dict:
    """The nodes of the op's ``Example::`` block, parsed as YAML."""
    doc = op(name).__doc__ or ""
    assert "Example::" in doc, f"{name}: the docstring has no Example:: block"
    block = doc.split("Example::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line.strip() and not line.startswith("        "):
            break
        lines.append(line)
    nodes = yaml.safe_load(textwrap.dedent("\n".join(lines)))
    assert isinstance(nodes, dict) and nodes, f"{name}: the example is not a map of nodes"
    assert next(iter(nodes.values()))["op"] == name, f"{name}: the example's first node is another op"
    return nodes


def _references(node: dict) -> list[str]:
    refs = node.get("in")
    if refs is None:
        return []
    if isinstance(refs, str):
        refs = [refs]
    elif isinstance(refs, dict):
        refs = list(refs.values())
    return [_REF.match(ref).group(1) for ref in refs]


def example_spec(folder: Path, name: str) -> tuple[Path, str]:
    """Write a whole strategy around the op's docstring example; return its path and the example's node id.

    A signal example is sized all in (``sizing.fraction_of_equity`` at 0.95) unless it defines ``target``;
    a sizing example is the ``target``. Nodes the example refers to come from ``BASE_NODES`` or from the
    other signal ops' examples (``with_trend`` reads ``revert``, the zscore example).
    """
    example = docstring_example(name)
    node_id = next(iter(example))
    pool = dict(BASE_NODES)
    for other in SIGNAL_OPS:
        pool.update(docstring_example(other))
    pool.update(example)
    wanted = dict(example)
    if "target" not in wanted:
        wanted["target"] = {
            "op": "sizing.fraction_of_equity",
            "in": {"side": node_id, "price": "bars.close", "equity": "prev(sim.equity)"},
            "with": {"fraction": 0.95},
        }
    wanted["sim"] = SIM_NODE
    todo = list(wanted)
    while todo:
        for ref in _references(wanted[todo.pop()]):
            if ref not in wanted:
                assert ref in pool, f"{name}: the example refers to {ref!r}, which no base node or example defines"
                wanted[ref] = pool[ref]
                todo.append(ref)
    ordered = {key: wanted[key] for key in [*pool, "target", "sim"] if key in wanted}
    (folder / "example_ops.py").write_text(USER_OPS)
    spec_name = "example_" + name.replace(".", "_")
    return write_spec(folder, spec_name, ordered, modules=["example_ops.py"]), node_id


def run_example(folder: Path, name: str, place: str = "cpu"):
    """Run the op's example spec with every stream node on ``place``, recording every node."""
    path, node_id = example_spec(folder, name)
    nodes = yaml.safe_load(path.read_text())["nodes"]
    streams = [n for n, node in nodes.items() if not node["op"].startswith("source.")]
    run = run_spec(path, places=[f"{n}={place}" for n in streams], record=list(nodes), write=False)
    return run, nodes, node_id


def replayed_inputs(run, node_id: str) -> list[np.ndarray]:
    """The values the engine fed ``node_id``, one column per step argument, from its producers' recordings.

    One instrument, so every producer fires on every event; ``prev(x.port)`` is the port one event back,
    its initial value (``initial_output`` or NaN) on the first event.
    """
    columns = []
    for ref in run.plan.graph.nodes[node_id].args:
        values = run.replay.recorded[ref.node][ref.port].to_numpy().astype(np.float64)
        if ref.delayed:
            values = np.concatenate([[initial_value(run.plan, ref.node, ref.port)], values[:-1]])
        columns.append(values)
    return columns


def check_example(folder: Path, name: str, place: str = "cpu"):
    """Run the op's docstring example as a whole strategy; check it trades and that the engine ran the op's step.

    The node's recorded outputs must be bit-identical to stepping the op by hand over the values its
    producers recorded: the engine (fused segments, transfers, the feedback edge) adds nothing and drops
    nothing. Returns the run and the node's first output.
    """
    run, nodes, node_id = run_example(folder, name, place)
    stream_op = op(name)
    params = stream_op.Params.model_validate(nodes[node_id].get("with", {}))
    by_hand = drive(stream_op, params, [], replayed_inputs(run, node_id), "cpu")
    for port, expected in zip(stream_op.outputs, by_hand):
        recorded = run.replay.recorded[node_id][port].to_numpy()
        assert_bit_identical(recorded, expected, f"{name} example: node {node_id!r} port {port!r} engine vs by hand")
    assert run.backtest is not None, f"{name} example: no backtest"
    assert run.backtest.stats["# Trades"] >= 1, f"{name} example: the strategy never trades"
    return run, by_hand[0]


def all_examples_spec(folder: Path, defaults: dict | None = None) -> Path:
    """One strategy holding every signal and sizing example at once, all sizing examples read by the venue's feedback.

    The vote (which reads three other examples) is sized all in and traded; each sizing example sizes the
    crossover as a sink (renamed ``target_<op>``), so one spec exercises every op together.
    """
    nodes = dict(BASE_NODES)
    for name in SIGNAL_OPS:
        nodes.update(docstring_example(name))
    for name in SIZING_OPS:
        nodes[f"target_{name.split('.')[1]}"] = docstring_example(name)["target"]
    nodes["target"] = {
        "op": "sizing.fraction_of_equity",
        "in": {"side": "consensus", "price": "bars.close", "equity": "prev(sim.equity)"},
        "with": {"fraction": 0.95},
    }
    nodes["sim"] = SIM_NODE
    (folder / "example_ops.py").write_text(USER_OPS)
    return write_spec(folder, "all_examples", nodes, defaults=defaults, modules=["example_ops.py"])
