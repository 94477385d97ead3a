"""``risk.order_limits`` on the fabric: every check precomputed, the position recurrence a three-state mux.

Formats: the side a code (-1, 0, +1, bad) plus a null flag; prices int64 at the ports, UQ48.0 inside the
datapath (a price outside (0, 2^48) is refused with ``price_range`` before any product uses it); the
position a three-state code (-lots, 0, +lots); the order count UQ31.0. Integer throughout: the golden model
is the op's own integer check (``nodes.execution.order_limits.pre_trade``) after the side's boundary
conversion, bit-identical to the op (error bound 0).

Restructured for II 1 (look-ahead over the position): the order quantity ``side × lots - position`` depends
on the position, a loop-carried value, and the notional check multiplies by it. But the position can only be
-lots, 0 or +lots, so |qty| is lots or 2·lots and the price is the bid or the ask: the four products
``{bid, ask} × lots`` (and ×2, a shift) are computed and compared with the limit ahead of the recurrence,
which then only selects among precomputed bits.

Structure: ``in`` (book flags, spread and sum of the best prices) → ``scale`` (constant multiplies:
spread × 20000, sum × collar_bps, bid × lots, ask × lots; pipelined) → ``check`` (compares against the collar
and the notional limit) → ``decide`` (the recurrence: position and order count; selects the order).
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat
from hardware.fpga.registry import FpgaImpl
from hardware.fpga.rtl import INT64, Issue, Recurrence, StreamModule, delay_line, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.execution.order_limits import (
    BAD_SIDE,
    CROSSED,
    NO_MARKET,
    NOTIONAL,
    ORDER_LIMIT,
    POSITION,
    PRICE_LIMIT,
    PRICE_RANGE,
    WIDE_SPREAD,
    OrderLimits,
    pre_trade,
)
from nodes.marketdata.schemas import UNDEF_PRICE
from nodes.signals.side_codes import SIDE_NONE, side_code

SIDE_CODE = FixedFormat(True, 3, 0, "floor", "saturate")


def side_codes(side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(code, null)`` of a float side column, as ``side_code`` converts each value."""
    codes = np.array([side_code(float(v)) for v in side], np.int64)
    return np.where(codes == SIDE_NONE, 0, codes), (codes == SIDE_NONE).astype(np.int64)


class PreTradeRiskFpga(FpgaImpl):
    op = OrderLimits

    def constants(self, params) -> tuple:
        return OrderLimits.constants(params)

    # the op itself is integer once its side is a code: its own state and step are the golden model
    init = staticmethod(OrderLimits.init)
    step = staticmethod(OrderLimits.step)

    def formats(self, params) -> dict[str, FixedFormat]:
        price = FixedFormat(False, 48, 0, "floor", "saturate")
        return {
            "side": SIDE_CODE, "best_bid": price, "best_ask": price,
            "order_qty": FixedFormat(True, 16, 0), "order_price": price, "reject": FixedFormat(False, 8, 0),
            "position": FixedFormat(True, 16, 0), "state.position": FixedFormat(True, 2, 0),
            "state.sent": FixedFormat(False, 31, 0), "const.limit": FixedFormat(False, 63, 0),
        }

    def structure(self, params) -> T.Structure:
        lots, _, _, collar_bps, _ = OrderLimits.constants(params)
        products = {
            "spread × 20000": T.const_mul(49, 20_000),
            "sum × collar": T.const_mul(49, collar_bps),
            "price × lots": T.const_mul(48, lots),
        }
        return T.Structure((
            T.Stage("in", {"book flags": (T.cmp(64), T.logic(1)), "spread": (T.add(64),)}),
            T.Stage("scale", products, pipelined=True),
            T.Stage("check", {"limits": (T.cmp(64), T.logic(2))}),
            T.Stage("decide", {"order": (T.cmp(31), T.logic(2), T.mux(5))}, loop=True),
        ))

    def resources(self, params) -> R.Resources:
        lots, _, _, collar_bps, _ = OrderLimits.constants(params)
        scale = self.timing(params).cycles_of("scale")
        return R.total([
            R.equality(64, 2), R.constant_comparator(64, 4), R.comparator(64), R.adder(64, 2),  # in: book flags
            R.constant_multiplier(49, 20_000), R.constant_multiplier(49, collar_bps),
            R.constant_multiplier(48, lots, 2),
            R.comparator(64, 1), R.constant_comparator(64, 4),  # check: collar, four notional compares
            R.comparator(31, 1), R.adder(31), R.multiplexer(64, 5, 2), R.random_logic(24),  # decide
            R.register(3 + 1 + 2 * 48 + 2 * 50 + 8),  # in
            R.register(scale * (2 * 64 + 2 * 62) + 8 + 2 * 48),  # scale pipeline, flags, prices
            R.register(8 + 4 + 2 * 48),  # check
            R.register(2 + 31 + 3 * 64 + 8 + 4),  # decide: state and outputs
        ])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "PreTradeRiskModule":
        structure = self.structure(params)
        cycles = {s.name: stage_cycles(s, clock_hz)[0] for s in structure.stages}
        return PreTradeRiskModule(OrderLimits.constants(params), cycles["scale"], cycles["decide"])

    def rtl_inputs(self, params, columns):
        code, null = side_codes(columns[0])
        return {"side": code, "side_null": null, "best_bid": np.asarray(columns[1], np.int64),
                "best_ask": np.asarray(columns[2], np.int64)}

    def rtl_outputs(self, params, signals):
        return [np.array([int(v) for v in signals[name]], np.int64)
                for name in ("order_qty", "order_price", "reject", "position")]


class PreTradeRiskModule(StreamModule):
    """``in_side`` (-1/0/+1, 2 = bad, + ``in_side_null``), ``in_best_bid``, ``in_best_ask`` (int64) →
    ``out_order_qty``, ``out_order_price``, ``out_reject``, ``out_position`` (int64)."""

    def __init__(self, c: tuple, scale_cycles: int, cycles: int):
        super().__init__({"side": signed(3), "side_null": 1, "best_bid": INT64, "best_ask": INT64},
                         {"order_qty": INT64, "order_price": INT64, "reject": INT64, "position": INT64})
        self.c = c
        self.scale_cycles = scale_cycles
        self.cycles = cycles

    def elaborate(self, platform):
        lots, max_position, limit, collar_bps, max_orders = self.c
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        bid_in, ask_in = self.i["best_bid"], self.i["best_ask"]

        # in: what the book alone says, and the operands of the products (valid when the prices are in range)
        market = Signal(unsigned(8), name="market_reason")
        m.d.comb += market.eq(0)
        bid_ok = (bid_in > 0) & (bid_in < PRICE_LIMIT)
        ask_ok = (ask_in > 0) & (ask_in < PRICE_LIMIT)
        with m.If((bid_in == UNDEF_PRICE) | (ask_in == UNDEF_PRICE)):
            m.d.comb += market.eq(NO_MARKET)
        with m.Elif(~(bid_ok & ask_ok)):
            m.d.comb += market.eq(PRICE_RANGE)
        with m.Elif(bid_in >= ask_in):
            m.d.comb += market.eq(CROSSED)
        side, null = Signal(signed(3), name="side_r"), Signal(name="null_r")
        market_r = Signal(unsigned(8), name="market_r")
        bid, ask = Signal(unsigned(48), name="bid_r"), Signal(unsigned(48), name="ask_r")
        spread, total = Signal(unsigned(49), name="spread_r"), Signal(unsigned(50), name="sum_r")
        hold_on(m, issue.accept, [
            (side, self.i["side"]), (null, self.i["side_null"]), (market_r, market), (bid, bid_in[:48]),
            (ask, ask_in[:48]), (spread, (ask_in - bid_in)[:49]), (total, (ask_in + bid_in)[:50]),
        ])
        valid = stage_valid(m, issue.accept, "in_valid_r")

        # scale: constant products, pipelined (retimed into DSP slices or shift-add trees)
        n = self.scale_cycles
        spread_x, scaled_valid = delay_line(m, spread * 20_000, valid, n, "spread_x")
        sum_x, _ = delay_line(m, total * collar_bps, valid, n, "sum_x")
        bid_x, _ = delay_line(m, bid * lots, valid, n, "bid_x")
        ask_x, _ = delay_line(m, ask * lots, valid, n, "ask_x")
        carried = [delay_line(m, s, valid, n, f"{s.name}_d")[0] for s in (side, null, market_r, bid, ask)]
        side_d, null_d, market_d, bid_d, ask_d = carried

        # check: the collar and the four notional compares (buy or sell, |qty| = lots or 2 lots)
        reason = Signal(unsigned(8), name="reason_r")
        over = {key: Signal(name=f"over_{key}") for key in ("buy1", "buy2", "sell1", "sell2")}
        side_c, null_c = Signal(signed(3), name="side_c"), Signal(name="null_c")
        bid_c, ask_c = Signal(unsigned(48), name="bid_c"), Signal(unsigned(48), name="ask_c")
        hold_on(m, scaled_valid, [
            (reason, Mux((market_d == 0) & (spread_x > sum_x), WIDE_SPREAD, market_d)),
            (over["buy1"], ask_x > limit), (over["buy2"], (ask_x << 1) > limit),
            (over["sell1"], bid_x > limit), (over["sell2"], (bid_x << 1) > limit),
            (side_c, side_d), (null_c, null_d), (bid_c, bid_d), (ask_c, ask_d),
        ])
        checked_valid = stage_valid(m, scaled_valid, "check_valid")

        # decide: the recurrence over the position (-1, 0, +1 in lots) and the order count
        loop = Recurrence(m, checked_valid, self.cycles)
        position = Signal(signed(2), name="position")
        sent = Signal(range(max_orders + 2), name="sent")
        outputs = {name: Signal(INT64, name=f"{name}_r") for name in ("order_qty", "order_price", "reject", "position")}
        step = Signal(signed(3), name="qty_lots")  # target - position, in lots: -2..2
        m.d.comb += step.eq(side_c - position)
        notional = Mux(step > 0, Mux(step == 1, over["buy1"], over["buy2"]),
                       Mux(step == -1, over["sell1"], over["sell2"]))
        refused = Signal(unsigned(8), name="refused")
        priced = (reason != NO_MARKET) & (reason != PRICE_RANGE)
        # a constant compare: when lots > max_position every non-flat target breaks the position limit
        position_flag = Mux(side_c != 0, POSITION, 0) if lots > max_position else 0
        m.d.comb += refused.eq(
            reason
            | position_flag
            | Mux(priced & notional, NOTIONAL, 0)
            | Mux(sent >= max_orders, ORDER_LIMIT, 0)
        )
        held = [outputs["order_qty"].eq(0), outputs["order_price"].eq(0), outputs["position"].eq(position * lots)]
        with m.If(loop.fire):
            with m.If(null_c | (step == 0)):
                m.d.sync += held + [outputs["reject"].eq(0)]
            with m.Elif(side_c == 2):
                m.d.sync += held + [outputs["reject"].eq(BAD_SIDE)]
            with m.Elif(refused != 0):
                m.d.sync += held + [outputs["reject"].eq(refused)]
            with m.Else():
                m.d.sync += [
                    position.eq(side_c), sent.eq(sent + 1),
                    outputs["order_qty"].eq(step * lots), outputs["order_price"].eq(Mux(step > 0, ask_c, bid_c)),
                    outputs["reject"].eq(0), outputs["position"].eq(side_c * lots),
                ]
        m.d.comb += [self.out_valid.eq(loop.valid)] + [self.o[k].eq(v) for k, v in outputs.items()]
        return m
