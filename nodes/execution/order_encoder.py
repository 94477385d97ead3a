"""Order encoder: pack an order into a fixed-layout binary new-order message, as four int64 words."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import I64, OpParams, StreamOp, step_helper

# The message: 32 bytes, little-endian.
#   bytes  0-1  message type, ASCII "NO" (new order): 0x4F4E
#   byte   2    side: 1 buy, 2 sell
#   byte   3    time in force: 0 day, 3 immediate-or-cancel
#   bytes  4-7  instrument id (u32, below 2^31)
#   bytes  8-15 client order id (u64): client_id_base + orders encoded before this one
#   bytes 16-23 limit price (i64, 1e-9 units)
#   bytes 24-27 quantity (u32, lots)
#   bytes 28-31 CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 0-27
MESSAGE_TYPE = 0x4F4E
MESSAGE_BYTES = 32
CHECKED_BYTES = 28
SIDE_BUY, SIDE_SELL = 1, 2
TIF_CODES = {"day": 0, "ioc": 3}
MAX_QTY = (1 << 32) - 1


class OrderEncodeParams(OpParams):
    instrument_id: int = Field(ge=0, le=2**31 - 1, description="the venue's id of the instrument (u32 field)")
    client_id_base: int = Field(
        0, ge=0, le=2**62, description="client order id of the first order; each next order adds one")
    tif: Literal["day", "ioc"] = Field("ioc", description="time in force: day, or immediate-or-cancel")


def crc_table() -> np.ndarray:
    """The 256-entry table of the reflected CRC-32 (polynomial 0xEDB88320), as int64."""
    table = np.zeros(256, np.int64)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[n] = c
    return table


@step_helper
def crc32_message(table, w0, w1, w2, qty):
    """CRC-32 of the message's first 28 bytes: the words w0, w1, w2 and the 4 bytes of ``qty``."""
    crc = 0xFFFFFFFF
    for i in range(CHECKED_BYTES):
        if i < 8:
            word = w0
        elif i < 16:
            word = w1
        elif i < 24:
            word = w2
        else:
            word = qty
        byte = (word >> (8 * (i % 8))) & 0xFF
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@step_helper
def high_word(value32):
    """An unsigned 32-bit value as the signed upper half of an int64 (so the word stays a valid int64)."""
    if value32 >= 1 << 31:
        return value32 - (1 << 32)
    return value32


class OrderEncode(StreamOp):
    """Encode each order (``order_qty`` lots at ``order_price``) as a 32-byte binary new-order message.

    The message is four little-endian int64 words ``w0..w3`` (layout in this module: type "NO", side, time in
    force, instrument id, client order id, price, quantity, CRC-32 of the first 28 bytes, as
    ``zlib.crc32``); ``struct.pack("<4q", w0, w1, w2, w3)`` gives the bytes to send. An event with
    ``order_qty == 0`` is no order: the words are 0. ``sent`` counts messages encoded; ``invalid`` counts
    orders that cannot be encoded (|qty| at or above 2^32 lots) and were dropped.

    FPGA: yes — wiring for the fields, one adder for the client id and a parallel CRC (an XOR tree per bit).

    Example::

        order: {op: order.encode, in: {order_qty: risk.order_qty, order_price: risk.order_price},
                with: {instrument_id: 7, client_id_base: 1000, tif: ioc}}
    """

    name = "order.encode"
    Params = OrderEncodeParams
    inputs = {"order_qty": I64, "order_price": I64}
    outputs = {"w0": I64, "w1": I64, "w2": I64, "w3": I64, "sent": I64, "invalid": I64}

    @staticmethod
    def constants(params):
        return (params.instrument_id, params.client_id_base, TIF_CODES[params.tif])

    @staticmethod
    def init(c, n_keys):
        return (0, 0, crc_table())

    @staticmethod
    def step(c, s, order_qty, order_price):
        instrument_id, client_id_base, tif = c
        sent, invalid, table = s
        if order_qty == 0:
            return s, 0, 0, 0, 0, sent, invalid
        if order_qty > MAX_QTY or order_qty < -MAX_QTY:
            return (sent, invalid + 1, table), 0, 0, 0, 0, sent, invalid + 1
        qty = order_qty if order_qty > 0 else -order_qty
        side = SIDE_BUY if order_qty > 0 else SIDE_SELL
        w0 = MESSAGE_TYPE | (side << 16) | (tif << 24) | (instrument_id << 32)
        w1 = client_id_base + sent
        w2 = order_price
        crc = crc32_message(table, w0, w1, w2, qty)
        w3 = (high_word(crc) << 32) | qty
        return (sent + 1, invalid, table), w0, w1, w2, w3, sent + 1, invalid
