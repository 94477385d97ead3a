"""The account, twice: as the venue has it (the truth, logged) and as the strategy knows it (its outputs).

Each side keeps cash and positions and, so equity costs no loop over instruments per event, its holdings:
``Σ position × mark`` over instruments that have a mark. An instrument's mark is its mid (the last one while a
side of the book is empty), or the first fill's price before any mid. Equity = cash + holdings. The equity log
re-sums the holdings exactly every ``equity_interval`` (``exact_holdings``), so the running sums never drift.
"""

from nodes.backtest.tick.fees import UNIT, fee_of, notional_of
from nodes.backtest.tick.layout import (
    A_N_KEYS,
    A_NEXT_EQ,
    ACC,
    AF_CASH_L,
    AF_CASH_X,
    AF_HOLD_L,
    AF_HOLD_X,
    K_INCONSISTENT,
    K_OVERFLOW,
    K_POS_L,
    K_POS_X,
    KEY0,
    KF_MARK,
)
from nodes.backtest.tick.logs import log_equity
from nodes.contract import step_helper


@step_helper(_nrt=False)
def set_mark(ints, floats, k, mark):
    """Move instrument ``k``'s mark to ``mark`` (price units); NaN leaves it as it was."""
    if mark != mark:
        return
    row = KEY0 + k
    old = floats[row, KF_MARK]
    if old == mark:
        return
    if old != old:
        old = 0.0  # no mark before: the holdings did not count this instrument
    floats[ACC, AF_HOLD_X] += (ints[row, K_POS_X] / UNIT) * (mark - old)
    floats[ACC, AF_HOLD_L] += (ints[row, K_POS_L] / UNIT) * (mark - old)
    floats[row, KF_MARK] = mark


@step_helper(_nrt=False)
def book_fill(c, ints, floats, k, side, price, qty, liquidity, local):
    """Book a fill of ``side × qty`` at ``price`` on the venue's (``local`` 0) or the strategy's (1) account.

    Returns ``(fee, notional)``. The instrument gets a mark from the fill when it has none yet.
    """
    row = KEY0 + k
    if floats[row, KF_MARK] != floats[row, KF_MARK]:
        set_mark(ints, floats, k, price / UNIT)
    notional = notional_of(price, qty)
    fee = fee_of(c, price, qty, liquidity)
    held = side * (qty / UNIT) * floats[row, KF_MARK]
    if local == 0:
        ints[row, K_POS_X] += side * qty
        floats[ACC, AF_CASH_X] -= side * notional + fee
        floats[ACC, AF_HOLD_X] += held
    else:
        ints[row, K_POS_L] += side * qty
        floats[ACC, AF_CASH_L] -= side * notional + fee
        floats[ACC, AF_HOLD_L] += held
    return fee, notional


@step_helper(_nrt=False)
def exact_holdings(ints, floats):
    """Re-sum both holdings over instruments (drops the rounding the running sums collect)."""
    venue = 0.0
    local = 0.0
    for k in range(ints[ACC, A_N_KEYS]):
        row = KEY0 + k
        mark = floats[row, KF_MARK]
        if mark == mark:
            venue += (ints[row, K_POS_X] / UNIT) * mark
            local += (ints[row, K_POS_L] / UNIT) * mark
    floats[ACC, AF_HOLD_X] = venue
    floats[ACC, AF_HOLD_L] = local


@step_helper(_nrt=False)
def venue_equity(floats):
    return floats[ACC, AF_CASH_X] + floats[ACC, AF_HOLD_X]


@step_helper(_nrt=False)
def local_equity(floats):
    return floats[ACC, AF_CASH_L] + floats[ACC, AF_HOLD_L]


@step_helper(_nrt=False)
def log_equity_rows(c_equity_ns, ints, floats, log_ints, log_floats, exchange_ns):
    """Log every instrument's position and mark with the venue's cash and equity at the last interval boundary
    at or before ``exchange_ns`` (once per boundary crossed: a quiet stretch leaves a gap, not copies)."""
    boundary = exchange_ns - exchange_ns % c_equity_ns
    ints[ACC, A_NEXT_EQ] = boundary + c_equity_ns
    exact_holdings(ints, floats)
    equity = venue_equity(floats)
    for k in range(ints[ACC, A_N_KEYS]):
        row = KEY0 + k
        log_equity(log_ints, log_floats, ints, boundary, k, ints[row, K_POS_X], floats[row, KF_MARK],
                   floats[ACC, AF_CASH_X], equity, ints[row, K_OVERFLOW], ints[row, K_INCONSISTENT])
