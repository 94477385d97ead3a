"""The reference price pre-trade checks measure a fat finger against: the last trade, the mid, or both."""

from typing import Literal

from pydantic import Field

from nodes.contract import I64, OpParams, StreamOp, step_helper
from nodes.marketdata.schemas import ACTION_TRADE, UNDEF_PRICE

LAST_TRADE, MID, LAST_TRADE_ELSE_MID = 0, 1, 2
_USE = {"last_trade": LAST_TRADE, "mid": MID, "last_trade_else_mid": LAST_TRADE_ELSE_MID}


class ReferencePriceParams(OpParams):
    use: Literal["last_trade", "mid", "last_trade_else_mid"] = Field(
        "last_trade_else_mid",
        description="last_trade: the price of the last trade row (action T); mid: (best bid + best ask) / 2 "
                    "rounded down, while the book is two-sided; last_trade_else_mid: the last trade, the mid "
                    "until the first trade")


@step_helper
def valid_price(price):
    return price > 0 and price < UNDEF_PRICE


class ReferencePrice(StreamOp):
    """Track a reference price per instrument: the last trade, the mid, or the last trade else the mid.

    Inputs are the market stream's ``price`` and ``action`` (a row with action ``T`` is a trade at ``price``)
    and the book's top (``best_bid``/``best_ask``); all int64 in 1e-9 units. Output ``ref_px`` (int64, 1e-9
    units) is ``UNDEF_PRICE`` until the chosen reference exists; the mid is ``bid + (ask − bid) // 2`` while
    the book is two-sided and not crossed, else the last mid is kept. Causal: a trade is the reference from its
    own row on.

    FPGA: no (not ported).

    Example::

        ref: {op: risk.reference_price, in: {price: md.price, action: md.action, best_bid: book.best_bid,
                                              best_ask: book.best_ask}, with: {use: last_trade_else_mid}}
    """

    name = "risk.reference_price"
    Params = ReferencePriceParams
    inputs = {"price": I64, "action": I64, "best_bid": I64, "best_ask": I64}
    outputs = {"ref_px": I64}

    @staticmethod
    def constants(params):
        return (_USE[params.use],)

    @staticmethod
    def initial_outputs(c):
        return {"ref_px": UNDEF_PRICE}

    @staticmethod
    def init(c, n_keys):
        return (UNDEF_PRICE, UNDEF_PRICE)  # last trade, last mid

    @staticmethod
    def step(c, s, price, action, best_bid, best_ask):
        last_trade, last_mid = s
        if action == ACTION_TRADE and valid_price(price):
            last_trade = price
        if valid_price(best_bid) and valid_price(best_ask) and best_bid < best_ask:
            last_mid = best_bid + (best_ask - best_bid) // 2
        use = c[0]
        if use == LAST_TRADE:
            ref = last_trade
        elif use == MID:
            ref = last_mid
        else:
            ref = last_trade if last_trade != UNDEF_PRICE else last_mid
        return (last_trade, last_mid), ref
