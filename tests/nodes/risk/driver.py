"""Drive a risk op's step over hand-made events on cpu or numba, keeping its logs (the engine's drain hook)."""

import numpy as np

from hardware.targets import step_function
from nodes.contract import default_registry
from tests.support import assert_bit_identical

UNIT = 1_000_000_000  # 1e-9 units per price or quantity unit
MS = 1_000_000


def op(name: str, **params):
    """The op ``name`` specialized for ``params``, and the validated params."""
    found = default_registry().get(name)
    validated = found.Params.model_validate(params)
    return found.specialize(validated), validated


def run(name: str, params: dict, events: dict, target: str = "cpu", n_keys: int = 1, drain_every: int = 0):
    """Step the op over ``events`` (input name → values; ``key``, ``ts_event``, ``ts_recv`` optional, default 0,
    i × 1 ms and ts_event); return ``(outputs by port, logs by name)``; ``drain_every`` drains mid-run too."""
    stream_op, validated = op(name, **params)
    n = len(next(iter(v for k, v in events.items() if k not in ("key", "ts_event", "ts_recv"))))
    ts_recv = np.asarray(events.get("ts_recv", np.arange(n) * MS), np.int64)
    context = {"key": np.asarray(events.get("key", np.zeros(n)), np.int64), "ts_recv": ts_recv,
               "ts_event": np.asarray(events.get("ts_event", ts_recv), np.int64)}
    columns = [np.asarray(events[name], dtype) for name, _, dtype in
               ((name, field, t.dtype) for name, field, t in stream_op.flat_inputs())]
    step = step_function(stream_op.step, target)
    c = tuple(stream_op.constants(validated)) + tuple(stream_op.instrument_constants(validated, [f"I{k}" for k in
                                                                                               range(n_keys)]))
    s = stream_op.init(c, n_keys)
    outputs = {port: np.empty(n, t.dtype) for port, t in stream_op.outputs.items()}
    logs: dict[str, list] = {log: [] for log in stream_op.logs}
    for i in range(n):
        returned = step(c, s, *(context[name][i] for name in stream_op.context), *(col[i] for col in columns))
        s = returned[0]
        for port, value in zip(outputs, returned[1:]):
            outputs[port][i] = value
        if drain_every and (i + 1) % drain_every == 0 and stream_op.logs:
            s, drained = stream_op.drain(c, s)
            for log, rows in drained.items():
                logs[log].append(rows)
    if stream_op.logs:
        s, drained = stream_op.drain(c, s)
        for log, rows in drained.items():
            logs[log].append(rows)
    joined = {log: {col: np.concatenate([part[col] for part in parts]) for col in parts[0]}
              for log, parts in logs.items()}
    return outputs, joined


def assert_cpu_numba_identical(name: str, params: dict, events: dict, n_keys: int = 1, drain_every: int = 0):
    """Both placements give the same bits on every output and every log column; return cpu's run."""
    on_cpu = run(name, params, events, "cpu", n_keys, drain_every)
    on_numba = run(name, params, events, "numba", n_keys, drain_every)
    for port in on_cpu[0]:
        assert_bit_identical(on_cpu[0][port], on_numba[0][port], f"{name} {params}: port {port} cpu vs numba")
    for log, columns in on_cpu[1].items():
        for column, values in columns.items():
            other = on_numba[1][log][column]
            if values.dtype.kind in "iuf":
                assert_bit_identical(values, other, f"{name} {params}: log {log}.{column} cpu vs numba")
            else:
                assert values.tolist() == other.tolist(), f"{name} {params}: log {log}.{column} cpu vs numba"
    return on_cpu
