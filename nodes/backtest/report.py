"""Draw a backtest's equity curve and drawdown into a PNG file.

Scope: one static picture for a run's report directory, drawn with matplotlib's object API (``Figure``) so that
no pyplot state, backend switch or open window is involved. Non-goals: interactive charts, trade markers,
per-instrument panels.
"""

from datetime import UTC
from os import PathLike

import numpy as np
import polars as pl
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from nodes.errors import DataQualityError

FIGSIZE_IN = (10.0, 6.0)
DPI = 100


def write_report_png(equity: pl.DataFrame, path: str | PathLike[str], *, title: str) -> None:
    """Write a PNG of equity (top panel) and drawdown in percent (bottom panel, filled) over UTC time.

    Parameters
    ----------
    equity:
        ``ts`` (Int64 ns UTC, increasing) and ``equity`` (Float64), one row per distinct ``ts_recv``.
    path:
        Where to write the PNG (10 × 6 in at 100 dpi); its directory must exist.
    title:
        The figure title, e.g. the pipeline name.

    Raises
    ------
    DataQualityError: ``equity`` misses ``ts`` or ``equity``, or has no rows.

    Example
    -------
    >>> import tempfile, pathlib
    >>> equity = pl.DataFrame({"ts": [0, 86_400 * 10**9], "equity": [100.0, 90.0]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_report_png(equity, pathlib.Path(tmp) / "report.png", title="demo")
    """
    missing = [c for c in ("ts", "equity") if c not in equity.columns]
    if missing:
        raise DataQualityError(f"equity is missing columns {missing}; it has {equity.columns}")
    if equity.is_empty():
        raise DataQualityError("equity has no rows; there is nothing to draw")
    when = equity.get_column("ts").cast(pl.Int64).to_numpy().astype("datetime64[ns]")
    values = equity.get_column("equity").cast(pl.Float64).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown_pct = (values / np.maximum.accumulate(values) - 1.0) * 100.0

    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    figure.suptitle(title)
    top.plot(when, values, color="tab:blue", linewidth=1.0)
    top.set_ylabel("equity")
    top.grid(alpha=0.3)
    bottom.fill_between(when, drawdown_pct, 0.0, color="tab:red", alpha=0.4, linewidth=0)
    bottom.plot(when, drawdown_pct, color="tab:red", linewidth=0.8)
    bottom.set_ylabel("drawdown [%]")
    bottom.set_xlabel("time (UTC)")
    bottom.grid(alpha=0.3)
    # Explicit tz so the axis reads UTC whatever the user's matplotlib rc timezone says.
    locator = AutoDateLocator(tz=UTC)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    figure.savefig(path, dpi=DPI)
