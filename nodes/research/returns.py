"""Return distribution statistics per instrument: moments, extremes, quantiles and the Jarque–Bera test."""

import numpy as np
import polars as pl
from pydantic import Field, field_validator

from nodes.contract import TABLE, OpParams, TableOp
from nodes.research._table import ReturnKind, returns_of

DEFAULT_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def quantile_column(q: float) -> str:
    """The output column of quantile ``q``: 0.05 → ``q5``, 0.5 → ``q50``, 0.025 → ``q2_5``."""
    return "q" + f"{q * 100:.10g}".replace(".", "_")


class ReturnStatsParams(OpParams):
    column: str = Field("close", description="the price column whose returns are described (e.g. close, out)")
    returns: ReturnKind = Field("log", description="log: ln(p_t/p_{t-1}); simple: p_t/p_{t-1} − 1")
    quantiles: tuple[float, ...] = Field(
        DEFAULT_QUANTILES, description="quantiles to report, each in (0, 1), linear interpolation (numpy's default)"
    )

    @field_validator("quantiles")
    @classmethod
    def _in_unit_interval(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [q for q in value if not 0.0 < q < 1.0]
        if bad:
            raise ValueError(f"quantiles must lie strictly between 0 and 1; got {bad}")
        if len({quantile_column(q) for q in value}) != len(value):
            raise ValueError(f"quantiles must be distinct; got {list(value)}")
        return value


class ReturnStats(TableOp):
    """Describe each instrument's return distribution: moments, extremes, quantiles and Jarque–Bera normality.

    Returns are taken between consecutive rows of the instrument (``returns_of``: rows where ``column`` is NaN,
    an indicator's warm-up, are skipped). With n returns r, mean r̄ and central moments m_k = 1/n Σ (r − r̄)^k:

    - ``count`` n, ``mean`` r̄, ``std`` the sample deviation √(Σ (r − r̄)² / (n − 1)), ``min``, ``max``;
    - ``skew`` = m3 / m2^(3/2) and ``excess_kurtosis`` = m4 / m2² − 3 (moment estimators, no small-sample
      correction: the ones the Jarque–Bera statistic is built on);
    - quantiles ``q1``, ``q5``, … (column names from ``quantile_column``), linear interpolation between order
      statistics (numpy's default);
    - ``jarque_bera`` = n/6 (S² + K²/4) with S the skew and K the excess kurtosis — Jarque & Bera (1980),
      Economics Letters 6(3) — and ``jarque_bera_p`` = P(χ²(2) > JB) = exp(−JB/2), its asymptotic p-value.

    One row per instrument, first appearance order, with ``ts_event`` of its first row and ``ts_recv`` of its last.
    Statistics that need more returns than there are are NaN.

    Raises:
        GraphError: the input table lacks ``column``.
        DataQualityError: ``returns: log`` and a value of ``column`` is zero or negative.

    Example::

        distribution:
          op: research.return_stats
          in: bars
          with: {column: close, returns: log, quantiles: [0.01, 0.05, 0.5, 0.95, 0.99]}
    """

    name = "research.return_stats"
    Params = ReturnStatsParams
    inputs = {"table": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: ReturnStatsParams, tables: dict) -> dict:
        table = tables["table"]
        returns = returns_of(cls.name, table, params.column, params.returns)
        r = pl.col("ret")
        span = (
            table.group_by("instrument", maintain_order=True)
            .agg(pl.col("ts_event").min(), pl.col("ts_recv").max())
        )
        stats = returns.group_by("instrument", maintain_order=True).agg(
            pl.len().cast(pl.Int64).alias("count"),
            r.mean().alias("mean"),
            r.std(ddof=1).alias("std"),
            r.skew(bias=True).alias("skew"),
            r.kurtosis(fisher=True, bias=True).alias("excess_kurtosis"),
            r.min().alias("min"),
            r.max().alias("max"),
            *[r.quantile(q, interpolation="linear").alias(quantile_column(q)) for q in params.quantiles],
        )
        jarque_bera = (
            pl.col("count") / 6.0 * (pl.col("skew") ** 2 + pl.col("excess_kurtosis") ** 2 / 4.0)
        ).alias("jarque_bera")
        out = (
            span.join(stats, on="instrument", how="left", maintain_order="left")
            .with_columns(pl.col("count").fill_null(0))
            .with_columns(jarque_bera)
            .with_columns((-pl.col("jarque_bera") / 2.0).exp().alias("jarque_bera_p"))
        )
        floats = [c for c, t in out.schema.items() if t == pl.Float64]
        out = out.with_columns(pl.col(floats).fill_null(np.nan))
        return {"out": out.select("ts_event", "ts_recv", "instrument", *[c for c in out.columns if c not in
                                                                          ("ts_event", "ts_recv", "instrument")])}

