"""Volume-share impact: the price moves in proportion to the order's share of the bar's volume, and an order
larger than a cap of that volume fills partially.

Formulas, for an order of ``qty`` units filled in a bar of volume ``V`` at reference price ``p``::

    fillable = min(|qty|, max_participation × V)            (the rest stays pending to the next bar)
    move     = ± p × coef × fillable / V                    (+ for a buy, − for a sell)

so ``impact_bps = coef × participation × 1e4``; at most ``coef × max_participation``. Participation is against
the volume of the bar the fill happens in (the fill's bar, as zipline's ``VolumeShareSlippage``; a next-open
fill is charged against the whole bar it opens). Zipline's model is quadratic (``price_impact ×
participation²``, defaults ``volume_limit = 0.025``, ``price_impact = 0.1``); this one is linear, as the
issue asked: cheaper than zipline's for small orders is not what matters, monotone in size and bounded by
the cap is. The defaults follow zipline's: a 2.5 % participation cap, coef 0.1 (at the cap: 25 bps).

Partial fills: the unfilled rest of an order stays pending and is offered again on the instrument's next
bar (at that bar's open, or its close with ``fill: close``), capped again. A new target replaces whatever is
still pending (the order becomes ``target − position``). A bar without volume (0, negative or missing)
fills nothing: the order waits for a bar that traded.
"""

from nodes.contract import step_helper

DEFAULTS: dict[str, float | None] = {"coef": 0.1, "max_participation": 0.025}


@step_helper
def volume_share_fillable(qty, bar_volume, max_participation):
    """Return the part of ``qty`` that fills in a bar of ``bar_volume``: at most ``max_participation × bar_volume``
    units, same sign as ``qty``; 0.0 when the bar has no volume (0, negative or NaN)."""
    if not bar_volume > 0.0:
        return 0.0
    cap = max_participation * bar_volume
    if abs(qty) <= cap:
        return qty
    if qty > 0.0:
        return cap
    return -cap


@step_helper
def volume_share_move(coef, qty, price, bar_volume):
    """Return the price move against a fill of ``qty`` in a bar of ``bar_volume`` (> 0):
    ``price × coef × |qty| / bar_volume``, signed as the order."""
    fraction = coef * (abs(qty) / bar_volume)
    if qty > 0.0:
        return price * fraction
    # 0.0 - x, never -x: negating a NaN flips its sign bit on cpu (numpy) but not in numba's code, and a NaN
    # price or size must give the same bits on both
    return price * (0.0 - fraction)
