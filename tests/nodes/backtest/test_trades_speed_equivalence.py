"""The numba pairing and the vectorized statistics give exactly what the pure-Python code they replaced gave.

The reference below is that code, copied verbatim from ``nodes/backtest/trades.py`` and ``stats.py`` as they were
before the speed-up (only renamed; the statistics helpers that were not rewritten are imported from ``stats``).
Random venue records and equity curves go through both: every trade column must be bit-identical (same dtypes,
same row order, floats compared by their bits), the end-close cost and every statistic identical (NaN where
NaN), and a bad record must raise the same exception with the same message.
"""

import math
import struct
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from nodes.backtest import stats as stats_module
from nodes.backtest import trades as trades_module
from nodes.backtest.stats import (
    DAY_NS,
    EQUITY_COLUMNS,
    MARK_COLUMNS,
    TRADE_COLUMNS,
    _bar_period_ns,
    _format_duration,
    _geometric_mean,
    _iso_utc,
    _max_ns,
    _mean_ns,
    _plain,
    _put_duration,
    _require_columns,
    _SECOND_NS,
    _zero_to_nan,
    compute_stats,
)
from nodes.backtest.trades import FILL_TIMES, QTY_REL_TOL, RECORD_COLUMNS, TRADE_SCHEMA, trades_from_fills
from nodes.errors import DataQualityError

ROOT = Path(__file__).resolve().parents[3]

# ------------------------------------------------------------------ reference: trades.py before the speed-up


@dataclass
class _RefLot:
    """An open lot: what is left of one opening fill."""

    qty: float  # signed, shrinks as parts are closed
    entry_price: float
    entry_ts: int
    entry_index: int
    entry_commission: float  # what is left of the opening fill's commission share


def reference_trades_from_fills(
    frame: pl.DataFrame,
    *,
    fill_at: str,
    close_at_end: bool,
    commission: float,
    commission_per_unit: float,
    slippage_bps: float,
) -> tuple[pl.DataFrame, float]:
    """The pure-Python pairing that ``trades_from_fills`` replaced, verbatim but for names."""
    if fill_at not in FILL_TIMES:
        raise ValueError(f"fill_at must be one of {sorted(FILL_TIMES)}, got {fill_at!r}")
    for name, value in (
        ("commission", commission),
        ("commission_per_unit", commission_per_unit),
        ("slippage_bps", slippage_bps),
    ):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    missing = [c for c in RECORD_COLUMNS if c not in frame.columns]
    if missing:
        raise DataQualityError(f"venue record is missing columns {missing}; it has {frame.columns}")
    ts_recv = frame.get_column("ts_recv").to_numpy()
    if len(ts_recv) > 1 and (np.diff(ts_recv) < 0).any():
        row = int(np.flatnonzero(np.diff(ts_recv) < 0)[0]) + 1
        raise DataQualityError(f"venue record: ts_recv goes back in time at row {row}; rows must be in event order")

    rows: list[tuple] = []
    open_lots: dict[str, deque[_RefLot]] = {}
    largest_fill: dict[str, float] = {}  # per instrument: the scale of its quantities, for QTY_REL_TOL
    fills = (
        frame.select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
            pl.col(FILL_TIMES[fill_at]).alias("ts"),
            "instrument",
            "position",
            "fill_qty",
            "fill_price",
            "commission",
        )
        .filter((pl.col("fill_qty") != 0.0) | pl.col("fill_qty").is_nan() | pl.col("fill_qty").is_null())
    )
    for index, ts, instrument, position, qty, price, fee in fills.iter_rows():
        if qty is None or price is None or fee is None or not (
            math.isfinite(qty) and math.isfinite(price) and math.isfinite(fee)
        ):
            raise DataQualityError(
                f"venue record row {index} ({instrument}): a fill needs a finite fill_qty, fill_price and "
                f"commission, got {qty!r}, {price!r}, {fee!r}"
            )
        lots = open_lots.setdefault(instrument, deque())
        largest_fill[instrument] = max(largest_fill.get(instrument, 0.0), abs(qty))
        _ref_apply_fill(lots, rows, instrument, index, ts, qty, price, fee)
        _ref_check_position(lots, position, largest_fill[instrument], instrument, index)

    end_close_cost = 0.0
    last_rows = (
        frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("index"))
        .group_by("instrument", maintain_order=True)
        .last()
        .select("index", "instrument", "ts_recv", "position", "mark_price")
    )
    for index, instrument, ts, position, close in last_rows.iter_rows():
        lots = open_lots.get(instrument, deque())
        _ref_check_position(lots, position, largest_fill.get(instrument, 0.0), instrument, index)
        if not (close_at_end and lots):
            continue
        if close is None or not math.isfinite(close):
            raise DataQualityError(
                f"venue record row {index} ({instrument}): cannot close open lots at the end, mark_price is {close!r}"
            )
        slip = slippage_bps / 1e4
        exit_price = close * (1.0 - slip) if lots[0].qty > 0 else close * (1.0 + slip)
        while lots:
            lot = lots.popleft()
            units = abs(lot.qty)
            fee = commission * units * exit_price + commission_per_unit * units
            rows.append(_ref_trade_row(instrument, lot, lot.qty, lot.entry_commission, exit_price, ts, index, fee))
            end_close_cost += fee + units * abs(close - exit_price)

    trades = pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row").sort("exit_event_index", maintain_order=True)
    return trades, end_close_cost


def _ref_apply_fill(
    lots: deque[_RefLot], rows: list[tuple], instrument: str, index: int, ts: int, qty: float, price: float, fee: float
) -> None:
    """Close lots FIFO against a fill, then open a lot with whatever is left of it."""
    units = abs(qty)
    remaining = qty
    while remaining and lots and (lots[0].qty > 0) != (remaining > 0):
        lot = lots[0]
        lot_units = abs(lot.qty)
        closed_units = min(abs(remaining), lot_units)
        whole = lot_units - closed_units <= QTY_REL_TOL * lot_units
        if whole:
            closed_units = lot_units
            entry_fee = lot.entry_commission
            lots.popleft()
        else:
            entry_fee = lot.entry_commission * (closed_units / lot_units)
            lot.entry_commission -= entry_fee
            lot.qty = math.copysign(lot_units - closed_units, lot.qty)
        closed_size = math.copysign(closed_units, lot.qty)
        exit_fee = fee * (closed_units / units)
        rows.append(_ref_trade_row(instrument, lot, closed_size, entry_fee, price, ts, index, exit_fee))
        remaining += closed_size
        if abs(remaining) <= QTY_REL_TOL * units:
            remaining = 0.0
    if remaining:
        lots.append(_RefLot(remaining, price, ts, index, fee * (abs(remaining) / units)))


def _ref_trade_row(
    instrument: str,
    lot: _RefLot,
    size: float,
    entry_fee: float,
    exit_price: float,
    exit_ts: int,
    exit_index: int,
    exit_fee: float,
) -> tuple:
    """Build one trade row in ``TRADE_SCHEMA`` order."""
    fees = entry_fee + exit_fee
    pnl = size * (exit_price - lot.entry_price) - entry_fee - exit_fee
    gross = math.copysign(1.0, size) * (exit_price / lot.entry_price - 1.0)
    return_pct = (gross - fees / (abs(size) * lot.entry_price)) * 100.0
    return (
        instrument,
        size,
        lot.entry_ts,
        exit_ts,
        lot.entry_price,
        exit_price,
        pnl,
        return_pct,
        fees,
        exit_ts - lot.entry_ts,
        lot.entry_index,
        exit_index,
    )


def _ref_check_position(
    lots: deque[_RefLot], position: float | None, scale: float, instrument: str, index: int
) -> None:
    """Raise unless the open lots add up to the position the venue recorded for this row.

    ``scale`` is the largest fill of the instrument so far: the venue's own running sum leaves float residue
    (0.3 − 0.1 − 0.1 − 0.1 ≠ 0) that is small against the fills, not against the position.
    """
    held = sum(lot.qty for lot in lots)
    recorded = math.nan if position is None else position
    if not abs(held - recorded) <= QTY_REL_TOL * max(abs(held), abs(recorded), scale):
        raise DataQualityError(
            f"venue record row {index} ({instrument}): the fills so far add up to a position of {held!r} but the "
            f"row records position {recorded!r}; fill_qty and position disagree"
        )


# ----------------------------------------------------------------- reference: stats.py before the speed-up


def reference_compute_stats(
    equity: pl.DataFrame,
    trades: pl.DataFrame,
    marks: pl.DataFrame,
    *,
    risk_free_rate: float = 0.0,
) -> dict[str, Any]:
    """The ``compute_stats`` before the speed-up, verbatim but for names."""
    if not -1.0 < risk_free_rate < 1.0:
        raise ValueError(f"risk_free_rate must be an annual fraction in (-1, 1), got {risk_free_rate!r}")
    _require_columns("equity", equity, EQUITY_COLUMNS)
    _require_columns("trades", trades, TRADE_COLUMNS)
    _require_columns("marks", marks, MARK_COLUMNS)
    ts = equity.get_column("ts").cast(pl.Int64).to_numpy()
    eq = equity.get_column("equity").cast(pl.Float64).to_numpy()
    _ref_check_equity(ts, eq)

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        stats = _ref_compute(ts, eq, trades, marks, risk_free_rate)
    return {key: _plain(value) for key, value in stats.items()}


def _ref_compute(
    ts: np.ndarray, eq: np.ndarray, trades: pl.DataFrame, marks: pl.DataFrame, risk_free_rate: float
) -> dict[str, Any]:
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

    exposed = np.zeros(len(ts), dtype=bool)
    for entry, exit_ in zip(entry_ts, exit_ts, strict=True):
        exposed[np.searchsorted(ts, entry, "left") : np.searchsorted(ts, exit_, "right")] = True
    s["Exposure Time [%]"] = exposed.mean() * 100
    s["Equity Final [$]"] = eq[-1]
    s["Equity Peak [$]"] = eq.max()
    s["Commissions [$]"] = float(trades.get_column("commission").cast(pl.Float64).sum())
    s["Return [%]"] = (eq[-1] - eq[0]) / eq[0] * 100
    s["Buy & Hold Return [%]"] = _ref_buy_and_hold_pct(marks)

    periods_per_year, period_returns = _ref_period_returns(ts, eq, period_ns)
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

    dd = 1 - eq / np.maximum.accumulate(eq)
    max_dd = np.nan_to_num(dd.max())
    s["Calmar Ratio"] = np.float64(annualized) / _zero_to_nan(max_dd)
    s["Max. Drawdown [%]"] = -max_dd * 100
    episode_ns, episode_depth = _ref_drawdown_episodes(ts, dd)
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


def _ref_check_equity(ts: np.ndarray, eq: np.ndarray) -> None:
    if len(ts) == 0:
        raise DataQualityError("equity has no rows; statistics need at least one")
    steps = np.diff(ts)
    if (steps <= 0).any():
        row = int(np.flatnonzero(steps <= 0)[0]) + 1
        raise DataQualityError(
            f"equity row {row}: ts {ts[row]} does not follow {ts[row - 1]}; ts must strictly increase"
        )
    bad = ~np.isfinite(eq)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataQualityError(f"equity has {len(rows)} non-finite values, first at row {int(rows[0])}")


def _ref_period_returns(ts: np.ndarray, eq: np.ndarray, period_ns: int | None) -> tuple[int, np.ndarray]:
    """Periods per year and the returns of equity resampled to its last value per UTC calendar period."""
    day = ts // DAY_NS
    period_days = period_ns // DAY_NS if period_ns is not None else None
    if period_days == 7:
        periods_per_year, key = 52, (day + 3) // 7  # 1970-01-01 is a Thursday: weeks start on Monday
    elif period_days == 31:
        periods_per_year, key = 12, ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    elif period_days == 365:
        periods_per_year, key = 1, ts.astype("datetime64[ns]").astype("datetime64[Y]").astype(np.int64)
    else:
        weekend_share = np.mean((day + 3) % 7 >= 5)
        periods_per_year, key = (365 if weekend_share > 2 / 7 * 0.6 else 252), day
    last_of_period = eq[np.r_[key[1:] != key[:-1], True]]
    return periods_per_year, last_of_period[1:] / last_of_period[:-1] - 1


def _ref_drawdown_episodes(ts: np.ndarray, dd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each drawdown episode's duration (ns) and deepest drawdown (fraction)."""
    bounds = np.unique(np.r_[np.flatnonzero(dd == 0), len(dd) - 1])
    starts, ends = bounds[:-1], bounds[1:]
    keep = ends > starts + 1
    starts, ends = starts[keep], ends[keep]
    if not len(starts):
        # backtesting.py then falls back to the non-zero drawdown values themselves for the depth
        return np.empty(0, dtype=np.int64), dd[dd != 0]
    depth = np.array([dd[a : b + 1].max() for a, b in zip(starts, ends, strict=True)])
    return ts[ends] - ts[starts], depth


def _ref_buy_and_hold_pct(marks: pl.DataFrame) -> float:
    if marks.is_empty():
        return np.nan
    ends = (
        marks.sort("ts", maintain_order=True)
        .group_by("instrument", maintain_order=True)
        .agg(pl.col("mark_price").first().alias("first"), pl.col("mark_price").last().alias("last"))
    )
    first = ends.get_column("first").cast(pl.Float64).to_numpy()
    last = ends.get_column("last").cast(pl.Float64).to_numpy()
    return np.mean((last - first) / first * 100)

# ------------------------------------------------------------------------------------------- comparison


def _outcome(fn, *args, **kwargs):
    """``("ok", result)`` or ``("raised", type, message)``."""
    with np.errstate(all="ignore"):
        try:
            return ("ok", fn(*args, **kwargs))
        except Exception as error:  # noqa: BLE001 - the very exception is what is compared
            return ("raised", type(error), str(error))


def _float_bits(value) -> bytes:
    return struct.pack("<d", value)


def _assert_same_frames(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.schema == want.schema
    assert got.height == want.height
    for column in want.columns:
        a, b = got.get_column(column), want.get_column(column)
        assert a.is_null().to_list() == b.is_null().to_list(), column
        if a.dtype == pl.Float64:
            bits_a = a.fill_null(0.0).to_numpy().view(np.uint64)
            bits_b = b.fill_null(0.0).to_numpy().view(np.uint64)
            assert np.array_equal(bits_a, bits_b), (column, np.flatnonzero(bits_a != bits_b)[:5])
        else:
            assert a.to_list() == b.to_list(), column


def _assert_same_trades(got, want) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "raised":
        assert got[1:] == want[1:]
        return
    (got_trades, got_cost), (want_trades, want_cost) = got[1], want[1]
    _assert_same_frames(got_trades, want_trades)
    assert type(got_cost) is type(want_cost) and _float_bits(got_cost) == _float_bits(want_cost)


def _same_value(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or _float_bits(a) == _float_bits(b)
    return a == b


def _assert_same_stats(got, want) -> None:
    assert got[0] == want[0], (got, want)
    if got[0] == "raised":
        assert got[1:] == want[1:]
        return
    assert list(got[1]) == list(want[1])
    different = {key: (got[1][key], want[1][key]) for key in want[1] if not _same_value(got[1][key], want[1][key])}
    assert not different


# ------------------------------------------------------------------------------------ random venue records

QTY_CHOICES = (1.0, 2.0, 3.0, 0.1, 0.2, 0.3, 0.7, 1.5, 10.0)


def _random_record(rng: np.random.Generator, n_rows: int, n_instruments: int, dtype) -> pl.DataFrame:
    """A venue record as the bar venue writes it: positions are the running sums of the fills."""
    names = [f"I{k}" for k in range(n_instruments)]
    position = dict.fromkeys(names, 0.0)
    price = {name: float(rng.uniform(5, 500)) for name in names}
    ts = 1_700_000_000 * 10**9 + np.cumsum(rng.integers(0, 3, n_rows)) * 60 * 10**9
    columns: dict[str, list] = {c: [] for c in ("instrument", "position", "fill_qty", "fill_price", "commission",
                                                "mark_price", "equity", "cash")}
    for _ in range(n_rows):
        name = names[int(rng.integers(n_instruments))]
        price[name] *= math.exp(rng.normal(0, 0.01))
        roll = rng.random()
        held = position[name]
        if roll < 0.35:
            qty = 0.0
        elif roll < 0.45 and held:
            qty = -held  # flat
        elif roll < 0.55 and held:
            qty = -2 * held  # reversal
        elif roll < 0.75:
            qty = float(rng.choice(QTY_CHOICES)) * (1 if rng.random() < 0.5 else -1)
        else:
            qty = float(rng.normal(0, 3))
        fill_price = price[name] * (1 + rng.normal(0, 1e-3)) if qty else math.nan
        fee = (float(rng.choice([0.0, 0.001, 0.002])) * abs(qty) * fill_price + rng.random() * 0.01) if qty else 0.0
        position[name] = held + qty
        columns["instrument"].append(name)
        columns["position"].append(position[name])
        columns["fill_qty"].append(qty)
        columns["fill_price"].append(fill_price)
        columns["commission"].append(fee)
        columns["mark_price"].append(price[name])
        columns["equity"].append(0.0)
        columns["cash"].append(0.0)
    frame = pl.DataFrame({"ts_event": ts, "ts_recv": ts + 60 * 10**9, **columns})
    return frame.with_columns(pl.col("instrument").cast(pl.Enum(names) if dtype is pl.Enum else dtype))


INSTRUMENT_DTYPES = (pl.String, pl.Enum, pl.Categorical)


def _random_params(rng: np.random.Generator) -> dict:
    return {
        "fill_at": str(rng.choice(sorted(FILL_TIMES))),
        "close_at_end": bool(rng.random() < 0.7),
        "commission": float(rng.choice([0.0, 0.001, 0.0023])),
        "commission_per_unit": float(rng.choice([0.0, 0.01])),
        "slippage_bps": float(rng.choice([0.0, 5.0, 3.7])),
    }


@pytest.mark.parametrize("seed", range(60))
def test_random_records_pair_exactly_as_before(seed):
    rng = np.random.default_rng(seed)
    dtype = INSTRUMENT_DTYPES[seed % 3]
    frame = _random_record(rng, int(rng.integers(1, 400)), int(rng.integers(1, 4)), dtype)
    params = _random_params(rng)
    want = _outcome(reference_trades_from_fills, frame, **params)
    assert want[0] == "ok", want  # a record the venue could write pairs without error
    _assert_same_trades(_outcome(trades_from_fills, frame, **params), want)


def test_fifo_scale_in_and_out_with_many_open_lots():
    rng = np.random.default_rng(7)
    qty = np.r_[rng.choice([0.1, 0.2, 0.3, 1.0], 300), -rng.choice([0.1, 0.2, 0.3, 1.0], 300)]
    rng.shuffle(qty)
    n = len(qty)
    frame = pl.DataFrame({
        "ts_event": np.arange(n, dtype=np.int64) * 10, "ts_recv": np.arange(1, n + 1, dtype=np.int64) * 10,
        "instrument": "X", "position": np.cumsum(qty), "fill_qty": qty, "fill_price": rng.uniform(90, 110, n),
        "commission": rng.uniform(0, 0.5, n), "mark_price": rng.uniform(90, 110, n),
    })
    for close_at_end in (True, False):
        params = dict(fill_at="next_open", close_at_end=close_at_end, commission=0.001, commission_per_unit=0.01,
                      slippage_bps=2.0)
        want = _outcome(reference_trades_from_fills, frame, **params)
        assert want[0] == "ok" and want[1][0].height > n // 2
        _assert_same_trades(_outcome(trades_from_fills, frame, **params), want)


def _corruptions():
    """(name, function of a record frame and a rng returning a record the pairing must reject or cope with)."""

    def at_random_fill(frame, rng):
        fills = np.flatnonzero(frame.get_column("fill_qty").to_numpy() != 0)
        return int(rng.choice(fills))

    def set_value(column, value, row_of):
        def corrupt(frame, rng):
            row = row_of(frame, rng)
            values = frame.get_column(column).to_list()
            values[row] = value
            return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))
        return corrupt

    last = lambda frame, rng: frame.height - 1  # noqa: E731
    anywhere = lambda frame, rng: int(rng.integers(frame.height))  # noqa: E731
    return [
        ("position off", set_value("position", 123.456, anywhere)),
        ("position null", set_value("position", None, at_random_fill)),
        ("position nan", set_value("position", math.nan, at_random_fill)),
        ("last position off", set_value("position", 99.0, last)),
        ("price nan", set_value("fill_price", math.nan, at_random_fill)),
        ("price inf", set_value("fill_price", math.inf, at_random_fill)),
        ("price null", set_value("fill_price", None, at_random_fill)),
        ("price zero", set_value("fill_price", 0.0, at_random_fill)),
        ("price tiny", set_value("fill_price", 1e-320, at_random_fill)),
        ("qty nan", set_value("fill_qty", math.nan, at_random_fill)),
        ("qty null", set_value("fill_qty", None, at_random_fill)),
        ("commission null", set_value("commission", None, at_random_fill)),
        ("commission nan", set_value("commission", math.nan, at_random_fill)),
        ("last mark nan", set_value("mark_price", math.nan, last)),
        ("last mark null", set_value("mark_price", None, last)),
        ("ts_event null", set_value("ts_event", None, at_random_fill)),
        ("ts_recv null", set_value("ts_recv", None, last)),
        ("ts_recv back", set_value("ts_recv", 0, lambda frame, rng: int(rng.integers(1, frame.height)))),
        ("instrument null", set_value("instrument", None, anywhere)),
        ("missing column", lambda frame, rng: frame.drop("commission")),
        ("empty", lambda frame, rng: frame.clear()),
        ("no fills", lambda frame, rng: frame.with_columns(pl.lit(0.0).alias("fill_qty"))),
    ]


@pytest.mark.parametrize(("name", "corrupt"), _corruptions(), ids=[name for name, _ in _corruptions()])
@pytest.mark.parametrize("seed", range(6))
def test_bad_records_raise_as_before(name, corrupt, seed):
    rng = np.random.default_rng(1000 + seed)
    frame = _random_record(rng, int(rng.integers(20, 120)), 1 + seed % 3, INSTRUMENT_DTYPES[seed % 3])
    if name == "instrument null" and frame.schema["instrument"] != pl.String:
        frame = frame.with_columns(pl.col("instrument").cast(pl.String))
    if not (frame.get_column("fill_qty") != 0).any():
        pytest.skip("no fills to corrupt")
    frame = corrupt(frame, rng)
    for params in (_random_params(rng), {**_random_params(rng), "close_at_end": True}):
        _assert_same_trades(_outcome(trades_from_fills, frame, **params), _outcome(reference_trades_from_fills,
                                                                                 frame, **params))


def test_bad_parameters_raise_as_before():
    frame = _random_record(np.random.default_rng(3), 30, 1, pl.String)
    for params in ({"fill_at": "open"}, {"commission": math.nan}, {"slippage_bps": math.inf}):
        full = {**_random_params(np.random.default_rng(4)), **params}
        _assert_same_trades(_outcome(trades_from_fills, frame, **full),
                            _outcome(reference_trades_from_fills, frame, **full))


def _cpython_sum(values: list[float], compensated: bool) -> float:
    """CPython's ``sum`` of a non-empty list of floats: 0 + first, then plain (3.11) or Neumaier (3.12+) steps."""
    total, lost = 0 + values[0], 0.0
    for x in values[1:]:
        if compensated:
            t = total + x
            lost += (total - t) + x if abs(total) >= abs(x) else (x - t) + total
            total = t
        else:
            total += x
    return total + lost if compensated and lost and math.isfinite(lost) else total


@pytest.mark.parametrize("compensated", [False, True])
def test_open_lots_are_summed_as_python_sums_them(compensated):
    rng = np.random.default_rng(11)
    pool = np.array([0.1, 0.2, 0.3, 0.7, 1.0, 3.0, 1e-9, 1e16, 2.5e15, 123.456, 1 / 3])
    for _ in range(3000):
        size = int(rng.integers(1, 9))
        values = [float(v) for v in rng.choice(pool, size) * rng.choice([1.0, -1.0, 1e-3, 7.7], size)]
        order = np.arange(len(values), dtype=np.int64)
        lot_next = np.r_[order[1:], -1].astype(np.int64)
        got = trades_module._lots_sum(0, lot_next, np.array(values), compensated)
        want = _cpython_sum(values, compensated)
        assert _float_bits(got) == _float_bits(want), values
        if compensated == (sys.version_info >= (3, 12)):
            assert _float_bits(got) == _float_bits(sum(values)), values
    assert trades_module._COMPENSATED_SUM == (sys.version_info >= (3, 12))


def test_engine_record_of_the_sample_strategy_summarizes_as_before():
    from pipelines.plan import compile_plan
    from pipelines.replay import replay
    from pipelines.spec import load_spec

    plan = compile_plan(load_spec(ROOT / "specs" / "strategies" / "sma_cross.yaml"))
    recorded = replay(plan, summarize=False).recorded["sim"]
    params = plan.graph.nodes["sim"].definition.params
    for fill_at, close_at_end in (("next_open", True), ("close", False)):
        costs = dict(commission=params.commission, commission_per_unit=0.01, slippage_bps=4.0)
        want = _outcome(reference_trades_from_fills, recorded, fill_at=fill_at, close_at_end=close_at_end, **costs)
        got = _outcome(trades_from_fills, recorded, fill_at=fill_at, close_at_end=close_at_end, **costs)
        assert want[0] == "ok" and want[1][0].height >= 10
        _assert_same_trades(got, want)
        equity = recorded.select(pl.col("ts_recv").alias("ts"), "equity")
        marks = recorded.select(pl.col("ts_recv").alias("ts"), "instrument", "mark_price")
        _assert_same_stats(_outcome(compute_stats, equity, got[1][0], marks),
                           _outcome(reference_compute_stats, equity, want[1][0], marks))


# ------------------------------------------------------------------------------- random equity curves

MONDAY_2024_01_01_NS = 1_704_067_200 * 10**9
STEPS_NS = {
    "minute": 60 * 10**9,
    "hour": 3_600 * 10**9,
    "day": DAY_NS,
    "week": 7 * DAY_NS,
    "month": 31 * DAY_NS,
    "year": 365 * DAY_NS,
    "odd": 1_234_567_891,
}


def _random_equity_case(rng: np.random.Generator, step: str, n: int):
    base = STEPS_NS[step]
    steps = np.full(n, base, dtype=np.int64)
    if rng.random() < 0.5:  # gaps: weekends, holidays, missing bars
        steps *= rng.choice([1, 1, 1, 2, 3], n)
    ts = MONDAY_2024_01_01_NS + int(rng.integers(-5, 5)) * DAY_NS + np.cumsum(steps) - steps[0]
    kind = rng.random()
    if kind < 0.1:
        eq = np.full(n, 100.0)
    elif kind < 0.2:  # through zero and below, with signed zeros
        eq = np.cumsum(rng.choice([-1.0, 0.0, 1.0, -0.0], n)) + float(rng.choice([0.0, -0.0, 2.0]))
        eq[rng.random(n) < 0.1] = -0.0
    else:
        eq = 1000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        recovered = rng.random(n) < 0.05  # back at the peak: many short drawdown episodes
        eq[recovered] = np.maximum.accumulate(eq)[recovered]
    n_trades = int(rng.integers(0, 40))
    span = (int(ts[0]) - 3 * base, int(ts[-1]) + 3 * base)
    entry = rng.integers(*span, n_trades, dtype=np.int64)
    exit_ = entry + rng.integers(-base, 20 * base, n_trades, dtype=np.int64)
    if rng.random() < 0.5:
        order = np.argsort(exit_, kind="stable")
        entry, exit_ = entry[order], exit_[order]
    trades = pl.DataFrame({
        "entry_ts": entry, "exit_ts": exit_, "pnl": rng.normal(0, 10, n_trades),
        "return_pct": rng.normal(0, 5, n_trades), "commission": rng.uniform(0, 1, n_trades),
    })
    n_marks = int(rng.integers(0, 3 * n + 1))
    marks = pl.DataFrame({
        "ts": np.sort(rng.choice(ts, n_marks)) if rng.random() < 0.6 else rng.choice(ts, n_marks),
        "instrument": rng.choice(["A", "B", "C"], n_marks),
        "mark_price": rng.uniform(1, 100, n_marks),
    })
    return pl.DataFrame({"ts": ts, "equity": eq}), trades, marks


@pytest.mark.parametrize("step", sorted(STEPS_NS))
@pytest.mark.parametrize("seed", range(12))
def test_random_equity_curves_give_the_same_stats(step, seed):
    rng = np.random.default_rng(seed * 31 + len(step))
    n = int(rng.choice([1, 2, 3, 50, 700, 3000]))
    n = min(n, 200 * 365 * DAY_NS // (3 * STEPS_NS[step]))  # within 200 years: ts must not wrap around here
    equity, trades, marks = _random_equity_case(rng, step, n)
    rate = float(rng.choice([0.0, 0.02]))
    _assert_same_stats(_outcome(compute_stats, equity, trades, marks, risk_free_rate=rate),
                       _outcome(reference_compute_stats, equity, trades, marks, risk_free_rate=rate))


# Yearly bars from 100 years before the end of int64 ns: the ts wrap around once, np.diff's (wrapping) steps all
# stay positive, so the equity check passes ts that are not sorted, as it always has.
WRAPPED_TS = np.int64(2**63 - 1 - 100 * 365 * DAY_NS) + np.arange(200, dtype=np.int64) * (365 * DAY_NS)
WRAPPED_EQUITY = pl.DataFrame({"ts": WRAPPED_TS, "equity": 100 + np.arange(200.0) % 7})
_RNG = np.random.default_rng(0)
_WRAPPED_ENTRY = np.sort(_RNG.integers(-(2**63), 2**63 - 2**61, 30, dtype=np.int64))
WRAPPED_TRADES = pl.DataFrame({
    "entry_ts": _WRAPPED_ENTRY,
    "exit_ts": _WRAPPED_ENTRY + _RNG.integers(0, 2**61, 30, dtype=np.int64),
    "pnl": np.ones(30), "return_pct": np.ones(30), "commission": np.ones(30),
})


def test_wrapped_ts_pass_the_check_unsorted_and_take_the_searches_of_before():
    ts = WRAPPED_EQUITY.get_column("ts").to_numpy()
    assert (np.diff(ts) > 0).all() and not (ts[1:] > ts[:-1]).all()
    assert stats_module._equity_faults(ts, np.ones(len(ts))) == (-1, 0, -1, False)
    entry, exit_ = (WRAPPED_TRADES.get_column(c).to_numpy() for c in ("entry_ts", "exit_ts"))
    # the galloping searches of sorted ts would find other rows here
    assert stats_module._exposed_row_count(ts, entry, exit_) != stats_module._exposed_rows(ts, entry, exit_, False)
    marks = pl.DataFrame(schema={"ts": pl.Int64, "instrument": pl.String, "mark_price": pl.Float64})
    got = _outcome(compute_stats, WRAPPED_EQUITY, WRAPPED_TRADES, marks)
    assert got[0] == "ok" and 0 < got[1]["Exposure Time [%]"] < 100
    _assert_same_stats(got, _outcome(reference_compute_stats, WRAPPED_EQUITY, WRAPPED_TRADES, marks))


def test_odd_inputs_give_the_same_stats_or_errors():
    rng = np.random.default_rng(5)
    equity, trades, marks = _random_equity_case(rng, "hour", 300)
    ts = equity.get_column("ts")
    cases = [
        (equity.with_columns(pl.Series("ts", [None, *ts.to_list()[1:]], dtype=pl.Int64)), trades, marks),
        (equity.with_columns(pl.Series("ts", [*ts.to_list()[:5], None, *ts.to_list()[6:]], dtype=pl.Int64)),
         trades, marks),
        (equity.with_columns(pl.Series("ts", [*ts.to_list()[:9], ts[7], *ts.to_list()[10:]])), trades, marks),
        (equity.with_columns(pl.Series("equity", [1.0] * 9 + [math.nan, math.inf] * 2 + [1.0] * 287)), trades, marks),
        (pl.DataFrame({"ts": [-(2**62) - 5, 2**62 + 5], "equity": [1.0, 2.0]}), trades, marks),
        (WRAPPED_EQUITY, WRAPPED_TRADES, marks),
        (pl.DataFrame({"ts": [2**63 - 2, 2**63 - 1], "equity": [1.0, 2.0]}), trades, marks),
        (pl.DataFrame({"ts": [-(2**63), -(2**63) + DAY_NS], "equity": [1.0, 2.0]}), trades, marks),
        (equity, trades.with_columns(pl.Series("entry_ts", [None] * trades.height, dtype=pl.Int64)), marks),
        (equity, trades.with_columns(pl.col("entry_ts").cast(pl.Float64)), marks),
        (equity, trades, marks.with_columns(pl.Series("ts", [None] * marks.height, dtype=pl.Int64))),
        (equity, trades, marks.with_columns(pl.col("ts").cast(pl.UInt64))),
        (equity, trades, marks.with_columns(pl.col("ts").cast(pl.Float64))),
        (equity, trades.clear(), marks.clear()),
        (equity.clear(), trades, marks),
        (equity.drop("equity"), trades, marks),
        (pl.DataFrame({"ts": [MONDAY_2024_01_01_NS], "equity": [0.0]}), trades, marks),
        (pl.DataFrame({"ts": [0, 1, 2, 3], "equity": [0.0, -0.0, -1.0, 0.0]}), trades, marks),
        (pl.DataFrame({"ts": [0, 1, 2, 3], "equity": [-0.0, 0.0, -1.0, -2.0]}), trades, marks),
        (pl.DataFrame({"ts": [0, DAY_NS, 2 * DAY_NS], "equity": [100.0, 110.0, 104.5]}), trades, marks),
    ]
    for equity_case, trades_case, marks_case in cases:
        _assert_same_stats(_outcome(compute_stats, equity_case, trades_case, marks_case),
                           _outcome(reference_compute_stats, equity_case, trades_case, marks_case))
