"""Monte Carlo of a backtest: resample its returns into many paths and report how final equity, max drawdown
and time to recovery are distributed.

Two resamplings, each deterministic for a seed (``numpy.random.default_rng(seed)``) and vectorized over paths:

- ``bootstrap_trades``: every path is as many trades as the backtest made, drawn with replacement from its
  trade returns and compounded. A trade's return is what it did to the account (the stress run passes PnL
  over the account's equity at entry, so sizes and concurrent trades are accounted for). It asks: what if the
  same kind of trades had come in another order and mix?
- ``block_bootstrap_returns``: every path is as many periods as the equity curve has, made of blocks of
  ``block_len`` consecutive period returns (circular: a block may wrap from the end to the start), drawn with
  replacement. Blocks keep the short-range dependence (volatility clusters, a position held over several
  bars) that drawing single returns would destroy; returns are the strategy's mark-to-market returns, so
  exposure and costs are in them.

Per path (``path_metrics``), with ``E`` the path's equity starting at ``start_equity``:

- final equity ``E[-1]``;
- max drawdown ``max(1 − E / cummax(E))`` (a fraction; tables show ``−100 ×`` it, as the stats do);
- time to recovery: steps from the peak before the deepest trough to the first step back at or above that
  peak (``inf`` when the path never gets back; 0 without a drawdown). Steps are trades or periods.

Quantiles use ``inverted_cdf`` (each is a value some path has), so they are monotone and well defined with
``inf``. Memory: paths are made ``_BATCH_VALUES`` numbers at a time; the fan chart keeps at most ``FAN_POINTS``
steps per path.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
FAN_LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
FAN_POINTS = 200
_BATCH_VALUES = 4_000_000  # numbers per batch of paths (32 MB of float64)


@dataclass
class MonteCarloResult:
    """The distribution of a resampling: per-path arrays and the fan of equity quantiles over steps."""

    method: str  # "trades" or "block"
    n_paths: int
    seed: int
    steps: int  # trades or periods per path
    start_equity: float
    final_equity: np.ndarray
    max_drawdown: np.ndarray  # fractions, 0 = none
    time_to_recovery: np.ndarray  # steps, inf = never
    fan_steps: np.ndarray  # the steps the fan is drawn at (0 = the start)
    fan: np.ndarray  # len(FAN_LEVELS) × len(fan_steps) equity quantiles
    block_len: int | None = None
    step_unit: str = "trades"
    base: dict[str, float] = field(default_factory=dict)  # the backtest's own values, for comparison

    def quantiles(self, levels: tuple[float, ...] = QUANTILES) -> pl.DataFrame:
        """One row per quantile level: final equity, max drawdown [%] (negative) and time to recovery."""
        qs = np.asarray(levels)
        return pl.DataFrame({
            "quantile": qs,
            "Equity Final [$]": np.quantile(self.final_equity, qs, method="inverted_cdf"),
            "Max. Drawdown [%]": np.quantile(-100.0 * self.max_drawdown, qs, method="inverted_cdf"),
            f"Time to Recovery [{self.step_unit}]": np.quantile(self.time_to_recovery, qs, method="inverted_cdf"),
        })

    def summary(self) -> dict[str, float]:
        """A few probabilities a reader asks first."""
        return {
            "paths": self.n_paths,
            "P(loss) [%]": 100.0 * float(np.mean(self.final_equity < self.start_equity)),
            "P(never recovers) [%]": 100.0 * float(np.mean(np.isinf(self.time_to_recovery))),
            "Mean Equity Final [$]": float(np.mean(self.final_equity)),
            "Median Max. Drawdown [%]": float(np.quantile(-100.0 * self.max_drawdown, 0.5, method="inverted_cdf")),
        }


def bootstrap_trades(trade_returns: np.ndarray, n_paths: int, seed: int, *,
                     start_equity: float = 1.0) -> MonteCarloResult:
    """Resample trade returns (fractions) with replacement into ``n_paths`` paths of as many trades.

    Example:
        >>> mc = bootstrap_trades(np.array([0.1, -0.05]), n_paths=1000, seed=1, start_equity=100.0)
        >>> mc.final_equity.shape, bool(np.all(mc.max_drawdown <= 0.05 * 2))
        ((1000,), True)

    Raises:
        ValueError: no returns, a return at or below -1 (a trade cannot lose more than everything), or
            ``n_paths`` < 1.
    """
    returns = _checked(trade_returns, n_paths)
    n = len(returns)
    rng = np.random.default_rng(seed)

    def draw(paths: int) -> np.ndarray:
        return returns[rng.integers(0, n, size=(paths, n))]

    return _simulate("trades", draw, n, n_paths, seed, start_equity, "trades", None)


def block_bootstrap_returns(returns: np.ndarray, block_len: int, n_paths: int, seed: int, *,
                            start_equity: float = 1.0, step_unit: str = "bars") -> MonteCarloResult:
    """Resample period returns in circular blocks of ``block_len`` into ``n_paths`` paths of as many periods.

    Raises:
        ValueError: no returns, a return at or below -1, ``block_len`` outside ``[1, len(returns)]`` or
            ``n_paths`` < 1.
    """
    values = _checked(returns, n_paths)
    n = len(values)
    if not 1 <= block_len <= n:
        raise ValueError(f"block_len must be between 1 and the number of returns ({n}), got {block_len}")
    blocks = math.ceil(n / block_len)
    offsets = np.arange(block_len)
    rng = np.random.default_rng(seed)

    def draw(paths: int) -> np.ndarray:
        starts = rng.integers(0, n, size=(paths, blocks))
        index = (starts[:, :, None] + offsets) % n
        return values[index.reshape(paths, blocks * block_len)[:, :n]]

    return _simulate("block", draw, n, n_paths, seed, start_equity, step_unit, block_len)


def default_block_len(n_returns: int) -> int:
    """A common rule of thumb for the block length: the cube root of the sample size (at least 1)."""
    return max(1, round(n_returns ** (1 / 3)))


def path_metrics(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Final equity, max drawdown (fraction) and time to recovery (steps, inf = never) of each row of ``equity``
    (paths × steps, the first column the start).

    Example:
        >>> final, drawdown, recovery = path_metrics(np.array([[100.0, 120, 90, 110, 125, 100],
        ...                                                    [100.0, 101, 102, 103, 104, 105],
        ...                                                    [100.0, 75, 90, 95, 99, 99]]))
        >>> final.tolist(), drawdown.tolist(), recovery.tolist()
        ([100.0, 105.0, 99.0], [0.25, 0.0, 0.25], [3.0, 0.0, inf])
    """
    paths, steps = equity.shape
    rows = np.arange(paths)
    peak = np.maximum.accumulate(equity, axis=1)
    drawdown = 1.0 - equity / peak
    trough = np.argmax(drawdown, axis=1)
    deepest = drawdown[rows, trough]
    peak_value = peak[rows, trough]
    index = np.arange(steps)
    # the step of the running peak: the last step at or before each step where equity made its high
    peak_step = np.maximum.accumulate(np.where(equity >= peak, index, 0), axis=1)[rows, trough]
    back = (equity >= peak_value[:, None]) & (index > trough[:, None])
    recovered = back.any(axis=1)
    recovery = np.where(recovered, np.argmax(back, axis=1) - peak_step, np.inf)
    return equity[:, -1].copy(), deepest, np.where(deepest > 0, recovery, 0.0)


def _checked(returns: np.ndarray, n_paths: int) -> np.ndarray:
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("expected a non-empty 1-D array of returns")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"returns must be finite; {int(np.sum(~np.isfinite(values)))} are not")
    if np.any(values <= -1.0):
        raise ValueError(f"a return of {values.min()} is a loss of everything or more; returns must be above -1")
    if n_paths < 1:
        raise ValueError(f"n_paths must be at least 1, got {n_paths}")
    return values


def _simulate(method: str, draw, steps: int, n_paths: int, seed: int, start_equity: float, step_unit: str,
              block_len: int | None) -> MonteCarloResult:
    batch = max(1, _BATCH_VALUES // (steps + 1))
    fan_steps = np.unique(np.linspace(0, steps, min(FAN_POINTS, steps + 1)).round().astype(np.int64))
    finals, drawdowns, recoveries, sampled = [], [], [], []
    for first in range(0, n_paths, batch):
        paths = min(batch, n_paths - first)
        growth = np.cumprod(1.0 + draw(paths), axis=1)
        equity = start_equity * np.concatenate([np.ones((paths, 1)), growth], axis=1)
        final, drawdown, recovery = path_metrics(equity)
        finals.append(final)
        drawdowns.append(drawdown)
        recoveries.append(recovery)
        sampled.append(equity[:, fan_steps])
    fan = np.quantile(np.concatenate(sampled), FAN_LEVELS, axis=0, method="inverted_cdf")
    return MonteCarloResult(method, n_paths, seed, steps, start_equity, np.concatenate(finals),
                            np.concatenate(drawdowns), np.concatenate(recoveries), fan_steps, fan, block_len, step_unit)
