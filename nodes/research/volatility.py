"""Volatility from OHLC bars: close-to-close and the range estimators of Parkinson, Garman–Klass, Rogers–Satchell
and Yang–Zhang, per instrument, rolling or over the whole period."""

import math
from typing import Literal

import polars as pl
from pydantic import Field

from nodes.contract import TABLE, OpParams, TableOp
from nodes.research._table import by_instrument, check_positive, require_columns

Estimator = Literal["close_to_close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang"]

LN2 = math.log(2.0)
# The variance-minimising k depends on alpha; Yang & Zhang (2000) set alpha = 1.34, the value that fits real assets.
YANG_ZHANG_ALPHA = 1.34


def yang_zhang_k(n_bars: int | pl.Expr):
    """Return Yang & Zhang's weight k = (alpha − 1) / (alpha + (n + 1)/(n − 1)), alpha = 1.34, for n bars."""
    return (YANG_ZHANG_ALPHA - 1.0) / (YANG_ZHANG_ALPHA + (n_bars + 1) / (n_bars - 1))


class VolatilityParams(OpParams):
    estimator: Estimator = Field(
        description="close_to_close, parkinson, garman_klass, rogers_satchell or yang_zhang (formulas in the op's docstring)"
    )
    window_bars: int | None = Field(
        None, ge=2,
        description="bars per rolling window (one row per input bar); unset: one estimate per instrument over all its bars",
    )
    bars_per_year: float = Field(
        252.0, gt=0,
        description="bars in a year, to annualise: 252 daily equity bars, 52 weekly, 365 daily crypto, 525600 one-minute crypto",
    )


class Volatility(TableOp):
    """Estimate each instrument's volatility from OHLC bars with one of five estimators, rolling or whole-period.

    The input is a bar table (``open``, ``high``, ``low``, ``close`` besides ``ts_event``, ``ts_recv``,
    ``instrument``): a bar source or ``research.resample``. Per bar t, with O, H, L, C its prices and C' the
    previous bar's close (same instrument), all logarithms natural:

    - o = ln(O/C'), the opening jump; u = ln(H/O), d = ln(L/O), c = ln(C/O); r = ln(C/C').

    Over a window of n bars (variances per bar; sample variances s² use the window mean and divide by n − 1):

    - ``close_to_close``: σ² = s²(r).
    - ``parkinson`` — Parkinson (1980), J. Business 53(1): σ² = 1/(4 n ln 2) Σ (u − d)², i.e. the mean of
      ln(H/L)² / (4 ln 2).
    - ``garman_klass`` — Garman & Klass (1980), J. Business 53(1), the practical form of their best estimator
      (coefficients rounded, the small cross term dropped): σ² = 1/n Σ [½ (u − d)² − (2 ln 2 − 1) c²]. Ignores
      the opening jump o.
    - ``rogers_satchell`` — Rogers & Satchell (1991), Ann. Appl. Probab. 1(4): σ² = 1/n Σ [u (u − c) + d (d − c)].
      Unbiased under any drift; ignores the opening jump.
    - ``yang_zhang`` — Yang & Zhang (2000), J. Business 73(3): σ² = s²(o) + k s²(c) + (1 − k) σ²_RS, with σ²_RS the
      Rogers–Satchell mean over the same bars and k = (α − 1)/(α + (n + 1)/(n − 1)), α = 1.34.

    ``close_to_close`` and ``yang_zhang`` need C', so an instrument's first bar never enters them; every window
    holds n bars whose terms are all defined. The annualised volatility is √(σ² × ``bars_per_year``).

    Modes:

    - ``window_bars`` unset (whole period): one row per instrument with ``ts_event`` = open of its first bar
      used, ``ts_recv`` = close of its last bar, ``estimator``, ``bars`` (n), ``variance`` (per bar) and
      ``volatility`` (annualised).
    - ``window_bars: n`` (rolling): one row per input bar with its ``ts_event``, ``ts_recv``, ``instrument``,
      ``estimator``, ``bars``, ``variance``, ``volatility`` over the n bars ending at that bar: a value uses that
      bar and earlier ones only. Warm-up: NaN until n bars with defined terms are in the window.

    Raises:
        GraphError: the input table lacks open, high, low or close.
        DataQualityError: a price is missing, zero or negative (names the count and the first row).

    Example::

        yang_zhang_21d:
          op: research.volatility
          in: bars
          with: {estimator: yang_zhang, window_bars: 21, bars_per_year: 252}
    """

    name = "research.volatility"
    Params = VolatilityParams
    inputs = {"bars": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: VolatilityParams, tables: dict) -> dict:
        bars = tables["bars"]
        require_columns(cls.name, bars, ["ts_event", "ts_recv", "instrument", "open", "high", "low", "close"])
        bars = by_instrument(bars)
        check_positive(cls.name, bars, ["open", "high", "low", "close"])
        terms = bars.with_columns(_terms(params.estimator))
        if params.window_bars is None:
            out = _whole_period(terms, params)
        else:
            out = _rolling(terms, params)
        return {"out": out}


def _terms(estimator: str) -> list[pl.Expr]:
    """The per-bar terms an estimator averages; null where a term is undefined (no previous close)."""
    # logs of price ratios, as the papers write them: ln C − ln C' rounds differently, which a window of two
    # nearly equal returns turns into a visible difference
    o_, h_, l_, c_ = (pl.col(c) for c in ("open", "high", "low", "close"))
    previous_close = c_.shift(1).over("instrument")
    u, d, c = (h_ / o_).log(), (l_ / o_).log(), (c_ / o_).log()
    hl = (h_ / l_).log()
    rs = u * (u - c) + d * (d - c)
    if estimator == "close_to_close":
        return [(c_ / previous_close).log().alias("_r")]
    if estimator == "parkinson":
        return [(hl**2 / (4.0 * LN2)).alias("_p")]
    if estimator == "garman_klass":
        return [(0.5 * hl**2 - (2.0 * LN2 - 1.0) * c**2).alias("_gk")]
    if estimator == "rogers_satchell":
        return [rs.alias("_rs")]
    # yang_zhang: every term of a bar is left out when its opening jump is undefined, so the three parts
    # always average the same n bars
    defined = previous_close.is_not_null()
    return [
        (o_ / previous_close).log().alias("_o"),
        pl.when(defined).then(c).alias("_c"),
        pl.when(defined).then(rs).alias("_rs"),
    ]


def _variance(estimator: str, n: pl.Expr, mean, var) -> pl.Expr:
    """The estimator's per-bar variance from window aggregates ``mean(col)`` and ``var(col)`` (ddof 1)."""
    if estimator == "close_to_close":
        return var("_r")
    if estimator == "parkinson":
        return mean("_p")
    if estimator == "garman_klass":
        return mean("_gk")
    if estimator == "rogers_satchell":
        return mean("_rs")
    k = yang_zhang_k(n.cast(pl.Float64))
    return var("_o") + k * var("_c") + (1.0 - k) * mean("_rs")


def _first_term(estimator: str) -> str:
    return {"close_to_close": "_r", "parkinson": "_p", "garman_klass": "_gk", "rogers_satchell": "_rs",
            "yang_zhang": "_o"}[estimator]


def _whole_period(terms: pl.DataFrame, params: VolatilityParams) -> pl.DataFrame:
    used = terms.filter(pl.col(_first_term(params.estimator)).is_not_null())
    n = pl.len()
    variance = _variance(params.estimator, n, lambda c: pl.col(c).mean(), lambda c: pl.col(c).var(ddof=1))
    return (
        used.group_by("instrument", maintain_order=True)
        .agg(
            pl.col("ts_event").first(),
            pl.col("ts_recv").last(),
            n.cast(pl.Int64).alias("bars"),
            variance.alias("variance"),
        )
        .select(
            "ts_event", "ts_recv", "instrument", pl.lit(params.estimator).alias("estimator"), "bars",
            pl.col("variance").fill_null(float("nan")),
            (pl.col("variance") * params.bars_per_year).sqrt().fill_null(float("nan")).alias("volatility"),
        )
    )


def _rolling(terms: pl.DataFrame, params: VolatilityParams) -> pl.DataFrame:
    n = params.window_bars
    variance = _variance(
        params.estimator,
        pl.lit(n),
        lambda c: pl.col(c).rolling_mean(n).over("instrument"),
        lambda c: pl.col(c).rolling_var(n, ddof=1).over("instrument"),
    )
    return terms.select(
        "ts_event", "ts_recv", "instrument",
        pl.lit(params.estimator).alias("estimator"),
        pl.lit(n, dtype=pl.Int64).alias("bars"),
        variance.fill_null(float("nan")).alias("variance"),
        (variance * params.bars_per_year).sqrt().fill_null(float("nan")).alias("volatility"),
    )
