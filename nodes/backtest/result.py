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
    last_at_time = pl.col("ts_recv") != pl.col("ts_recv").shift(-1).fill_null(-1)
    equity = (
        recorded.select(
            pl.col("ts_recv").alias("ts"), "equity", "cash", _exposed().alias("exposed"), last_at_time.alias("last")
        )
        .filter("last")
        .drop("last")
    )
    if end_cost and equity.height:
        last = equity.height - 1
        equity = equity.with_columns(
            pl.when(pl.int_range(pl.len()) == last).then(pl.col("equity") - end_cost).otherwise(pl.col("equity")).alias("equity")
        )
    marks = recorded.select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")
    stats = compute_stats(equity, trades, marks)
    return BacktestResult(trades, equity, stats)


def _exposed() -> pl.Expr:
    """Whether any position is open after each event (for Exposure Time), without grouping.

    Per instrument, the open/closed flag changes by +1 or -1; their running sum over all events is the number
    of instruments with a position.
    """
    is_open = (pl.col("position") != 0).cast(pl.Int64)
    change = is_open - is_open.shift(1).over("instrument").fill_null(0)
    return change.cum_sum() > 0
