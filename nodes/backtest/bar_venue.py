"""A simulated venue for bar data: one account, many instruments, market orders toward a target position."""

from typing import Literal

import numpy as np
from pydantic import Field

from nodes.backtest.impact import (
    ImpactParams,
    NONE,
    R_ADV_DECAY,
    R_PERMANENT_DECAY,
    R_SIGMA_DECAY,
    fillable_qty,
    impact_price,
    instrument_impact,
    uses_estimates,
)
from nodes.backtest.impact.estimates import OFFSET, adv_of, new_estimates, observe_bar, sigma_of
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
    impact: ImpactParams = Field(
        default_factory=ImpactParams,
        description="market impact model of every instrument: {model: none|fixed_bps|volume_share|square_root|"
        "almgren_chriss, ...that model's params}; none (default) changes nothing",
    )
    impact_by_instrument: dict[str, ImpactParams] = Field(
        default_factory=dict,
        description="impact models by instrument name, replacing `impact` for the instruments they name",
    )


class BarVenue(StreamOp):
    """Fill market orders that move each instrument's position to its ``target``, and keep the account.

    On every bar of instrument k: first a pending order of k fills at this bar's open (``fill: next_open``),
    then the bar's close marks k, then a new target (not NaN) makes the order ``target - position`` units
    (replacing whatever was still pending), which fills at the next bar's open of k, or at once at this
    close with ``fill: close``. A buy pays ``price × (1 + slippage_bps/1e4)``, a sell receives
    ``price × (1 - slippage_bps/1e4)``; commission = commission × |qty| × fill price + commission_per_unit
    × |qty|. Long, short and flat are all allowed; cash may go negative (no margin model here).

    Market impact (``impact``, per instrument ``impact_by_instrument``; ``nodes.backtest.impact``) adds a
    move against the order to that price: ``fill_price = price × (1 ± slippage_bps/1e4) + move``, from a
    fixed number of bps, the fill's share of the bar's volume, the square-root law (σ and ADV estimated
    causally per instrument inside the venue) or Almgren–Chriss temporary and permanent impact. With
    ``volume_share`` an order larger than ``max_participation`` × the bar's volume fills partially and the
    rest stays pending to the instrument's next bar; with the volume models (``volume_share``,
    ``square_root``, ``almgren_chriss``) a bar without volume fills nothing. ``model: none`` (the default)
    leaves every number exactly as without impact. The cost of impact is in ``fill_price`` (as slippage's
    is) and so in cash, equity, ``entry_price`` and every trade; fills at the end of the data
    (``close_at_end``) pay commission and slippage only.

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

    With impact (square-root law for every instrument, a flat 3 bps more for KO)::

        sim:
          op: backtest.bar_venue
          in: {market: bars, target: target}
          with:
            cash: 100000
            commission: 0.001
            impact: {model: square_root, y: 0.8}
            impact_by_instrument: {KO: {model: fixed_bps, bps: 3}}
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

    @classmethod
    def instrument_constants(cls, params, instruments):
        """Return the per-instrument impact models: ``(model codes int64[n], model numbers float64[n, N_ROW])``,
        indexed by instrument key; appended to ``constants`` as ``c[5]``, ``c[6]``.

        Raises
        ------
        ValueError: ``impact_by_instrument`` names an instrument that is not one of ``instruments``.
        """
        return instrument_impact(params.impact, params.impact_by_instrument, list(instruments))

    @staticmethod
    def initial_outputs(c):
        return {"equity": c[0], "cash": c[0]}

    @staticmethod
    def init(c, n_keys):
        # cash, value of all positions at their last close, then per instrument: position, pending order, last
        # close, average entry price (NaN when flat), the impact models' estimates (impact/estimates.py) and
        # their numbers. The numbers are constants (c[6]) but are read from a copy in the state: a compiled
        # kernel reads a state array as it is, while a float array taken out of c inside a branch costs a
        # reference count increment and decrement on every event (the venue alone: 240 → 46 M events/s)
        return (c[0], 0.0, np.zeros(n_keys), np.zeros(n_keys), np.zeros(n_keys), np.full(n_keys, np.nan),
                new_estimates(n_keys), c[6].copy())

    @staticmethod
    def step(c, s, key, open_, high, low, close, volume, target):
        cash, holdings, position, pending, marks, entry, est, impact = s
        commission, per_unit, slippage, fill_on_close = c[1], c[2], c[3], c[4]
        model = c[5][key]
        fill_qty = 0.0
        fill_price = np.nan
        fee = 0.0
        # holdings = Σ position × last close, kept up to date instead of summed over instruments every event
        holdings += position[key] * (close - marks[key])
        marks[key] = close
        if not fill_on_close and pending[key] != 0.0:
            # what was ordered at an earlier close fills at this open, as far as the bar's volume allows
            qty, price, cost = _trade(model, impact, est, position, pending, entry, key, open_, volume, commission,
                                      per_unit, slippage)
            if qty != 0.0:
                cash -= qty * price + cost
                holdings += qty * close
                fill_qty, fill_price, fee = qty, price, cost
        if uses_estimates(model):
            # after a next-open fill (it used the estimates as of the previous close), before a close fill
            observe_bar(est, key, high, low, close, volume, impact[key, R_SIGMA_DECAY], impact[key, R_ADV_DECAY],
                        impact[key, R_PERMANENT_DECAY])
        if target == target:
            # a new target replaces whatever is still pending (the rest of a partial fill)
            pending[key] = target - position[key]
        if fill_on_close and pending[key] != 0.0:
            qty, price, cost = _trade(model, impact, est, position, pending, entry, key, close, volume, commission,
                                      per_unit, slippage)
            if qty != 0.0:
                cash -= qty * price + cost
                holdings += qty * close
                fill_qty, fill_price, fee = qty, price, cost
        equity = cash + holdings
        state = (cash, holdings, position, pending, marks, entry, est, impact)
        return state, equity, cash, position[key], fill_qty, fill_price, fee, close, entry[key]

    @classmethod
    def summarize(cls, params, recorded, logs):
        """Derive trades, the equity curve and stats from the recorded outputs (see ``nodes.backtest.result``).

        ``logs`` is empty: the bar venue's record is its per-event outputs.
        """
        from nodes.backtest.result import summarize_bar_backtest

        return summarize_bar_backtest(params, recorded)


@step_helper(_nrt=False)
def _trade(model, impact, est, position, pending, entry, key, price, volume, commission, per_unit, slippage):
    """Fill what the bar's volume allows of instrument ``key``'s pending order at reference ``price``; update its
    position, pending order and entry price; return ``(qty, fill price, commission)``, qty 0.0 when nothing
    filled."""
    qty = fillable_qty(model, impact, key, pending[key], volume)
    if qty == 0.0:
        return 0.0, np.nan, 0.0
    fill_price, fee = _fill(model, impact, est, key, qty, price, volume, commission, per_unit, slippage)
    entry[key] = _entry_after(position[key], qty, fill_price, entry[key])
    position[key] += qty
    pending[key] -= qty
    return qty, fill_price, fee


@step_helper(_nrt=False)
def _fill(model, impact, est, key, qty, price, volume, commission, per_unit, slippage):
    """Return ``(fill price, commission)`` of a fill of ``qty`` at reference ``price``, impact included; updates
    the instrument's permanent impact offset in ``est``."""
    if model == NONE:
        return _fill_terms(qty, price, commission, per_unit, slippage)
    sigma = 0.0
    adv = 1.0
    if uses_estimates(model):
        sigma = sigma_of(est, key)
        adv = adv_of(est, key, volume)
    move, offset = impact_price(model, impact, key, qty, price, volume, sigma, adv, est[key, OFFSET])
    est[key, OFFSET] = offset
    slipped, _ = _fill_terms(qty, price, commission, per_unit, slippage)
    fill_price = slipped + move
    return fill_price, commission * abs(qty) * fill_price + per_unit * abs(qty)


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
