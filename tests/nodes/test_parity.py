"""Parity, op level: every stream op's step gives bit-identical outputs on cpu and numba over real bars.

The op's ``step`` is the one implementation; ``cpu`` runs it as Python and ``numba`` compiles it. Driving both
over the same events in a plain loop must give the same bits, or a placement would change a backtest.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.targets import step_function
from nodes.contract import default_registry
from tests.support import (
    EXAMPLE_PARAMS,
    REPO,
    assert_bit_identical,
    drive,
    example_params,
    op_context,
    op_inputs,
    perturb_after,
    random_bars,
    read_bars,
    stream_op_names,
    write_spec,
)


# cpu steps see numpy scalars: a NaN or zero input warns where numba stays silent; the outputs are what count
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def aapl():
    return read_bars("AAPL")


@pytest.fixture(scope="module")
def aapl_with_holes(aapl):
    """AAPL with a missing value now and then, so the ops' NaN paths run too (not for the venue's market)."""
    holed = {k: v.copy() for k, v in aapl.items()}
    for name in ("open", "high", "low", "close", "volume"):
        holed[name][5::37] = np.nan
    return holed


def test_every_stream_op_has_example_params():
    missing = [name for name in stream_op_names() if name not in EXAMPLE_PARAMS]
    assert not missing, f"add example params to tests/support.py EXAMPLE_PARAMS for: {missing}"
    stale = [name for name in EXAMPLE_PARAMS if default_registry().get(name) is None]
    assert not stale, f"EXAMPLE_PARAMS names ops that no longer exist: {stale}"


@pytest.mark.parametrize("op_name", stream_op_names())
def test_step_cpu_and_numba_are_bit_identical(op_name, aapl, aapl_with_holes):
    op = default_registry().get(op_name)
    feeds = {"AAPL": aapl} if not op.keyed else {"AAPL": aapl, "AAPL with NaN holes": aapl_with_holes}
    for params in example_params(op):
        for feed_name, bars in feeds.items():
            inputs = op_inputs(op, bars)
            context = op_context(op, len(bars["close"]))
            on_cpu = drive(op, params, context, inputs, "cpu")
            on_numba = drive(op, params, context, inputs, "numba")
            for port, a, b in zip(op.outputs, on_cpu, on_numba):
                assert_bit_identical(a, b, f"{op_name} {params!r} over {feed_name}: port {port!r} cpu vs numba")
            # a parity test over constant output would prove little
            assert any(np.unique(out[~np.isnan(out)] if out.dtype == np.float64 else out).size > 1 for out in on_cpu), (
                f"{op_name} {params!r}: every output is constant over {feed_name}; the feed does not exercise it"
            )


def test_bar_venue_parity_over_interleaved_instruments():
    """The venue keeps per-instrument arrays; drive four instruments interleaved by key, as a real run does."""
    op = default_registry().get("backtest.bar_venue")
    per_instrument = [read_bars(name) for name in ("AAPL", "MSFT", "IBM", "KO")]
    n = len(per_instrument[0]["close"])
    interleaved = {
        field: np.stack([bars[field] for bars in per_instrument], axis=1).reshape(-1)
        for field in ("open", "high", "low", "close", "volume")
    }
    keys = np.tile(np.arange(4, dtype=np.int64), n)
    inputs = op_inputs(op, interleaved)
    context = op_context(op, len(keys), keys=keys)
    for params in example_params(op):
        on_cpu = drive(op, params, context, inputs, "cpu", n_keys=4)
        on_numba = drive(op, params, context, inputs, "numba", n_keys=4)
        for port, a, b in zip(op.outputs, on_cpu, on_numba):
            assert_bit_identical(a, b, f"bar_venue {params!r} four instruments: port {port!r} cpu vs numba")


# Values a real feed can carry (gaps, sign flips); not magnitudes beyond what a position can hold. Zeros have
# their own deterministic test below.
REALISTIC_CHANGES = ("noise", "nan", "negative")


@pytest.mark.parametrize("op_name", stream_op_names())
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(20, 120),
    t=st.integers(0, 119),
    seed=st.integers(0, 2**32 - 1),
    from_aapl=st.booleans(),
    how=st.sampled_from(REALISTIC_CHANGES),
)
def test_step_parity_on_random_series(op_name, n, t, seed, from_aapl, how):
    """cpu and numba agree bit for bit on random walks and jittered AAPL with gaps, zeros and negatives."""
    op = default_registry().get(op_name)
    rng = np.random.default_rng(seed)
    n_keys = 1 if op.keyed else 3
    inputs = [perturb_after(column, min(t, n - 1), how, rng) for column in op_inputs(op, random_bars(seed, n, from_aapl))]
    context = op_context(op, n, keys=rng.integers(0, n_keys, n).astype(np.int64))
    for params in example_params(op):
        on_cpu = drive(op, params, context, inputs, "cpu", n_keys=n_keys)
        on_numba = drive(op, params, context, inputs, "numba", n_keys=n_keys)
        for port, a, b in zip(op.outputs, on_cpu, on_numba):
            assert_bit_identical(a, b, f"{op_name} {params!r} random series: port {port!r} cpu vs numba")


# Ops that divide by a value that can be zero without a guard: numba compiles with error_model="python" (float
# division by zero raises ZeroDivisionError) while cpu, fed numpy scalars, returns inf/NaN with a warning.
ZERO_DIVISION_BUGS: dict[str, str] = {}  # op name → reason, for a known cpu/numba divergence on zeros


def _zero_bars() -> dict:
    """200 AAPL bars with two stretches of all-zero bars (a dead feed, a zero-volume halt)."""
    bars = {k: v[:200].copy() for k, v in read_bars("AAPL").items() if k != "date"}
    for field in ("open", "high", "low", "close", "volume"):
        bars[field][60:90] = 0.0
        bars[field][150:152] = 0.0
    return bars


@pytest.mark.parametrize(
    "op_name",
    [pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=ZERO_DIVISION_BUGS[name]))
     if name in ZERO_DIVISION_BUGS else name for name in stream_op_names()],
)
def test_step_parity_over_zero_values(op_name):
    """Zeros in every input: both placements give the same bits, or fail the same way."""
    op = default_registry().get(op_name)
    bars = _zero_bars()
    inputs = op_inputs(op, bars)
    context = op_context(op, 200)
    for params in example_params(op):
        on_cpu = _outcome(lambda: drive(op, params, context, inputs, "cpu"))
        on_numba = _outcome(lambda: drive(op, params, context, inputs, "numba"))
        assert isinstance(on_cpu, str) == isinstance(on_numba, str), (
            f"{op_name} {params!r} over zero bars: cpu gives {_shown(on_cpu)}, numba gives {_shown(on_numba)}"
        )
        if isinstance(on_cpu, str):
            assert on_cpu == on_numba
            continue
        for port, a, b in zip(op.outputs, on_cpu, on_numba):
            assert_bit_identical(a, b, f"{op_name} {params!r} over zero bars: port {port!r} cpu vs numba")


def _shown(outcome) -> str:
    return outcome if isinstance(outcome, str) else "outputs"


def _outcome(run):
    """What ``run()`` gives: its value, or the name of the exception it raised."""
    try:
        return run()
    except Exception as error:  # noqa: BLE001 - the outcome, whatever it is, is what must match
        return f"{type(error).__name__}: {error}"


def _step_outcome(step, *args):
    try:
        return step(*args)[1:]
    except Exception as error:  # noqa: BLE001 - the outcome, whatever it is, is what must match
        return type(error).__name__


def test_sizing_parity_when_the_size_does_not_fit_int64():
    """A size that is not finite or beyond int64 gives the same target on both placements.

    Regression: ``math.trunc`` raised OverflowError on cpu (or stayed a Python int) while numba wrapped to
    int64's minimum, a maximal short from a long signal.
    """
    cases = [
        # inverse-volatility weights over a flat window give weight = inf
        ("sizing.target_weights", {}, (np.inf, 10.0, 10_000.0)),
        # a long target bigger than int64 (weight 1, equity 1e12, price 1e-9)
        ("sizing.target_weights", {}, (1.0, 1e-9, 1e12)),
        ("sizing.fraction_of_equity", {"fraction": 1.0}, (1.0, 1e-9, 1e12)),
    ]
    for op_name, raw_params, values in cases:
        op = default_registry().get(op_name)
        c = tuple(op.constants(op.Params.model_validate(raw_params)))
        s = op.init(c, 1)
        args = tuple(np.float64(v) for v in values)
        on_cpu = _step_outcome(step_function(op.step, "cpu"), c, s, *args)
        on_numba = _step_outcome(step_function(op.step, "numba"), c, s, *args)
        assert isinstance(on_cpu, str) == isinstance(on_numba, str) and (
            on_cpu == on_numba if isinstance(on_cpu, str) else np.array_equal(on_cpu, on_numba, equal_nan=True)
        ), f"{op_name}{args}: cpu gives {on_cpu!r}, numba gives {on_numba!r}"


# --- compiled steps must follow the code they call ---------------------------------------------------------

_HELPER = '''
from nodes.contract import step_helper


@step_helper
def bump(x):
    return x + {amount}
'''

_OP = '''
from nodes.contract import F64, StreamOp
from stalepkg.helper import bump


class Bump(StreamOp):
    """Add a constant kept in a helper module, as ops that share step helpers do (ladder.py, _window.py)."""

    name = "user.bump"
    inputs = {"x": F64}
    outputs = {"out": F64}

    @staticmethod
    def init(c, n_keys):
        return ()

    @staticmethod
    def step(c, s, x):
        return s, bump(x)
'''

_PROBE = '''
import sys
sys.path[:0] = [{root!r}, {repo!r}]
from hardware.targets import step_function
from pipelines.run import run_spec
from stalepkg.op import Bump
replayed = run_spec({spec!r}, write=False).replay.recorded["bumped"]["out"][0] - 1.0
print(Bump.step((), (), 1.0)[1], step_function(Bump.step, "numba")((), (), 1.0)[1], replayed)
'''


def test_numba_follows_a_changed_helper_in_another_module(tmp_path):
    """Edit a step_helper in another module: a new process must run the edited code on numba, both for the
    step alone and inside a compiled segment, never machine code cached from before the edit."""
    package = tmp_path / "stalepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "op.py").write_text(_OP)
    (tmp_path / "one.csv").write_text("date,open,high,low,close,volume\n2024-01-02,1,1,1,1,1\n")
    spec = write_spec(tmp_path, "stale", {
        "bars": {"op": "source.bars_csv", "with": {"path": str(tmp_path / "one.csv"), "instrument": "X",
                                                   "timezone": "UTC"}},
        "bumped": {"op": "user.bump", "in": "bars.close", "place": "numba"},
    }, modules=["stalepkg/op.py"])
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE.format(root=str(tmp_path), repo=str(REPO), spec=str(spec)))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache"), "TICKLOOM_CACHE": str(tmp_path / "kernels")}

    def cpu_numba_and_replay(amount: str) -> list[float]:
        (package / "helper.py").write_text(_HELPER.format(amount=amount))
        done = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return [float(v) for v in done.stdout.split()]

    assert cpu_numba_and_replay("1.0") == [2.0, 2.0, 1.0]
    # a new process, as after editing an op library: every placement must run the edited helper
    assert cpu_numba_and_replay("100.0") == [101.0, 101.0, 100.0]
