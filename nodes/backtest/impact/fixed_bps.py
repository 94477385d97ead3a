"""Fixed impact: every fill's price moves against the order by a constant number of basis points.

Formula, for an order of ``qty`` units at reference price ``p`` (the bar's open, or its close with
``fill: close``)::

    move = ± p × bps / 1e4          (+ for a buy, − for a sell)

It is added on top of the venue's ``slippage_bps`` (which is a cost for spread and slippage; this one is a
cost for moving the market), so ``fill_price = p × (1 ± slippage_bps/1e4) ± p × bps/1e4``. It does not depend
on size: it is the plain first model (as zipline's ``FixedBasisPointsSlippage``), useful to charge a
less liquid instrument more than the others without a volume model.
"""

from nodes.contract import step_helper

# Params of this model as written under ``impact:`` and their defaults.
DEFAULTS: dict[str, float | None] = {"bps": None}  # None: required


@step_helper
def fixed_bps_move(fraction, qty, price):
    """Return the price move against an order of ``qty`` at ``price``: ``price × fraction``, signed as the order.

    ``fraction`` is ``bps / 1e4``. A buy (``qty > 0``) pays more, a sell receives less.
    """
    # the sign goes on the constant (finite), never on a result that may be NaN: negating a NaN flips its sign
    # bit on cpu (numpy) but not in numba's code, and cpu/numba parity is bit for bit
    if qty > 0.0:
        return price * fraction
    return price * -fraction
