"""Feature drift against a reference window: the population stability index and the two-sample KS statistic."""

from pathlib import Path
import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, I64, OpParams, StreamOp, step_helper

C_N_REF, C_BINS, C_WINDOW, C_EPSILON, C_EVERY, C_GIVEN, C_REF, C_EDGES, C_REF_FRACTION = range(9)


class DriftParams(OpParams):
    window: int = Field(200, ge=2, le=1_000_000, description="the recent values compared with the reference, in "
                        "events of the instrument (NaN inputs are skipped)")
    bins: int = Field(10, ge=2, le=1_000, description="PSI bins: equal-frequency bins of the reference")
    reference_events: int = Field(500, ge=2, le=1_000_000, description="the first this many values of the stream "
                                  "form the reference (ignored when `reference` is given)")
    reference: list[float] | None = Field(None, description="a reference sample given in the spec (values of the "
                                          "training window), instead of the stream's first values")
    epsilon: float = Field(1e-4, gt=0, lt=1, description="floor of a bin's fraction in the PSI, so an empty bin "
                           "gives a large finite term rather than infinity")
    every: int = Field(1, ge=1, le=1_000_000, description="compute psi and ks on every this many values (held in "
                       "between): the exact KS costs O(window + reference) per computation")
    input_type: Literal["f64", "i64"] = Field("f64", description="the feature's port type: f64 (a model "
                                              "feature) or i64 (a tick-path value such as a book size)")

    @model_validator(mode="after")
    def _reference(self):
        if self.reference is not None:
            if len(self.reference) < self.bins:
                raise ValueError(f"reference has {len(self.reference)} values; it needs at least bins "
                                 f"({self.bins})")
            if not all(math.isfinite(v) for v in self.reference):
                raise ValueError("reference values must be finite numbers")
        return self


class Drift(StreamOp):
    """Measure how far a feature's recent values drift from a reference: PSI and the KS statistic, per instrument.

    The reference is the stream's first ``reference_events`` values (the "training window" as the feature
    first ran), or a sample written in the spec (``reference``). Bins are equal-frequency bins of the reference
    (``bins`` − 1 inner edges at the reference's quantiles ``sorted[⌊b·N/bins⌋]``; a value v falls in the bin
    of the edges ≤ v). Over the last ``window`` values:

    - ``psi`` = Σ_b (w_b − r_b) · ln(w_b / r_b), w_b and r_b the window's and the reference's fraction in bin b,
      each floored at ``epsilon`` (rule of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 large drift);
    - ``ks`` = sup_x |F_window(x) − F_reference(x)|, the exact two-sample Kolmogorov–Smirnov statistic.

    Both are NaN until the reference and a full window exist, are computed on the first full window and then
    on every ``every``-th value, and hold their last value in between and over NaN inputs. Causal and
    prefix-invariant: each output uses values up to its own event. Cost: O(log window + window) per value to
    keep a sorted copy of the window, O(window + reference) per computation for the exact KS. Feed ``psi`` or ``ks`` to
    ``risk.circuit_breaker``'s ``drift`` input to trip on ``max_drift``.

    FPGA: no (not ported).

    Example::

        drift: {op: risk.drift, in: md.size,
                with: {input_type: i64, reference_events: 5000, bins: 10, window: 2000, every: 100}}
    """

    name = "risk.drift"
    Params = DriftParams
    inputs = {"x": F64}
    outputs = {"psi": F64, "ks": F64}

    @classmethod
    def specialize(cls, params: DriftParams, base_dir: Path | None = None) -> type["Drift"]:
        """The op for an int64 feature (``input_type: i64``) or this one."""
        return DriftI64 if params.input_type == "i64" else cls

    @staticmethod
    def constants(params):
        given = params.reference is not None
        n_ref = len(params.reference) if given else params.reference_events
        ref = np.sort(np.asarray(params.reference, np.float64)) if given else np.zeros(n_ref)
        edges = np.zeros(params.bins - 1)
        ref_fraction = np.zeros(params.bins)
        if given:
            reference_bins(ref, edges, ref_fraction)
        return (n_ref, params.bins, params.window, float(params.epsilon), params.every, int(given), ref, edges,
                ref_fraction)

    @staticmethod
    def init(c, n_keys):
        n_ref, bins, window = c[C_N_REF], c[C_BINS], c[C_WINDOW]
        # filled: values of the reference so far (n_ref once it is complete), values in the window, ring position,
        # values since the window was first full (the statistics are computed on every c[C_EVERY]-th)
        filled = n_ref if c[C_GIVEN] != 0 else 0
        return (filled, 0, 0, 0, np.nan, np.nan, c[C_REF].copy(), c[C_EDGES].copy(), c[C_REF_FRACTION].copy(),
                np.zeros(window), np.zeros(window), np.zeros(bins, np.int64))

    @staticmethod
    def step(c, s, x):
        filled, n_window, pos, since, psi, ks, ref, edges, ref_fraction, ring, window_sorted, window_counts = s
        value = float(x)
        if value != value:
            return s, psi, ks
        n_ref = ref.shape[0]
        if filled < n_ref:
            ref[filled] = value
            filled += 1
            if filled == n_ref:
                ref.sort()
                reference_bins(ref, edges, ref_fraction)
            return (filled, n_window, pos, since, psi, ks, ref, edges, ref_fraction, ring, window_sorted,
                    window_counts), np.nan, np.nan
        window = ring.shape[0]
        if n_window == window:
            old = ring[pos]
            remove_sorted(window_sorted, n_window, old)
            window_counts[bin_of(edges, old)] -= 1
            n_window -= 1
        ring[pos] = value
        pos = (pos + 1) % window
        insert_sorted(window_sorted, n_window, value)
        window_counts[bin_of(edges, value)] += 1
        n_window += 1
        if n_window == window:
            if since % c[C_EVERY] == 0:
                psi = population_stability(window_counts, n_window, ref_fraction, c[C_EPSILON])
                ks = ks_statistic(ref, window_sorted, n_window)
            since += 1
        state = (filled, n_window, pos, since, psi, ks, ref, edges, ref_fraction, ring, window_sorted, window_counts)
        return state, psi, ks


class DriftI64(Drift):
    """``risk.drift`` over an int64 feature (what ``specialize`` returns for ``input_type: i64``)."""

    __doc__ = Drift.__doc__
    inputs = {"x": I64}


@step_helper
def reference_bins(ref, edges, ref_fraction):
    """Fill the inner edges (the sorted reference's quantiles) and the reference's fraction per bin."""
    n = ref.shape[0]
    bins = ref_fraction.shape[0]
    for b in range(1, bins):
        edges[b - 1] = ref[(b * n) // bins]
    for b in range(bins):
        ref_fraction[b] = 0.0
    for i in range(n):
        ref_fraction[bin_of(edges, ref[i])] += 1.0
    for b in range(bins):
        ref_fraction[b] = ref_fraction[b] / n


@step_helper
def bin_of(edges, value):
    """The number of edges <= value (binary search): the value's bin."""
    lo, hi = 0, edges.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if edges[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@step_helper
def insert_sorted(values, n, value):
    """Insert ``value`` into the sorted ``values[:n]`` (room for one more), after its equals."""
    i = n
    while i > 0 and values[i - 1] > value:
        values[i] = values[i - 1]
        i -= 1
    values[i] = value


@step_helper
def remove_sorted(values, n, value):
    """Remove one ``value`` from the sorted ``values[:n]``."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    for i in range(lo, n - 1):
        values[i] = values[i + 1]


@step_helper
def population_stability(counts, n, ref_fraction, epsilon):
    total = 0.0
    for b in range(counts.shape[0]):
        w = max(counts[b] / n, epsilon)
        r = max(ref_fraction[b], epsilon)
        total += (w - r) * math.log(w / r)
    return total


@step_helper
def ks_statistic(ref, window_sorted, n_window):
    """sup |F_window − F_reference| over the merged sorted samples (ties advance both sides together)."""
    n_ref = ref.shape[0]
    i, j = 0, 0
    d = 0.0
    while i < n_ref and j < n_window:
        v = min(ref[i], window_sorted[j])
        while i < n_ref and ref[i] <= v:
            i += 1
        while j < n_window and window_sorted[j] <= v:
            j += 1
        d = max(d, abs(i / n_ref - j / n_window))
    return d
