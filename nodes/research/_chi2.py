"""The chi-square survival function for integer degrees of freedom, without scipy.

P(X > x) for X ~ χ²(k) is the regularised upper incomplete gamma Q(k/2, x/2), which has closed forms
(Abramowitz & Stegun 26.4.4–26.4.5), with y = x/2:

- k = 2m:     Q = e^(−y) Σ_{j<m} y^j / j!
- k = 2m + 1: Q = erfc(√y) + e^(−y) Σ_{j<m} y^(j+½) / Γ(j + 3/2)

Terms are summed in log space, so large x underflows cleanly to 0 instead of overflowing.
"""

import math

import numpy as np


def chi2_sf(x, dof) -> np.ndarray:
    """Return P(χ²(dof) > x) elementwise, shaped like ``x``; NaN where x is NaN, 1 where x <= 0.

    ``dof`` holds integers >= 1 (broadcast against ``x``); raises ``ValueError`` otherwise.
    """
    shape = np.shape(x)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64)).ravel()
    dof = np.broadcast_to(np.asarray(dof, dtype=np.int64), shape).ravel()
    if dof.size and dof.min() < 1:
        raise ValueError(f"chi2_sf: degrees of freedom must be >= 1, got {int(dof.min())}")
    positive = np.isfinite(x) & (x > 0)
    y = np.where(positive, x / 2.0, 1.0)
    odd = dof % 2 == 1
    half = dof // 2
    j = np.arange(int(half.max()) if half.size else 0, dtype=np.float64)
    power = j[None, :] + np.where(odd, 0.5, 0.0)[:, None]
    log_gamma = np.vectorize(math.lgamma, otypes=[np.float64])(power + 1.0)
    log_terms = -y[:, None] + power * np.log(y)[:, None] - log_gamma
    series = np.where(j[None, :] < half[:, None], np.exp(log_terms), 0.0).sum(axis=1)
    # erfc has no numpy ufunc; it runs once per statistic (a handful per table), never per data row
    erfc = np.array([math.erfc(v) for v in np.sqrt(y)], dtype=np.float64)
    sf = np.where(odd, erfc, 0.0) + series
    sf = np.where(positive, np.clip(sf, 0.0, 1.0), np.where(np.isnan(x), np.nan, 1.0))
    return sf.reshape(shape)
