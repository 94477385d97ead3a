"""Cycle-accurate simulation of an op module with Amaranth's simulator: events in, outputs and cycle counts out.

``simulate`` presents events at given arrival cycles (an event waits in a queue in front of the module until
``in_ready``), and records for each event the cycle it was accepted and the cycle its outputs were valid. The
tests compare the outputs with the golden model bit for bit, ``out - accept`` with the modeled latency and the
accept cycles with the queueing model (``hardware.fpga.timing.queue_starts``).
"""

import time
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from hardware.fpga.rtl import StreamModule


@dataclass
class SimResult:
    """Outputs (one int64 array per output signal), accept and output cycles per event, cycles run, wall time."""

    outputs: dict[str, np.ndarray]
    accept_cycles: np.ndarray
    out_cycles: np.ndarray
    cycles: int
    seconds: float

    @property
    def latencies(self) -> np.ndarray:
        return self.out_cycles - self.accept_cycles

    @property
    def cycles_per_s(self) -> float:
        return self.cycles / self.seconds if self.seconds else float("inf")


def arrivals_back_to_back(n: int) -> np.ndarray:
    """Every event waiting from cycle 0: the module runs at its II."""
    return np.zeros(n, np.int64)


def arrivals_with_gaps(n: int, seed: int = 7, max_gap: int = 6) -> np.ndarray:
    """Bursts and idle gaps: each event arrives 0..max_gap cycles after the previous one (0 = a burst)."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, max_gap + 1, n)
    gaps[rng.random(n) < 0.3] = 0  # bursts of back-to-back arrivals
    return np.cumsum(gaps).astype(np.int64)


def simulate(dut: StreamModule, inputs: dict[str, np.ndarray], arrivals: np.ndarray,
             drain_cycles: int = 200) -> SimResult:
    """Run ``dut`` over the events ``inputs`` (one int array per input signal name) arriving at ``arrivals``.

    Raises:
        AssertionError: the module produced more outputs than events, or fewer within ``drain_cycles`` after
            the last event was accepted.
    """
    names_in = list(dut.i)
    columns = [np.asarray(inputs[name]).tolist() for name in names_in]
    signals_in = [dut.i[name] for name in names_in]
    names_out = list(dut.o)
    signals_out = [dut.o[name] for name in names_out]
    n = len(columns[0]) if columns else len(arrivals)
    arrival = np.asarray(arrivals, np.int64).tolist()
    accepted: list[int] = []
    produced: list[int] = []
    values: list[list[int]] = [[] for _ in names_out]
    state = {"cycles": 0}

    async def bench(ctx):
        cycle = 0
        nxt = 0
        last_accept = -1
        while len(produced) < n:
            if ctx.get(dut.out_valid):
                produced.append(cycle)
                for k, signal in enumerate(signals_out):
                    values[k].append(ctx.get(signal))
            if nxt < n and arrival[nxt] <= cycle and ctx.get(dut.in_ready):
                for signal, column in zip(signals_in, columns):
                    ctx.set(signal, column[nxt])
                ctx.set(dut.in_valid, 1)
                accepted.append(cycle)
                last_accept = cycle
                nxt += 1
            else:
                ctx.set(dut.in_valid, 0)
            await ctx.tick()
            cycle += 1
            assert nxt < n or cycle - last_accept <= drain_cycles, (
                f"{len(produced)} outputs for {n} events {drain_cycles} cycles after the last input")
        state["cycles"] = cycle

    simulator = Simulator(dut)
    simulator.add_clock(1e-9)
    simulator.add_testbench(bench)
    started = time.perf_counter()
    simulator.run()
    seconds = time.perf_counter() - started
    outputs = {name: np.array(column, dtype=object) for name, column in zip(names_out, values)}
    return SimResult(outputs, np.array(accepted, np.int64), np.array(produced, np.int64), state["cycles"], seconds)
