"""``order.encode`` on the fabric: field wiring, the client-id adder and a parallel CRC-32.

Formats: quantity and price int64 at the ports; the message fields are fixed-width integers (u8 side and time
in force, u32 instrument and quantity, u64 client id, i64 price, u32 CRC). The golden model is the op's own
step (integer, a table-driven CRC over a fixed 28 bytes: a loop of constant trip count), bit-identical.

The CRC is affine over GF(2): each of the 32 CRC bits is a constant XOR the parity of a fixed subset of the
224 message bits. The matrix is derived at elaboration from ``zlib.crc32`` itself, so the RTL computes the
same checksum in one XOR tree per bit (the widest has ``max_crc_fan_in`` inputs).

Structure: ``in`` (|qty|, side, range check) → ``sequence`` (the recurrence: the order count, the client id
adder, the fields) → ``crc`` (the XOR trees) → outputs.
"""

import zlib
from functools import lru_cache

import numpy as np
from amaranth import Cat, Const, Module, Mux, Signal, unsigned

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat
from hardware.fpga.registry import FpgaImpl
from hardware.fpga.rtl import INT64, Issue, Recurrence, StreamModule, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.execution.order_encoder import (
    CHECKED_BYTES,
    MAX_QTY,
    MESSAGE_TYPE,
    SIDE_BUY,
    SIDE_SELL,
    OrderEncode,
)

CHECKED_BITS = 8 * CHECKED_BYTES


@lru_cache(maxsize=1)
def crc_matrix() -> tuple[int, tuple[tuple[int, ...], ...]]:
    """``(crc of zeros, inputs of each CRC bit)``: CRC bit j = bit j of the first XOR the listed message bits."""
    zero = zlib.crc32(bytes(CHECKED_BYTES))
    columns = []
    for i in range(CHECKED_BITS):
        message = bytearray(CHECKED_BYTES)
        message[i // 8] = 1 << (i % 8)
        columns.append(zlib.crc32(bytes(message)) ^ zero)
    inputs = tuple(tuple(i for i in range(CHECKED_BITS) if columns[i] >> j & 1) for j in range(32))
    return zero, inputs


def max_crc_fan_in() -> int:
    return max(len(bits) for bits in crc_matrix()[1])


class OrderEncodeFpga(FpgaImpl):
    op = OrderEncode

    def constants(self, params) -> tuple:
        return OrderEncode.constants(params)

    init = staticmethod(OrderEncode.init)
    step = staticmethod(OrderEncode.step)

    def formats(self, params) -> dict[str, FixedFormat]:
        return {
            "order_qty": FixedFormat(True, 63, 0), "order_price": FixedFormat(True, 63, 0),
            "field.quantity": FixedFormat(False, 32, 0), "field.client_id": FixedFormat(False, 63, 0),
            "field.crc": FixedFormat(False, 32, 0), "state.sent": FixedFormat(False, 62, 0),
        }

    def structure(self, params) -> T.Structure:
        return T.Structure((
            T.Stage("in", {"quantity": (T.add(64), T.mux(2)), "range": (T.cmp(64), T.logic(1))}),
            T.Stage("sequence", {"client id": (T.add(64),), "count": (T.add(62), T.mux(2))}, loop=True),
            T.Stage("crc", {"crc bit": (T.xor_tree(max_crc_fan_in()),)}),
        ))

    def resources(self, params) -> R.Resources:
        crc_luts = sum(R.reduction(len(bits)).lut for bits in crc_matrix()[1])
        return R.total([
            R.adder(64), R.comparator(64, 2), R.multiplexer(32, 2), R.random_logic(4),
            R.adder(64), R.adder(62, 2), R.random_logic(crc_luts),
            R.register(1 + 32 + 2 + 64 + 1),  # in
            R.register(62 + 62 + 4 * 64),  # counters and the fields
            R.register(4 * 64 + 2 * 62),  # outputs
        ])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "OrderEncodeModule":
        cycles = stage_cycles(self.structure(params).stages[1], clock_hz)[0]
        return OrderEncodeModule(OrderEncode.constants(params), cycles)

    def rtl_inputs(self, params, columns):
        return {"order_qty": np.asarray(columns[0], np.int64), "order_price": np.asarray(columns[1], np.int64)}

    def rtl_outputs(self, params, signals):
        return [np.array([int(v) for v in signals[name]], np.int64)
                for name in ("w0", "w1", "w2", "w3", "sent", "invalid")]


class OrderEncodeModule(StreamModule):
    """``in_order_qty``, ``in_order_price`` (int64) → ``out_w0..w3`` (the message), ``out_sent``,
    ``out_invalid`` (int64)."""

    def __init__(self, c: tuple, cycles: int):
        super().__init__({"order_qty": INT64, "order_price": INT64},
                         {name: INT64 for name in ("w0", "w1", "w2", "w3", "sent", "invalid")})
        self.instrument_id, self.client_id_base, self.tif = c
        self.cycles = cycles

    def elaborate(self, platform):
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        qty_in = self.i["order_qty"]
        # in: |qty|, side, whether there is an order and whether it fits the u32 field
        magnitude = Mux(qty_in < 0, -qty_in, qty_in)
        qty = Signal(unsigned(32), name="qty_r")
        buy = Signal(name="buy_r")
        present, fits = Signal(name="present_r"), Signal(name="fits_r")
        price = Signal(INT64, name="price_r")
        hold_on(m, issue.accept, [
            (qty, magnitude[:32]), (buy, qty_in > 0), (present, qty_in != 0),
            (fits, (qty_in <= MAX_QTY) & (qty_in >= -MAX_QTY)), (price, self.i["order_price"]),
        ])
        valid = stage_valid(m, issue.accept, "in_valid_r")

        # sequence: the order count and the fields of the message
        loop = Recurrence(m, valid, self.cycles)
        sent = Signal(unsigned(62), name="sent")
        invalid = Signal(unsigned(62), name="invalid")
        fields = {name: Signal(unsigned(64), name=f"{name}_r") for name in ("w0", "w1", "w2")}
        quantity = Signal(unsigned(32), name="quantity_r")
        has_message = Signal(name="has_message_r")
        header = Cat(Const(MESSAGE_TYPE, 16), Mux(buy, Const(SIDE_BUY, 8), Const(SIDE_SELL, 8)),
                     Const(self.tif, 8), Const(self.instrument_id, 32))
        with m.If(loop.fire):
            with m.If(present & fits):
                m.d.sync += [
                    sent.eq(sent + 1), has_message.eq(1), fields["w0"].eq(header),
                    fields["w1"].eq(self.client_id_base + sent), fields["w2"].eq(price), quantity.eq(qty),
                ]
            with m.Else():
                m.d.sync += has_message.eq(0)
                with m.If(present):
                    m.d.sync += invalid.eq(invalid + 1)
        sequenced = loop.valid

        # crc: one XOR tree per CRC bit over the 224 message bits
        zero, inputs = crc_matrix()
        message = Cat(fields["w0"], fields["w1"], fields["w2"], quantity)
        crc = Cat(*[Const(zero >> j & 1, 1) ^ Cat(*[message[i] for i in bits]).xor() for j, bits in enumerate(inputs)])
        words = {name: Signal(INT64, name=f"{name}_o") for name in ("w0", "w1", "w2", "w3", "sent", "invalid")}
        with m.If(sequenced):
            with m.If(has_message):
                m.d.sync += [words["w0"].eq(fields["w0"]), words["w1"].eq(fields["w1"]),
                             words["w2"].eq(fields["w2"]), words["w3"].eq(Cat(quantity, crc))]
            with m.Else():
                m.d.sync += [words[k].eq(0) for k in ("w0", "w1", "w2", "w3")]
            m.d.sync += [words["sent"].eq(sent), words["invalid"].eq(invalid)]
        out_valid = stage_valid(m, sequenced, "out_valid_r")
        m.d.comb += [self.out_valid.eq(out_valid)] + [self.o[k].eq(v) for k, v in words.items()]
        return m

