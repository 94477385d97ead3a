"""Causal per-instrument market estimates the venue keeps for impact models: volatility, volume, and the
permanent impact of the account's own fills.

One float64 array ``est[key, column]`` holds, per instrument (columns below):

- ``VAR_SUM``, ``VAR_WEIGHT``: the exponentially weighted sum of squared log close-to-close returns and the
  sum of its weights; their ratio is the variance per bar. Each bar multiplies both by the decay
  ``0.5 ** (1 / sigma_halflife_bars)`` and adds the new square (and 1). Dividing by the weights (pandas'
  and polars' ``ewm_mean(adjust=True)``) makes the first returns an estimate at once, instead of a mean
  pulled toward a zero start: "use the estimate available" during warm-up.
- ``RANGE_VAR``: the Parkinson variance ``(ln(high/low))² / (4 ln 2)`` of the instrument's first bar with a
  valid range (Parkinson 1980, "The extreme value method for estimating the variance of the rate of
  return", J. Business 53(1)); it stands in for σ² until the first return exists.
- ``LAST_CLOSE``: the last valid close (0.0 before one), for the next return.
- ``ADV_SUM``, ``ADV_WEIGHT``: the same weighting over bar volumes (``adv_halflife_bars``).
- ``OFFSET``: the Almgren–Chriss permanent offset (a signed fraction of price); it fades by the decay
  ``0.5 ** (1 / permanent_halflife_bars)`` once per bar, at the bar's close (before a ``fill: close`` fill,
  after a next-open fill), so between two fills of the instrument it fades once per bar between them.

A close that is not a positive finite number, or a volume that is negative or NaN, is skipped (the
estimate keeps its last value), so a gap in the data never poisons later fills.
"""

import math

import numpy as np

from nodes.contract import step_helper

VAR_SUM, VAR_WEIGHT, RANGE_VAR, LAST_CLOSE, ADV_SUM, ADV_WEIGHT, OFFSET = range(7)
N_COLUMNS = 7
_FOUR_LN2 = 4.0 * math.log(2.0)
_INF = math.inf


def new_estimates(n_keys: int) -> np.ndarray:
    """Empty estimates for ``n_keys`` instruments: nothing seen, no offset."""
    return np.zeros((n_keys, N_COLUMNS))


@step_helper(_nrt=False)
def observe_bar(est, key, high, low, close, volume, sigma_decay, adv_decay, permanent_decay):
    """Update instrument ``key``'s estimates with one bar (at its close), and let its permanent offset fade by
    one bar."""
    est[key, OFFSET] *= permanent_decay
    last = est[key, LAST_CLOSE]
    if close > 0.0 and close < _INF:
        if last > 0.0:
            r = math.log(close / last)
            est[key, VAR_SUM] = sigma_decay * est[key, VAR_SUM] + r * r
            est[key, VAR_WEIGHT] = sigma_decay * est[key, VAR_WEIGHT] + 1.0
        est[key, LAST_CLOSE] = close
    if est[key, RANGE_VAR] == 0.0 and low > 0.0 and high > low and high < _INF:
        spread = math.log(high / low)
        est[key, RANGE_VAR] = spread * spread / _FOUR_LN2
    if volume >= 0.0:
        est[key, ADV_SUM] = adv_decay * est[key, ADV_SUM] + volume
        est[key, ADV_WEIGHT] = adv_decay * est[key, ADV_WEIGHT] + 1.0


@step_helper(_nrt=False)
def sigma_of(est, key):
    """The instrument's volatility per bar: √ of the weighted mean squared return, else the first bar's range
    estimate, else 0.0 (nothing seen)."""
    if est[key, VAR_WEIGHT] > 0.0:
        return math.sqrt(est[key, VAR_SUM] / est[key, VAR_WEIGHT])
    return math.sqrt(est[key, RANGE_VAR])


@step_helper(_nrt=False)
def adv_of(est, key, bar_volume):
    """The instrument's average volume per bar; ``bar_volume`` (the fill's own bar) while none is known yet."""
    if est[key, ADV_WEIGHT] > 0.0:
        adv = est[key, ADV_SUM] / est[key, ADV_WEIGHT]
        if adv > 0.0:
            return adv
    return bar_volume
