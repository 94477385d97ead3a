"""A market maker: quotes around the mid on the tick grid, skewed against inventory, bounded by a position limit."""

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import I64, OpParams, StreamOp, step_helper
from nodes.marketdata.schemas import F_LAST
from nodes.strategies._units import price_units, size_units, two_sided

# skew beyond this many half-ticks is clipped: a position that large is a broken feed, and the clip keeps the
# float → int conversion defined (and identical) on both placements
_MAX_SKEW_HALF_TICKS = float(1 << 40)


class MarketMakerParams(OpParams):
    tick_size: float = Field(gt=0.0, description="the instrument's price increment in price units (0.01 for "
                             "BTCUSDT spot, 0.25 for ES); quotes are multiples of it")
    half_spread_ticks: int = Field(0, ge=0, le=1_000_000, description="distance of each quote from the "
                                   "(skewed) mid, in ticks; 0 joins the touch when the market is one tick wide")
    min_spread_ticks: int = Field(1, ge=1, le=1_000_000, description="the quoted spread (ask − bid) is at least "
                                  "this many ticks, widened around the skewed mid when narrower")
    quote_qty: float = Field(gt=0.0, description="size of each quote in units of the instrument (0.001 BTC)")
    max_position: float = Field(gt=0.0, description="inventory limit in units, long or short: a side stops "
                                "quoting when a fill of its quote (plus the reserve) would pass it")
    skew_ticks_per_unit: float = Field(0.0, ge=0.0, le=1e12, description="inventory skew: both quotes move "
                                       "this many ticks down per unit long (up per unit short), so a long "
                                       "sells sooner and buys later")
    reserve_quotes: int = Field(1, ge=0, le=1_000, description="quotes' worth of position kept in reserve under "
                                "max_position for fills not seen yet (the venue reports a fill after its "
                                "response latency and prev(venue.position) arrives one event later)")
    every_record: bool = Field(False, description="requote on every market record; default only on records "
                               "flagged F_LAST, where a venue event is complete (a half-applied update can "
                               "look crossed)")

    @model_validator(mode="after")
    def _fits(self):
        if price_units(self.tick_size) < 1:
            raise ValueError(f"tick_size {self.tick_size} is below the data's price unit (1e-9)")
        if size_units(self.quote_qty) < 1:
            raise ValueError(f"quote_qty {self.quote_qty} is below the data's size unit (1e-9)")
        needed = self.quote_qty * (1 + self.reserve_quotes)
        if self.max_position < needed:
            raise ValueError(f"max_position {self.max_position} is below quote_qty × (1 + reserve_quotes) = "
                             f"{needed}: the strategy could never quote")
        return self


class MarketMaker(StreamOp):
    """Quote both sides around the mid on the tick grid, skewed against inventory, within a position limit.

    From the book's top (``best_bid``/``best_ask``, int64 1e-9 units, ``UNDEF_PRICE`` for an empty side) and
    the position (int64 1e-9 units, read as ``prev(venue.position)``): in ticks, the mid is
    ``(bid + ask) / 2`` (bid rounded down, ask up to the grid), the reservation price is the mid minus
    ``skew_ticks_per_unit × position`` (rounded to half ticks), the bid is the reservation price minus
    ``half_spread_ticks`` rounded down and the ask plus ``half_spread_ticks`` rounded up. A spread narrower
    than ``min_spread_ticks`` is widened on both sides; then a quote that would cross the market is pulled
    back (bid at most one tick under the best ask, ask at least one tick over the best bid), so quotes can be
    post-only. Always ``bid_px < ask_px``, both on the grid.

    Quantities: ``quote_qty`` on a side while ``position ± quote_qty`` stays within ``max_position`` with
    ``reserve_quotes × quote_qty`` to spare, else 0 (the side is pulled). Both are 0 while the book is empty
    on a side, crossed or locked; the prices then keep their last values (0 and one tick before the first
    quote).

    When: on records flagged ``F_LAST`` (``flags`` input; ``every_record: true`` for every record); on other
    records the last quotes are held. There is no NaN on the int64 tick path: an empty side is
    ``UNDEF_PRICE``.

    FPGA: no (not ported; the arithmetic is integer apart from the skew's one multiply).

    Example::

        quotes: {op: strategy.market_maker, in: {best_bid: book.best_bid, best_ask: book.best_ask,
                                                  position: prev(venue.position), flags: md.flags},
                 with: {tick_size: 0.01, half_spread_ticks: 0, quote_qty: 0.001, max_position: 0.005,
                        skew_ticks_per_unit: 1000}}
    """

    name = "strategy.market_maker"
    Params = MarketMakerParams
    inputs = {"best_bid": I64, "best_ask": I64, "position": I64, "flags": I64}
    outputs = {"bid_px": I64, "bid_qty": I64, "ask_px": I64, "ask_qty": I64}

    @staticmethod
    def constants(params):
        quote = size_units(params.quote_qty)
        # skew in half ticks per unit of position (1e-9 units): the reservation price lives on the half-tick grid
        return (
            price_units(params.tick_size), 2 * params.half_spread_ticks, params.min_spread_ticks, quote,
            size_units(params.max_position) - params.reserve_quotes * quote,
            2.0 * params.skew_ticks_per_unit / 1e9, params.every_record,
        )

    @staticmethod
    def init(c, n_keys):
        return (0, 0, c[0], 0)

    @staticmethod
    def step(c, s, best_bid, best_ask, position, flags):
        tick, half_spread2, min_spread, quote, limit, skew2_per_unit, every_record = c
        bid_px, bid_qty, ask_px, ask_qty = s
        if not every_record and (flags & F_LAST) == 0:
            return s, bid_px, bid_qty, ask_px, ask_qty
        if not two_sided(best_bid, best_ask):
            return (bid_px, 0, ask_px, 0), bid_px, 0, ask_px, 0
        bid_ticks, ask_ticks = quote_ticks(best_bid // tick, -((-best_ask) // tick), position * skew2_per_unit,
                                           half_spread2, min_spread)
        bid_px = bid_ticks * tick
        ask_px = ask_ticks * tick
        bid_qty = quote if position + quote <= limit else 0
        ask_qty = quote if position - quote >= -limit else 0
        return (bid_px, bid_qty, ask_px, ask_qty), bid_px, bid_qty, ask_px, ask_qty


@step_helper
def quote_ticks(market_bid, market_ask, skew_half_ticks, half_spread2, min_spread):
    """The bid and ask in ticks around the skewed mid, at least ``min_spread`` apart, not crossing the market."""
    skew = min(max(skew_half_ticks, -_MAX_SKEW_HALF_TICKS), _MAX_SKEW_HALF_TICKS)
    reservation2 = market_bid + market_ask - int(np.floor(skew + 0.5))
    bid = (reservation2 - half_spread2) // 2
    ask = -((-(reservation2 + half_spread2)) // 2)
    short = min_spread - (ask - bid)
    if short > 0:
        bid -= (short + 1) // 2
        ask += short // 2
    # pulling a quote back from the market only widens the spread, so bid < ask still holds
    bid = min(bid, market_ask - 1)
    ask = max(ask, market_bid + 1)
    return bid, ask
