"""Turn a bar venue's recorded outputs into what a quant reads: trades, the equity curve and stats."""

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from nodes.backtest.stats import compute_stats
from nodes.backtest.trades import trades_from_fills


# One row per instrument (``stats_by_instrument``); names as the portfolio's keys in ``stats`` where they mean
# the same thing for one instrument.
BY_INSTRUMENT_SCHEMA = {
    "instrument": pl.String,
    "# Trades": pl.Int64,
    "Win Rate [%]": pl.Float64,
    "PnL [$]": pl.Float64,
    "Return on Notional [%]": pl.Float64,
    "Best Trade [%]": pl.Float64,
    "Worst Trade [%]": pl.Float64,
    "Exposure Time [%]": pl.Float64,
    "Commissions [$]": pl.Float64,
}


@dataclass
class BacktestResult:
    """Trades (one row per round trip), the equity curve (one row per distinct ts_recv), the stats, and the
    per-instrument table ``by_instrument`` (see ``stats_by_instrument``)."""

    trades: pl.DataFrame
    equity: pl.DataFrame
    stats: dict[str, Any]
    by_instrument: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=BY_INSTRUMENT_SCHEMA))


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
            pl.col("ts_recv").alias("ts"), "equity", "cash",
            _exposed(recorded["instrument"].n_unique() > 1).alias("exposed"), last_at_time.alias("last")
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
    return BacktestResult(trades, equity, stats, stats_by_instrument(recorded, trades))


def stats_by_instrument(recorded: pl.DataFrame, trades: pl.DataFrame) -> pl.DataFrame:
    """Summarize each instrument's trades and exposure: one row per instrument of the record, in order of
    first appearance, with the columns of ``BY_INSTRUMENT_SCHEMA``.

    Per instrument, over its trades (``trades_from_fills``, end closes included) and its rows of the record:

    - ``# Trades``: number of trades; ``Win Rate [%]``: ``100 × mean(pnl > 0)``;
    - ``PnL [$]``: sum of trade ``pnl`` (commissions deducted);
    - ``Return on Notional [%]``: ``100 × PnL / Σ |size| × entry_price``, the PnL per unit of notional the
      instrument's trades put to work (each trade's entry value counted once; a reversal's closing and opening
      legs are two trades). Not a return on the account: that is the portfolio's ``Return [%]``;
    - ``Best Trade [%]``, ``Worst Trade [%]``: max and min of trade ``return_pct``;
    - ``Exposure Time [%]``: ``100 ×`` share of the instrument's events after which it holds a position
      (``position ≠ 0``), so with next-open fills an entry bar counts and a bar whose open closed the
      position does not;
    - ``Commissions [$]``: sum of trade ``commission``.

    An instrument without trades has 0 trades, PnL and commissions, and NaN rates. Summed over instruments,
    ``# Trades``, ``PnL [$]`` and ``Commissions [$]`` are the portfolio's (``# Trades``, sum of trade PnL —
    equal to ``Equity Final [$]`` minus the starting cash when positions are closed at the end —
    and ``Commissions [$]``).

    Example
    -------
    >>> recorded = pl.DataFrame({"instrument": ["A", "B", "A", "B"], "position": [2.0, 0.0, 0.0, 0.0]})
    >>> trades = pl.DataFrame({"instrument": ["A"], "size": [2.0], "entry_price": [100.0], "pnl": [18.0],
    ...                        "return_pct": [9.0], "commission": [2.0]})
    >>> stats_by_instrument(recorded, trades).select("instrument", "# Trades", "PnL [$]", "Exposure Time [%]").rows()
    [('A', 1, 18.0, 50.0), ('B', 0, 0.0, 0.0)]
    """
    exposure = (
        recorded.select(pl.col("instrument").cast(pl.String), (pl.col("position") != 0.0).alias("open"))
        .group_by("instrument", maintain_order=True)
        .agg((pl.col("open").mean() * 100.0).alias("Exposure Time [%]"))
    )
    per_trade = (
        trades.select(
            pl.col("instrument").cast(pl.String),
            pl.col("pnl").cast(pl.Float64),
            (pl.col("size").abs() * pl.col("entry_price")).cast(pl.Float64).alias("notional"),
            pl.col("return_pct").cast(pl.Float64),
            pl.col("commission").cast(pl.Float64),
        )
        .group_by("instrument")
        .agg(
            pl.len().cast(pl.Int64).alias("# Trades"),
            ((pl.col("pnl") > 0.0).mean() * 100.0).alias("Win Rate [%]"),
            pl.col("pnl").sum().alias("PnL [$]"),
            (pl.col("pnl").sum() / pl.col("notional").sum() * 100.0).alias("Return on Notional [%]"),
            pl.col("return_pct").max().alias("Best Trade [%]"),
            pl.col("return_pct").min().alias("Worst Trade [%]"),
            pl.col("commission").sum().alias("Commissions [$]"),
        )
    )
    rates = ["Win Rate [%]", "Return on Notional [%]", "Best Trade [%]", "Worst Trade [%]"]
    return (
        exposure.join(per_trade, on="instrument", how="left", maintain_order="left")
        .with_columns(
            pl.col("# Trades", "PnL [$]", "Commissions [$]").fill_null(0),
            pl.col(rates).fill_null(float("nan")),
        )
        .select([pl.col(name).cast(dtype) for name, dtype in BY_INSTRUMENT_SCHEMA.items()])
    )


def _exposed(many_instruments: bool) -> pl.Expr:
    """Whether any position is open after each event (for Exposure Time), without grouping.

    Per instrument, the open/closed flag changes by +1 or -1; their running sum over all events is the number
    of instruments with a position. With one instrument that is just its own flag.
    """
    if not many_instruments:
        return pl.col("position") != 0
    is_open = (pl.col("position") != 0).cast(pl.Int64)
    change = is_open - is_open.shift(1).over("instrument").fill_null(0)
    return change.cum_sum() > 0


def format_by_instrument(table: pl.DataFrame) -> str:
    """Render ``stats_by_instrument`` as an aligned text table for a terminal, numbers to two decimals, NaN as
    ``--``.

    Example
    -------
    >>> table = pl.DataFrame({"instrument": ["A", "B"], "# Trades": [3, 0], "PnL [$]": [12.5, 0.0],
    ...                       "Win Rate [%]": [66.666, float("nan")]})
    >>> print(format_by_instrument(table))
    instrument  # Trades  PnL [$]  Win Rate [%]
    A                  3    12.50         66.67
    B                  0     0.00            --
    """
    def text(value) -> str:
        if isinstance(value, float):
            return "--" if value != value else f"{value:,.2f}"
        return str(value)

    header = table.columns
    rows = [[text(v) for v in row] for row in table.iter_rows()]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(header)]
    lines = ["  ".join(name.ljust(w) if i == 0 else name.rjust(w) for i, (name, w) in enumerate(zip(header, widths)))]
    for row in rows:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)
