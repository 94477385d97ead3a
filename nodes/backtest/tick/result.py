"""What a tick backtest produced: its logs as frames and the stats derived from them.

Definitions (quote currency unless said; quantities in units, i.e. the data's 1e-9 units / 1e9):

- ``pnl``: final equity − starting cash. Final equity = the cash after the last fill + Σ position × the last
  mark the logs know per instrument (the latest equity row's mid or fill-time mid);
- ``fees``: Σ fees (negative: rebates earned); ``fills``, ``maker_fills``, ``taker_fills``: fill counts;
  ``volume``, ``maker_volume``, ``taker_volume``: Σ |qty|; ``notional``: Σ price × qty;
- ``max_drawdown``: the largest fall of equity from a running peak, on the equity log (every
  ``equity_interval`` of exchange time) plus the final equity; ``max_drawdown_pct``: the same relative to the
  peak it fell from (NaN when that peak is not positive);
- ``sharpe``: mean / standard deviation (ddof 1) of equity changes per ``equity_interval`` on the regular grid
  of intervals (a boundary no event crossed takes the next row's values: nothing happened in between),
  × √(intervals per 365-day year): markets that trade around the clock. NaN with fewer than two intervals or
  no variation;
- ``time_in_market``: share of those intervals with a position in any instrument;
- ``max_abs_position``: the largest |position| after any fill, over instruments;
- ``orders_sent``, ``rejected``, ``cancelled``: counts of order events.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from nodes.backtest.tick.latency import duration_ns
from nodes.backtest.tick.logs import LOG_COLUMNS

_YEAR_NS = 365 * 86_400 * 1_000_000_000
_UNIT = 1e9


@dataclass
class TickBacktestResult:
    """The logs of a tick venue as frames (``fills``, ``orders``, ``equity``, ``queue``) and ``stats``."""

    fills: pl.DataFrame
    orders: pl.DataFrame
    equity: pl.DataFrame
    queue: pl.DataFrame
    stats: dict = field(default_factory=dict)

    def format(self) -> str:
        """The stats as aligned text lines, for the command line."""
        labels = {
            "start_cash": "start cash", "final_equity": "final equity", "pnl": "PnL", "fees": "fees",
            "fills": "fills", "maker_fills": "  maker", "taker_fills": "  taker", "volume": "volume (units)",
            "maker_volume": "  maker", "taker_volume": "  taker", "notional": "notional traded",
            "max_drawdown": "max drawdown", "max_drawdown_pct": "max drawdown %", "sharpe": "Sharpe (annualized)",
            "time_in_market": "time in market", "max_abs_position": "max |position| (units)",
            "orders_sent": "orders sent", "rejected": "rejected", "cancelled": "cancelled",
        }
        width = max(len(label) for label in labels.values())
        lines = []
        for key, label in labels.items():
            value = self.stats.get(key)
            if isinstance(value, float):
                text = f"{value * 100:.4g}%" if key in ("time_in_market", "max_drawdown_pct") else f"{value:,.6g}"
            else:
                text = f"{value:,}" if isinstance(value, int) else str(value)
            lines.append(f"{label:<{width}}  {text}")
        return "\n".join(lines)


def _frame(part, name: str) -> pl.DataFrame:
    if isinstance(part, pl.DataFrame):
        return part
    if part is None:
        part = {column: np.zeros(0, np.int64) for column in LOG_COLUMNS[name]}
    return pl.DataFrame({k: (v.astype(str) if v.dtype == object else v) for k, v in part.items()})


def summarize_tick_backtest(params, logs: dict) -> TickBacktestResult:
    """Build the result from the venue's logs (frames, or drained ``{column: array}`` dicts)."""
    frames = {name: _frame(logs.get(name), name) for name in LOG_COLUMNS}
    fills, orders, equity = frames["fills"], frames["orders"], frames["equity"]
    start_cash = float(params.cash)
    interval_ns = duration_ns(params.equity_interval)
    final_equity = _final_equity(start_cash, fills, equity)
    curve = _grid(equity, interval_ns)
    points = np.append(curve["equity"], final_equity) if len(curve["equity"]) else np.array([final_equity])
    drawdown, drawdown_pct = _max_drawdown(points)
    qty = fills["qty"].to_numpy().astype(np.float64) / _UNIT if fills.height else np.zeros(0)
    liquidity = fills["liquidity"].to_numpy() if fills.height else np.zeros(0, dtype=object)
    stats = {
        "start_cash": start_cash,
        "final_equity": final_equity,
        "pnl": final_equity - start_cash,
        "fees": float(fills["fee"].sum()) if fills.height else 0.0,
        "fills": fills.height,
        "maker_fills": int((liquidity == "maker").sum()),
        "taker_fills": int((liquidity == "taker").sum()),
        "volume": float(np.abs(qty).sum()),
        "maker_volume": float(np.abs(qty[liquidity == "maker"]).sum()),
        "taker_volume": float(np.abs(qty[liquidity == "taker"]).sum()),
        "notional": float(fills["notional"].abs().sum()) if fills.height else 0.0,
        "max_drawdown": drawdown,
        "max_drawdown_pct": drawdown_pct,
        "sharpe": _sharpe(curve["equity"], interval_ns),
        "time_in_market": float(curve["exposed"].mean()) if len(curve["exposed"]) else 0.0,
        "max_abs_position": float(fills["position"].abs().max() / _UNIT) if fills.height else 0.0,
        "orders_sent": int((orders["event"] == "sent").sum()) if orders.height else 0,
        "rejected": int((orders["event"] == "rejected").sum()) if orders.height else 0,
        "cancelled": int((orders["event"] == "cancelled").sum()) if orders.height else 0,
    }
    return TickBacktestResult(fills=fills, orders=orders, equity=equity, queue=frames["queue"], stats=stats)


def _final_equity(start_cash: float, fills: pl.DataFrame, equity: pl.DataFrame) -> float:
    """Cash after the last fill + Σ position × the latest mark per instrument."""
    cash = float(fills["cash"][-1]) if fills.height else (float(equity["cash"][-1]) if equity.height else start_cash)
    marks: dict[int, tuple[int, float]] = {}
    if equity.height:
        for key, ts, mid in equity.select("key", "ts_exchange", "mid").iter_rows():
            if mid == mid:
                marks[key] = (ts, mid)
    positions: dict[int, int] = {}
    for row in fills.select("key", "ts_exchange", "position", "best_bid", "best_ask").iter_rows():
        key, ts, position, bid, ask = row
        positions[key] = position
        if 0 < bid < (1 << 62) and 0 < ask < (1 << 62) and ts >= marks.get(key, (-(1 << 63), 0.0))[0]:
            marks[key] = (ts, (bid + ask) / 2e9)
    held = 0.0
    for key, position in positions.items():
        if position and key in marks:
            held += position / _UNIT * marks[key][1]
    return cash + held


def _grid(equity: pl.DataFrame, interval_ns: int) -> dict[str, np.ndarray]:
    """Account equity and exposure on the regular grid of intervals.

    A boundary without a row had no event between it and the next row's boundary, and each row holds the
    account as the event that crossed its boundary found it: so a gap takes the values of the row after it.
    """
    if equity.height == 0:
        return {"equity": np.zeros(0), "exposed": np.zeros(0, bool)}
    per_ts = (equity.group_by("ts_exchange", maintain_order=True)
              .agg(pl.col("equity").first(), (pl.col("position") != 0).any().alias("exposed"))
              .sort("ts_exchange"))
    ts = per_ts["ts_exchange"].to_numpy()
    slots = (ts - ts[0]) // interval_ns
    filled_equity = np.full(int(slots[-1]) + 1, np.nan)
    filled_exposed = np.zeros(int(slots[-1]) + 1, np.int8) - 1
    filled_equity[slots] = per_ts["equity"].to_numpy()
    filled_exposed[slots] = per_ts["exposed"].to_numpy().astype(np.int8)
    positions = np.arange(len(filled_equity))
    index = np.minimum.accumulate(np.where(np.isnan(filled_equity), len(filled_equity), positions)[::-1])[::-1]
    return {"equity": filled_equity[index], "exposed": filled_exposed[index] == 1}


def _max_drawdown(points: np.ndarray) -> tuple[float, float]:
    peaks = np.maximum.accumulate(points)
    falls = peaks - points
    i = int(np.argmax(falls))
    pct = float(falls[i] / peaks[i]) if peaks[i] > 0 else math.nan
    return float(falls[i]), pct


def _sharpe(curve: np.ndarray, interval_ns: int) -> float:
    if len(curve) < 3:
        return math.nan
    changes = np.diff(curve)
    std = changes.std(ddof=1)
    if not std > 0:
        return math.nan
    return float(changes.mean() / std * math.sqrt(_YEAR_NS / interval_ns))
