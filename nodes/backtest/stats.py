"""Summarise an equity curve and its trades into backtesting.py 0.6 statistics.

Scope: the keys, units and formulas of backtesting.py 0.6.x ``compute_stats`` (re-derived, no code copied),
computed from plain polars frames so that a multi-instrument run can be summarised. Non-goals: Alpha and Beta
(they need one benchmark series; a multi-instrument run has none), and anything backtesting.py does not report.

Time-valued keys. Every key whose value is a time has two twins: the backtesting.py name holds a readable string
and ``<name>_ns`` holds the exact integer nanoseconds. ``Start``/``End`` are ISO 8601 UTC strings
(``2012-01-03T00:00:00Z``, fraction shown only when non-zero) with ``Start_ns``/``End_ns`` in ns since the
epoch; ``Duration``, ``Max./Avg. Drawdown Duration`` and ``Max./Avg. Trade Duration`` are strings as pandas
prints a Timedelta (``12 days 03:00:00``) with ``…_ns`` twins. An undefined duration is ``None`` with a NaN twin.
Every other value is a float (NaN or ±inf where backtesting.py gives them) except ``# Trades`` (int), so the
dict is JSON-serialisable as it is.

Notation: ``E`` the equity column (one row per distinct ts), ``DD = 1 − E / cummax(E)``, ``r`` the per-period
returns of ``E`` resampled to the last value per UTC period, ``N`` periods per year, ``g`` the geometric mean of
``r``, ``R`` trade returns as fractions (``return_pct / 100``), ``P`` trade PnL. Formulas, one per key:

- Start, End, Duration: first and last ts of ``E``, and End − Start.
- Exposure Time [%]: 100 × share of rows of ``E`` whose ts lies in ``[entry_ts, exit_ts]`` of some trade (for
  one instrument on contiguous bars this counts as many rows as backtesting.py's inclusive entry..exit bars).
- Equity Final [$], Equity Peak [$]: ``E[-1]``, ``max(E)``.
- Commissions [$]: sum of trade ``commission`` (always present; backtesting.py omits it when zero).
- Return [%]: ``100 × (E[-1] − E[0]) / E[0]``.
- Buy & Hold Return [%]: mean over instruments of ``100 × (last − first) / first`` of ``marks.mark_price``.
- Return (Ann.) [%]: ``100 × ((1 + g)^N − 1)``; ``g = exp(mean(log(1 + r))) − 1``, or 0 if any ``1 + r ≤ 0``.
- Volatility (Ann.) [%]: ``100 × sqrt((var(r, ddof=1) + (1 + g)²)^N − (1 + g)^(2N))``.
- CAGR [%]: ``100 × ((E[-1] / E[0])^(1 / years) − 1)``, years = (whole days + seconds / 86400) / 365.25.
- Sharpe Ratio: ``(Return (Ann.) − 100 × risk_free_rate) / Volatility (Ann.)`` (NaN when volatility is 0).
- Sortino Ratio: ``((1 + g)^N − 1 − risk_free_rate) / (sqrt(mean(min(r, 0)²)) × sqrt(N))``.
- Calmar Ratio: ``((1 + g)^N − 1) / max(DD)`` (NaN when there is no drawdown).
- Max. Drawdown [%]: ``−100 × max(DD)``.
- Avg. Drawdown [%]: ``−100 × mean`` of each drawdown episode's deepest DD.
- Max./Avg. Drawdown Duration: max/mean over episodes of (recovery ts, or last ts, − the episode's peak ts),
  rounded up to the resolution of the bar period.
- # Trades: number of trades.
- Win Rate [%]: ``100 × mean(P > 0)``.
- Best/Worst Trade [%]: ``100 × max(R)``, ``100 × min(R)``.
- Avg. Trade [%]: ``100 × geometric mean of R`` (as for ``g``).
- Max./Avg. Trade Duration: max/mean of ``exit_ts − entry_ts``, rounded up to the bar period's resolution.
- Profit Factor: ``sum(R > 0) / |sum(R < 0)|`` (returns, not PnL, as backtesting.py; NaN without losses).
- Expectancy [%]: ``100 × mean(R)``.
- SQN: ``sqrt(#trades) × mean(P) / std(P, ddof=1)``.
- Kelly Criterion: ``W − (1 − W) / (mean(P | P > 0) / −mean(P | P < 0))`` with ``W`` the win rate.

Periods, as backtesting.py: the bar period is the median step of the last 100 ts of ``E``; a period of 7, 31 or
365 whole days resamples weekly (Monday–Sunday), monthly or yearly with ``N`` = 52, 12 or 1; otherwise daily
with ``N`` = 365 when more than 60 % of 2/7 of the rows fall on a weekend, else 252. A drawdown episode runs from
a row at zero drawdown to the next such row (or the last row) with at least one row between them, so, as in
backtesting.py, a drawdown on the last row alone is no episode. Durations are rounded up to the finest non-zero
unit (day, hour, minute, second, ms, µs, ns) of the bar period, as backtesting.py's ``Timedelta.ceil``.

Deviations from backtesting.py: no Alpha/Beta; ``Commissions [$]`` always present; the bar-index exposure
becomes the time-interval rule above; Buy & Hold starts at the first mark the caller passes (trim indicator
warm-up bars from ``marks`` to match backtesting.py); when the only drawdown is on the last row
backtesting.py puts a drawdown fraction into the duration keys, here they are undefined.
"""

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from nodes.errors import DataQualityError

DAY_NS = 86_400 * 10**9
_SECOND_NS = 10**9
# ns, µs, ms, s, min, h, day: the units a duration is rounded up to, finest first.
_RESOLUTION_UNITS_NS = (1, 1_000, 1_000_000, _SECOND_NS, 60 * _SECOND_NS, 3_600 * _SECOND_NS, DAY_NS)
_PERIOD_WINDOW_ROWS = 100  # backtesting.py infers the bar period from the last 100 index steps
_BLOCK = 4096  # rows a scan for a first fault counts at once before it looks for the row
_LAST_DAY = (2**63 - 1) // DAY_NS  # from this UTC day on, a day's end in ns ((day + 1) × DAY_NS) overflows int64

EQUITY_COLUMNS = ("ts", "equity")
TRADE_COLUMNS = ("entry_ts", "exit_ts", "pnl", "return_pct", "commission")
MARK_COLUMNS = ("ts", "instrument", "mark_price")
DURATION_KEYS = (
    "Duration",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "Max. Trade Duration",
    "Avg. Trade Duration",
)


def compute_stats(
    equity: pl.DataFrame,
    trades: pl.DataFrame,
    marks: pl.DataFrame,
    *,
    risk_free_rate: float = 0.0,
) -> dict[str, Any]:
    """Compute backtesting.py 0.6 statistics of an equity curve, its trades and the instruments' marks.

    Parameters
    ----------
    equity:
        ``ts`` (Int64 ns UTC, strictly increasing: one row per distinct ``ts_recv``) and ``equity`` (finite
        Float64, account equity at that time, last value when several events share it).
    trades:
        At least ``entry_ts``, ``exit_ts`` (Int64 ns), ``pnl``, ``return_pct`` (percent) and ``commission``, as
        ``nodes.backtest.trades.trades_from_fills`` returns them; may be empty.
    marks:
        ``ts``, ``instrument``, ``mark_price``: every mark of every instrument, for Buy & Hold; may be empty
        (Buy & Hold is then NaN).
    risk_free_rate:
        Annual risk-free rate as a fraction, in (−1, 1); default 0.0.

    Returns
    -------
    The statistics keyed as the module docstring lists, in backtesting.py's order.

    Raises
    ------
    ValueError: ``risk_free_rate`` is not in (−1, 1).
    DataQualityError: a frame misses a column, ``equity`` is empty, its ts do not strictly increase, or an
        equity value is not finite.

    Example
    -------
    >>> equity = pl.DataFrame({"ts": [0, DAY_NS, 2 * DAY_NS], "equity": [100.0, 110.0, 99.0]})
    >>> no_trades = pl.DataFrame(schema={c: pl.Float64 for c in TRADE_COLUMNS})
    >>> marks = pl.DataFrame({"ts": [0, 2 * DAY_NS], "instrument": ["X", "X"], "mark_price": [10.0, 12.0]})
    >>> stats = compute_stats(equity, no_trades, marks)
    >>> stats["Return [%]"], stats["Buy & Hold Return [%]"], round(stats["Max. Drawdown [%]"], 9), stats["Duration"]
    (-1.0, 20.0, -10.0, '2 days 00:00:00')
    """
    if not -1.0 < risk_free_rate < 1.0:
        raise ValueError(f"risk_free_rate must be an annual fraction in (-1, 1), got {risk_free_rate!r}")
    _require_columns("equity", equity, EQUITY_COLUMNS)
    _require_columns("trades", trades, TRADE_COLUMNS)
    _require_columns("marks", marks, MARK_COLUMNS)
    ts = equity.get_column("ts").cast(pl.Int64).to_numpy()
    eq = equity.get_column("equity").cast(pl.Float64).to_numpy()
    increasing = _check_equity(ts, eq)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        stats = _compute(ts, eq, trades, marks, risk_free_rate, increasing)
    return {key: _plain(value) for key, value in stats.items()}


def format_stats_table(stats: dict[str, Any]) -> str:
    """Render statistics as an aligned two-column text table, one key per line, for a terminal.

    The ``_ns`` twins are left out (their readable twin is shown); NaN and undefined values print as ``--``.

    Example
    -------
    >>> print(format_stats_table({"Return [%]": 12.5, "# Trades": 3, "Duration": "2 days 00:00:00",
    ...                           "Duration_ns": 2 * DAY_NS, "SQN": float("nan")}))
    Return [%]             12.5
    # Trades                  3
    Duration    2 days 00:00:00
    SQN                      --
    """
    shown = [(key, _format_value(value)) for key, value in stats.items() if not key.endswith("_ns")]
    if not shown:
        return ""
    key_width = max(len(key) for key, _ in shown)
    value_width = max(len(text) for _, text in shown)
    return "\n".join(f"{key:<{key_width}}  {text:>{value_width}}" for key, text in shown)


def _compute(
    ts: np.ndarray, eq: np.ndarray, trades: pl.DataFrame, marks: pl.DataFrame, risk_free_rate: float, increasing: bool
) -> dict[str, Any]:
    """The statistics; ``increasing``: ``ts`` are int64 that truly increase (the fast paths need sorted ts)."""
    period_ns = _bar_period_ns(ts)
    s: dict[str, Any] = {}
    s["Start"], s["Start_ns"] = _iso_utc(int(ts[0])), int(ts[0])
    s["End"], s["End_ns"] = _iso_utc(int(ts[-1])), int(ts[-1])
    duration_ns = int(ts[-1] - ts[0])
    s["Duration"], s["Duration_ns"] = _format_duration(duration_ns), duration_ns

    entry_ts = trades.get_column("entry_ts").cast(pl.Int64).to_numpy()
    exit_ts = trades.get_column("exit_ts").cast(pl.Int64).to_numpy()
    pnl = trades.get_column("pnl").cast(pl.Float64).to_numpy()
    returns = trades.get_column("return_pct").cast(pl.Float64).to_numpy() / 100.0
    n_trades = len(pnl)

    # the mean of the rows' exposed flags, as np.mean takes it: count / rows
    s["Exposure Time [%]"] = np.float64(_exposed_rows(ts, entry_ts, exit_ts, increasing)) / len(ts) * 100
    s["Equity Final [$]"] = eq[-1]
    s["Equity Peak [$]"] = eq.max()
    s["Commissions [$]"] = float(trades.get_column("commission").cast(pl.Float64).sum())
    s["Return [%]"] = (eq[-1] - eq[0]) / eq[0] * 100
    s["Buy & Hold Return [%]"] = _buy_and_hold_pct(marks)

    periods_per_year, period_returns = _period_returns(ts, eq, period_ns, increasing)
    g = _geometric_mean(period_returns)
    annualized = (1 + g) ** periods_per_year - 1
    variance = period_returns.var(ddof=1) if len(period_returns) > 1 else np.nan
    s["Return (Ann.) [%]"] = annualized * 100
    s["Volatility (Ann.) [%]"] = (
        np.sqrt((variance + (1 + g) ** 2) ** periods_per_year - (1 + g) ** (2 * periods_per_year)) * 100
    )
    years = (duration_ns // DAY_NS + (duration_ns % DAY_NS) // _SECOND_NS / 86_400) / 365.25
    s["CAGR [%]"] = (np.float64(eq[-1] / eq[0]) ** (1 / years) - 1) * 100 if years else np.nan
    s["Sharpe Ratio"] = (s["Return (Ann.) [%]"] - risk_free_rate * 100) / _zero_to_nan(s["Volatility (Ann.) [%]"])
    downside = np.sqrt(np.mean(np.minimum(period_returns, 0) ** 2)) if len(period_returns) else np.nan
    s["Sortino Ratio"] = np.float64(annualized - risk_free_rate) / (downside * np.sqrt(periods_per_year))

    dd_max, dd_bounds, dd_depths = _drawdown_bounds(eq)
    max_dd = np.nan_to_num(dd_max)
    s["Calmar Ratio"] = np.float64(annualized) / _zero_to_nan(max_dd)
    s["Max. Drawdown [%]"] = -max_dd * 100
    episode_ns, episode_depth = _drawdown_episodes(ts, eq, dd_bounds, dd_depths)
    s["Avg. Drawdown [%]"] = -np.mean(episode_depth) * 100 if len(episode_depth) else np.nan
    _put_duration(s, "Max. Drawdown Duration", _max_ns(episode_ns), period_ns)
    _put_duration(s, "Avg. Drawdown Duration", _mean_ns(episode_ns), period_ns)

    s["# Trades"] = n_trades
    win_rate = np.mean(pnl > 0) if n_trades else np.nan
    s["Win Rate [%]"] = win_rate * 100
    s["Best Trade [%]"] = returns.max() * 100 if n_trades else np.nan
    s["Worst Trade [%]"] = returns.min() * 100 if n_trades else np.nan
    s["Avg. Trade [%]"] = _geometric_mean(returns) * 100
    trade_ns = exit_ts - entry_ts
    _put_duration(s, "Max. Trade Duration", _max_ns(trade_ns), period_ns)
    _put_duration(s, "Avg. Trade Duration", _mean_ns(trade_ns), period_ns)
    s["Profit Factor"] = returns[returns > 0].sum() / _zero_to_nan(abs(returns[returns < 0].sum()))
    s["Expectancy [%]"] = returns.mean() * 100 if n_trades else np.nan
    pnl_std = pnl.std(ddof=1) if n_trades > 1 else np.nan
    s["SQN"] = np.sqrt(n_trades) * (pnl.mean() if n_trades else np.nan) / _zero_to_nan(pnl_std)
    avg_win = pnl[pnl > 0].mean() if (pnl > 0).any() else np.nan
    avg_loss = -pnl[pnl < 0].mean() if (pnl < 0).any() else np.nan
    s["Kelly Criterion"] = win_rate - (1 - win_rate) / (avg_win / avg_loss)
    return s


def _require_columns(name: str, frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataQualityError(f"{name} is missing columns {missing}; it has {frame.columns}")


def _check_equity(ts: np.ndarray, eq: np.ndarray) -> bool:
    """Raise on bad equity; else whether ``ts`` are int64 that truly increase. The check is on ``np.diff``, whose
    int64 steps wrap around, so a curve across more than 292 years passes it unsorted (as it always has)."""
    if len(ts) == 0:
        raise DataQualityError("equity has no rows; statistics need at least one")
    if ts.dtype == np.int64 and eq.dtype == np.float64:
        row, n_bad, first_bad, increasing = _equity_faults(ts, eq)
    else:  # ts with nulls comes as float64 (NaN steps pass, as they always did)
        steps = np.diff(ts)
        row = int(np.flatnonzero(steps <= 0)[0]) + 1 if (steps <= 0).any() else -1
        bad = np.flatnonzero(~np.isfinite(eq))
        n_bad, first_bad, increasing = len(bad), int(bad[0]) if len(bad) else -1, False
    if row >= 0:
        raise DataQualityError(
            f"equity row {row}: ts {ts[row]} does not follow {ts[row - 1]}; ts must strictly increase"
        )
    if n_bad:
        raise DataQualityError(f"equity has {n_bad} non-finite values, first at row {first_bad}")
    return increasing


@njit(cache=True, nogil=True)
def _equity_faults(ts: np.ndarray, eq: np.ndarray) -> tuple[int, int, int, bool]:
    """The first row whose ts step (wrapping as np.diff's does, hence uint64) is not positive, or -1; the count
    of non-finite equity values and the first of them, or -1; whether ts truly increase. Counted block by
    block, so that the loops vectorize."""
    row = -1
    increasing = True
    for start in range(1, len(ts), _BLOCK):
        stop = min(start + _BLOCK, len(ts))
        hits = 0
        back = 0
        for i in range(start, stop):
            step = np.uint64(ts[i]) - np.uint64(ts[i - 1])
            hits += (step == 0) | (step >= np.uint64(2**63))
            back += ts[i] <= ts[i - 1]
        if back:
            increasing = False
        if hits:
            for i in range(start, stop):
                step = np.uint64(ts[i]) - np.uint64(ts[i - 1])
                if step == 0 or step >= np.uint64(2**63):
                    row = i
                    break
            break
    n_bad = 0
    for i in range(len(eq)):
        n_bad += not math.isfinite(eq[i])
    first_bad = -1
    if n_bad:
        for i in range(len(eq)):
            if not math.isfinite(eq[i]):
                first_bad = i
                break
    return row, n_bad, first_bad, increasing


def _bar_period_ns(ts: np.ndarray) -> int | None:
    """The median ts step over the last rows (truncated to whole ns, as pandas), or None for a single row."""
    steps = np.diff(ts[-_PERIOD_WINDOW_ROWS:])
    return int(np.median(steps)) if len(steps) else None


def _exposed_rows(ts: np.ndarray, entry_ts: np.ndarray, exit_ts: np.ndarray, increasing: bool) -> int:
    """How many rows have a ts in ``[entry_ts, exit_ts]`` of some trade (rows ``searchsorted`` left .. right)."""
    if increasing and entry_ts.dtype == np.int64 and exit_ts.dtype == np.int64:
        return _exposed_row_count(ts, entry_ts, exit_ts)
    # Unsorted ts (see _check_equity) or trade times with nulls (float64): one numpy search per trade, as
    # always; on unsorted ts only the very same searches give the same rows.
    exposed = np.zeros(len(ts), dtype=bool)
    for entry, exit_ in zip(entry_ts, exit_ts, strict=True):
        exposed[np.searchsorted(ts, entry, "left") : np.searchsorted(ts, exit_, "right")] = True
    return int(exposed.sum())


@njit(cache=True, nogil=True)
def _search(ts: np.ndarray, key: int, right: bool, start: int) -> int:
    """``np.searchsorted(ts, key, side)``, given that the answer is not below ``start``: galloping from there."""
    n = len(ts)
    low = start
    high = start
    step = 1
    while high < n and (ts[high] <= key if right else ts[high] < key):
        low = high + 1
        high = low + step
        step *= 2
    if high > n:
        high = n
    while low < high:
        middle = (low + high) // 2
        if ts[middle] <= key if right else ts[middle] < key:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True, nogil=True)
def _exposed_row_count(ts: np.ndarray, entry_ts: np.ndarray, exit_ts: np.ndarray) -> int:
    """``_exposed_rows`` of int64 times: each trade's rows [first, stop), then the size of their union."""
    n_trades = len(entry_ts)
    first = np.empty(n_trades, dtype=np.int64)
    stop = np.empty(n_trades, dtype=np.int64)
    first_hint = stop_hint = 0
    sorted_first = True
    for j in range(n_trades):
        if j and entry_ts[j] < entry_ts[j - 1]:
            first_hint = 0
        first[j] = first_hint = _search(ts, entry_ts[j], False, first_hint)
        if j and exit_ts[j] < exit_ts[j - 1]:
            stop_hint = 0
        stop[j] = stop_hint = _search(ts, exit_ts[j], True, stop_hint)
        if j and first[j] < first[j - 1]:
            sorted_first = False
    order = np.arange(n_trades) if sorted_first else np.argsort(first)
    count = 0
    covered = 0  # rows before this one are counted
    for j in order:
        if first[j] >= stop[j] or stop[j] <= covered:
            continue
        count += stop[j] - max(first[j], covered)
        covered = stop[j]
    return count


@njit(cache=True, nogil=True, error_model="numpy")
def _drawdown_bounds(eq: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Of ``dd = _drawdown(eq)``, without building it: ``dd.max()``, the episode bounds (the rows where dd is 0,
    then the last row) and the deepest dd from each bound to the next, both ends included (NaN when a NaN is
    among them, as numpy's max)."""
    n = len(eq)
    bounds = np.empty(n + 1, dtype=np.int64)
    depths = np.empty(n + 1, dtype=np.float64)
    n_bounds = 0
    peak = eq[0] if n else 0.0
    largest = -np.inf
    depth = 0.0  # the deepest dd since the last bound, that row included
    for i in range(n):
        if not (peak > eq[i] or math.isnan(peak)):
            peak = eq[i]
        dd = 1 - eq[i] / peak
        if not (largest >= dd or math.isnan(largest)):
            largest = dd
        if not (depth >= dd or math.isnan(depth)):
            depth = dd
        if dd == 0 or i == n - 1:
            if n_bounds:
                depths[n_bounds - 1] = depth
            bounds[n_bounds] = i
            n_bounds += 1
            depth = dd
    return largest, bounds[:n_bounds].copy(), depths[: max(n_bounds - 1, 0)].copy()


@njit(cache=True, nogil=True, error_model="numpy")
def _drawdown(eq: np.ndarray) -> np.ndarray:
    """``1 − eq / np.maximum.accumulate(eq)``, element by element as numpy computes it (a tie takes the new value)."""
    dd = np.empty(len(eq), dtype=np.float64)
    peak = eq[0] if len(eq) else 0.0
    for i in range(len(eq)):
        if not (peak > eq[i] or math.isnan(peak)):
            peak = eq[i]
        dd[i] = 1 - eq[i] / peak
    return dd


@njit(cache=True, nogil=True)
def _days(ts: np.ndarray) -> tuple[int, np.ndarray]:
    """For strictly increasing int64 ts: the number of rows on a Saturday or Sunday (UTC), and the last row of
    each UTC day, for a daily resample. Divides only where a day may end."""
    n = len(ts)
    weekend = 0
    last = np.empty(n, dtype=np.int64)
    n_last = 0
    day = ts[0] // DAY_NS
    day_end = (day + 1) * DAY_NS if day < _LAST_DAY else np.iinfo(np.int64).max
    on_weekend = (day + 3) % 7 >= 5  # 1970-01-01 is a Thursday
    for i in range(n):
        if ts[i] >= day_end and ts[i] // DAY_NS != day:
            last[n_last] = i - 1
            n_last += 1
            day = ts[i] // DAY_NS
            day_end = (day + 1) * DAY_NS if day < _LAST_DAY else np.iinfo(np.int64).max
            on_weekend = (day + 3) % 7 >= 5
        if on_weekend:
            weekend += 1
    last[n_last] = n - 1
    return weekend, last[: n_last + 1]


def _period_returns(
    ts: np.ndarray, eq: np.ndarray, period_ns: int | None, increasing: bool
) -> tuple[int, np.ndarray]:
    """Periods per year and the returns of equity resampled to its last value per UTC calendar period."""
    period_days = period_ns // DAY_NS if period_ns is not None else None
    if period_days in (7, 31, 365):
        if period_days == 7:
            periods_per_year, key = 52, (ts // DAY_NS + 3) // 7  # 1970-01-01 is a Thursday: weeks start on Monday
        elif period_days == 31:
            periods_per_year, key = 12, ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        else:
            periods_per_year, key = 1, ts.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64)
        last_of_period = eq[np.r_[key[1:] != key[:-1], True]]
    elif increasing:
        weekend_rows, last_rows = _days(ts)
        weekend_share = np.float64(weekend_rows) / len(ts)  # np.mean of the weekend flags: count / n
        periods_per_year = 365 if weekend_share > 2 / 7 * 0.6 else 252
        last_of_period = eq[last_rows]
    else:  # ts with nulls (float64) or unsorted (see _check_equity)
        day = ts // DAY_NS
        weekend_share = np.mean((day + 3) % 7 >= 5)
        periods_per_year = 365 if weekend_share > 2 / 7 * 0.6 else 252
        last_of_period = eq[np.r_[day[1:] != day[:-1], True]]
    return periods_per_year, last_of_period[1:] / last_of_period[:-1] - 1


def _geometric_mean(returns: np.ndarray) -> float:
    """exp(mean(log(1 + r))) − 1; 0 when a return wipes out the capital; NaN for no returns."""
    growth = returns + 1
    if np.any(growth <= 0):
        return 0.0
    if not len(growth):
        return np.nan
    return np.exp(np.log(growth).sum() / len(growth)) - 1


def _drawdown_episodes(
    ts: np.ndarray, eq: np.ndarray, bounds: np.ndarray, depths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each drawdown episode's duration (ns) and deepest drawdown (fraction), from ``_drawdown_bounds``."""
    starts, ends = bounds[:-1], bounds[1:]
    keep = ends > starts + 1
    if not keep.any():
        # backtesting.py then falls back to the non-zero drawdown values themselves for the depth
        dd = _drawdown(eq)
        return np.empty(0, dtype=np.int64), dd[dd != 0]
    return ts[ends[keep]] - ts[starts[keep]], depths[keep]


def _max_ns(values: np.ndarray) -> int | None:
    return int(values.max()) if len(values) else None


def _mean_ns(values: np.ndarray) -> int | None:
    """Mean of ns values as pandas takes it: float64 sum over count, truncated to whole ns."""
    return int(values.sum(dtype=np.float64) / len(values)) if len(values) else None


def _put_duration(s: dict[str, Any], key: str, value_ns: int | None, period_ns: int | None) -> None:
    if value_ns is None:
        s[key], s[f"{key}_ns"] = None, math.nan
        return
    if period_ns is not None:
        unit = _resolution_ns(period_ns)
        value_ns = -(-value_ns // unit) * unit
    s[key], s[f"{key}_ns"] = _format_duration(value_ns), value_ns


def _resolution_ns(period_ns: int) -> int:
    """The finest non-zero unit of a period, in ns (pandas' ``Timedelta.resolution_string``)."""
    for finer, coarser in zip(_RESOLUTION_UNITS_NS, _RESOLUTION_UNITS_NS[1:]):
        if period_ns % coarser:
            return finer
    return DAY_NS


def _buy_and_hold_pct(marks: pl.DataFrame) -> float:
    if marks.is_empty():
        return np.nan
    if not _non_decreasing(marks.get_column("ts")):  # a stable sort of sorted ts changes nothing
        marks = marks.sort("ts", maintain_order=True)
    ends = (
        marks.group_by("instrument", maintain_order=True)
        .agg(pl.col("mark_price").first().alias("first"), pl.col("mark_price").last().alias("last"))
    )
    first = ends.get_column("first").cast(pl.Float64).to_numpy()
    last = ends.get_column("last").cast(pl.Float64).to_numpy()
    return np.mean((last - first) / first * 100)


def _non_decreasing(ts: pl.Series) -> bool:
    """Integer ts without nulls that never go back (what a stable ``sort`` leaves as it is)."""
    return ts.dtype.is_integer() and not ts.null_count() and ts.is_sorted()


def _zero_to_nan(value: float) -> float:
    return np.nan if value == 0 else value


def _iso_utc(ts_ns: int) -> str:
    seconds, fraction_ns = divmod(ts_ns, _SECOND_NS)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if fraction_ns:
        text += f".{fraction_ns:09d}".rstrip("0")
    return text + "Z"


def _format_duration(ns: int) -> str:
    """Print a non-negative duration as pandas prints a Timedelta: ``3 days 04:05:06[.ffffff[fff]]``."""
    days, rest = divmod(ns, DAY_NS)
    seconds, fraction_ns = divmod(rest, _SECOND_NS)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{days} days {hours:02d}:{minutes:02d}:{seconds:02d}"
    if fraction_ns:
        text += f".{fraction_ns:09d}" if fraction_ns % 1000 else f".{fraction_ns // 1000:06d}"
    return text


def _plain(value: Any) -> Any:
    """Numpy scalars to Python ones, so the dict serialises to JSON as it is."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, float):
        return f"{value:.5f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    return str(value)
