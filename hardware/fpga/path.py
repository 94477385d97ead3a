"""The reference tick-to-order path on the fabric: book update → imbalance signal → risk check → order encoder.

    deltas ─► book.l2 ─┬─ bid_size, ask_size ─► signal.book_imbalance ─ side ─┐
                       └─ best_bid, best_ask ── (delayed to line up) ─────────┴─► risk.order_limits ─► order.encode

``ReferencePath`` holds the four ops' params; ``golden(columns)`` runs their golden models in a chain, and
``module(clock_hz)`` wires their RTL into one module whose latency is the sum of theirs (the book's prices are
delayed by the imbalance's latency so each risk check sees the book of its own event). The chain has no FIFOs,
so every op must run at II 1 at the clock (``ValueError`` otherwise).
"""

from dataclasses import dataclass

import numpy as np
from amaranth import Module

from hardware.fpga.parity import run_step
from hardware.fpga.registry import fpga_impl
from hardware.fpga.rtl import StreamModule, delay_line
from hardware.fpga.timing import DEFAULT_CLOCK_HZ
from nodes.execution.order_encoder import OrderEncode

STAGES = ("book.l2", "signal.book_imbalance", "risk.order_limits", "order.encode")


@dataclass(frozen=True)
class ReferencePath:
    """Params of the four ops of the path (validated by each op's own model)."""

    book: dict
    imbalance: dict
    risk: dict
    encoder: dict

    def params(self) -> list:
        raw = (self.book, self.imbalance, self.risk, self.encoder)
        return [fpga_impl(name).op.Params(**values) for name, values in zip(STAGES, raw)]

    def latency_cycles(self, clock_hz: float = DEFAULT_CLOCK_HZ) -> int:
        """Modeled latency of the whole path: the sum of the ops' latencies."""
        return sum(fpga_impl(name).timing(p, clock_hz).latency_cycles for name, p in zip(STAGES, self.params()))

    def golden(self, columns: list[np.ndarray], target: str = "numba") -> dict[str, list[np.ndarray]]:
        """Every op's golden outputs over ``book_deltas`` columns (side, price, size, action, flags)."""
        book_p, imbalance_p, risk_p, encoder_p = self.params()
        book = _golden("book.l2", book_p, columns, target)
        side = _golden("signal.book_imbalance", imbalance_p, [book[2], book[3]], target)
        risk = _golden("risk.order_limits", risk_p, [side[0], book[0], book[1]], target)
        order = _golden("order.encode", encoder_p, [risk[0], risk[1]], target)
        return {"book": book, "imbalance": side, "risk": risk, "order": order}

    def module(self, clock_hz: float = DEFAULT_CLOCK_HZ) -> "ReferencePathModule":
        modules, latencies = [], []
        for name, params in zip(STAGES, self.params()):
            impl = fpga_impl(name)
            timing = impl.timing(params, clock_hz)
            if timing.ii_cycles != 1:
                raise ValueError(f"{name} runs at II {timing.ii_cycles} at {clock_hz / 1e6:.1f} MHz; the path has no "
                                 "FIFOs between ops, so each must run at II 1")
            modules.append(impl.module(params, clock_hz))
            latencies.append(timing.latency_cycles)
        return ReferencePathModule(modules, latencies[1])


def _golden(name: str, params, columns: list[np.ndarray], target: str) -> list[np.ndarray]:
    impl = fpga_impl(name)
    c = impl.constants(params)
    return run_step(impl.step, c, impl.init(c, 1), columns, list(impl.op.outputs.values()), target)


class ReferencePathModule(StreamModule):
    """``book_deltas`` in (``in_side`` ... ``in_flags``), the encoder's message words out (``out_w0`` ...)."""

    def __init__(self, modules: list, imbalance_latency: int):
        book, imbalance, risk, encoder = modules
        super().__init__({n: s.shape() for n, s in book.i.items()}, {n: s.shape() for n, s in encoder.o.items()})
        self.book, self.imbalance, self.risk, self.encoder = modules
        self.imbalance_latency = imbalance_latency

    def elaborate(self, platform):
        m = Module()
        book, imbalance, risk, encoder = self.book, self.imbalance, self.risk, self.encoder
        m.submodules.book = book
        m.submodules.imbalance = imbalance
        m.submodules.risk = risk
        m.submodules.encoder = encoder
        m.d.comb += [book.in_valid.eq(self.in_valid), self.in_ready.eq(book.in_ready)]
        m.d.comb += [book.i[n].eq(s) for n, s in self.i.items()]
        m.d.comb += [
            imbalance.in_valid.eq(book.out_valid),
            imbalance.i["bid_size"].eq(book.o["bid_size"]), imbalance.i["ask_size"].eq(book.o["ask_size"]),
        ]
        # the book's prices wait for the imbalance's side of the same event
        bid, _ = delay_line(m, book.o["best_bid"], book.out_valid, self.imbalance_latency, "path_bid")
        ask, _ = delay_line(m, book.o["best_ask"], book.out_valid, self.imbalance_latency, "path_ask")
        m.d.comb += [
            risk.in_valid.eq(imbalance.out_valid), risk.i["side"].eq(imbalance.o["side"]),
            risk.i["side_null"].eq(imbalance.o["side_null"]), risk.i["best_bid"].eq(bid),
            risk.i["best_ask"].eq(ask),
            encoder.in_valid.eq(risk.out_valid), encoder.i["order_qty"].eq(risk.o["order_qty"]),
            encoder.i["order_price"].eq(risk.o["order_price"]),
            self.out_valid.eq(encoder.out_valid),
        ]
        m.d.comb += [self.o[n].eq(s) for n, s in encoder.o.items()]
        return m


def message_outputs(signals: dict) -> list[np.ndarray]:
    """The encoder's output columns from the path module's output signals."""
    return [np.array([int(v) for v in signals[name]], np.int64) for name in OrderEncode.outputs]
