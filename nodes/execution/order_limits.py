"""Pre-trade risk check: turn a wanted side into an order, or refuse it and say why."""

import math

from pydantic import Field

from nodes.contract import F64, I64, OpParams, StreamOp, step_helper
from nodes.marketdata.schemas import UNDEF_PRICE
from nodes.signals.side_codes import SIDE_BAD, SIDE_NONE, side_code

# Reject reasons, one bit each (several may be set on one refusal).
NO_MARKET = 1  # a side of the book is empty: no two-sided market to price and collar the order
CROSSED = 2  # best bid >= best ask
WIDE_SPREAD = 4  # the spread is wider than the collar
POSITION = 8  # the resulting |position| would exceed max_position_lots
NOTIONAL = 16  # price × quantity above max_notional
ORDER_LIMIT = 32  # max_orders reached (kill switch)
BAD_SIDE = 64  # the side is not -1, 0 or +1
PRICE_RANGE = 128  # a best price is not in (0, 2^48) 1e-9 units: outside what the datapath carries
REASONS = {
    NO_MARKET: "no_market", CROSSED: "crossed", WIDE_SPREAD: "wide_spread", POSITION: "position",
    NOTIONAL: "notional", ORDER_LIMIT: "order_limit", BAD_SIDE: "bad_side", PRICE_RANGE: "price_range",
}
PRICE_LIMIT = 1 << 48  # 281,474.976710656 in 1e-9 units


class OrderLimitsParams(OpParams):
    lots: int = Field(1, ge=1, le=16383, description="lots per unit of side: the wanted position is side × lots")
    max_position_lots: int = Field(
        ge=0, le=2**31 - 1, description="refuse an order whose resulting |position| would exceed this, in lots")
    max_notional: float = Field(
        gt=0, description="refuse an order whose price × quantity exceeds this, in quote currency")
    lot_size: float = Field(1.0, gt=0, description="instrument units in one lot (0.001 for a 0.001 BTC lot)")
    collar_bps: int = Field(
        50, ge=1, le=10_000, description="refuse while the spread is wider than this many basis points of the mid")
    max_orders: int = Field(
        1000, ge=0, le=2**31 - 1, description="orders let through before every further order is refused (kill switch)")


def notional_limit(max_notional: float, lot_size: float) -> int:
    """The largest ``price (1e-9 units) × lots`` allowed: ``floor(max_notional × 1e9 / lot_size)``, capped at 2^62."""
    return min(math.floor(max_notional * 1e9 / lot_size), 1 << 62)


@step_helper
def in_range(price):
    return price > 0 and price < PRICE_LIMIT


@step_helper
def pre_trade(code, best_bid, best_ask, position, sent, lots, max_position, limit, collar_bps, max_orders):
    """The check on integers: ``(position, sent, order_qty, order_price, reject)`` after one wish.

    ``code`` is a ``side_code``. No order and no refusal when there is no wish or the position already is
    the wanted one.
    """
    if code == SIDE_NONE:
        return position, sent, 0, 0, 0
    if code == SIDE_BAD:
        return position, sent, 0, 0, BAD_SIDE
    target = code * lots
    qty = target - position
    if qty == 0:
        return position, sent, 0, 0, 0
    reject = market_reasons(best_bid, best_ask, collar_bps)
    if target > max_position or -target > max_position:
        reject |= POSITION
    price = best_ask if qty > 0 else best_bid
    if reject & (NO_MARKET | PRICE_RANGE) == 0:
        size = qty if qty > 0 else -qty
        if price * size > limit:
            reject |= NOTIONAL
    if sent >= max_orders:
        reject |= ORDER_LIMIT
    if reject != 0:
        return position, sent, 0, 0, reject
    return target, sent + 1, qty, price, 0


@step_helper
def market_reasons(best_bid, best_ask, collar_bps):
    """The reasons the book itself gives to refuse any order: missing side, price range, crossed, wide spread."""
    if best_bid == UNDEF_PRICE or best_ask == UNDEF_PRICE:
        return NO_MARKET
    if not (in_range(best_bid) and in_range(best_ask)):
        return PRICE_RANGE
    if best_bid >= best_ask:
        return CROSSED
    # spread / mid > collar_bps / 1e4  ⟺  (ask - bid) · 20000 > collar_bps · (ask + bid)
    if (best_ask - best_bid) * 20_000 > collar_bps * (best_ask + best_bid):
        return WIDE_SPREAD
    return 0


class OrderLimits(StreamOp):
    """Turn a wanted side into an order for the difference to the position, or refuse it with the reasons.

    The wanted position is ``side × lots`` (side +1, 0 or -1; NaN means no wish). When it differs from the
    position the check lets through, the order is ``qty = wanted - position`` lots at the price that would
    fill it now (the best ask for a buy, the best bid for a sell: a marketable limit), unless a rule refuses:

    - ``no_market`` (1): either side of the book is empty; ``price_range`` (128): a best price is not in
      (0, 2^48) 1e-9 units (281,474.98: what the datapath carries);
    - ``crossed`` (2): best bid >= best ask; ``wide_spread`` (4): ``(ask − bid) / mid > collar_bps / 10^4``;
    - ``position`` (8): ``|side × lots| > max_position_lots``;
    - ``notional`` (16): ``price × |qty| × lot_size > max_notional`` (integer compare against
      ``floor(max_notional × 1e9 / lot_size)``);
    - ``order_limit`` (32): ``max_orders`` orders already let through (a kill switch);
    - ``bad_side`` (64): the side is not -1, 0 or +1.

    Outputs (int64): ``order_qty`` (signed lots, 0 for no order), ``order_price`` (1e-9 units, 0 for no
    order), ``reject`` (the reasons' bits, 0 when the order passed or none was wanted) and ``position`` (lots,
    after the event). The position counts orders let through as filled: a live deployment feeds fills back
    instead. All integer arithmetic below 2^63, so cpu, numba and the FPGA agree exactly.

    FPGA: yes — constant multiplies (DSP), comparators and a three-state position register.

    Example::

        risk: {op: risk.order_limits, in: {side: pressure, best_bid: book.best_bid, best_ask: book.best_ask},
               with: {lots: 1, max_position_lots: 1, max_notional: 100000, lot_size: 0.001, collar_bps: 20}}
    """

    name = "risk.order_limits"
    Params = OrderLimitsParams
    inputs = {"side": F64, "best_bid": I64, "best_ask": I64}
    outputs = {"order_qty": I64, "order_price": I64, "reject": I64, "position": I64}

    @staticmethod
    def constants(params):
        return (params.lots, params.max_position_lots, notional_limit(params.max_notional, params.lot_size),
                params.collar_bps, params.max_orders)

    @staticmethod
    def init(c, n_keys):
        return (0, 0)

    @staticmethod
    def step(c, s, side, best_bid, best_ask):
        lots, max_position, limit, collar_bps, max_orders = c
        position, sent = s
        position, sent, qty, price, reject = pre_trade(
            side_code(side), best_bid, best_ask, position, sent, lots, max_position, limit, collar_bps, max_orders)
        return (position, sent), qty, price, reject, position
