"""Turn a bar venue's recorded outputs into what a quant reads: trades, the equity curve and stats."""

from dataclasses import dataclass
from typing import Any

import polars as pl

from nodes.backtest.stats import compute_stats
from nodes.backtest.trades import trades_from_fills


@dataclass
class BacktestResult:
    """Trades (one row per round trip), the equity curve (one row per distinct ts_recv) and the stats."""

    trades: pl.DataFrame
    equity: pl.DataFrame
    stats: dict[str, Any]


def summarize_bar_backtest(params, recorded: pl.DataFrame) -> BacktestResult:
    """Pair fills into trades, close what is open at the end when asked, and compute stats.

    Closing at the end is a trade at each instrument's last close; its commission and slippage lower the last
    point of the equity curve, so the curve, the trades and ``Equity Final`` agree.
    """
    trades, end_cost = trades_from_fills(
        recorded,
        fill_at="close" if params.fill == "close" else "next_open",
        close_at_end=params.close_at_end,
        commission=params.commission,
        commission_per_unit=params.commission_per_unit,
        slippage_bps=params.slippage_bps,
    )
    # several instruments share a timestamp: the account is known after the last of them
    equity = (
        recorded.group_by("ts_recv", maintain_order=True)
        .agg(pl.col("equity").last(), pl.col("cash").last())
        .rename({"ts_recv": "ts"})
    )
    exposure = _exposure(recorded)
    equity = equity.join(exposure, on="ts", how="left", maintain_order="left")
    if end_cost and equity.height:
        last = equity.height - 1
        equity = equity.with_columns(
            pl.when(pl.int_range(pl.len()) == last).then(pl.col("equity") - end_cost).otherwise(pl.col("equity")).alias("equity")
        )
    marks = recorded.select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")
    stats = compute_stats(equity, trades, marks)
    return BacktestResult(trades, equity, stats)


def _exposure(recorded: pl.DataFrame) -> pl.DataFrame:
    """Whether any position is open after each timestamp (for Exposure Time)."""
    positions = recorded.select("ts_recv", "instrument", "position")
    wide = (
        positions.with_columns((pl.col("position") != 0).alias("open"))
        .group_by("ts_recv", "instrument", maintain_order=True).agg(pl.col("open").last())
    )
    # carry each instrument's last state forward in time, then any() across instruments
    instruments = wide["instrument"].unique(maintain_order=True).to_list()
    if len(instruments) == 1:
        return wide.select(pl.col("ts_recv").alias("ts"), pl.col("open").alias("exposed"))
    pivot = wide.pivot(on="instrument", index="ts_recv", values="open").sort("ts_recv")
    pivot = pivot.with_columns([pl.col(i).forward_fill().fill_null(False) for i in instruments])
    return pivot.select(pl.col("ts_recv").alias("ts"), pl.any_horizontal(instruments).alias("exposed"))
