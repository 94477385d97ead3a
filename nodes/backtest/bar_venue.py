"""A simulated venue for bar data: one account, many instruments, market orders toward a target position."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.contract import BAR, F64, OpParams, Scope, StreamOp, step_helper


class BarVenueParams(OpParams):
    cash: float = Field(10_000.0, gt=0, description="starting cash of the account, in quote currency")
    commission: float = Field(0.0, ge=0, lt=0.2, description="commission as a fraction of traded value")
    commission_per_unit: float = Field(0.0, ge=0, description="commission per unit traded, in quote currency")
    slippage_bps: float = Field(
        0.0, ge=0, lt=10_000, description="half-spread plus slippage in basis points, always against the order"
    )
    fill: Literal["next_open", "close"] = Field(
        "next_open",
        description="next_open: fill at the next bar's open (default, realistic); "
        "close: fill at the signal bar's own close (optimistic: assumes trading at a price already seen)",
    )
    close_at_end: bool = Field(True, description="close open positions at the last close when the data ends")


class BarVenue(StreamOp):
    """Fill market orders that move each instrument's position to its ``target``, and keep the account.

    On every bar of instrument k: first a pending order of k fills at this bar's open (``fill: next_open``),
    then the bar's close marks k, then a new target (not NaN, different from the position) becomes an order
    of ``target - position`` units that fills at the next bar's open of k, or at once at this close with
    ``fill: close``. A buy pays ``price × (1 + slippage_bps/1e4)``, a sell receives
    ``price × (1 - slippage_bps/1e4)``; commission = commission × |qty| × price + commission_per_unit × |qty|.
    Long, short and flat are all allowed; cash may go negative (no margin model here).

    Outputs per event: account ``equity`` (= cash + Σ position × last close over instruments) and ``cash``;
    for the event's instrument: ``position``, ``fill_qty``, ``fill_price`` (NaN without a fill),
    ``commission``, ``mark_price`` (the close) and ``entry_price``. Trades, the equity curve and stats are
    derived from these by ``summarize``.

    ``entry_price`` is the average entry price of the instrument's position after the event (slippage
    included, commission not), NaN when flat: a fill from flat or one that reverses the position sets it to
    that fill's price; adding on the position's side makes it the size-weighted average of the old entry and
    the fill; a partial close leaves it as it was (average cost, so it can differ from the FIFO entry of the
    lots ``trades`` still holds open). Exit ops read it one event back: ``entry_price: prev(sim.entry_price)``.

    Example::

        sim: {op: backtest.bar_venue, in: {market: bars, target: target}, with: {cash: 10000, commission: 0.002}}
    """

    name = "backtest.bar_venue"
    Params = BarVenueParams
    keyed = False
    context = ("key",)
    # steps on its market's bars only: a target computed from other instruments is read as of that bar
    triggers = ("market",)
    inputs = {"market": BAR, "target": F64}
    outputs = {
        "equity": F64,
        "cash": F64,
        "position": F64,
        "fill_qty": F64,
        "fill_price": F64,
        "commission": F64,
        "mark_price": F64,
        "entry_price": F64,
    }
    output_scopes = {
        "equity": Scope.ACCOUNT,
        "cash": Scope.ACCOUNT,
        "position": Scope.KEY,
        "fill_qty": Scope.KEY,
        "fill_price": Scope.KEY,
        "commission": Scope.KEY,
        "mark_price": Scope.KEY,
        "entry_price": Scope.KEY,
    }

    @staticmethod
    def constants(params):
        return (
            params.cash,
            params.commission,
            params.commission_per_unit,
            params.slippage_bps / 1e4,
            params.fill == "close",
        )

    @staticmethod
    def initial_outputs(c):
        return {"equity": c[0], "cash": c[0]}

    @staticmethod
    def init(c, n_keys):
        # cash, value of all positions at their last close, then per instrument: position, pending order, last
        # close, average entry price (NaN when flat)
        return (c[0], 0.0, np.zeros(n_keys), np.zeros(n_keys), np.zeros(n_keys), np.full(n_keys, np.nan))

    @staticmethod
    def step(c, s, key, open_, high, low, close, volume, target):
        cash, holdings, position, pending, marks, entry = s
        _, commission, per_unit, slippage, fill_on_close = c
        fill_qty = 0.0
        fill_price = np.nan
        fee = 0.0
        # holdings = Σ position × last close, kept up to date instead of summed over instruments every event
        holdings += position[key] * (close - marks[key])
        marks[key] = close
        if pending[key] != 0.0:
            fill_qty = pending[key]
            fill_price, fee = _fill_terms(fill_qty, open_, commission, per_unit, slippage)
            cash -= fill_qty * fill_price + fee
            entry[key] = _entry_after(position[key], fill_qty, fill_price, entry[key])
            position[key] += fill_qty
            holdings += fill_qty * close
            pending[key] = 0.0
        if target == target and target != position[key]:
            order = target - position[key]
            if fill_on_close:
                fill_price, fee = _fill_terms(order, close, commission, per_unit, slippage)
                cash -= order * fill_price + fee
                entry[key] = _entry_after(position[key], order, fill_price, entry[key])
                position[key] += order
                holdings += order * close
                fill_qty = order
            else:
                pending[key] = order
        equity = cash + holdings
        state = (cash, holdings, position, pending, marks, entry)
        return state, equity, cash, position[key], fill_qty, fill_price, fee, close, entry[key]

    @classmethod
    def summarize(cls, params, recorded, logs):
        """Derive trades, the equity curve and stats from the recorded outputs (see ``nodes.backtest.result``).

        ``logs`` is empty: the bar venue's record is its per-event outputs.
        """
        from nodes.backtest.result import summarize_bar_backtest

        return summarize_bar_backtest(params, recorded)


@step_helper
def _fill_terms(qty, price, commission, per_unit, slippage):
    if qty > 0.0:
        fill_price = price * (1.0 + slippage)
    else:
        fill_price = price * (1.0 - slippage)
    fee = commission * abs(qty) * fill_price + per_unit * abs(qty)
    return fill_price, fee


@step_helper
def _entry_after(held, qty, fill_price, entry):
    """The average entry price after a fill of ``qty`` at ``fill_price`` on a position ``held`` entered at ``entry``."""
    after = held + qty
    if after == 0.0:
        return np.nan
    if held == 0.0 or (after > 0.0) != (held > 0.0):
        # from flat, or a reversal: the new position is all this fill's
        return fill_price
    if abs(after) > abs(held):
        return (held * entry + qty * fill_price) / after
    return entry
