"""Figures of a stress test: equity curves of the base run and each scenario, and a Monte Carlo's distributions.

Drawn like ``nodes/backtest/plots.py``: matplotlib's object API (no pyplot state, no backend switch), UTC time
axes; ``png_bytes`` renders them.
"""

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from nodes.backtest.plots import DPI, datetimes, utc_dates

BASE = "base"


def equity_overlay_figure(curves: dict[str, pl.DataFrame], *, title: str = "") -> Figure:
    """Equity (top) and drawdown in percent (bottom) of every run, the base run in black.

    ``curves`` maps a run's name to its equity frame (``ts`` Int64 ns UTC, ``equity``).

    Example:
        >>> day = 86_400 * 10**9
        >>> fig = equity_overlay_figure({"base": pl.DataFrame({"ts": [0, day], "equity": [100.0, 110.0]}),
        ...                              "crash": pl.DataFrame({"ts": [0, day], "equity": [100.0, 80.0]})})
        >>> [line.get_label() for line in fig.axes[0].get_lines()]
        ['base', 'crash']
    """
    figure = Figure(figsize=(10.0, 6.0), dpi=DPI, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    if title:
        figure.suptitle(title)
    for name, curve in curves.items():
        if curve.height == 0:
            continue
        when = datetimes(curve["ts"])
        values = curve["equity"].cast(pl.Float64).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            drawdown_pct = (values / np.maximum.accumulate(values) - 1.0) * 100.0
        style = {"color": "black", "linewidth": 1.4, "zorder": 3} if name == BASE else {"linewidth": 1.0}
        top.plot(when, values, label=name, **style)
        bottom.plot(when, drawdown_pct, label=name, **style)
    top.set_ylabel("equity")
    top.ticklabel_format(axis="y", useOffset=False, style="plain")  # equity as it is, not "+1e5"
    bottom.set_ylabel("drawdown [%]")
    top.legend(loc="upper left", fontsize="small")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    utc_dates(bottom)
    return figure


def monte_carlo_figure(mc, *, title: str = "") -> Figure:
    """A Monte Carlo at a glance: the fan of equity quantiles over steps (top left), and histograms of final
    equity, max drawdown and time to recovery.

    ``mc`` has the attributes of ``pipelines.montecarlo.MonteCarloResult`` (``fan_steps``, ``fan`` with rows
    for the 5, 25, 50, 75 and 95 % quantiles, ``final_equity``, ``max_drawdown``, ``time_to_recovery``,
    ``start_equity``, ``step_unit`` and ``base``: the backtest's own values, drawn as dashed lines).
    """
    figure = Figure(figsize=(10.0, 7.0), dpi=DPI, layout="constrained")
    (fan, final), (drawdown, recovery) = figure.subplots(2, 2)
    if title:
        figure.suptitle(title)
    steps = mc.fan_steps
    fan.fill_between(steps, mc.fan[0], mc.fan[4], color="tab:blue", alpha=0.15, linewidth=0, label="5–95 %")
    fan.fill_between(steps, mc.fan[1], mc.fan[3], color="tab:blue", alpha=0.3, linewidth=0, label="25–75 %")
    fan.plot(steps, mc.fan[2], color="tab:blue", linewidth=1.2, label="median")
    fan.axhline(mc.start_equity, color="grey", linewidth=0.8, linestyle=":")
    fan.set_xlabel(mc.step_unit)
    fan.set_ylabel("equity")
    fan.legend(loc="upper left", fontsize="small")
    _histogram(final, mc.final_equity, "final equity", mc.base.get("Equity Final [$]"))
    _histogram(drawdown, -100.0 * mc.max_drawdown, "max drawdown [%]", mc.base.get("Max. Drawdown [%]"))
    finite = mc.time_to_recovery[np.isfinite(mc.time_to_recovery)]
    never = 100.0 * (1.0 - len(finite) / max(len(mc.time_to_recovery), 1))
    _histogram(recovery, finite, f"time to recovery [{mc.step_unit}] ({never:.1f} % never recover)", None)
    for axis in (fan, final, drawdown, recovery):
        axis.grid(alpha=0.3)
    return figure


def _histogram(axis, values: np.ndarray, label: str, base: float | None) -> None:
    if len(values):
        axis.hist(values, bins=min(60, max(10, int(np.sqrt(len(values))))), color="tab:blue", alpha=0.7)
    if base is not None and np.isfinite(base):
        axis.axvline(base, color="black", linestyle="--", linewidth=1.0, label="backtest")
        axis.legend(loc="upper right", fontsize="small")
    axis.set_xlabel(label)
    axis.set_ylabel("paths")
