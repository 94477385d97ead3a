"""A taker on top-of-book imbalance: long when the bid outweighs the ask, short the other way, flat between."""

from pydantic import Field, model_validator

from nodes.contract import I64, OpParams, StreamOp
from nodes.marketdata.schemas import F_LAST
from nodes.strategies._units import size_units, two_sided


class ImbalanceTakerParams(OpParams):
    qty: float = Field(gt=0.0, description="size of the position taken, in units of the instrument (1 for one "
                       "ES contract)")
    threshold: float = Field(gt=0.0, lt=1.0, description="enter long when the imbalance (bid_size − ask_size) / "
                             "(bid_size + ask_size) rises strictly above this, short strictly below −threshold")
    hysteresis: float = Field(0.0, ge=0.0, description="leave a long when the imbalance falls strictly below "
                              "threshold − hysteresis (a short above −threshold + hysteresis); 0 leaves as soon "
                              "as the imbalance is back inside the band; at most threshold")
    cooldown_events: int = Field(0, ge=0, le=1_000_000_000, description="after the target changes, hold it for "
                                 "this many decision events (records flagged F_LAST, or every record)")
    short: bool = Field(True, description="take the short side too; false: long or flat only")
    every_record: bool = Field(False, description="decide on every market record; default only on records "
                               "flagged F_LAST, where a venue event is complete")

    @model_validator(mode="after")
    def _band(self):
        if self.hysteresis > self.threshold:
            raise ValueError(f"hysteresis ({self.hysteresis}) must not exceed threshold ({self.threshold}): a long "
                             "would then be held into the short entry zone")
        if size_units(self.qty) < 1:
            raise ValueError(f"qty {self.qty} is below the data's size unit (1e-9)")
        return self


class ImbalanceTaker(StreamOp):
    """Go long ``qty`` when the top of book leans to the bid, short when it leans to the ask, flat in between.

    The imbalance is ``(bid_size − ask_size) / (bid_size + ask_size)`` at the top (sizes and prices from
    ``book.l3`` or ``book.l2``, int64 1e-9 units), in [−1, 1]. Flat → long above ``threshold``, flat → short
    below ``−threshold`` (with ``short``); a long goes flat below ``threshold − hysteresis`` and straight to
    short below ``−threshold``; a short mirrors it. After a change the target is held for ``cooldown_events``
    decision events (``cooldown_events: 2``: a change at event 10 holds through 11 and 12).

    Output: ``target``, the position wanted (int64, 1e-9 units: ``±qty`` or 0), on every event, for
    ``backtest.tick_venue`` with ``orders: target``; it starts flat.

    When: decisions on records flagged ``F_LAST`` (``flags`` input; ``every_record: true`` for every record);
    other records hold the target. An empty side (``UNDEF_PRICE``), a crossed or locked book or a size that is
    not positive is no information: the target is held (the cooldown still counts the event). There is no
    NaN on the int64 tick path.

    FPGA: no (not ported; one divide and four comparisons per event).

    Example::

        target: {op: strategy.imbalance_taker, in: {best_bid: book.best_bid, best_ask: book.best_ask,
                                                    bid_size: book.bid_size, ask_size: book.ask_size,
                                                    flags: mbo.flags},
                 with: {qty: 1, threshold: 0.6, hysteresis: 0.3, cooldown_events: 20}}
    """

    name = "strategy.imbalance_taker"
    Params = ImbalanceTakerParams
    inputs = {"best_bid": I64, "best_ask": I64, "bid_size": I64, "ask_size": I64, "flags": I64}
    outputs = {"target": I64}

    @staticmethod
    def constants(params):
        return (size_units(params.qty), params.threshold, params.threshold - params.hysteresis,
                params.cooldown_events, params.short, params.every_record)

    @staticmethod
    def init(c, n_keys):
        # the side wanted (-1, 0, 1) and decision events since it last changed (saturates at cooldown + 1)
        return (0, c[3] + 1)

    @staticmethod
    def step(c, s, best_bid, best_ask, bid_size, ask_size, flags):
        qty, entry, exit_level, cooldown, short, every_record = c
        side, since = s
        if not every_record and (flags & F_LAST) == 0:
            return s, side * qty
        if since <= cooldown:
            since += 1
        if not two_sided(best_bid, best_ask) or bid_size <= 0 or ask_size <= 0:
            return (side, since), side * qty
        imbalance = (bid_size - ask_size) / (bid_size + ask_size)
        wanted = side
        if side > 0:
            if short and imbalance < -entry:
                wanted = -1
            elif imbalance < exit_level:
                wanted = 0
        elif side < 0:
            if imbalance > entry:
                wanted = 1
            elif imbalance > -exit_level:
                wanted = 0
        elif imbalance > entry:
            wanted = 1
        elif short and imbalance < -entry:
            wanted = -1
        if wanted != side and since > cooldown:
            side = wanted
            since = 0
        return (side, since), side * qty
