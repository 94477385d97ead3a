"""Figures of a backtest, a sweep and a walk-forward, as matplotlib ``Figure`` objects.

Scope: static pictures for reports, run folders and notebooks, drawn with matplotlib's object API (no pyplot
state, no backend switch, no window), so they are safe in worker processes and tests; a notebook displays the
returned ``Figure`` as it is. Every time axis is UTC. Non-goals: interactive charts, candlesticks.

``monthly_returns`` is here too: it is the table the monthly heatmap draws and the HTML report prints.
"""

import io
import math
from datetime import UTC

import numpy as np
import polars as pl
from matplotlib.colors import TwoSlopeNorm
from matplotlib.collections import LineCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

DPI = 100
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def png_bytes(figure: Figure) -> bytes:
    """Render a figure to PNG bytes (no ``Software`` tag, so the bytes carry no URL)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def equity_drawdown_figure(equity: pl.DataFrame, *, title: str = "", boundaries_ns: list[int] | None = None) -> Figure:
    """Equity (top) and drawdown in percent (bottom) over time.

    ``equity`` has ``ts`` (Int64 ns UTC) and ``equity``; ``boundaries_ns`` draws dotted vertical lines (e.g.
    walk-forward fold starts).

    Example:
        >>> fig = equity_drawdown_figure(pl.DataFrame({"ts": [0, 86_400 * 10**9], "equity": [100.0, 90.0]}))
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['equity', 'drawdown [%]']
    """
    when = datetimes(equity["ts"])
    values = equity["equity"].cast(pl.Float64).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown_pct = (values / np.maximum.accumulate(values) - 1.0) * 100.0
    figure = Figure(figsize=(10.0, 5.5), dpi=DPI, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    if title:
        figure.suptitle(title)
    top.plot(when, values, color="tab:blue", linewidth=1.0)
    top.set_ylabel("equity")
    bottom.fill_between(when, drawdown_pct, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.plot(when, drawdown_pct, color="tab:red", linewidth=0.8)
    bottom.set_ylabel("drawdown [%]")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
        for boundary in boundaries_ns or []:
            axis.axvline(np.datetime64(int(boundary), "ns"), color="grey", linestyle=":", linewidth=0.8)
    utc_dates(bottom)
    return figure


def price_trades_figure(marks: pl.DataFrame, trades: pl.DataFrame, instrument: str, *, title: str = "") -> Figure:
    """One instrument's close with its trades: entries as triangles (up long, down short), exits as rings.

    A thin line joins each entry to its exit, green for a winner and red for a loser. ``marks`` has ``ts``,
    ``instrument`` and ``mark_price`` (the venue's recorded close); ``trades`` is the trades frame.
    """
    figure = Figure(figsize=(10.0, 4.0), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    _draw_price_and_trades(axis, marks, trades, instrument)
    axis.set_title(title or instrument)
    axis.set_ylabel("price")
    utc_dates(axis)
    return figure


def backtest_figure(equity: pl.DataFrame, trades: pl.DataFrame, marks: pl.DataFrame, instrument: str, *,
                    title: str = "") -> Figure:
    """One picture of a backtest for a notebook: the instrument's price with trades, equity and drawdown."""
    figure = Figure(figsize=(10.0, 7.5), dpi=DPI, layout="constrained")
    price, top, bottom = figure.subplots(3, 1, sharex=True, height_ratios=(2, 2, 1))
    if title:
        figure.suptitle(title)
    _draw_price_and_trades(price, marks, trades, instrument)
    price.set_ylabel(f"{instrument} price")
    when = datetimes(equity["ts"])
    values = equity["equity"].cast(pl.Float64).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown_pct = (values / np.maximum.accumulate(values) - 1.0) * 100.0
    top.plot(when, values, color="tab:blue", linewidth=1.0)
    top.set_ylabel("equity")
    bottom.fill_between(when, drawdown_pct, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.set_ylabel("drawdown [%]")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    utc_dates(bottom)
    return figure


def _draw_price_and_trades(axis, marks: pl.DataFrame, trades: pl.DataFrame, instrument: str) -> None:
    prices = marks.filter(pl.col("instrument") == instrument)
    axis.plot(datetimes(prices["ts"]), prices["mark_price"].to_numpy(), color="0.35", linewidth=0.9, label="close")
    mine = trades.filter(pl.col("instrument") == instrument) if trades.height else trades
    if mine.height:
        entry, exit_ = datetimes(mine["entry_ts"]), datetimes(mine["exit_ts"])
        entry_px, exit_px = mine["entry_price"].to_numpy(), mine["exit_price"].to_numpy()
        long_ = mine["size"].to_numpy() > 0
        won = mine["pnl"].to_numpy() > 0
        # one collection, not one line per trade: a long backtest has tens of thousands of trades
        segments = np.stack([np.column_stack([date2num(entry), entry_px]), np.column_stack([date2num(exit_), exit_px])],
                            axis=1)
        colours = np.where(won, "tab:green", "tab:red")
        axis.add_collection(LineCollection(segments, colors=colours, linewidths=0.8, alpha=0.7))
        # a reversal exits and enters at one point: the hollow exit ring is drawn around the entry triangle
        axis.scatter(exit_, exit_px, marker="o", facecolors="none", edgecolors="black", s=70, zorder=3, label="exit")
        axis.scatter(entry[long_], entry_px[long_], marker="^", color="tab:green", s=30, zorder=4, label="long entry")
        axis.scatter(entry[~long_], entry_px[~long_], marker="v", color="tab:red", s=30, zorder=4, label="short entry")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize="small")


def monthly_returns(equity: pl.DataFrame) -> pl.DataFrame:
    """Return of each calendar month (UTC) in percent: one row per year, columns ``year``, Jan … Dec, ``Year``.

    A month's return is its last equity over the previous month's last equity (the first month: over the
    first equity point), minus one; a month without equity points is null. ``Year`` compounds the year's months.

    Example:
        >>> day = 86_400 * 10**9
        >>> eq = pl.DataFrame({"ts": [0, 40 * day, 70 * day], "equity": [100.0, 110.0, 99.0]})
        >>> [round(v, 9) for v in monthly_returns(eq).select("year", "Jan", "Feb", "Mar", "Year").row(0)]
        [1970, 0.0, 10.0, -10.0, -1.0]
    """
    months = (
        equity.select(pl.col("ts").cast(pl.Datetime("ns", "UTC")).alias("when"), pl.col("equity").cast(pl.Float64))
        .group_by(pl.col("when").dt.year().alias("year"), pl.col("when").dt.month().alias("month"), maintain_order=True)
        .agg(pl.col("equity").last())
        .sort("year", "month")
    )
    if months.is_empty():
        return pl.DataFrame(schema={"year": pl.Int32, **{m: pl.Float64 for m in MONTHS}, "Year": pl.Float64})
    first = float(equity["equity"][0])
    months = months.with_columns(
        ((pl.col("equity") / pl.col("equity").shift(1).fill_null(first) - 1.0) * 100.0).alias("return_pct")
    )
    rows = []
    for (year,), group in months.group_by("year", maintain_order=True):
        row = {"year": year, **{m: None for m in MONTHS}}
        growth = 1.0
        for month, value in zip(group["month"], group["return_pct"]):
            row[MONTHS[month - 1]] = value
            growth *= 1.0 + value / 100.0
        row["Year"] = (growth - 1.0) * 100.0
        rows.append(row)
    return pl.DataFrame(rows, schema={"year": pl.Int32, **{m: pl.Float64 for m in MONTHS}, "Year": pl.Float64})


def monthly_returns_figure(table: pl.DataFrame) -> Figure:
    """Heatmap of ``monthly_returns``: years down, months across, red losses and green gains, values printed."""
    values = table.select(MONTHS).to_numpy().astype(float) if table.height else np.full((1, 12), np.nan)
    figure = Figure(figsize=(10.0, 0.9 + 0.45 * max(len(values), 1)), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    limit = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    limit = limit if limit > 0 else 1.0
    image = axis.imshow(values, cmap="RdYlGn", norm=TwoSlopeNorm(0.0, -limit, limit), aspect="auto")
    axis.set_xticks(range(12), MONTHS)
    axis.set_yticks(range(len(values)), [str(y) for y in table["year"]] if table.height else [""])
    for (row, col), value in np.ndenumerate(values):
        if math.isfinite(value):
            axis.text(col, row, f"{value:.1f}", ha="center", va="center", fontsize="small")
    axis.set_title("monthly returns [%]")
    figure.colorbar(image, ax=axis, fraction=0.03)
    return figure


def sweep_heatmap_figure(table: pl.DataFrame, x: str, y: str, metric: str, *, minimize: bool = False) -> Figure:
    """Heatmap of ``metric`` over two swept params, ``x`` across and ``y`` up; other params reduced to their best.

    Cells with no combination (filtered out by ``where``) or a NaN metric are blank; the best cell is boxed.
    """
    best = pl.col(metric).fill_nan(None)
    reduced = table.group_by(x, y).agg((best.min() if minimize else best.max()).alias(metric))
    xs = sorted(table[x].unique().to_list())
    ys = sorted(table[y].unique().to_list())
    grid = np.full((len(ys), len(xs)), np.nan)
    for xv, yv, value in reduced.iter_rows():
        if value is not None:
            grid[ys.index(yv), xs.index(xv)] = value
    figure = Figure(figsize=(min(4.0 + 0.5 * len(xs), 14.0), min(3.0 + 0.4 * len(ys), 10.0)), dpi=DPI,
                    layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(grid, origin="lower", aspect="auto", cmap="viridis_r" if minimize else "viridis")
    axis.set_xticks(range(len(xs)), [_tick(v) for v in xs], rotation=90 if len(xs) > 12 else 0)
    axis.set_yticks(range(len(ys)), [_tick(v) for v in ys])
    axis.set_xlabel(x)
    axis.set_ylabel(y)
    if len(xs) * len(ys) <= 400:
        for (row, col), value in np.ndenumerate(grid):
            if math.isfinite(value):
                red, green, blue, _ = image.cmap(image.norm(value))
                ink = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
                axis.text(col, row, f"{value:.2g}", ha="center", va="center", fontsize="x-small", color=ink)
    if np.isfinite(grid).any():
        row, col = np.unravel_index(np.nanargmin(grid) if minimize else np.nanargmax(grid), grid.shape)
        axis.add_patch(_box(col, row))
    axis.set_title(metric + (" (best over the other swept params)" if _other_axes(table, x, y) else ""))
    figure.colorbar(image, ax=axis, label=metric)
    return figure


def sweep_line_figure(table: pl.DataFrame, x: str, metric: str) -> Figure:
    """``metric`` against one swept param."""
    ordered = table.sort(x)
    figure = Figure(figsize=(8.0, 4.0), dpi=DPI, layout="constrained")
    axis = figure.subplots()
    axis.plot(ordered[x].to_numpy(), ordered[metric].to_numpy(), marker="o")
    axis.set_xlabel(x)
    axis.set_ylabel(metric)
    axis.grid(alpha=0.3)
    return figure


def _other_axes(table: pl.DataFrame, x: str, y: str) -> bool:
    return table.select(pl.struct(x, y).n_unique()).item() < table.height


def _box(col: int, row: int):
    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)


def _tick(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def datetimes(ts: pl.Series) -> np.ndarray:
    return ts.cast(pl.Int64).to_numpy().astype("datetime64[ns]")


def utc_dates(axis) -> None:
    # explicit tz so the axis reads UTC whatever the user's matplotlib rc timezone says
    locator = AutoDateLocator(tz=UTC)
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
