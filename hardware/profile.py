"""The hardware profile: what the device, PCIe, the network and the host cost, with the source of every default.

A profile is plain data validated by ``HardwareProfile`` (frozen, unknown keys rejected). Its defaults are
published figures, each named next to its number in ``SOURCES`` (and in ``specs/hardware/default_profile.yaml``
and ``docs/hardware.md``); a number no public source gives is marked "estimate". A profile YAML overrides any of
them (``pipelines.hardware_profile.load_profile`` reads one with file:line:col errors).

Host costs are **measured on this machine**, never guessed: ``calibrate_crossings`` times a call from Python into a
jitted function shaped like a segment (the numba↔Python crossing) and a plain Python call; ``measure_step_ns``
drives an op's ``step`` over sample data in the same loop a segment runs, as Python (``cpu``) or compiled
(``numba``). Results are cached in ``$TICKLOOM_CACHE/calibration`` (keyed by the op, its params, the code of the
``nodes`` package, the Python/numba/numpy versions and the CPU); a value written in the profile wins over any
measurement.
"""

import gzip
import hashlib
import json
import math
import os
import platform
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

import numba
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hardware.planner import Crossings, Resources
from hardware.targets import source_digest, step_function
from nodes.contract.cache import cache_dir
from nodes.errors import SourceLocation, SpecError

# The source of every default number, by its path in the profile. docs/hardware.md repeats them.
SOURCES: dict[str, str] = {
    "device.part": "estimate: an Alveo U200-class card (Virtex UltraScale+ VU9P); the resource counts below are the "
                   "example platform report in AMD's Vitis Reference Guide (UG1702, 'Resource Availability'), whose "
                   "6,833 DSPs fit the VU9P's 6,840",
    "device.clock_hz": "10GBASE-R: 10.3125 Gb/s line rate over a 32-bit PCS datapath = 322.265625 MHz, the clock "
                       "low-latency 10G designs run their logic at (T. Chisholm, 'Designing a Low Latency 10G "
                       "Ethernet Core', 2023, part 5)",
    "device.lut": "AMD UG1702 'Resource Availability' example: LUTs 1,047,139 left to user logic after the shell",
    "device.ff": "AMD UG1702 'Resource Availability' example: FFs 2,186,064",
    "device.dsp": "AMD UG1702 'Resource Availability' example: DSPs 6,833",
    "device.bram": "AMD UG1702 'Resource Availability' example: BRAMs 1,896 (36 Kb blocks)",
    "device.usable_fraction": "estimate: routing and timing closure get hard above ~80% utilization; the planner "
                              "keeps this share of each resource",
    "pcie.one_way_ns": "half of the ~850 ns PCIe round trip measured between a Virtex-7 Gen3 x8 endpoint and an "
                       "Intel i7-4771 root complex ('PCIe latency', hackingnasdaq.blogspot.com, May 2014)",
    "pcie.bytes_per_s": "6.6 GB/s DMA from an FPGA (Xilinx PCIe core, Gen3 x8) to system memory, measured by Rota, "
                        "Vogelgesang et al. (KIT), TWEPP 2015",
    "network.line_rate_bps": "10GBASE-R payload rate, 10 Gb/s (IEEE 802.3 clause 49)",
    "network.mac_rx_ns": "half of the < 60 ns loopback (RX + TX, MAC and PCS) of an open low-latency 10G core "
                         "(T. Chisholm 2023); Intel's Low Latency 10G MAC alone: RX 41.6 ns, TX 25.6 ns (Agilex 5 "
                         "user guide 813663); the even split is an estimate",
    "network.mac_tx_ns": "half of the < 60 ns MAC+PCS loopback (T. Chisholm 2023); the even split is an estimate",
    "network.nic_rx_ns": "half of 590 ns, the median half round trip (one receive + one send) of ef_vi UDP with a "
                         "4-byte message (AMD Onload User Guide UG1586, 'Latency Test Results'); the even split is "
                         "an estimate",
    "network.nic_tx_ns": "half of 590 ns ef_vi UDP half round trip (AMD UG1586); the even split is an estimate",
    "network.market_data_bytes": "estimate: one market-data packet with one update (Ethernet+IP+UDP 42 B, a "
                                 "MoldUDP64/MDP3 header, one ITCH/SBE message)",
    "network.order_bytes": "estimate: one new-order message in a TCP frame (Ethernet+IP+TCP 54 B plus an "
                           "iLink3/OUCH-sized body)",
    "host.numba_call_ns": "measured on this machine by calibrate_crossings() unless the profile sets it",
    "host.python_call_ns": "measured on this machine by calibrate_crossings() unless the profile sets it",
    "host.step_ns": "measured on this machine by measure_step_ns() unless the profile sets it",
    "traffic.min_event_interval_ns": "none by default: no throughput limit unless the profile or spec sets one",
}


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _field(path: str, default: Any, meaning: str, **constraints) -> Any:
    return Field(default, description=f"{meaning}. Default's source: {SOURCES[path]}", **constraints)


class DeviceProfile(_Closed):
    """The FPGA: its part, the clock its logic runs at, and the resources a design may use."""

    part: str = _field("device.part", "xcvu9p", "the FPGA part (for display)")
    clock_hz: float = _field("device.clock_hz", 322_265_625.0, "clock of the placed logic, in Hz", gt=0)
    lut: int = _field("device.lut", 1_047_139, "look-up tables available to user logic", ge=0)
    ff: int = _field("device.ff", 2_186_064, "flip-flops available to user logic", ge=0)
    dsp: int = _field("device.dsp", 6_833, "DSP slices available to user logic", ge=0)
    bram: int = _field("device.bram", 1_896, "36 Kb block RAMs available to user logic", ge=0)
    usable_fraction: float = _field("device.usable_fraction", 0.8, "share of each resource placement may use",
                                    gt=0, le=1)


class PcieProfile(_Closed):
    """The host↔FPGA link."""

    one_way_ns: float = _field("pcie.one_way_ns", 425.0, "one-way latency of a small transfer, in ns", ge=0)
    bytes_per_s: float = _field("pcie.bytes_per_s", 6.6e9, "sustained DMA bandwidth, in bytes per second", gt=0)


class NetworkProfile(_Closed):
    """The wire at our port: line rate, FPGA MAC/PCS and host NIC latencies, message sizes."""

    line_rate_bps: float = _field("network.line_rate_bps", 10e9, "line rate a message serializes at, bits/s", gt=0)
    mac_rx_ns: float = _field("network.mac_rx_ns", 30.0, "FPGA MAC+PCS receive latency, in ns", ge=0)
    mac_tx_ns: float = _field("network.mac_tx_ns", 30.0, "FPGA MAC+PCS transmit latency, in ns", ge=0)
    nic_rx_ns: float = _field("network.nic_rx_ns", 295.0, "host NIC wire-to-user-space latency (kernel bypass)",
                              ge=0)
    nic_tx_ns: float = _field("network.nic_tx_ns", 295.0, "host NIC user-space-to-wire latency (kernel bypass)",
                              ge=0)
    market_data_bytes: int = _field("network.market_data_bytes", 96, "bytes of one market-data packet", gt=0)
    order_bytes: int = _field("network.order_bytes", 128, "bytes of one order frame", gt=0)


class HostProfile(_Closed):
    """Host costs; every value left out is measured on this machine (and cached)."""

    numba_call_ns: float | None = _field("host.numba_call_ns", None, "cost of a call from the Python driver into "
                                         "a jitted numba segment, in ns", ge=0)
    python_call_ns: float | None = _field("host.python_call_ns", None, "cost of a call into a Python (cpu) "
                                          "segment, in ns", ge=0)
    step_ns: dict[str, dict[Literal["cpu", "numba"], float]] = _field(
        "host.step_ns", {}, "per-event cost of an op's step by op name and target, in ns (e.g. "
        "{indicator.sma: {cpu: 900, numba: 4}})")


class TrafficProfile(_Closed):
    """What the system must keep up with."""

    min_event_interval_ns: float | None = _field("traffic.min_event_interval_ns", None, "shortest gap between two "
                                                 "market-data events, in ns (peak rate = 1e9 / this)", gt=0)


class HardwareProfile(_Closed):
    """A hardware profile (format version 1): device, PCIe, network, host and traffic."""

    profile: Literal[1] = Field(1, description="profile format version")
    name: str = Field("default", description="the profile's name")
    description: str = Field("", description="free text")
    device: DeviceProfile = Field(default_factory=DeviceProfile)
    pcie: PcieProfile = Field(default_factory=PcieProfile)
    network: NetworkProfile = Field(default_factory=NetworkProfile)
    host: HostProfile = Field(default_factory=HostProfile)
    traffic: TrafficProfile = Field(default_factory=TrafficProfile)

    def device_budget(self) -> Resources:
        """The resources placement may use: the device's, times ``usable_fraction`` (rounded down)."""
        d = self.device
        return Resources(*(int(math.floor(x * d.usable_fraction)) for x in (d.lut, d.ff, d.dsp, d.bram)))


def profile_from_data(data: Any, where: Callable[[tuple], SourceLocation | None] | None = None) -> HardwareProfile:
    """Validate a profile given as plain data; ``where(path)`` locates a value for error messages.

    Raises:
        SpecError: every problem at once, each with its file:line:col when ``where`` knows it.
    """
    return validate_located(HardwareProfile, data, where)


def validate_located(model: type[BaseModel], data: Any, where: Callable[[tuple], SourceLocation | None] | None):
    """Validate ``data`` against ``model``; turn pydantic's errors into one SpecError with locations."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = []
        for e in error.errors():
            path = tuple(p for p in e["loc"] if not (isinstance(p, str) and _TAG.match(p)))
            location = where(path) if where else None
            name = ".".join(str(p) for p in path) or "(top)"
            message = e["msg"]
            if e["type"] == "extra_forbidden":
                message = f"unknown key; expected one of: {', '.join(_known_keys(model, path[:-1]))}"
            problems.append((location, f"{name}: {message}"))
        raise SpecError(problems) from None


_TAG = re.compile(r"^(str|int|float|bool|none|literal\[.*\]|dict\[.*\]|list\[.*\]|function-.*)$")


def _known_keys(model: type[BaseModel], path: tuple) -> list[str]:
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ps|ns|us|µs|ms|s)?\s*$")
_NS_PER_UNIT = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, None: 1.0}


def parse_duration_ns(value: Any) -> float:
    """Turn ``"2us"``, ``"150 ns"``, ``"1.5ms"`` or a plain number (nanoseconds) into nanoseconds.

    Raises:
        ValueError: anything else, with the accepted forms.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration; write a number of ns or e.g. '2us', '150ns', '1.5ms'")
    return float(match[1]) * _NS_PER_UNIT[match[2]]


def crossings(profile: HardwareProfile) -> Crossings:
    """The planner's crossing costs from ``profile``; host call costs measured when the profile leaves them out."""
    measured = None
    if profile.host.numba_call_ns is None or profile.host.python_call_ns is None:
        measured = calibrate_crossings()
    host = profile.host
    return Crossings(
        pcie_one_way_ns=profile.pcie.one_way_ns,
        pcie_bytes_per_s=profile.pcie.bytes_per_s,
        wire_bits_per_s=profile.network.line_rate_bps,
        mac_rx_ns=profile.network.mac_rx_ns,
        mac_tx_ns=profile.network.mac_tx_ns,
        nic_rx_ns=profile.network.nic_rx_ns,
        nic_tx_ns=profile.network.nic_tx_ns,
        numba_call_ns=host.numba_call_ns if host.numba_call_ns is not None else measured["numba_call_ns"],
        python_call_ns=host.python_call_ns if host.python_call_ns is not None else measured["python_call_ns"],
    )


# ---------------------------------------------------------------------------------------------------------------
# Calibration: measured on this machine, cached.


def _environment() -> dict:
    return {
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
    }


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cache_file(kind: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return cache_dir("calibration") / f"{kind}-{digest}.json"


def _cached(kind: str, key: dict, refresh: bool, measure: Callable[[], dict]) -> dict:
    path = _cache_file(kind, key)
    if not refresh and path.exists():
        try:
            return json.loads(path.read_text())["value"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is measured again
    value = measure()
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"key": key, "value": value, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    temporary.replace(path)  # atomic: a concurrent process never reads half a file
    return value


def _crossing_probe(n, x, y, out, s):
    # shaped like a generated segment: a count, input and output arrays, a state tuple in and out
    return (s[0] + n, s[1])


def calibrate_crossings(refresh: bool = False) -> dict[str, float]:
    """Measure (or read from the cache) ``numba_call_ns`` and ``python_call_ns`` on this machine.

    ``numba_call_ns``: one call from Python into a jitted function with a segment's kind of arguments (an int,
    three arrays, a two-element state tuple) and back — numba's dispatch, argument unboxing and result boxing.
    ``python_call_ns``: the same call into the plain Python function. The loop's own cost is subtracted; the
    minimum over repeats is kept (the least disturbed run).
    """
    def measure() -> dict:
        jitted = numba.njit(_crossing_probe)
        x, y, out = np.zeros(8), np.zeros(8), np.zeros(8)
        state = (0, 0.0)
        jitted(1, x, y, out, state)  # compile outside the timing
        return {
            "numba_call_ns": _call_cost_ns(jitted, (1, x, y, out, state)),
            "python_call_ns": _call_cost_ns(_crossing_probe, (1, x, y, out, state)),
        }

    return _cached("crossings", _environment(), refresh, measure)


def _call_cost_ns(function: Callable, args: tuple, calls: int = 20_000, repeats: int = 7) -> float:
    def timed(call: bool) -> float:
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter_ns()
            if call:
                for _ in range(calls):
                    function(*args)
            else:
                for _ in range(calls):
                    pass
            best = min(best, (time.perf_counter_ns() - start) / calls)
        return best

    return round(max(timed(True) - timed(False), 0.0), 1)


def step_cost_ns(profile: HardwareProfile, op, params, target: str,
                 instruments: list[str] | None = None) -> tuple[float, str]:
    """Return the per-event cost of ``op`` on ``target`` and where it comes from ("profile" or "measured")."""
    override = profile.host.step_ns.get(op.name, {}).get(target)
    if override is not None:
        return float(override), "profile"
    return measure_step_ns(op, params, target, instruments=instruments), "measured"


def measure_step_ns(op, params, target: str, inputs: list[np.ndarray] | None = None, refresh: bool = False,
                    instruments: list[str] | None = None) -> float:
    """Measure the per-event cost in ns of ``op``'s step on ``target`` (``cpu`` or ``numba``), cached.

    The step is driven the way a segment drives it: a loop over events that threads the state, reads one value
    per input and writes each output into an array. ``cpu`` runs the loop as Python; ``numba`` compiles it with
    the step inlined, so the figure is what the step adds inside a fused segment (the call into the segment is
    ``numba_call_ns``). Inputs are the shipped sample bars (``data/samples/AAPL.csv.gz``) unless ``inputs`` (one
    array per step argument after the context) are given; ops whose inputs are not bar-like (order books) should
    be given their own. ``instruments``: the names an op with per-instrument constants is configured for (the
    first one's events are driven); default one instrument named ``SAMPLE``. The minimum per-event time over
    several runs is kept.

    Raises:
        ValueError: a target other than cpu or numba.
    """
    if target not in ("cpu", "numba"):
        raise ValueError(f"measure_step_ns measures cpu or numba, not {target!r}")
    instruments = list(instruments or ["SAMPLE"])
    if inputs is not None:
        return _measure_step(op, params, target, inputs, instruments)
    key = {
        "op": op.name,
        "params": params.model_dump(mode="json"),
        "target": target,
        "code": _code_digest(op.step),
        **_environment(),
    }
    if hasattr(op, "instrument_constants"):
        key["instruments"] = instruments
    return _cached(f"step-{op.name}-{target}", key, refresh,
                   lambda: {"ns": _measure_step(op, params, target, None, instruments)})["ns"]


@lru_cache(maxsize=None)
def _code_digest(step: Callable) -> str:
    return source_digest([step])


def _measure_step(op, params, target: str, inputs: list[np.ndarray] | None, instruments: list[str]) -> float:
    bars = _sample_bars()
    columns = inputs if inputs is not None else _bar_inputs(op, bars)
    n = len(columns[0]) if columns else len(bars["close"])
    if target == "numba":  # a compiled step runs in nanoseconds: more events give the timer something to measure
        repeat = max(1, 20_000 // max(n, 1))
        columns = [np.ascontiguousarray(np.tile(c, repeat)) for c in columns]
        n *= repeat
    context = _context(op, n)
    constants = tuple(op.constants(params))
    if hasattr(op, "instrument_constants"):
        constants = constants + tuple(op.instrument_constants(params, instruments))
    loop = _driver(len(context), len(columns), len(op.outputs), step_function(op.step, target), target)

    def arguments() -> tuple:
        outputs = [np.empty(n, dtype=t.dtype) for t in op.outputs.values()]
        return (constants, op.init(constants, len(instruments)), *context, *columns, *outputs)

    loop(*arguments())  # compile (numba) and warm up outside the timing
    best, spent, runs = math.inf, 0.0, 0
    while runs < 3 or (spent < 0.2 and runs < 30):
        args = arguments()
        start = time.perf_counter_ns()
        loop(*args)
        elapsed = time.perf_counter_ns() - start
        best, spent, runs = min(best, elapsed / n), spent + elapsed / 1e9, runs + 1
    return round(best, 2)


def _driver(n_context: int, n_inputs: int, n_outputs: int, step: Callable, target: str) -> Callable:
    """A loop over events calling ``step`` as a generated segment does, written once for cpu and numba."""
    context = [f"k{j}" for j in range(n_context)]
    inputs = [f"x{j}" for j in range(n_inputs)]
    outputs = [f"o{j}" for j in range(n_outputs)]
    call = ", ".join(["c", "s"] + [f"{a}[i]" for a in context + inputs])
    lines = [f"def drive({', '.join(['c', 's'] + context + inputs + outputs)}):",
             f"    for i in range({(outputs + inputs + context)[0]}.shape[0]):",
             f"        r = step({call})",
             "        s = r[0]"]
    lines += [f"        o{j}[i] = r[{j + 1}]" for j in range(n_outputs)]
    lines.append("    return s")
    scope = {"step": step, "np": np}
    exec(compile("\n".join(lines), "<tickloom calibration loop>", "exec"), scope)
    if target == "numba":
        return numba.njit(error_model="numpy")(scope["drive"])
    return scope["drive"]


def _context(op, n: int) -> list[np.ndarray]:
    ts_event = np.arange(n, dtype=np.int64) * 86_400_000_000_000
    values = {"key": np.zeros(n, dtype=np.int64), "ts_event": ts_event, "ts_recv": ts_event + 1}
    return [values[name] for name in op.context]


def _bar_inputs(op, bars: dict[str, np.ndarray]) -> list[np.ndarray]:
    """One column per step argument: a bar field of that name, else the close (f64), a scaled close (i64) or
    close > open (bool)."""
    columns = []
    for name, record_field, scalar in op.flat_inputs():
        field = record_field or name
        if field in bars and scalar.dtype == np.float64:
            column = bars[field]
        elif scalar.dtype == np.float64:
            column = bars["close"]
        elif scalar.dtype == np.int64:
            column = np.round(bars["close"] * 100)
        else:
            column = bars["close"] > bars["open"]
        columns.append(np.ascontiguousarray(column, dtype=scalar.dtype))
    return columns


SAMPLE_BARS = Path(__file__).resolve().parents[1] / "data" / "samples" / "AAPL.csv.gz"


@lru_cache(maxsize=1)
def _sample_bars() -> dict[str, np.ndarray]:
    """The shipped daily bars of AAPL (755 rows), as float64 columns.

    Raises:
        FileNotFoundError: when the sample file is missing (an install without ``data/samples``): pass ``inputs``.
    """
    if not SAMPLE_BARS.exists():
        raise FileNotFoundError(f"{SAMPLE_BARS}: sample bars for step calibration are missing; pass inputs= to "
                                "measure_step_ns or set host.step_ns in the hardware profile")
    with gzip.open(SAMPLE_BARS, "rt") as handle:
        header = handle.readline().strip().split(",")
        rows = [line.strip().split(",") for line in handle if line.strip()]
    return {name: np.array([float(r[i]) for r in rows]) for i, name in enumerate(header) if name != "date"}
