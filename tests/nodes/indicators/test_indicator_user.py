"""User indicators: a plain function in numba's subset becomes an op; numba failures are loud, never silent.

``nodes.indicators.user.stream_indicator`` turns ``def f(state, *inputs) -> (state, *outputs)`` into a
``StreamOp``. Placed on ``numba`` it is compiled when the plan is built; if numba cannot compile it, the run stops
with ``StepCompileError`` naming the function, its file and line, and numba's reason. Running it as Python takes
an explicit ``place: cpu``.
"""

import statistics
import textwrap

import numpy as np
import pytest

from hardware.targets import StepCompileError, step_function
from pipelines.run import run_spec
from tests.support import SAMPLES, read_bars, write_spec

USER_MODULE = textwrap.dedent('''
    import statistics

    import numpy as np
    from pydantic import Field

    from nodes.contract import OpParams
    from nodes.indicators.user import stream_indicator


    @stream_indicator("user.range_ema", inputs=("high", "low"), state=(0.0, 0))
    def range_ema(state, high, low):
        """EMA (alpha 0.1) of the bar's range, started at the first range."""
        value, count = state
        span = high - low
        value = span if count == 0 else value + 0.1 * (span - value)
        return (value, count + 1), value


    class LagParams(OpParams):
        bars_back: int = Field(3, ge=1)


    @stream_indicator("user.lag_change", params=LagParams, state=lambda c: (0, 0, np.zeros(c[0] + 1)))
    def lag_change(c, state, x):
        count, pos, ring = state
        ring[pos] = x
        pos = (pos + 1) % ring.shape[0]
        if count < c[0]:
            return (count + 1, pos, ring), np.nan
        return (count, pos, ring), x - ring[pos]


    @stream_indicator("user.median_pair")
    def median_pair(state, x):
        """Not numba-compatible: the statistics module is plain Python."""
        return (x,), statistics.fmean([x, state[0]])
''')


def _spec(folder, nodes, name="user"):
    (folder / "my_ops.py").write_text(USER_MODULE)
    bars = {"op": "source.bars_csv",
            "with": {"path": str(SAMPLES / "AAPL.csv.gz"), "instrument": "AAPL", "timezone": "America/New_York"}}
    return write_spec(folder, name, {"bars": bars, **nodes}, modules=["my_ops.py"])


def test_user_indicator_runs_on_numba_and_cpu_with_identical_results(tmp_path):
    nodes = {
        "rng": {"op": "user.range_ema", "in": {"high": "bars.high", "low": "bars.low"}},
        "lag": {"op": "user.lag_change", "in": "bars.close", "with": {"bars_back": 5}},
    }
    on_numba = run_spec(_spec(tmp_path, nodes), places=["rng=numba", "lag=numba"], write=False, record=["rng", "lag"])
    on_cpu = run_spec(_spec(tmp_path, nodes), places=["rng=cpu", "lag=cpu"], write=False, record=["rng", "lag"])
    bars = read_bars("AAPL")
    span = bars["high"] - bars["low"]
    expected = np.empty_like(span)
    expected[0] = span[0]
    for i in range(1, len(span)):
        expected[i] = expected[i - 1] + 0.1 * (span[i] - expected[i - 1])
    for run in (on_numba, on_cpu):
        np.testing.assert_allclose(run.replay.recorded["rng"]["out"].to_numpy(), expected, rtol=1e-12)
        lag = run.replay.recorded["lag"]["out"].to_numpy()
        assert np.isnan(lag[:5]).all()
        np.testing.assert_allclose(lag[5:], bars["close"][5:] - bars["close"][:-5], rtol=1e-12)
    for node in ("rng", "lag"):
        a = on_numba.replay.recorded[node]["out"].to_numpy()
        b = on_cpu.replay.recorded[node]["out"].to_numpy()
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), f"{node}: numba and cpu differ"


def test_numba_failure_is_a_readable_error_naming_the_function(tmp_path):
    spec = _spec(tmp_path, {"med": {"op": "user.median_pair", "in": "bars.close", "place": "numba"}})
    with pytest.raises(StepCompileError) as caught:
        run_spec(spec, write=False)
    message = str(caught.value)
    assert "median_pair" in message and "user.median_pair" in message, message
    assert "my_ops.py" in message, f"the error should point at the user's file: {message}"
    assert "fmean" in message, f"numba's reason should be quoted: {message}"
    assert "place: cpu" in message, f"the error should name the explicit fallback: {message}"


def test_python_fallback_is_explicit_place_cpu(tmp_path):
    spec = _spec(tmp_path, {"med": {"op": "user.median_pair", "in": "bars.close", "place": "cpu"}})
    out = run_spec(spec, write=False, record=["med"]).replay.recorded["med"]["out"].to_numpy()
    close = read_bars("AAPL")["close"]
    np.testing.assert_allclose(out[1:], (close[1:] + close[:-1]) / 2.0, rtol=1e-12)


def test_step_function_compiles_user_steps_eagerly():
    """The check happens when the step is handed to numba, before any event: at plan time, not mid-run."""
    from nodes.indicators.user import stream_indicator

    @stream_indicator("user.bad_inline")
    def bad_inline(state, x):
        return (x,), statistics.fmean([x, state[0]])  # plain-Python module: numba cannot type it

    with pytest.raises(StepCompileError, match="bad_inline"):
        step_function(bad_inline.step, "numba")
    assert bad_inline.step((), (3.0,), 1.0) == ((1.0,), 2.0)  # the same step runs as Python on cpu


def test_signature_mismatch_is_reported_at_definition():
    from nodes.indicators.user import stream_indicator

    with pytest.raises(ValueError, match=r"needs \(state, high, low\)"):
        @stream_indicator("user.wrong", inputs=("high", "low"))
        def wrong(state, x):
            return state, x
    with pytest.raises(ValueError, match="must be dotted"):
        stream_indicator("nodot")
