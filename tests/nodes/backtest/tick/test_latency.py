"""The tick venue's latency models: parsing, specs, distributions, determinism, cpu/numba bit identity, replay files."""

import math

import numba
import numpy as np
import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from hardware.targets import step_function
from nodes.backtest.tick.latency import (
    KIND_ACTIVITY, KIND_CONSTANT, KIND_DATA, KIND_REPLAY, STREAM_ENTRY, STREAM_FEED, STREAM_RESPONSE,
    FeedLatencySpec, LatencySpec, _splitmix_next, duration_ns, latency_constants, sample_latency_ns, seed_rng,
    update_activity,
)
from nodes.errors import DataQualityError

N_DRAWS = 100_000
SEED = 20240501


class VenueLatencies(BaseModel):
    """How the venue's params hold latencies (a stand-in for its Params model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entry_latency: LatencySpec = "200us"
    feed_latency: FeedLatencySpec = "data"


def draw_many(lc, rng, n, activity_per_s):
    """Draw ``n`` latencies in a row; the same function runs as Python and, compiled, on numba."""
    out = np.empty(n, np.int64)
    cursor = 0
    for i in range(n):
        latency_ns, rng, cursor = sample_latency_ns(lc, rng, cursor, 0, activity_per_s)
        out[i] = latency_ns
    return out, rng


draw_many_numba = numba.njit(error_model="numpy")(draw_many)


def draws(spec, n=N_DRAWS, seed=SEED, stream=STREAM_ENTRY, activity_per_s=0.0):
    return draw_many_numba(latency_constants(spec), seed_rng(seed, stream), n, activity_per_s)[0]


# ------------------------------------------------------------------------------------------------ durations

@pytest.mark.parametrize("text, ns", [
    ("0", 0), (0, 0), ("150ns", 150), ("200us", 200_000), ("200µs", 200_000), ("1.5ms", 1_500_000),
    ("2s", 2_000_000_000), (" 3 us ", 3_000), ("0.0004us", 0), ("0.0005us", 1), (".25ms", 250_000),
    (1234, 1234), (np.int64(7), 7),
])
def test_duration_ns_parses_units_and_decimals(text, ns):
    assert duration_ns(text) == ns


@pytest.mark.parametrize("text, problem", [
    ("-5us", "is negative"), (-3, "is negative"), ("5", "has no unit"), ("fast", "is not a duration"),
    ("5 min", "is not a duration"), (1.5, "is not a duration"), (True, "is not a duration"),
    ("20d", "is not a duration"), (10**16, "longer than"),
])
def test_duration_ns_rejects_with_the_text_and_the_expected_form(text, problem):
    with pytest.raises(ValueError) as error:
        duration_ns(text)
    message = str(error.value)
    assert repr(text) in message and problem in message and "150ns, 200us, 1.5ms or 2s" in message


# ---------------------------------------------------------------------------------------------------- specs

def test_specs_validate_durations_models_and_data():
    params = VenueLatencies(entry_latency={"model": "uniform", "low": "50us", "high": "150us"})
    assert params.entry_latency.high == "150us" and params.feed_latency == "data"
    assert VenueLatencies(entry_latency=0, feed_latency="1ms").feed_latency == "1ms"
    assert VenueLatencies.model_validate({"entry_latency": {"model": "replay", "path": "x.csv"}}).entry_latency.column \
        == "latency_ns"
    assert "anyOf" in str(VenueLatencies.model_json_schema())  # the schema generates (tickloom ops, JSON Schema)


@pytest.mark.parametrize("value, words", [
    ({"model": "uniform", "low": "150us", "high": "50us"}, "high (50us) is below low (150us)"),
    ({"model": "gamma", "k": 2}, "whose model is one of constant, uniform, normal, lognormal, exponential, replay"),
    ({"latency": "1ms"}, "whose model is one of constant, uniform"),
    ({"model": "constant", "latency": "1ms", "jitter": "1us"}, "Extra inputs are not permitted"),
    ({"model": "normal", "mean": "1ms"}, "Field required"),
    ({"model": "normal", "mean": "1ms", "std": "-1us"}, "'-1us' is negative"),
    ({"model": "lognormal", "median": "1ms", "sigma": -0.1}, "greater than or equal to 0"),
    ({"model": "activity", "base": "1us", "per_kevents_per_s": "1us", "halflife": "0"}, "halflife must be > 0"),
    ("1.5", "has no unit"),
    (2.5, "is not a duration"),
])
def test_bad_latency_specs_say_what_is_wrong(value, words):
    with pytest.raises(ValidationError) as error:
        VenueLatencies(entry_latency=value)
    assert words in str(error.value)


@pytest.mark.parametrize("value, loc", [
    ({"model": "uniform", "low": "150us", "high": "50us"}, ("entry_latency",)),
    ({"model": "normal", "mean": "1ms"}, ("entry_latency", "std")),
    ({"model": "exponential", "base": "1us", "mean_extra": "-1us"}, ("entry_latency", "mean_extra")),
    ({"model": "constant", "latency": "1ms", "jitter": 1}, ("entry_latency", "jitter")),
    ({"model": "gamma"}, ("entry_latency",)),
    ({"latency": "1ms"}, ("entry_latency",)),
    ("fast", ("entry_latency",)),
])
def test_error_locations_name_only_the_users_keys(value, loc):
    # the spec loader maps a location to a YAML line: pydantic's union tags (model, uniform, ...) are not keys
    for field in ("entry_latency", "feed_latency"):
        with pytest.raises(ValidationError) as error:
            VenueLatencies(**{field: value})
        assert [e["loc"] for e in error.value.errors()] == [(field, *loc[1:])]


def test_data_is_a_feed_latency_only():
    with pytest.raises(ValidationError, match="'data' is not a duration"):
        VenueLatencies(entry_latency="data")


def test_specs_are_frozen():
    params = VenueLatencies(entry_latency={"model": "constant", "latency": "1ms"})
    with pytest.raises(ValidationError):
        params.entry_latency.latency = "2ms"


def test_latency_constants_are_a_flat_tuple_per_kind():
    assert latency_constants("data")[:4] == (KIND_DATA, 0.0, 0.0, 0.0)
    assert latency_constants("1.5ms")[:4] == (KIND_CONSTANT, 1_500_000.0, 0.0, 0.0)
    spec = VenueLatencies(entry_latency={"model": "activity", "base": "100us", "per_kevents_per_s": "10us",
                                         "halflife": "50ms"}).entry_latency
    kind, *params, table = latency_constants(spec)
    assert (kind, params) == (KIND_ACTIVITY, [100_000.0, 10_000.0, 50_000_000.0])
    assert table.dtype == np.int64 and table.shape == (0,)


# ---------------------------------------------------------------------------------------------------- the PRNG

def test_splitmix64_matches_the_reference_sequence():
    # splitmix64 from state 0 (Vigna's reference C code): e220a8397b1dcdaf, 6e789e6aa1b965f4, 06c45d188009454f
    state, outputs = 0, []
    for _ in range(3):
        state, bits = _splitmix_next(state)
        outputs.append(bits & (2**64 - 1))
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_same_seed_same_sequence_other_seeds_and_streams_differ():
    spec = {"model": "lognormal", "median": "300us", "sigma": 0.5}
    first = draws(spec, n=2_000)
    assert np.array_equal(first, draws(spec, n=2_000))
    other_seed = draws(spec, n=2_000, seed=SEED + 1)
    other_stream = draws(spec, n=2_000, stream=STREAM_RESPONSE)
    # not merely different: not a shifted copy of the same sequence either
    assert len(np.intersect1d(first, other_seed)) < 50 and len(np.intersect1d(first, other_stream)) < 50
    assert len({seed_rng(SEED, stream) for stream in range(1, 6)}) == 5


# ------------------------------------------------------------------------------------------------ distributions

def test_uniform_is_flat_between_low_and_high():
    x = draws({"model": "uniform", "low": "50us", "high": "150us"})
    assert x.min() >= 50_000 and x.max() <= 150_000
    assert np.mean(x) == pytest.approx(100_000, rel=0.005)
    assert np.quantile(x, [0.25, 0.75]) == pytest.approx([75_000, 125_000], rel=0.01)


def test_normal_has_its_mean_and_std_and_is_clipped_at_zero():
    x = draws({"model": "normal", "mean": "200us", "std": "30us"})
    assert np.mean(x) == pytest.approx(200_000, rel=0.003)
    assert np.std(x) == pytest.approx(30_000, rel=0.02)
    assert np.quantile(x, 0.975) == pytest.approx(200_000 + 1.95996 * 30_000, rel=0.01)
    clipped = draws({"model": "normal", "mean": "10us", "std": "50us"})
    assert clipped.min() == 0
    assert np.mean(clipped == 0) == pytest.approx(0.5 * math.erfc(0.2 / math.sqrt(2)), abs=0.01)  # P(z < -0.2)


def test_lognormal_has_its_median_and_tail():
    x = draws({"model": "lognormal", "median": "300us", "sigma": 0.5})
    assert np.median(x) == pytest.approx(300_000, rel=0.01)
    assert np.quantile(x, 0.95) == pytest.approx(300_000 * math.exp(0.5 * 1.644854), rel=0.02)
    assert np.std(np.log(x)) == pytest.approx(0.5, rel=0.02)


def test_exponential_is_base_plus_an_exponential_extra():
    x = draws({"model": "exponential", "base": "100us", "mean_extra": "50us"})
    assert x.min() >= 100_000 and x.min() < 100_100
    assert np.mean(x) == pytest.approx(150_000, rel=0.01)
    assert np.median(x) == pytest.approx(100_000 + 50_000 * math.log(2), rel=0.01)


def test_constant_never_moves_the_rng():
    lc = latency_constants("200us")
    rng = seed_rng(SEED, STREAM_FEED)
    out, rng_after = draw_many_numba(lc, rng, 100, 0.0)
    assert set(out.tolist()) == {200_000} and rng_after == rng


# ------------------------------------------------------------------------------------------------- activity

def feed_events(rate, last_ts_ns, start_ns, events_per_s, seconds, halflife_ns):
    gap_ns = int(1e9 / events_per_s)
    for ts in range(start_ns, start_ns + int(seconds * 1e9), gap_ns):
        rate, last_ts_ns = update_activity(rate, last_ts_ns, ts, halflife_ns)
    return rate, last_ts_ns


def test_update_activity_tracks_the_event_rate_and_decays_by_half_per_halflife():
    halflife_ns = 100_000_000
    rate, last = feed_events(0.0, 0, 1_000_000_000, 1_000, 2.0, halflife_ns)
    assert rate == pytest.approx(1_000, rel=0.01)
    busy, last = feed_events(rate, last, last + 1_000, 50_000, 1.0, halflife_ns)
    assert busy == pytest.approx(50_000, rel=0.01)
    tau_s = halflife_ns / math.log(2) / 1e9
    after_pause, _ = update_activity(busy, last, last + halflife_ns, halflife_ns)
    assert after_pause == pytest.approx(busy / 2 + 1 / tau_s, rel=1e-12)
    same_time, _ = update_activity(busy, last, last - 5, halflife_ns)  # an older event: no decay backwards
    assert same_time == pytest.approx(busy + 1 / tau_s, rel=1e-12)


def test_activity_latency_grows_with_the_event_rate():
    spec = {"model": "activity", "base": "100us", "per_kevents_per_s": "10us", "halflife": "100ms"}
    quiet, busy = draws(spec, n=1, activity_per_s=1_000.0)[0], draws(spec, n=1, activity_per_s=50_000.0)[0]
    assert (quiet, busy) == (110_000, 600_000)


# ------------------------------------------------------------------------------------ cpu and numba, bit for bit

BIT_SPECS = [
    "200us",
    {"model": "uniform", "low": "50us", "high": "150us"},
    {"model": "normal", "mean": "20us", "std": "30us"},
    {"model": "lognormal", "median": "300us", "sigma": 1.5},
    {"model": "exponential", "base": "100us", "mean_extra": "77.7us"},
    {"model": "activity", "base": "100us", "per_kevents_per_s": "3.3us", "halflife": "7ms"},
]


@pytest.mark.parametrize("spec", BIT_SPECS, ids=lambda s: s if isinstance(s, str) else s["model"])
def test_draws_are_bit_identical_on_cpu_and_numba(spec):
    lc, rng = latency_constants(spec), seed_rng(SEED, STREAM_ENTRY)
    cpu, cpu_rng = draw_many(lc, rng, 20_000, 12_345.678)
    jit, jit_rng = draw_many_numba(lc, rng, 20_000, 12_345.678)
    assert np.array_equal(cpu, jit) and cpu_rng == jit_rng


def latency_step(c, s, ts_event):
    """A tiny venue-like step: count the event's activity, then draw a latency from it."""
    lc, halflife_ns = c
    rng, cursor, rate_per_s, last_ts_ns = s
    rate_per_s, last_ts_ns = update_activity(rate_per_s, last_ts_ns, ts_event, halflife_ns)
    latency_ns, rng, cursor = sample_latency_ns(lc, rng, cursor, ts_event, rate_per_s)
    return (rng, cursor, rate_per_s, last_ts_ns), latency_ns, rate_per_s


@pytest.mark.parametrize("spec", BIT_SPECS[2:], ids=lambda s: s["model"])
def test_a_step_using_the_helpers_is_bit_identical_on_cpu_and_numba(spec):
    gaps_ns = np.random.default_rng(7).exponential(50_000.0, 5_000).astype(np.int64)
    timestamps = 1_700_000_000_000_000_000 + np.cumsum(gaps_ns)
    outputs = {}
    for target in ("cpu", "numba"):
        step = step_function(latency_step, target)
        c, s = (latency_constants(spec), 7_000_000.0), (seed_rng(SEED, STREAM_ENTRY), 0, 0.0, 0)
        rows = []
        for ts in timestamps:
            s, latency_ns, rate = step(c, s, ts)
            rows.append((int(latency_ns), float(rate)))
        outputs[target] = np.array(rows, dtype=[("latency_ns", "i8"), ("rate", "f8")])
    assert outputs["cpu"].tobytes() == outputs["numba"].tobytes()


def test_the_libm_functions_agree_bit_for_bit_on_cpu_and_numba():
    # the reason the random models may use math.log/exp/cos: numba calls the same C library here
    x = np.random.default_rng(3).uniform(1e-300, 30.0, 50_000)
    fns = numba.njit(lambda v: (math.log(v), math.exp(-v), math.cos(v), math.sqrt(v)))
    for v in x[:5_000]:
        assert fns(v) == (math.log(v), math.exp(-v), math.cos(v), math.sqrt(v))


# ----------------------------------------------------------------------------------------------------- replay

def replay(tmp_path, **fields):
    return VenueLatencies(entry_latency={"model": "replay", **fields}).entry_latency


def test_replay_uses_recorded_latencies_in_order_and_cycles(tmp_path):
    (tmp_path / "lat.csv").write_text("ts,latency_ns\n1,250000\n2,310000\n3,290000\n")
    lc = latency_constants(replay(tmp_path, path="lat.csv"), tmp_path)
    assert lc[0] == KIND_REPLAY and lc[4].tolist() == [250_000, 310_000, 290_000]
    assert draw_many_numba(lc, 0, 7, 0.0)[0].tolist() == [250_000, 310_000, 290_000] * 2 + [250_000]
    assert draw_many(lc, 0, 7, 0.0)[0].tolist() == [250_000, 310_000, 290_000] * 2 + [250_000]
    started = latency_constants(replay(tmp_path, path="lat.csv", start=2), tmp_path)
    assert draw_many(started, 0, 4, 0.0)[0].tolist() == [290_000, 250_000, 310_000, 290_000]


# hftbacktest 2.4.4's order-latency record (hftbacktest/data/utils/feed_order_latency.py), written as it does:
# np.savez_compressed(path, data=array); exch_ts - req_ts is the entry latency, resp_ts - exch_ts the response.
HFT_ORDER_LATENCY = np.dtype([("req_ts", "i8"), ("exch_ts", "i8"), ("resp_ts", "i8"), ("_padding", "i8")],
                             align=True)


def test_replay_reads_hftbacktest_order_latency_files(tmp_path):
    data = np.zeros(3, HFT_ORDER_LATENCY)
    data["req_ts"] = [1_000_000, 2_000_000, 3_000_000]
    data["exch_ts"] = data["req_ts"] + [400_000, 500_000, 600_000]
    data["resp_ts"] = data["exch_ts"] + [300_000, 200_000, 100_000]
    np.savez_compressed(tmp_path / "order_latency.npz", data=data)
    pl.DataFrame({n: data[n] for n in ("req_ts", "exch_ts", "resp_ts")}).write_parquet(tmp_path / "ol.parquet")
    for name in ("order_latency.npz", "ol.parquet"):
        entry = latency_constants(replay(tmp_path, path=name, column="entry"), tmp_path)[4]
        response = latency_constants(replay(tmp_path, path=name, column="response"), tmp_path)[4]
        assert entry.tolist() == [400_000, 500_000, 600_000] and response.tolist() == [300_000, 200_000, 100_000]


@pytest.mark.parametrize("content, words", [
    (None, "latency file not found"),
    ("latency_us\n5\n", "no column 'latency_ns' (the file has latency_us)"),
    ("latency_ns\n", "no latencies"),
    ("latency_ns\n100\n-5\n7\n-1\n", "negative latency in 2 row(s): line 3, line 5"),
    ("latency_ns\n100\n\n7\n", "missing latency"),
    ("latency_ns\n100.5\n7\n", "not a whole number of ns in 1 row(s): line 2"),
    ("latency_ns\nfast\n", "not latencies in ns"),
])
def test_bad_replay_files_name_the_file_and_rows(tmp_path, content, words):
    if content is not None:
        (tmp_path / "lat.csv").write_text(content)
    with pytest.raises(DataQualityError) as error:
        latency_constants(replay(tmp_path, path="lat.csv"), tmp_path)
    assert str(tmp_path / "lat.csv") in str(error.value) and words in str(error.value)


def test_replay_start_past_the_end_and_unknown_file_types_are_rejected(tmp_path):
    (tmp_path / "lat.csv").write_text("latency_ns\n1\n2\n")
    with pytest.raises(DataQualityError, match="start row 2 is past the 2 latencies"):
        latency_constants(replay(tmp_path, path="lat.csv", start=2), tmp_path)
    (tmp_path / "lat.txt").write_text("1\n")
    with pytest.raises(DataQualityError, match=r"lat.txt: cannot read latencies .*expected .parquet, .csv"):
        latency_constants(replay(tmp_path, path="lat.txt"), tmp_path)
