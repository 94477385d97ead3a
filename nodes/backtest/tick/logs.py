"""The venue's logs: rows appended in the step, drained into columns by Python after every chunk.

Every log kind shares one int64 and one float64 buffer (``layout.L_*`` / ``LF_*`` columns, ``L_KIND`` says which
log a row belongs to), so a state holds two arrays for all four logs. The step writes rows without allocating;
``reserve_log`` grows the buffers at a phase boundary when the rows a phase may write would not fit. ``drain``
splits the rows by kind into the columns each log documents (``LOG_COLUMNS``) and names the codes.
"""

import numpy as np

from nodes.backtest.tick.codes import EVENT_NAMES, LIQUIDITY_NAMES, ORDER_TYPE_NAMES, QUEUE_CAUSE_NAMES, REASON_NAMES
from nodes.backtest.tick.layout import (
    A_LOG_N,
    ACC,
    L_AHEAD,
    L_ASK_SIZE,
    L_BEST_ASK,
    L_BEST_BID,
    L_BID_SIZE,
    L_CODE,
    L_ID,
    L_KEY,
    L_KIND,
    L_LEAVES,
    L_LEVELS,
    L_POSITION,
    L_PRICE,
    L_QTY,
    L_REASON,
    L_SIDE,
    L_TS_L,
    L_TS_X,
    L_TYPE,
    LF_AVG_PRICE,
    LF_CASH,
    LF_EQUITY,
    LF_FEE,
    LF_MID,
    LF_NOTIONAL,
    LOG_EQUITY,
    LOG_FILL,
    LOG_ORDER,
    LOG_QUEUE,
)
from nodes.contract import step_helper
from nodes.contract.log_buffers import reserve_log_rows

# Each log's columns: name → (buffer, column, decoder names or None). Times are int64 ns UTC; prices and
# quantities int64 in 1e-9 units; money float64 in quote currency.
LOG_COLUMNS: dict[str, dict[str, tuple[str, int, tuple | None]]] = {
    "orders": {
        "ts_exchange": ("i", L_TS_X, None),  # 0: the event never reached the venue (a local reject)
        "ts_local": ("i", L_TS_L, None),
        "key": ("i", L_KEY, None),
        "order_id": ("i", L_ID, None),
        "event": ("i", L_CODE, EVENT_NAMES),
        "side": ("i", L_SIDE, None),
        "type": ("i", L_TYPE, ORDER_TYPE_NAMES),
        "price": ("i", L_PRICE, None),
        "qty": ("i", L_QTY, None),
        "leaves": ("i", L_LEAVES, None),
        "ahead": ("i", L_AHEAD, None),
        "reason": ("i", L_REASON, REASON_NAMES),
    },
    "fills": {
        "ts_exchange": ("i", L_TS_X, None),
        "ts_local": ("i", L_TS_L, None),
        "key": ("i", L_KEY, None),
        "order_id": ("i", L_ID, None),
        "side": ("i", L_SIDE, None),
        "price": ("i", L_PRICE, None),
        "qty": ("i", L_QTY, None),
        "liquidity": ("i", L_CODE, LIQUIDITY_NAMES),
        "fee": ("f", LF_FEE, None),
        "notional": ("f", LF_NOTIONAL, None),
        "avg_price": ("f", LF_AVG_PRICE, None),
        "levels": ("i", L_LEVELS, None),
        "ahead_before": ("i", L_AHEAD, None),
        "leaves": ("i", L_LEAVES, None),
        "best_bid": ("i", L_BEST_BID, None),
        "best_ask": ("i", L_BEST_ASK, None),
        "bid_size": ("i", L_BID_SIZE, None),
        "ask_size": ("i", L_ASK_SIZE, None),
        "position": ("i", L_POSITION, None),
        "cash": ("f", LF_CASH, None),
    },
    "queue": {
        "ts_exchange": ("i", L_TS_X, None),
        "key": ("i", L_KEY, None),
        "order_id": ("i", L_ID, None),
        "side": ("i", L_SIDE, None),
        "price": ("i", L_PRICE, None),
        "ahead": ("i", L_AHEAD, None),
        "leaves": ("i", L_LEAVES, None),
        "cause": ("i", L_CODE, QUEUE_CAUSE_NAMES),
    },
    "equity": {
        "ts_exchange": ("i", L_TS_X, None),
        "key": ("i", L_KEY, None),
        "position": ("i", L_POSITION, None),
        "mid": ("f", LF_MID, None),
        "cash": ("f", LF_CASH, None),
        "equity": ("f", LF_EQUITY, None),
        "book_overflow": ("i", L_QTY, None),
        "book_inconsistent": ("i", L_LEAVES, None),
    },
}
_KINDS = {"orders": LOG_ORDER, "fills": LOG_FILL, "queue": LOG_QUEUE, "equity": LOG_EQUITY}


@step_helper
def reserve_log(log_ints, log_floats, ints, rows):
    """The log buffers with room for ``rows`` more rows: the same arrays, or copies twice as large."""
    return reserve_log_rows(log_ints, log_floats, ints[ACC, A_LOG_N], rows)


@step_helper(_nrt=False)
def _new_row(log_ints, log_floats, ints, kind, ts_x, key):
    """Take the next row, cleared, with its kind, exchange time and instrument."""
    r = ints[ACC, A_LOG_N]
    ints[ACC, A_LOG_N] = r + 1
    for j in range(log_ints.shape[1]):
        log_ints[r, j] = 0
    for j in range(log_floats.shape[1]):
        log_floats[r, j] = 0.0
    log_ints[r, L_KIND] = kind
    log_ints[r, L_TS_X] = ts_x
    log_ints[r, L_KEY] = key
    return r


@step_helper(_nrt=False)
def log_order(log_ints, log_floats, ints, ts_x, ts_l, key, order_id, event, side, order_type, price, qty, leaves,
              ahead, reason):
    """Log one order event (``codes.EV_*``) with its reason (``codes.R_*``)."""
    r = _new_row(log_ints, log_floats, ints, LOG_ORDER, ts_x, key)
    log_ints[r, L_TS_L] = ts_l
    log_ints[r, L_ID] = order_id
    log_ints[r, L_CODE] = event
    log_ints[r, L_SIDE] = side
    log_ints[r, L_TYPE] = order_type
    log_ints[r, L_PRICE] = price
    log_ints[r, L_QTY] = qty
    log_ints[r, L_LEAVES] = leaves
    log_ints[r, L_AHEAD] = ahead
    log_ints[r, L_REASON] = reason


@step_helper(_nrt=False)
def log_fill(log_ints, log_floats, ints, fill, snapshot, account):
    """Log one fill.

    ``fill`` = (ts_x, ts_l, key, order_id, side, price, qty, liquidity, levels, ahead_before, leaves),
    ``snapshot`` = (best_bid, best_ask, bid_size, ask_size) of the book that justified it,
    ``account`` = (fee, notional, avg_price, position, cash) after it, at the venue.
    """
    ts_x, ts_l, key, order_id, side, price, qty, liquidity, levels, ahead_before, leaves = fill
    r = _new_row(log_ints, log_floats, ints, LOG_FILL, ts_x, key)
    log_ints[r, L_TS_L] = ts_l
    log_ints[r, L_ID] = order_id
    log_ints[r, L_SIDE] = side
    log_ints[r, L_PRICE] = price
    log_ints[r, L_QTY] = qty
    log_ints[r, L_CODE] = liquidity
    log_ints[r, L_LEVELS] = levels
    log_ints[r, L_AHEAD] = ahead_before
    log_ints[r, L_LEAVES] = leaves
    log_ints[r, L_BEST_BID] = snapshot[0]
    log_ints[r, L_BEST_ASK] = snapshot[1]
    log_ints[r, L_BID_SIZE] = snapshot[2]
    log_ints[r, L_ASK_SIZE] = snapshot[3]
    log_floats[r, LF_FEE] = account[0]
    log_floats[r, LF_NOTIONAL] = account[1]
    log_floats[r, LF_AVG_PRICE] = account[2]
    log_ints[r, L_POSITION] = account[3]
    log_floats[r, LF_CASH] = account[4]


@step_helper(_nrt=False)
def log_queue(log_ints, log_floats, ints, ts_x, key, order_id, side, price, ahead, leaves, cause):
    """Log a resting order's new queue ahead (``codes.Q_*`` says why it changed)."""
    r = _new_row(log_ints, log_floats, ints, LOG_QUEUE, ts_x, key)
    log_ints[r, L_ID] = order_id
    log_ints[r, L_SIDE] = side
    log_ints[r, L_PRICE] = price
    log_ints[r, L_AHEAD] = ahead
    log_ints[r, L_LEAVES] = leaves
    log_ints[r, L_CODE] = cause


@step_helper(_nrt=False)
def log_equity(log_ints, log_floats, ints, ts_x, key, position, mid, cash, equity, overflow, inconsistent):
    """Log one instrument's position and mark with the account's cash and equity."""
    r = _new_row(log_ints, log_floats, ints, LOG_EQUITY, ts_x, key)
    log_ints[r, L_POSITION] = position
    log_floats[r, LF_MID] = mid
    log_floats[r, LF_CASH] = cash
    log_floats[r, LF_EQUITY] = equity
    log_ints[r, L_QTY] = overflow
    log_ints[r, L_LEAVES] = inconsistent


def drain_rows(log_ints: np.ndarray, log_floats: np.ndarray, rows: int) -> dict[str, dict[str, np.ndarray]]:
    """The first ``rows`` rows of the buffers as ``{log name: {column: array}}`` (codes become strings)."""
    kinds = log_ints[:rows, L_KIND]
    logs = {}
    for name, columns in LOG_COLUMNS.items():
        mask = kinds == _KINDS[name]
        part = {}
        for column, (buffer, index, names) in columns.items():
            values = (log_ints if buffer == "i" else log_floats)[:rows, index][mask]
            part[column] = _named(values, names) if names is not None else values.copy()
        logs[name] = part
    return logs


def _named(codes: np.ndarray, names: tuple) -> np.ndarray:
    """Codes as their names; a code outside the names (a bad input echoed in a reject) as its number."""
    known = (codes >= 0) & (codes < len(names))
    named = np.array(names, dtype=str)[np.where(known, codes, 0)]
    if known.all():
        return named
    return np.where(known, named, codes.astype(str))
