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

Implementation: the fill rows are selected with polars and paired by one numba kernel (``_pair_fifo``) whose
float expressions are those of the pure-Python pairing this module started with, term for term and in the
same order, so that every column is bit-identical to it; the position check sums the open lots as Python's
``sum`` does. The kernel stops where that loop raised and the error is raised here with the same message.
"""

import math
import sys

import numpy as np
import polars as pl
from numba import njit

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

# The pairing kernel's outcome; anything but _OK stops it where the pure-Python loop raised.
_OK, _BAD_FILL, _FILL_POSITION, _END_POSITION, _NO_MARK, _ZERO_DIVISION, _NULL_TS = range(7)
# Its trade columns: rows of two 2-D arrays, one per dtype.
_F_SIZE, _F_ENTRY_PRICE, _F_EXIT_PRICE, _F_PNL, _F_RETURN, _F_COMMISSION = range(6)
_I_CODE, _I_ENTRY_TS, _I_EXIT_TS, _I_DURATION, _I_ENTRY_INDEX, _I_EXIT_INDEX = range(6)
_BLOCK = 4096  # rows a scan for a first fault counts at once before it looks for the row
# sum() of floats is compensated (Neumaier) from CPython 3.12 on: the position check sums lots as sum() does.
_COMPENSATED_SUM = sys.version_info >= (3, 12)


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
    row = _first_step_back(frame.get_column("ts_recv").to_numpy())
    if row >= 0:
        raise DataQualityError(f"venue record: ts_recv goes back in time at row {row}; rows must be in event order")

    ts_column = FILL_TIMES[fill_at]
    fills = (
        frame.lazy()
        .select(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("index"),
            pl.col(ts_column).alias("ts"),
            "instrument",
            "position",
            "fill_qty",
            "fill_price",
            "commission",
        )
        .filter((pl.col("fill_qty") != 0.0) | pl.col("fill_qty").is_nan() | pl.col("fill_qty").is_null())
        .collect()
    )
    # one row per instrument, in order of first appearance: its code in the kernel is its row here
    instruments = frame.get_column("instrument")
    if isinstance(instruments.dtype, (pl.Enum, pl.Categorical)) and instruments.n_unique() == 1:
        # one instrument (the engine's record of a single-instrument run): its last row is the frame's
        last_rows = frame.slice(frame.height - 1).select(
            "instrument", pl.lit(frame.height - 1, dtype=pl.Int64).alias("index"), "ts_recv", "position", "mark_price"
        )
    else:
        last_rows = (
            frame.select(
                pl.int_range(pl.len(), dtype=pl.Int64).alias("index"), "instrument", "ts_recv", "position", "mark_price"
            )
            .group_by("instrument", maintain_order=True)
            .last()
        )
    if last_rows.height <= 1:
        codes = np.zeros(fills.height, dtype=np.int64)
    else:
        keys = last_rows.select("instrument").with_row_index("code")
        codes = (
            fills.select("instrument")
            .join(keys, on="instrument", how="left", nulls_equal=True, maintain_order="left")
            .get_column("code")
            .cast(pl.Int64)
            .to_numpy()
        )
    fill_numbers = [fills.get_column(c).cast(pl.Float64) for c in ("fill_qty", "fill_price", "commission")]
    bad = np.zeros(fills.height, dtype=np.bool_)
    for values in fill_numbers:
        bad |= ~values.is_finite().fill_null(False).to_numpy()
    qty, price, fee = (values.fill_null(0.0).to_numpy() for values in fill_numbers)
    fill_ts, fill_ts_null = _int_and_null(fills.get_column("ts"))
    end_ts, end_ts_null = _int_and_null(last_rows.get_column("ts_recv"))

    status, where, held, held_empty, n_trades, end_close_cost, floats, ints = _pair_fifo(
        codes,
        fill_ts,
        fill_ts_null,
        fills.get_column("index").to_numpy(),
        qty,
        price,
        fee,
        _float_or_nan(fills.get_column("position")),
        bad,
        last_rows.get_column("index").to_numpy(),
        end_ts,
        end_ts_null,
        _float_or_nan(last_rows.get_column("position")),
        _float_or_nan(last_rows.get_column("mark_price")),
        close_at_end,
        slippage_bps / 1e4,
        commission,
        commission_per_unit,
        _COMPENSATED_SUM,
    )
    if status != _OK:
        _raise(status, where, held, held_empty, fills, last_rows)

    columns = {
        "instrument": last_rows.get_column("instrument").cast(pl.String).gather(ints[_I_CODE, :n_trades]),
        "size": floats[_F_SIZE, :n_trades],
        "entry_ts": ints[_I_ENTRY_TS, :n_trades],
        "exit_ts": ints[_I_EXIT_TS, :n_trades],
        "entry_price": floats[_F_ENTRY_PRICE, :n_trades],
        "exit_price": floats[_F_EXIT_PRICE, :n_trades],
        "pnl": floats[_F_PNL, :n_trades],
        "return_pct": floats[_F_RETURN, :n_trades],
        "commission": floats[_F_COMMISSION, :n_trades],
        "duration_ns": ints[_I_DURATION, :n_trades],
        "entry_event_index": ints[_I_ENTRY_INDEX, :n_trades],
        "exit_event_index": ints[_I_EXIT_INDEX, :n_trades],
    }
    trades = pl.DataFrame(
        [pl.Series(name, values, dtype=TRADE_SCHEMA[name]) for name, values in columns.items()]
    ).sort("exit_event_index", maintain_order=True)
    return trades, float(end_close_cost)


def _first_step_back(values: np.ndarray) -> int:
    """The first row ``i`` where ``np.diff(values)[i - 1] < 0``, or -1."""
    if values.dtype == np.int64:
        return _first_negative_int64_step(values)
    back = np.flatnonzero(np.diff(values) < 0) if len(values) > 1 else np.empty(0, dtype=np.int64)
    return int(back[0]) + 1 if len(back) else -1


@njit(cache=True, nogil=True)
def _first_negative_int64_step(values: np.ndarray) -> int:
    """``_first_step_back`` of int64 values; the step wraps around as np.diff's does (hence uint64). Counted
    block by block, so that the loop vectorizes."""
    for start in range(1, len(values), _BLOCK):
        stop = min(start + _BLOCK, len(values))
        hits = 0
        for i in range(start, stop):
            hits += (np.uint64(values[i]) - np.uint64(values[i - 1])) >> np.uint64(63)
        if hits:
            for i in range(start, stop):
                if np.uint64(values[i]) - np.uint64(values[i - 1]) >= np.uint64(2**63):
                    return i
    return -1


def _int_and_null(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """An integer column as int64 values (0 where null) and its null mask."""
    column = column.cast(pl.Int64)
    return column.fill_null(0).to_numpy(), column.is_null().to_numpy()


def _float_or_nan(column: pl.Series) -> np.ndarray:
    """A float column as float64 values, NaN where null (the pure-Python loop read a null as NaN here)."""
    return column.cast(pl.Float64).fill_null(math.nan).to_numpy()


def _raise(status: int, where: int, held: float, held_empty: bool, fills: pl.DataFrame, last_rows: pl.DataFrame):
    """Raise what the pure-Python pairing raised where the kernel stopped, with the same message."""
    if status == _BAD_FILL:
        row = fills.row(where, named=True)
        raise DataQualityError(
            f"venue record row {row['index']} ({row['instrument']}): a fill needs a finite fill_qty, fill_price "
            f"and commission, got {row['fill_qty']!r}, {row['fill_price']!r}, {row['commission']!r}"
        )
    if status == _FILL_POSITION or status == _END_POSITION:
        row = (fills if status == _FILL_POSITION else last_rows).row(where, named=True)
        index, instrument, position = row["index"], row["instrument"], row["position"]
        held_value = 0 if held_empty else float(held)  # sum() over no lots is the int 0
        recorded = math.nan if position is None else position
        raise DataQualityError(
            f"venue record row {index} ({instrument}): the fills so far add up to a position of {held_value!r} "
            f"but the row records position {recorded!r}; fill_qty and position disagree"
        )
    if status == _NO_MARK:
        row = last_rows.row(where, named=True)
        raise DataQualityError(
            f"venue record row {row['index']} ({row['instrument']}): cannot close open lots at the end, "
            f"mark_price is {row['mark_price']!r}"
        )
    if status == _ZERO_DIVISION:
        divisor = 0.0
        1.0 / divisor  # raises the ZeroDivisionError the pure-Python row raised, as this Python words it  # noqa: B018
    if status == _NULL_TS:
        exit_ts = None if where & 1 else 0
        entry_ts = None if where & 2 else 0
        exit_ts - entry_ts  # raises the TypeError the pure-Python loop raised  # noqa: B018
    raise AssertionError(f"unknown pairing status {status}")


@njit(cache=True, nogil=True, error_model="numpy")
def _lots_sum(head: int, lot_next: np.ndarray, lot_qty: np.ndarray, compensated: bool) -> float:
    """``sum(lot.qty for lot in lots)`` as CPython computes it: 0 + first, then plain or Neumaier additions."""
    total = 0.0 + lot_qty[head]
    lost = 0.0
    lot = lot_next[head]
    while lot >= 0:
        x = lot_qty[lot]
        if compensated:
            t = total + x
            if abs(total) >= abs(x):
                lost += (total - t) + x
            else:
                lost += (x - t) + total
            total = t
        else:
            total += x
        lot = lot_next[lot]
    if compensated and lost != 0.0 and math.isfinite(lost):
        total += lost
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _position_agrees(held: float, recorded: float, scale: float) -> bool:
    """``abs(held - recorded) <= QTY_REL_TOL * max(abs(held), abs(recorded), scale)`` with Python's max."""
    largest = abs(held)
    if abs(recorded) > largest:
        largest = abs(recorded)
    if scale > largest:
        largest = scale
    return abs(held - recorded) <= QTY_REL_TOL * largest


@njit(cache=True, nogil=True, error_model="numpy")
def _put_trade(
    floats, ints, row, code, size, entry_fee, exit_fee, entry_price, exit_price,
    entry_ts, entry_ts_null, exit_ts, exit_ts_null, entry_index, exit_index,
) -> tuple[int, int]:
    """Write one trade row; ``(status, detail)`` is not ``_OK`` where the pure-Python row raised."""
    fees = entry_fee + exit_fee
    pnl = size * (exit_price - entry_price) - entry_fee - exit_fee
    if entry_price == 0.0:
        return _ZERO_DIVISION, 0
    gross = math.copysign(1.0, size) * (exit_price / entry_price - 1.0)
    scale = abs(size) * entry_price
    if scale == 0.0:
        return _ZERO_DIVISION, 0
    return_pct = (gross - fees / scale) * 100.0
    if exit_ts_null or entry_ts_null:
        return _NULL_TS, (1 if exit_ts_null else 0) | (2 if entry_ts_null else 0)
    floats[_F_SIZE, row] = size
    floats[_F_ENTRY_PRICE, row] = entry_price
    floats[_F_EXIT_PRICE, row] = exit_price
    floats[_F_PNL, row] = pnl
    floats[_F_RETURN, row] = return_pct
    floats[_F_COMMISSION, row] = fees
    ints[_I_CODE, row] = code
    ints[_I_ENTRY_TS, row] = entry_ts
    ints[_I_EXIT_TS, row] = exit_ts
    ints[_I_DURATION, row] = exit_ts - entry_ts
    ints[_I_ENTRY_INDEX, row] = entry_index
    ints[_I_EXIT_INDEX, row] = exit_index
    return _OK, 0


@njit(cache=True, nogil=True, error_model="numpy")
def _pair_fifo(
    code, ts, ts_null, index, qty, price, fee, position, bad,
    end_index, end_ts, end_ts_null, end_position, end_close,
    close_at_end, slip, commission, commission_per_unit, compensated,
):
    """Pair fills FIFO per instrument, then check (and, when asked, close) each instrument's lots at its end.

    Fill arrays are per fill row in event order, ``code`` the instrument's row in the ``end_*`` arrays (one per
    instrument). Returns ``(status, where, held, held_empty, n_trades, end_close_cost, floats, ints)``: where
    the loop stopped (a fill row, an instrument, or the null-ts detail) and the open position there for a
    position error; the trade columns in ``floats``/``ints`` rows, the first ``n_trades`` in pairing order.
    """
    n_fills = len(qty)
    n_instruments = len(end_index)
    # Each fill opens at most one lot and ends at most one partial close; each lot closes whole at most once.
    bound = 2 * n_fills
    floats = np.empty((6, bound), dtype=np.float64)
    ints = np.empty((6, bound), dtype=np.int64)
    # The open lots: one pool in opening order, a FIFO linked list per instrument through lot_next.
    lot_qty = np.empty(n_fills, dtype=np.float64)
    lot_price = np.empty(n_fills, dtype=np.float64)
    lot_ts = np.empty(n_fills, dtype=np.int64)
    lot_ts_null = np.empty(n_fills, dtype=np.bool_)
    lot_index = np.empty(n_fills, dtype=np.int64)
    lot_fee = np.empty(n_fills, dtype=np.float64)
    lot_next = np.empty(n_fills, dtype=np.int64)
    head = np.full(n_instruments, -1, dtype=np.int64)
    tail = np.full(n_instruments, -1, dtype=np.int64)
    largest = np.zeros(n_instruments, dtype=np.float64)  # the largest |fill| so far, for QTY_REL_TOL
    n_lots = 0
    row = 0
    for i in range(n_fills):
        if bad[i]:
            return _BAD_FILL, i, 0.0, True, row, 0.0, floats, ints
        c = code[i]
        q = qty[i]
        p = price[i]
        f = fee[i]
        units = abs(q)
        if units > largest[c]:
            largest[c] = units
        remaining = q
        while remaining != 0.0 and head[c] >= 0 and (lot_qty[head[c]] > 0) != (remaining > 0):
            lot = head[c]
            lot_units = abs(lot_qty[lot])
            closed_units = abs(remaining)
            if lot_units < closed_units:
                closed_units = lot_units
            if lot_units - closed_units <= QTY_REL_TOL * lot_units:
                closed_units = lot_units
                entry_fee = lot_fee[lot]
                head[c] = lot_next[lot]
            else:
                entry_fee = lot_fee[lot] * (closed_units / lot_units)
                lot_fee[lot] -= entry_fee
                lot_qty[lot] = math.copysign(lot_units - closed_units, lot_qty[lot])
            closed_size = math.copysign(closed_units, lot_qty[lot])
            exit_fee = f * (closed_units / units)
            status, detail = _put_trade(
                floats, ints, row, c, closed_size, entry_fee, exit_fee, lot_price[lot], p,
                lot_ts[lot], lot_ts_null[lot], ts[i], ts_null[i], lot_index[lot], index[i],
            )
            if status != _OK:
                return status, detail, 0.0, True, row, 0.0, floats, ints
            row += 1
            remaining += closed_size
            if abs(remaining) <= QTY_REL_TOL * units:
                remaining = 0.0
        if remaining != 0.0:
            lot_qty[n_lots] = remaining
            lot_price[n_lots] = p
            lot_ts[n_lots] = ts[i]
            lot_ts_null[n_lots] = ts_null[i]
            lot_index[n_lots] = index[i]
            lot_fee[n_lots] = f * (abs(remaining) / units)
            lot_next[n_lots] = -1
            if head[c] < 0:
                head[c] = n_lots
            else:
                lot_next[tail[c]] = n_lots
            tail[c] = n_lots
            n_lots += 1
        held = _lots_sum(head[c], lot_next, lot_qty, compensated) if head[c] >= 0 else 0.0
        if not _position_agrees(held, position[i], largest[c]):
            return _FILL_POSITION, i, held, head[c] < 0, row, 0.0, floats, ints

    end_close_cost = 0.0
    for c in range(n_instruments):
        held = _lots_sum(head[c], lot_next, lot_qty, compensated) if head[c] >= 0 else 0.0
        if not _position_agrees(held, end_position[c], largest[c]):
            return _END_POSITION, c, held, head[c] < 0, row, 0.0, floats, ints
        if not (close_at_end and head[c] >= 0):
            continue
        close = end_close[c]
        if not math.isfinite(close):
            return _NO_MARK, c, 0.0, True, row, 0.0, floats, ints
        exit_price = close * (1.0 - slip) if lot_qty[head[c]] > 0 else close * (1.0 + slip)
        while head[c] >= 0:
            lot = head[c]
            head[c] = lot_next[lot]
            units = abs(lot_qty[lot])
            f = commission * units * exit_price + commission_per_unit * units
            status, detail = _put_trade(
                floats, ints, row, c, lot_qty[lot], lot_fee[lot], f, lot_price[lot], exit_price,
                lot_ts[lot], lot_ts_null[lot], end_ts[c], end_ts_null[c], lot_index[lot], end_index[c],
            )
            if status != _OK:
                return status, detail, 0.0, True, row, 0.0, floats, ints
            row += 1
            end_close_cost += f + units * abs(close - exit_price)
    return _OK, 0, 0.0, True, row, end_close_cost, floats, ints
