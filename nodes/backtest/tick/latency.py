"""Latency models of the tick venue: typed specs, the numbers a step reads, and the draws it compiles.

A latency is written in a spec as a duration (``200us``: constant) or as a model::

    entry_latency: {model: uniform, low: 50us, high: 150us}
    response_latency: {model: lognormal, median: 300us, sigma: 0.5}
    cancel_latency: {model: replay, path: latencies.parquet, column: entry}
    feed_latency: data                      # the data's own ts_recv - ts_event (feed latency only)

Models: ``constant`` (latency), ``uniform`` (low, high), ``normal`` (mean, std; clipped at 0), ``lognormal``
(median, sigma of log-latency), ``exponential`` (base + an exponential extra of mean ``mean_extra``),
``replay`` (recorded latencies in ns, used in order and cycled) and ``activity`` (base + ``per_kevents_per_s``
for every 1000 events/s of the recent event rate, an EWMA with ``halflife``: slow when the market is busy).

How the venue uses this module: ``latency_constants(spec, base_dir)`` once per latency when it builds its
constants (a flat tuple: kind, three floats, an int64 table), ``seed_rng(seed, STREAM_*)`` once per latency in
``init``, then per request ``sample_latency_ns`` and per market event ``update_activity``. The draws use an
integer PRNG (splitmix64) written so that plain Python and numba compute the same bits: the same seed gives the
same run on both targets. The random models use ``math.log``/``math.cos``/``math.exp``/``math.sqrt``, which
numba calls from the same C library as Python (no SVML here; the test suite checks bit identity).

Not modelled: the time dependence of recorded latencies (hftbacktest's ``IntpOrderLatency`` interpolates by
request time; ``replay`` here uses the rows in order) and rejections encoded as negative latencies.
"""

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
import polars as pl
from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, WrapValidator,
    model_validator,
)

from nodes.contract import step_helper
from nodes.errors import DataQualityError

# ---------------------------------------------------------------------------------------------------- durations

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s)?\s*$")
_NS_PER_UNIT = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
# Far above any latency, far below int64's limit: a draw is clipped here so int64 arithmetic never overflows.
MAX_LATENCY_NS = 10**15
_EXPECTED = "expected a duration >= 0 such as 0, 150ns, 200us, 1.5ms or 2s (a bare integer is ns)"


def duration_ns(text: str | int) -> int:
    """Return a duration (``"0"``, ``"150ns"``, ``"200us"``, ``"1.5ms"``, ``"2s"`` or an int of ns) in whole ns.

    Decimals are allowed and rounded to the nearest ns (half up). Raises ``ValueError`` naming the text when it
    is negative, has no unit (other than ``0``), is not a duration, or exceeds ``MAX_LATENCY_NS``.
    """
    if isinstance(text, (bool, np.bool_)) or not isinstance(text, (str, int, np.integer)):
        raise ValueError(f"duration {text!r} is not a duration; {_EXPECTED}")
    if isinstance(text, str):
        match = _DURATION.match(text)
        if match is None:
            problem = "is negative" if text.strip().startswith("-") else "is not a duration"
            raise ValueError(f"duration {text!r} {problem}; {_EXPECTED}")
        number, unit = Decimal(match.group(1)), match.group(2)
        if unit is None and number != 0:
            raise ValueError(f"duration {text!r} has no unit; {_EXPECTED}")
        ns = int((number * _NS_PER_UNIT[unit or "ns"]).to_integral_value(ROUND_HALF_UP))
    else:
        ns = int(text)
        if ns < 0:
            raise ValueError(f"duration {text!r} is negative; {_EXPECTED}")
    if ns > MAX_LATENCY_NS:
        raise ValueError(f"duration {text!r} is longer than {MAX_LATENCY_NS} ns (11.6 days); {_EXPECTED}")
    return ns


def _checked_duration(value: Any) -> Any:
    duration_ns(value)
    return value  # kept as written, so a spec round-trips and the schema shows "200us"


Duration = Annotated[str | int, BeforeValidator(_checked_duration)]

# --------------------------------------------------------------------------------------------------------- specs


class _LatencyModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConstantLatency(_LatencyModel):
    """Always the same latency (the same as writing the duration alone)."""

    model: Literal["constant"] = Field(description="model name")
    latency: Duration = Field(description="the latency, e.g. 200us")


class UniformLatency(_LatencyModel):
    """A latency drawn uniformly between ``low`` and ``high``."""

    model: Literal["uniform"] = Field(description="model name")
    low: Duration = Field(description="smallest latency, e.g. 50us")
    high: Duration = Field(description="largest latency, e.g. 150us; not below low")

    @model_validator(mode="after")
    def _ordered(self):
        if duration_ns(self.high) < duration_ns(self.low):
            raise ValueError(f"uniform latency: high ({self.high}) is below low ({self.low})")
        return self


class NormalLatency(_LatencyModel):
    """A normally distributed latency, clipped at 0."""

    model: Literal["normal"] = Field(description="model name")
    mean: Duration = Field(description="mean latency before clipping, e.g. 200us")
    std: Duration = Field(description="standard deviation, e.g. 30us")


class LognormalLatency(_LatencyModel):
    """A lognormal latency: ``median × exp(sigma × z)``, z standard normal (a long right tail)."""

    model: Literal["lognormal"] = Field(description="model name")
    median: Duration = Field(description="median latency, e.g. 300us")
    sigma: float = Field(ge=0.0, le=5.0, description="standard deviation of log(latency), unitless; 0 = always the "
                                                      "median, 0.5 = the 95th percentile is 2.3 × the median")


class ExponentialLatency(_LatencyModel):
    """A fixed part plus an exponentially distributed extra: ``base + Exp(mean_extra)``."""

    model: Literal["exponential"] = Field(description="model name")
    base: Duration = Field(description="the smallest latency, e.g. 100us")
    mean_extra: Duration = Field(description="mean of the random extra above base, e.g. 50us")


class ReplayLatency(_LatencyModel):
    """Recorded latencies (ns) from a file, used in order and cycled.

    The file (``.parquet``, ``.csv``, ``.csv.gz`` or hftbacktest's ``.npz``) holds a column of latencies in ns, or
    hftbacktest's order-latency columns ``req_ts, exch_ts, resp_ts``: ``column: entry`` replays
    ``exch_ts - req_ts``, ``column: response`` replays ``resp_ts - exch_ts``.
    """

    model: Literal["replay"] = Field(description="model name")
    path: str = Field(description="the file of recorded latencies, relative to the spec's folder")
    column: str = Field("latency_ns", description="the column of latencies in ns; for a file with hftbacktest's "
                                                  "req_ts/exch_ts/resp_ts columns: entry or response")
    start: int = Field(0, ge=0, description="the row to start from (0-based); the sequence then cycles")


class ActivityLatency(_LatencyModel):
    """A latency that grows with the recent event rate: ``base + per_kevents_per_s × rate / 1000``.

    ``rate`` is the EWMA of market events per second (``update_activity``) with half-life ``halflife``: a burst of
    50k events/s with ``per_kevents_per_s: 10us`` adds 500us.
    """

    model: Literal["activity"] = Field(description="model name")
    base: Duration = Field(description="the latency of a quiet market, e.g. 100us")
    per_kevents_per_s: Duration = Field(description="latency added per 1000 events/s of recent activity, e.g. 10us")
    halflife: Duration = Field("100ms", description="half-life of the event-rate average, > 0")

    @model_validator(mode="after")
    def _positive_halflife(self):
        if duration_ns(self.halflife) == 0:
            raise ValueError(f"activity latency: halflife must be > 0 (got {self.halflife!r})")
        return self


LatencyModel = Annotated[
    Union[ConstantLatency, UniformLatency, NormalLatency, LognormalLatency, ExponentialLatency, ReplayLatency,
          ActivityLatency],
    Field(discriminator="model"),
]


def _latency_form(value: Any) -> str:
    return "model" if isinstance(value, (dict, BaseModel)) else "duration"


_UNKNOWN_MODEL = ("a latency is a duration (200us) or a mapping whose model is one of constant, uniform, normal, "
                  "lognormal, exponential, replay, activity")


def _untagged(tag_segments: dict[str, int]):
    """A wrap validator that drops a union's tags from error locations, so they name the user's keys only.

    pydantic puts each union tag it took into the location (``entry_latency.model.uniform.high``); the spec
    loader maps locations to YAML lines, where only ``entry_latency.high`` exists. ``tag_segments`` says how many
    leading segments each tag accounts for.
    """

    def validate(value, handler):
        try:
            return handler(value)
        except ValidationError as error:
            details = []
            for e in error.errors():
                loc = e["loc"]
                skip = tag_segments.get(loc[0], 0) if loc else 0
                detail = {"type": e["type"], "loc": loc[skip:], "input": e["input"]}
                if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                    detail.update(type="value_error", ctx={"error": ValueError(_UNKNOWN_MODEL)})
                elif "ctx" in e:
                    detail["ctx"] = e["ctx"]
                details.append(detail)
            raise ValidationError.from_exception_data(error.title, details) from None

    return WrapValidator(validate)


LatencySpec = Annotated[
    Union[Annotated[Duration, Tag("duration")], Annotated[LatencyModel, Tag("model")]],
    Discriminator(_latency_form),
    _untagged({"duration": 1, "model": 2}),  # "model" is followed by the model's name
]


def _feed_form(value: Any) -> str:
    return "data" if isinstance(value, str) and value == "data" else "latency"


FeedLatencySpec = Annotated[
    Union[Annotated[Literal["data"], Tag("data")], Annotated[LatencySpec, Tag("latency")]],
    Discriminator(_feed_form),
    _untagged({"data": 1, "latency": 1}),
]
_FEED_SPEC = TypeAdapter(FeedLatencySpec)

# ----------------------------------------------------------------------------------------------------- constants

KIND_CONSTANT = 0
KIND_UNIFORM = 1
KIND_NORMAL = 2
KIND_LOGNORMAL = 3
KIND_EXPONENTIAL = 4
KIND_REPLAY = 5
KIND_ACTIVITY = 6
KIND_DATA = 7  # feed latency taken from the data: sample_latency_ns returns 0, the venue uses ts_recv - ts_event

# One PRNG stream per latency, so that adding draws to one never shifts the others.
STREAM_FEED = 1
STREAM_COMPUTE = 2
STREAM_ENTRY = 3
STREAM_CANCEL = 4
STREAM_RESPONSE = 5

_MODEL_KINDS = {
    ConstantLatency: KIND_CONSTANT, UniformLatency: KIND_UNIFORM, NormalLatency: KIND_NORMAL,
    LognormalLatency: KIND_LOGNORMAL, ExponentialLatency: KIND_EXPONENTIAL, ActivityLatency: KIND_ACTIVITY,
}


def latency_constants(spec: Any, base_dir: Path | None = None) -> tuple:
    """Return ``(kind, p1, p2, p3, table)``: the numbers ``sample_latency_ns`` reads for one latency spec.

    ``spec`` is a validated ``FeedLatencySpec``/``LatencySpec`` (or its raw YAML value). ``table`` is an int64
    array, empty except for ``replay``, whose file resolves against ``base_dir`` (the spec's folder). Params:
    constant (latency_ns), uniform (low_ns, high_ns), normal (mean_ns, std_ns), lognormal (median_ns, sigma),
    exponential (base_ns, mean_extra_ns), replay (start row), activity (base_ns, ns per 1000 events/s,
    halflife_ns). Raises ``DataQualityError`` naming the file when a replay file is missing or invalid.
    """
    if not isinstance(spec, BaseModel):
        spec = _FEED_SPEC.validate_python(spec)
    no_table = np.zeros(0, np.int64)
    if isinstance(spec, str) and spec == "data":
        return (KIND_DATA, 0.0, 0.0, 0.0, no_table)
    if not isinstance(spec, BaseModel):
        return (KIND_CONSTANT, float(duration_ns(spec)), 0.0, 0.0, no_table)
    if isinstance(spec, ReplayLatency):
        table = read_replay_latencies(spec, base_dir)
        if spec.start >= len(table):
            raise DataQualityError(f"{_replay_path(spec, base_dir)}: start row {spec.start} is past the "
                                   f"{len(table)} latencies of the file")
        return (KIND_REPLAY, float(spec.start), 0.0, 0.0, table)
    return (_MODEL_KINDS[type(spec)], *_model_params(spec), no_table)


def _model_params(spec: BaseModel) -> tuple[float, float, float]:
    if isinstance(spec, ConstantLatency):
        return float(duration_ns(spec.latency)), 0.0, 0.0
    if isinstance(spec, UniformLatency):
        return float(duration_ns(spec.low)), float(duration_ns(spec.high)), 0.0
    if isinstance(spec, NormalLatency):
        return float(duration_ns(spec.mean)), float(duration_ns(spec.std)), 0.0
    if isinstance(spec, LognormalLatency):
        return float(duration_ns(spec.median)), float(spec.sigma), 0.0
    if isinstance(spec, ExponentialLatency):
        return float(duration_ns(spec.base)), float(duration_ns(spec.mean_extra)), 0.0
    return (float(duration_ns(spec.base)), float(duration_ns(spec.per_kevents_per_s)),
            float(duration_ns(spec.halflife)))

# -------------------------------------------------------------------------------------------------- replay files

_HFT_COLUMNS = ("req_ts", "exch_ts", "resp_ts")
_HFT_LEGS = {"entry": ("exch_ts", "req_ts"), "response": ("resp_ts", "exch_ts")}


def _replay_path(spec: ReplayLatency, base_dir: Path | None) -> Path:
    path = Path(spec.path)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def read_replay_latencies(spec: ReplayLatency, base_dir: Path | None) -> np.ndarray:
    """Read a replay file's latencies as int64 ns; raise ``DataQualityError`` naming the file and rows if invalid."""
    path = _replay_path(spec, base_dir)
    if not path.is_file():
        raise DataQualityError(f"{path}: latency file not found (replay latency path {spec.path!r}, relative to "
                               f"the spec's folder)")
    try:
        frame = _read_frame(path)
    except (pl.exceptions.PolarsError, OSError, ValueError, KeyError) as error:
        raise DataQualityError(f"{path}: cannot read latencies ({type(error).__name__}: {error})") from None
    values = _latency_column(frame, spec.column, path)
    return _checked_latencies(values, path)


def _read_frame(path: Path) -> pl.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pl.read_parquet(path)
    if name.endswith(".npz"):  # hftbacktest's files: a structured array under the key "data"
        with np.load(path) as archive:
            data = archive["data"]
        return pl.DataFrame({field: data[field] for field in data.dtype.names or ()})
    if name.endswith((".csv", ".csv.gz")):
        return pl.read_csv(path)
    raise ValueError("unknown file type; expected .parquet, .csv, .csv.gz or hftbacktest's .npz")


def _latency_column(frame: pl.DataFrame, column: str, path: Path) -> pl.Series:
    if column in frame.columns:
        return frame[column]
    if all(name in frame.columns for name in _HFT_COLUMNS) and column in _HFT_LEGS:
        later, earlier = _HFT_LEGS[column]
        return (frame[later] - frame[earlier]).alias(f"{later} - {earlier}")
    raise DataQualityError(
        f"{path}: no column {column!r} (the file has {', '.join(frame.columns) or 'no columns'}); expected a column "
        f"of latencies in ns, or hftbacktest's req_ts, exch_ts, resp_ts with column: entry or response")


def _row_name(path: Path, index: int) -> str:
    is_csv = path.name.lower().endswith((".csv", ".csv.gz"))
    return f"line {index + 2}" if is_csv else f"row {index}"


def _bad_rows(path: Path, mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(_row_name(path, int(r)) for r in rows[:5])
    return f"{len(rows)} row(s): {shown}{', ...' if len(rows) > 5 else ''}"


def _checked_latencies(values: pl.Series, path: Path) -> np.ndarray:
    if len(values) == 0:
        raise DataQualityError(f"{path}: no latencies (the file has no rows)")
    if not values.dtype.is_numeric():
        raise DataQualityError(f"{path}: column {values.name!r} holds {values.dtype}, not latencies in ns")
    missing = values.is_null().to_numpy()
    if missing.any():
        raise DataQualityError(f"{path}: missing latency in {_bad_rows(path, missing)}")
    as_float = values.cast(pl.Float64).to_numpy()
    fractional = ~np.isfinite(as_float) | (as_float != np.round(as_float))
    if fractional.any():
        raise DataQualityError(f"{path}: latency not a whole number of ns in {_bad_rows(path, fractional)}")
    negative = as_float < 0
    if negative.any():
        raise DataQualityError(f"{path}: negative latency in {_bad_rows(path, negative)} (hftbacktest encodes an "
                               f"exchange rejection as a negative latency; tickloom does not replay rejections)")
    too_long = as_float > MAX_LATENCY_NS
    if too_long.any():
        raise DataQualityError(f"{path}: latency above {MAX_LATENCY_NS} ns in {_bad_rows(path, too_long)}")
    return np.ascontiguousarray(values.cast(pl.Int64).to_numpy(), dtype=np.int64)

# ----------------------------------------------------------------------------------------------- step helpers
# Integer arithmetic that gives the same bits as Python ints (exact) and as numba int64 (wrapping): every
# product and sum is reduced modulo 2**64 to a signed value, and right shifts are made logical by a mask.

_MASK63 = (1 << 63) - 1
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # splitmix64's constants as signed int64 (numba types them int64)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)
_INV_2_POW_53 = 1.0 / 9007199254740992.0
_TWO_PI = 2.0 * math.pi
_LN2 = math.log(2.0)


@step_helper
def _wrap64(x):
    """``x`` modulo 2**64 as a signed int64: exact for Python ints, a no-op on numba's wrapping int64."""
    return (x & _MASK63) | (-((x >> 63) & 1) << 63)


@step_helper
def _shift_right(x, bits):
    """Logical (unsigned) right shift of a signed int64."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


@step_helper
def _splitmix_next(rng):
    """Advance splitmix64 (Steele, Lea, Flood 2014); return (new state, 64 random bits as int64)."""
    state = _wrap64(int(rng) + _GOLDEN)
    z = _wrap64((state ^ _shift_right(state, 30)) * _MIX1)
    z = _wrap64((z ^ _shift_right(z, 27)) * _MIX2)
    return state, z ^ _shift_right(z, 31)


@step_helper
def uniform_draw(rng):
    """Return (new state, u) with u uniform on [0, 1): the top 53 bits of a draw."""
    rng, bits = _splitmix_next(rng)
    return rng, _shift_right(bits, 11) * _INV_2_POW_53


@step_helper
def _standard_normal(rng):
    """Return (new state, z) with z standard normal (Box-Muller, cosine branch; two uniforms per draw)."""
    rng, u1 = uniform_draw(rng)
    rng, u2 = uniform_draw(rng)
    radius = math.sqrt(-2.0 * math.log(1.0 - u1))  # 1 - u1 is in (0, 1]: log never sees 0
    return rng, radius * math.cos(_TWO_PI * u2)


@step_helper
def seed_rng(seed, stream):
    """Return the initial PRNG state of latency ``stream`` (``STREAM_*``) for a run seeded with ``seed``."""
    _, mixed = _splitmix_next(_wrap64(int(seed)))
    _, state = _splitmix_next(_wrap64(mixed + int(stream)))
    return state


@step_helper
def _to_ns(value_ns):
    if value_ns > MAX_LATENCY_NS:
        value_ns = float(MAX_LATENCY_NS)
    return int(value_ns + 0.5)  # value_ns >= 0: rounds half up


@step_helper
def sample_latency_ns(lc, rng, cursor, now_ns, activity_per_s):
    """Draw one latency of the spec whose constants are ``lc``; return (latency_ns, rng, cursor).

    ``rng`` is the stream's PRNG state (``seed_rng``), ``cursor`` the replay position (start at 0),
    ``activity_per_s`` the event rate from ``update_activity`` (read by the activity model only). ``now_ns`` is
    the time of the request, for models that depend on time (none does yet). ``KIND_DATA`` returns 0: the venue
    uses the data's ``ts_recv - ts_event`` instead.
    """
    kind = lc[0]
    value_ns = 0.0
    if kind == KIND_CONSTANT:
        value_ns = lc[1]
    elif kind == KIND_UNIFORM:
        rng, u = uniform_draw(rng)
        value_ns = lc[1] + u * (lc[2] - lc[1])
    elif kind == KIND_NORMAL:
        rng, z = _standard_normal(rng)
        value_ns = max(lc[1] + lc[2] * z, 0.0)
    elif kind == KIND_LOGNORMAL:
        rng, z = _standard_normal(rng)
        value_ns = lc[1] * math.exp(lc[2] * z)
    elif kind == KIND_EXPONENTIAL:
        rng, u = uniform_draw(rng)
        value_ns = lc[1] - lc[2] * math.log(1.0 - u)
    elif kind == KIND_REPLAY:
        table = lc[4]
        latency_ns = int(table[(int(lc[1]) + cursor) % len(table)])
        return latency_ns, rng, (cursor + 1) % len(table)
    elif kind == KIND_ACTIVITY:
        value_ns = lc[1] + lc[2] * (activity_per_s / 1000.0)
    return _to_ns(value_ns), rng, cursor


@step_helper
def update_activity(rate_per_s, last_ts_ns, now_ts_ns, halflife_ns):
    """Count one event at ``now_ts_ns`` in the EWMA event rate; return (rate_per_s, last_ts_ns).

    The rate is an exponentially decayed event count divided by its time constant ``tau = halflife / ln 2``:
    ``rate = rate × exp(-dt / tau) + 1 / tau``; at a steady rate r it averages r. Start from (0.0, 0). An event
    older than the last one counts at the last one's time (no decay backwards).
    """
    if halflife_ns <= 0:
        return rate_per_s, last_ts_ns
    elapsed_ns = now_ts_ns - last_ts_ns
    if elapsed_ns < 0:
        elapsed_ns = 0
        now_ts_ns = last_ts_ns
    tau_s = halflife_ns / _LN2 / 1e9
    decay = math.exp(-_LN2 * elapsed_ns / halflife_ns)
    return rate_per_s * decay + 1.0 / tau_s, now_ts_ns
