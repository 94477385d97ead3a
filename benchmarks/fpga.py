"""Benchmark the FPGA target on the reference path: book update → imbalance signal → risk check → order encode.

Data: the vendored Binance captures (``data/samples/binance``, 26k normalized book deltas), repeated to
``--events`` events for the throughput figures. Path params: a 16-level book, a 2× size imbalance in state mode,
a 2-lot risk check, an IOC order encoder.

Figures:
- **modeled wire-to-order latency**, everything on ``fpga`` at the hardware profile's clock: the sum of the four
  ops' derived pipeline latencies, alone and with the profile's MAC/PCS receive and transmit latencies and the
  serialization of one market-data packet and one order frame at the line rate (``hardware.profile``);
- the same path **measured on numba and cpu** in this process, per event: the four steps in one compiled loop
  (ns per event over the whole run), one event at a time from Python into a compiled function (p50/p99, what a
  live driver calling numba per event sees), and the four steps as plain Python (p50/p99);
- **RTL simulation speed**: the four ops' Amaranth modules wired into one, simulated cycle by cycle on the first
  ``--rtl-events`` deltas (cycles/s and events/s; the simulated latency is checked against the model);
- the **golden models' events/s**: the four bit-exact integer models in one compiled loop, and each value op's
  golden model alone (EMA, SMA, crossover, threshold on repeated sample closes);
- resources of the path and its share of the profile's device budget.

Goals: under 100 ns wire-to-order at 322 MHz; golden model at least 50M events/s.

Run: ``python benchmarks/fpga.py [--events 2000000] [--rtl-events 3000]``. Prints figures; asserts nothing.
"""

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware.fpga.path import STAGES, ReferencePath, message_outputs  # noqa: E402
from hardware.fpga.registry import fpga_impl  # noqa: E402
from hardware.fpga.resources import total  # noqa: E402
from hardware.fpga.sim import arrivals_back_to_back, simulate  # noqa: E402
from hardware.targets import step_function  # noqa: E402
from nodes.marketdata.binance import read_capture  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"
CAPTURES = ["spot_btcusdt_20240808.head2000.gz", "spot_ethusdt_20240808.head2000.gz",
            "cm_btcusd_perp_20240808.head2000.gz"]
FIELDS = ("side", "price", "size", "action", "flags")
PATH = ReferencePath(
    book={"max_levels": 16},
    imbalance={"ratio": 2.0, "mode": "state"},
    risk={"lots": 2, "max_position_lots": 2, "max_notional": 100_000, "lot_size": 0.001, "collar_bps": 5,
          "max_orders": 1_000_000_000},
    encoder={"instrument_id": 7, "client_id_base": 1000, "tif": "ioc"},
)


def deltas() -> list[np.ndarray]:
    """The three captures' book deltas back to back, each starting with its own snapshot (a clear)."""
    parts = []
    for name in CAPTURES:
        frames, _ = read_capture(SAMPLES / "binance" / name, clock_policy="shift")
        book = frames["book_deltas"]
        parts.append([book[f].cast(int).to_numpy().astype(np.int64) for f in FIELDS])
    return [np.concatenate([p[k] for p in parts]) for k in range(len(FIELDS))]


def repeated(columns: list[np.ndarray], events: int) -> list[np.ndarray]:
    reps = -(-events // len(columns[0]))
    return [np.tile(c, reps)[:events] for c in columns]


def profile():
    try:
        from hardware.profile import HardwareProfile
    except ImportError:
        return None
    return HardwareProfile()


def modeled_latency(clock_hz: float, prof) -> None:
    print(f"== modeled wire-to-order latency, every node on fpga at {clock_hz / 1e6:.3f} MHz")
    total_cycles = 0
    for name, params in zip(STAGES, PATH.params()):
        timing = fpga_impl(name).timing(params, clock_hz)
        total_cycles += timing.latency_cycles
        print(f"  {name:24s} {timing.latency_cycles:2d} cycles  II {timing.ii_cycles}  "
              f"{timing.latency_ns:6.1f} ns  critical: {timing.critical_path}")
    ops_ns = total_cycles * 1e9 / clock_hz
    print(f"  ops (tick in → order words out): {total_cycles} cycles = {ops_ns:.1f} ns")
    if prof is not None:
        net = prof.network
        wire_in = net.market_data_bytes * 8 / net.line_rate_bps * 1e9
        wire_out = net.order_bytes * 8 / net.line_rate_bps * 1e9
        full = wire_in + net.mac_rx_ns + ops_ns + net.mac_tx_ns + wire_out
        print(f"  wire to wire: {net.market_data_bytes} B in {wire_in:.1f} ns + MAC/PCS rx {net.mac_rx_ns:.0f} ns + "
              f"ops {ops_ns:.1f} ns + MAC/PCS tx {net.mac_tx_ns:.0f} ns + {net.order_bytes} B out {wire_out:.1f} ns "
              f"= {full:.1f} ns")
        print(f"  goal < 100 ns for the ops: {'met' if ops_ns < 100 else 'MISSED'} ({ops_ns:.1f} ns)")


def _path_loop(steps):
    book_step, imbalance_step, risk_step, encoder_step = steps

    @numba.njit
    def run(cb, sb, ci, si, cr, sr, ce, se, side, price, size, action, flags, out):
        for i in range(side.shape[0]):
            sb, bid, ask, bid_size, ask_size, _, _, _, _, _ = book_step(cb, sb, side[i], price[i], size[i], action[i],
                                                                        flags[i])
            si, wish = imbalance_step(ci, si, bid_size, ask_size)
            sr, qty, order_price, _, _ = risk_step(cr, sr, wish, bid, ask)
            se, w0, w1, w2, w3, _, _ = encoder_step(ce, se, qty, order_price)
            out[i] = w3
        return sb, si, sr, se

    return run


def _constants_and_states(golden: bool):
    out = []
    for name, params in zip(STAGES, PATH.params()):
        impl = fpga_impl(name)
        owner = impl if golden else impl.op
        c = tuple(owner.constants(params))
        out += [c, owner.init(c, 1)]
    return out


def _steps(golden: bool, target: str):
    return [step_function((fpga_impl(n) if golden else fpga_impl(n).op).step, target) for n in STAGES]


def fused_events_per_s(columns, golden: bool) -> tuple[float, np.ndarray]:
    run = _path_loop(_steps(golden, "numba"))
    out = np.zeros(len(columns[0]), np.int64)
    small = [c[:1000] for c in columns]
    run(*_constants_and_states(golden), *small, out[:1000])  # compile
    best = float("inf")
    for _ in range(3):
        args = _constants_and_states(golden)
        started = time.perf_counter()
        run(*args, *columns, out)
        best = min(best, time.perf_counter() - started)
    return len(columns[0]) / best, out


def per_event_latency(columns, target: str, events: int) -> np.ndarray:
    """ns per event, one event at a time from Python: the four steps (cpu) or one compiled call (numba)."""
    args = _constants_and_states(golden=False)
    (cb, sb, ci, si, cr, sr, ce, se) = args
    rows = [c[:events].tolist() for c in columns]
    samples = np.empty(events)
    if target == "numba":
        run = _path_loop(_steps(False, "numba"))
        out = np.zeros(1, np.int64)
        one = [np.zeros(1, np.int64) for _ in FIELDS]
        run(cb, sb, ci, si, cr, sr, ce, se, *one, out)
        for i in range(events):
            for k in range(len(FIELDS)):
                one[k][0] = rows[k][i]
            started = time.perf_counter_ns()
            sb, si, sr, se = run(cb, sb, ci, si, cr, sr, ce, se, *one, out)
            samples[i] = time.perf_counter_ns() - started
        return samples
    book_step, imbalance_step, risk_step, encoder_step = _steps(False, "cpu")
    for i in range(events):
        started = time.perf_counter_ns()
        sb, bid, ask, bid_size, ask_size, *_ = book_step(cb, sb, *(row[i] for row in rows))
        si, wish = imbalance_step(ci, si, bid_size, ask_size)
        sr, qty, price, _, _ = risk_step(cr, sr, wish, bid, ask)
        se, *_ = encoder_step(ce, se, qty, price)
        samples[i] = time.perf_counter_ns() - started
    return samples


def value_ops_events_per_s(events: int) -> None:
    from tests.support import SAMPLE_INSTRUMENTS, read_bars

    closes = np.concatenate([read_bars(n)["close"] for n in SAMPLE_INSTRUMENTS])
    x = np.tile(closes, -(-events // len(closes)))[:events]
    fast = np.convolve(x, np.ones(5) / 5, "same")
    cases = [("indicator.ema", {"window": 20}, [x]), ("indicator.ema", {"window": 31}, [x]),
             ("indicator.sma", {"window": 20}, [x]), ("signal.crossover", {}, [fast, x]),
             ("signal.threshold", {"upper": 100.0, "lower": 80.0}, [x])]
    for name, raw, columns in cases:
        impl = fpga_impl(name)
        params = impl.op.Params(**raw)
        for label, owner in (("golden", impl), ("float op", impl.op)):
            rate = _single_op_rate(owner, params, columns)
            print(f"  {name} {raw}: {label:8s} {rate / 1e6:7.1f} M events/s")


def _single_op_rate(owner, params, columns) -> float:
    step = step_function(owner.step, "numba")
    if len(columns) == 1:
        @numba.njit
        def run(c, s, x, out):
            for i in range(x.shape[0]):
                s, out[i] = step(c, s, x[i])
            return s
    else:
        @numba.njit
        def run(c, s, x, y, out):
            for i in range(x.shape[0]):
                s, out[i] = step(c, s, x[i], y[i])
            return s
    c = tuple(owner.constants(params))
    out = np.zeros(len(columns[0]))
    run(c, owner.init(c, 1), *[col[:100] for col in columns], out[:100])
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run(c, owner.init(c, 1), *columns, out)
        best = min(best, time.perf_counter() - started)
    return len(columns[0]) / best


def rtl_speed(columns, events: int, clock_hz: float) -> None:
    dut = PATH.module(clock_hz)
    inputs = {f: c[:events] for f, c in zip(FIELDS, columns)}
    result = simulate(dut, inputs, arrivals_back_to_back(events))
    golden = PATH.golden([c[:events] for c in columns])["order"]
    exact = all(np.array_equal(a, b) for a, b in zip(message_outputs(result.outputs), golden))
    print(f"== RTL simulation (Amaranth pysim) of the whole path, {events} events back to back")
    print(f"  {result.cycles} cycles in {result.seconds:.2f} s: {result.cycles_per_s:,.0f} cycles/s, "
          f"{events / result.seconds:,.0f} events/s")
    print(f"  simulated latency {sorted(set(result.latencies.tolist()))} cycles (model "
          f"{PATH.latency_cycles(clock_hz)}), messages bit-exact with the golden models: {exact}")


def resources(prof) -> None:
    parts = [fpga_impl(n).resources(p) for n, p in zip(STAGES, PATH.params())]
    used = total(parts)
    print(f"== resources (estimate) of the path: {used.as_dict()}")
    if prof is not None:
        budget = prof.device_budget()
        shares = {k: getattr(used, k) / max(getattr(budget, k), 1) for k in ("lut", "ff", "dsp", "bram")}
        print(f"  share of {prof.device.part}'s budget: " + ", ".join(f"{k} {v:.2%}" for k, v in shares.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="events for the throughput figures")
    parser.add_argument("--rtl-events", type=int, default=3000, help="events for the RTL simulation")
    parser.add_argument("--latency-events", type=int, default=20_000, help="events timed one by one")
    args = parser.parse_args()
    prof = profile()
    clock_hz = prof.device.clock_hz if prof is not None else 322_265_625.0
    base = deltas()
    print(f"data: {len(base[0]):,} Binance book deltas ({', '.join(CAPTURES)})")
    modeled_latency(clock_hz, prof)

    columns = repeated(base, args.events)
    print(f"== the path on the host, {args.events:,} events")
    golden_rate, golden_out = fused_events_per_s(columns, golden=True)
    float_rate, float_out = fused_events_per_s(columns, golden=False)
    print(f"  numba, one compiled loop (float/int ops):  {1e9 / float_rate:6.1f} ns/event  "
          f"({float_rate / 1e6:.1f} M events/s)")
    for target in ("numba", "cpu"):
        samples = per_event_latency(base, target, min(args.latency_events, len(base[0])))
        how = "one compiled call per event" if target == "numba" else "the four steps as Python"
        print(f"  {target:5s}, {how}: p50 {np.percentile(samples, 50):8.0f} ns  p99 "
              f"{np.percentile(samples, 99):8.0f} ns")
    print(f"== golden models (bit-exact integer), numba, {args.events:,} events")
    print(f"  reference path, one compiled loop: {golden_rate / 1e6:.1f} M events/s "
          f"({1e9 / golden_rate:.1f} ns/event); goal >= 50 M/s: {'met' if golden_rate >= 50e6 else 'MISSED'}")
    print(f"  same order words as the float/int ops: {np.array_equal(golden_out, float_out)}")
    value_ops_events_per_s(args.events)
    rtl_speed(base, min(args.rtl_events, len(base[0])), clock_hz)
    resources(prof)


if __name__ == "__main__":
    main()
