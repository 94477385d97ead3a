"""Square-root impact: the price moves by a multiple of the daily volatility times the square root of the
order's share of the average daily volume.

Formula, for a fill of ``qty`` units at reference price ``p``::

    move = ± p × Y × σ × √(|qty| / ADV)           (+ for a buy, − for a sell)

- ``σ``: the instrument's volatility per bar (standard deviation of log close-to-close returns), estimated
  causally inside the venue (``nodes.backtest.impact.estimates``): an exponentially weighted mean of squared
  log returns with half-life ``sigma_halflife_bars``, normalized by its weights (so the first returns give a
  usable estimate at once). Before the first return exists, the first bar's Parkinson range variance
  ``(ln(high/low))² / (4 ln 2)`` stands in.
- ``ADV``: the instrument's volume per bar, an exponentially weighted mean of bar volumes with half-life
  ``adv_halflife_bars``, normalized the same way.
- Both are as of the fill: a next-open fill uses the estimates up to the previous bar's close, a ``fill:
  close`` fill those including its own bar.
- Per bar, not per day: with daily bars σ is the daily volatility and ADV the average daily volume; with
  other bars both are per bar and the product is the same (σ scales as √bars, ADV as bars, so
  σ √(Q/ADV) does not depend on the bar length), given activity spread evenly.

``Y`` is of order one in the empirical literature (0.5–1 is the usual range): the "square-root law" of
market impact (Torre 1997, BARRA Market Impact Model Handbook; Almgren, Thum, Hauptmann & Li 2005, "Direct
estimation of equity market impact", Risk; Tóth et al. 2011, "Anomalous price impact and the critical nature
of liquidity in financial markets", Phys. Rev. X 1, 021006; Bouchaud, Bonart, Donier & Gould 2018, "Trades,
Quotes and Prices", ch. 12). The law is stated for metaorders executed over a day; charging it on one
bar's fill is the usual backtest simplification.

A bar without volume (0, negative or missing) fills nothing (the order waits); while no ADV is known yet
(no earlier bar with volume) the fill's own bar volume stands in.
"""

import math

from nodes.contract import step_helper

DEFAULTS: dict[str, float | None] = {"y": 1.0, "sigma_halflife_bars": 20.0, "adv_halflife_bars": 20.0}


@step_helper
def square_root_move(y, qty, price, sigma, adv):
    """Return the price move against a fill of ``qty``: ``price × y × sigma × √(|qty| / adv)``, signed as the order
    (``adv`` > 0, ``sigma`` ≥ 0)."""
    fraction = y * sigma * math.sqrt(abs(qty) / adv)
    if qty > 0.0:
        return price * fraction
    # 0.0 - x, never -x: negating a NaN flips its sign bit on cpu (numpy) but not in numba's code, and a NaN
    # price or size must give the same bits on both
    return price * (0.0 - fraction)
