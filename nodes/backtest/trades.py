"""Pair a simulated venue's fills into round-trip trades, FIFO per instrument.

Scope: turn the per-event record of a bar-level venue (one row per event, columns ``RECORD_COLUMNS``) into one
row per closed lot, the shape backtesting.py 0.6 reports as ``stats._trades``. Non-goals: it simulates nothing,
re-prices no fill and checks no margin; it trusts the fills and only checks that they add up to the recorded
positions.

Pairing rules, per instrument, in event order:

- a fill on the side of the open position (or from flat) opens a new lot;
- a fill against the position closes lots oldest first (FIFO), splitting the last lot it reaches;
- a fill larger than the position closes every lot and opens a new lot with the remainder (a reversal).

A fill's commission is shared pro rata to size between the lots it closes and the lot it opens; a lot carries
its entry commission and hands a pro-rata share to each part closed. Per trade:

- ``pnl = size × (exit_price − entry_price) − entry_commission_share − exit_commission_share``
- ``return_pct = 100 × (sign(size) × (exit_price / entry_price − 1) − commission / (|size| × entry_price))``,
  backtesting.py 0.6 ``Trade.pl_pct`` as a percentage
- ``commission`` = both shares; ``duration_ns = exit_ts − entry_ts``

Quantities within ``QTY_REL_TOL`` (relative) of each other count as equal, so that the float residue of
repeated splits (0.3 − 0.1 − 0.1 − 0.1) closes a lot instead of leaving a dust lot behind.
"""

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import polars as pl

from nodes.errors import DataQualityError

RECORD_COLUMNS = (
    "ts_event",
    "ts_recv",
    "instrument",
    "position",
    "fill_qty",
    "fill_price",
    "commission",
    "mark_price",
)
TRADE_SCHEMA = {
    "instrument": pl.String,
    "size": pl.Float64,
    "entry_ts": pl.Int64,
    "exit_ts": pl.Int64,
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "commission": pl.Float64,
    "duration_ns": pl.Int64,
    "entry_event_index": pl.Int64,
    "exit_event_index": pl.Int64,
}
FILL_TIMES = {"next_open": "ts_event", "close": "ts_recv"}
QTY_REL_TOL = 1e-9


@dataclass
class _Lot:
    """An open lot: what is left of one opening fill."""

    qty: float  # signed, shrinks as parts are closed
    entry_price: float
    entry_ts: int
    entry_index: int
    entry_commission: float  # what is left of the opening fill's commission share


def trades_from_fills(
    frame: pl.DataFrame,
    *,
    fill_at: str,
    close_at_end: bool,
    commission: float,
    commission_per_unit: float,
    slippage_bps: float,
) -> tuple[pl.DataFrame, float]:
    """Pair the fills of a venue record into FIFO round-trip trades, one row per closed lot.

    Parameters
    ----------
    frame:
        The venue record, one row per event in event order, with at least ``RECORD_COLUMNS``: ``ts_event`` and
        ``ts_recv`` (Int64 ns UTC, bar open and close), ``instrument``, ``position`` (after the event),
        ``fill_qty`` (signed, 0.0 without a fill), ``fill_price`` (average, slippage included),
        ``commission`` (of that fill) and ``mark_price`` (the bar's close).
    fill_at:
        ``"next_open"``: a fill happened at its row's ``ts_event``; ``"close"``: at its row's ``ts_recv``.
    close_at_end:
        Close every lot still open at its instrument's last ``mark_price`` and last ``ts_recv``; the sell (buy)
        price is ``close × (1 − slippage_bps/1e4)`` (``× (1 + …)``), commission as below.
    commission:
        Commission as a fraction of traded value, used for the end closes only.
    commission_per_unit:
        Commission per unit traded, in quote currency, used for the end closes only.
    slippage_bps:
        Slippage in basis points against the order, used for the end closes only.

    Returns
    -------
    ``(trades, end_close_cost)``: trades with columns ``TRADE_SCHEMA`` sorted by exit event (FIFO within one
    exit), and the total commission plus slippage cost of the end closes, in quote currency, by which the caller
    lowers final equity (0.0 when nothing was closed at the end).

    Raises
    ------
    ValueError: ``fill_at`` is not one of ``FILL_TIMES``, or a cost parameter is not finite.
    DataQualityError: a column is missing, ``ts_recv`` goes back in time, a fill has no finite price or
        quantity, the fills do not add up to the recorded ``position``, or an end close has no finite mark.

    Example
    -------
    >>> frame = pl.DataFrame({
    ...     "ts_event": [0, 10], "ts_recv": [10, 20], "instrument": ["X", "X"], "position": [2.0, 0.0],
    ...     "fill_qty": [2.0, -2.0], "fill_price": [100.0, 110.0], "commission": [1.0, 1.0],
    ...     "mark_price": [104.0, 112.0]})
    >>> trades, cost = trades_from_fills(frame, fill_at="next_open", close_at_end=True, commission=0.0,
    ...                                  commission_per_unit=0.0, slippage_bps=0.0)
    >>> trades.select("size", "entry_ts", "exit_ts", "pnl").row(0), cost
    ((2.0, 0, 10, 18.0), 0.0)
    """
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
    open_lots: dict[str, deque[_Lot]] = {}
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
        _apply_fill(lots, rows, instrument, index, ts, qty, price, fee)
        _check_position(lots, position, largest_fill[instrument], instrument, index)

    end_close_cost = 0.0
    last_rows = (
        frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("index"))
        .group_by("instrument", maintain_order=True)
        .last()
        .select("index", "instrument", "ts_recv", "position", "mark_price")
    )
    for index, instrument, ts, position, close in last_rows.iter_rows():
        lots = open_lots.get(instrument, deque())
        _check_position(lots, position, largest_fill.get(instrument, 0.0), instrument, index)
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
            rows.append(_trade_row(instrument, lot, lot.qty, lot.entry_commission, exit_price, ts, index, fee))
            end_close_cost += fee + units * abs(close - exit_price)

    trades = pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row").sort("exit_event_index", maintain_order=True)
    return trades, end_close_cost


def _apply_fill(
    lots: deque[_Lot], rows: list[tuple], instrument: str, index: int, ts: int, qty: float, price: float, fee: float
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
        rows.append(_trade_row(instrument, lot, closed_size, entry_fee, price, ts, index, exit_fee))
        remaining += closed_size
        if abs(remaining) <= QTY_REL_TOL * units:
            remaining = 0.0
    if remaining:
        lots.append(_Lot(remaining, price, ts, index, fee * (abs(remaining) / units)))


def _trade_row(
    instrument: str,
    lot: _Lot,
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


def _check_position(
    lots: deque[_Lot], position: float | None, scale: float, instrument: str, index: int
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
