"""Almgren–Chriss impact: a temporary part paid on the fill and a permanent part that shifts the
instrument's later fill prices.

Almgren & Chriss (2000), "Optimal execution of portfolio transactions", Journal of Risk 3(2), 5–39, with
linear impact functions: temporary ``h(v) = η v`` (a price concession on this trade only) and permanent
``g(v) = γ v`` (a lasting move of the price). Here both are fractions of the reference price ``p`` (the bar's
open, or its close with ``fill: close``), and for a fill of ``qty`` units::

    temporary = η × |qty| / V                  (V: the volume of the fill's bar)
    own       = γ × qty / ADV                  (signed: a buy pushes the price up, a sell down)
    move      = p × (± temporary + offset + own / 2)
    offset   ← offset + own                     after the fill

``offset`` is the instrument's accumulated permanent impact of the account's own earlier fills (a signed
fraction of price, kept per instrument by the venue). A fill pays what earlier fills left plus half of its
own: the average price while it moves the market, which is the ``½ γ X²`` permanent cost of the continuous
model. With it, a round trip's permanent parts cancel (buy ``q`` pays ``+γq/2``, selling it back receives
``+γq − γq/2``), the no-quasi-arbitrage property linear permanent impact has (Huberman & Stanzl 2004,
"Price manipulation and quasi-arbitrage", Econometrica 72(4)). Without the half a round trip would earn
``γ q²`` from its own footprint.

Decay: with ``permanent_halflife_bars`` > 0 the offset halves every that many bars of the instrument,
applied once per bar at its close (exponential resilience, as in Obizhaeva & Wang 2013, "Optimal trading
strategy and supply/demand dynamics", J. Financial Markets 16(1)); 0 keeps it for ever (Almgren–Chriss's permanent impact). The
offset moves only this account's fill prices: the recorded bars, the marks and equity are the market's
history and stay as they were.

``ADV``: exponentially weighted mean of bar volumes (``adv_halflife_bars``), as of the fill (see
``nodes.backtest.impact.square_root``). A bar without volume (0, negative or missing) fills nothing: the
order waits for a bar that traded.
"""

from nodes.contract import step_helper

# eta and gamma depend on the instrument and the market: no default, the spec must say
DEFAULTS: dict[str, float | None] = {
    "eta": None, "gamma": None, "adv_halflife_bars": 20.0, "permanent_halflife_bars": 0.0
}


@step_helper
def almgren_chriss_move(eta, gamma, qty, price, bar_volume, adv, offset):
    """Return ``(move, offset after the fill)`` for a fill of ``qty`` in a bar of ``bar_volume`` (> 0), with
    ``adv`` > 0 and the instrument's permanent ``offset`` before the fill."""
    temporary = eta * (abs(qty) / bar_volume)
    own = gamma * (qty / adv)
    if qty < 0.0:
        temporary = 0.0 - temporary  # not -x: see volume_share_move (NaN sign bits on cpu vs numba)
    move = price * (temporary + offset + 0.5 * own)
    return move, offset + own
