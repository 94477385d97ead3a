"""Autocorrelation of returns and of squared returns per instrument, with the Ljung–Box portmanteau test."""

import numpy as np
import polars as pl
from pydantic import Field

from nodes.contract import TABLE, OpParams, TableOp
from nodes.research._chi2 import chi2_sf
from nodes.research._table import ReturnKind, returns_of


class AutocorrelationParams(OpParams):
    column: str = Field("close", description="the price column whose returns are examined")
    returns: ReturnKind = Field("log", description="log: ln(p_t/p_{t-1}); simple: p_t/p_{t-1} − 1")
    max_lag: int = Field(10, ge=1, le=1000, description="lags 1..max_lag, in rows (bars) of the instrument")


class Autocorrelation(TableOp):
    """Measure each instrument's return autocorrelation at lags 1..N, of returns and squared returns, with Ljung–Box Q.

    For a series x_1..x_n (the returns r, or r² for volatility clustering) with mean x̄, the sample
    autocorrelation at lag k is the Box–Jenkins estimator (as ``statsmodels.tsa.stattools.acf``)::

        ρ_k = Σ_{t=k+1..n} (x_t − x̄)(x_{t−k} − x̄) / Σ_{t=1..n} (x_t − x̄)²

    and the Ljung–Box statistic up to lag h — Ljung & Box (1978), Biometrika 65(2) — is
    Q(h) = n (n + 2) Σ_{k=1..h} ρ_k² / (n − k), with p-value P(χ²(h) > Q(h)) (no degrees of freedom removed
    for a fitted model). Lags count rows of the instrument: calendar gaps between bars are not lags.

    One row per instrument and lag: ``instrument``, ``lag``, ``observations`` (n), ``acf``, ``ljung_box``,
    ``ljung_box_p`` (returns) and ``acf_squared``, ``ljung_box_squared``, ``ljung_box_squared_p`` (squared
    returns). Lags k >= n give NaN (and so do the Q values from there on).

    Raises:
        GraphError: the input table lacks ``column``.
        DataQualityError: ``returns: log`` and a value of ``column`` is zero or negative.

    Example::

        acf:
          op: research.autocorrelation
          in: bars
          with: {column: close, max_lag: 10}
    """

    name = "research.autocorrelation"
    Params = AutocorrelationParams
    inputs = {"table": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: AutocorrelationParams, tables: dict) -> dict:
        returns = returns_of(cls.name, tables["table"], params.column, params.returns)
        lags = range(1, params.max_lag + 1)
        centred = returns.select(
            "instrument",
            (pl.col("ret") - pl.col("ret").mean().over("instrument")).alias("x"),
            (pl.col("ret") ** 2 - (pl.col("ret") ** 2).mean().over("instrument")).alias("x2"),
        )

        def acf(name: str, k: int) -> pl.Expr:
            # shift in a group_by context stays inside the instrument
            return ((pl.col(name) * pl.col(name).shift(k)).sum() / (pl.col(name) ** 2).sum()).alias(f"{name}_{k}")

        wide = centred.group_by("instrument", maintain_order=True).agg(
            pl.len().cast(pl.Int64).alias("observations"),
            *[acf("x", k) for k in lags],
            *[acf("x2", k) for k in lags],
        )
        long = (
            wide.unpivot(index=["instrument", "observations"], variable_name="_name", value_name="_acf")
            .with_columns(
                pl.col("_name").str.extract(r"^(x2?)_").alias("_series"),
                pl.col("_name").str.extract(r"_(\d+)$").cast(pl.Int64).alias("lag"),
            )
            .pivot("_series", index=["instrument", "observations", "lag"], values="_acf")
            .sort(pl.col("instrument").cast(pl.Enum(wide["instrument"].to_list())), "lag")
        )
        n = pl.col("observations").cast(pl.Float64)
        defined = pl.col("lag") < pl.col("observations")

        def q(name: str) -> pl.Expr:
            term = pl.when(defined).then(pl.col(name) ** 2 / (n - pl.col("lag"))).otherwise(float("nan"))
            return (n * (n + 2.0) * term.cum_sum().over("instrument")).alias(f"q_{name}")

        long = long.with_columns(
            pl.when(defined).then(pl.col("x")).otherwise(float("nan")).alias("x"),
            pl.when(defined).then(pl.col("x2")).otherwise(float("nan")).alias("x2"),
        ).with_columns(q("x"), q("x2"))
        p_returns = chi2_sf(long["q_x"].to_numpy(), long["lag"].to_numpy())
        p_squared = chi2_sf(long["q_x2"].to_numpy(), long["lag"].to_numpy())
        out = long.select(
            "instrument", "lag", "observations",
            pl.col("x").fill_null(np.nan).alias("acf"),
            pl.col("q_x").fill_null(np.nan).alias("ljung_box"),
            pl.Series("ljung_box_p", p_returns),
            pl.col("x2").fill_null(np.nan).alias("acf_squared"),
            pl.col("q_x2").fill_null(np.nan).alias("ljung_box_squared"),
            pl.Series("ljung_box_squared_p", p_squared),
        )
        return {"out": out}
