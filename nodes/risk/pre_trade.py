"""Pre-trade limits on the order path: every order the strategy wants is checked before the venue sees it."""

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.backtest.tick.latency import Duration, duration_ns
from nodes.contract import F64, I64, OpParams, Scope, StreamOp, step_helper
from nodes.marketdata.schemas import UNDEF_PRICE
from nodes.risk import log_buffer
from nodes.risk.codes import (
    CHECK_NAMES, DUPLICATE, EXPOSURE, FLATTENING, HALTED, INVALID, LOT, MAX_NOTIONAL, MAX_QTY, NO_REFERENCE, OK,
    POSITION, PRICE_BAND, RATE, RUNNING, STATE_NAMES, TICK,
)
from nodes.risk.units import NO_LIMIT_UNITS, UNIT, scaled_notional, units

# constants (c[...])
C_MAX_QTY, C_MAX_QTY_F = 0, 1
C_NOTIONAL_E18, C_NOTIONAL_F = 2, 3
C_BAND_BPS = 4  # < 0: no band
C_MAX_POS, C_MAX_POS_F = 5, 6
C_EXPOSURE_E18, C_EXPOSURE_F = 7, 8
C_NS_PER_ORDER, C_BUCKET_NS, C_RATE_F = 9, 10, 11  # 0 ns per order: no rate limit
C_DUP_NS = 12  # 0: no duplicate guard
C_TICK, C_TICK_F, C_LOT, C_LOT_F = 13, 14, 15, 16  # 0 units: not checked

# per instrument and side (row = 2 × key + 0 for the bid / the target, + 1 for the ask)
S_OUT_PX, S_OUT_QTY = 0, 1  # what was let through on the last event (target mode: S_OUT_QTY is the target)
S_WANT_PX, S_WANT_QTY, S_CODE = 2, 3, 4  # what was wanted on the last event and its check's code
S_SENT_PX, S_SENT_QTY, S_SENT_TS = 5, 6, 7  # the last new order let through (target mode: the signed order)
S_COLUMNS = 8
# per instrument
M_POS, M_REF = 0, 1

# the rejects log
L_TS_RECV, L_TS_EVENT, L_KEY, L_SIDE, L_CODE, L_PRICE, L_QTY, L_POSITION, L_HALTED = range(9)
LF_LIMIT, LF_VALUE = 0, 1
REJECT_COLUMNS = {
    "ts_recv": ("i", L_TS_RECV, None),
    "ts_event": ("i", L_TS_EVENT, None),
    "key": ("i", L_KEY, None),
    "side": ("i", L_SIDE, None),  # 1 buy, -1 sell
    "code": ("i", L_CODE, None),
    "check": ("i", L_CODE, CHECK_NAMES),
    "limit": ("f", LF_LIMIT, None),  # the check's limit, in its natural unit (units, quote, bps, orders/s, s)
    "value": ("f", LF_VALUE, None),  # the order's value that broke it, same unit
    "price": ("i", L_PRICE, None),  # 1e-9 units (target mode: 0)
    "qty": ("i", L_QTY, None),  # 1e-9 units (target mode: the order target − position, unsigned)
    "position": ("i", L_POSITION, None),
    "state": ("i", L_HALTED, STATE_NAMES),
}


class PreTradeParams(OpParams):
    orders: Literal["quotes", "target"] = Field(
        "quotes", description="the order mode, as the tick venue's: quotes (bid_px, bid_qty, ask_px, ask_qty) or "
                              "target (a signed target position)")
    max_order_qty: float | None = Field(None, gt=0, description="largest order quantity, in instrument units")
    max_order_notional: float | None = Field(None, gt=0, description="largest price × quantity of one order, in "
                                             "quote currency (target mode: at the reference price)")
    price_band_bps: float | None = Field(None, gt=0, le=1e6, description="fat-finger band: a quote priced more "
                                         "than this many bps away from the reference price is refused")
    max_position: float | None = Field(None, ge=0, description="|position| a fill of the order may reach, in "
                                       "instrument units; orders that reduce |position| always pass it")
    max_exposure_notional: float | None = Field(None, gt=0, description="gross exposure Σ |position| × reference "
                                                "price over instruments a fill may reach, in quote currency")
    max_orders_per_s: float | None = Field(None, gt=0, le=1e9, description="new orders per second (token bucket "
                                           "on ts_recv); cancels are never limited")
    order_burst: int | None = Field(None, ge=1, le=1_000_000, description="orders the bucket holds (a burst); "
                                    "default: max_orders_per_s rounded up")
    duplicate_window: Duration = Field(0, description="refuse an order identical to the last one sent on its side "
                                       "within this long (e.g. 50ms); 0: no guard")
    tick_size: float | None = Field(None, gt=0, description="quote prices must be multiples of it (0.01)")
    lot_size: float | None = Field(None, gt=0, description="quantities must be multiples of it (0.00001)")

    @model_validator(mode="after")
    def _exact(self):
        for name in ("max_order_qty", "max_position", "tick_size", "lot_size"):
            units(getattr(self, name), name)  # raises when not a whole number of 1e-9 units
        if self.order_burst is not None and self.max_orders_per_s is None:
            raise ValueError("order_burst needs max_orders_per_s")
        return self


def pre_trade_constants(params: PreTradeParams) -> tuple:
    ns_per_order = 0
    bucket_ns = 0
    if params.max_orders_per_s is not None:
        ns_per_order = max(1, round(1e9 / params.max_orders_per_s))
        burst = params.order_burst or int(np.ceil(params.max_orders_per_s))
        bucket_ns = burst * ns_per_order
    tick = 0 if params.tick_size is None else units(params.tick_size, "tick_size")
    lot = 0 if params.lot_size is None else units(params.lot_size, "lot_size")
    return (
        units(params.max_order_qty, "max_order_qty"), _natural(params.max_order_qty),
        scaled_notional(params.max_order_notional), _natural(params.max_order_notional),
        -1.0 if params.price_band_bps is None else float(params.price_band_bps),
        units(params.max_position, "max_position"), _natural(params.max_position),
        scaled_notional(params.max_exposure_notional), _natural(params.max_exposure_notional),
        ns_per_order, bucket_ns, _natural(params.max_orders_per_s),
        duration_ns(params.duplicate_window),
        tick, _natural(params.tick_size), lot, _natural(params.lot_size),
    )


def _natural(value: float | None) -> float:
    return np.inf if value is None else float(value)


class PreTrade(StreamOp):
    """Check every order the strategy wants against declared limits; let it through, or refuse it and say why.

    Sits between a strategy and the tick venue, in the venue's order mode (``orders: quotes | target``; the
    inputs follow the mode). Per event and side, the wanted order is checked in this order, and the first
    check it breaks refuses it (``nodes.risk.codes``): ``invalid`` (quantity < 0, a price outside (0,
    UNDEF_PRICE)), ``halted`` (the system is HALTED and the order does not reduce |position|), ``tick`` (quotes:
    a multiple of ``tick_size``) and ``lot`` (of ``lot_size``), ``max_order_qty``, ``max_order_notional``
    (target mode: valued at ``ref_px``), ``no_reference`` / ``price_band`` (quotes: |price − reference| × 10⁴ >
    ``price_band_bps`` × reference, against ``ref_px``, e.g. the last trade; a target's taker order has no price
    of its own, the venue's ``taker_limit_bps`` bounds it), ``max_position`` (|position ± qty| after a fill) and
    ``max_exposure_notional`` (Σ |position| × reference over instruments after a fill) — both skipped for an
    order that reduces |position| — then, for a *new* order only (one that differs from what was let through on
    the last event), ``max_orders_per_s`` (a token bucket of ``order_burst`` tokens refilled on ``ts_recv``) and
    ``duplicate`` (the same order as the last one sent on that side within ``duplicate_window``). Every limit
    is a maximum: a value at the limit passes, one unit beyond it is refused. An unset limit is not checked.

    Held orders are checked again on every event, so a resting quote that a position change or a moved
    reference puts beyond a limit is pulled. A refused quote side goes out with qty 0 (the venue cancels it);
    a refused target goes out as the current position (no order). ``reject_code``/``reject_limit`` give the
    first side's refusal on the events where a refusal is new (the wanted order or the check changed), 0/NaN
    otherwise, and every such refusal is a row of the ``rejects`` log: time, instrument, side, check (code
    and name), limit, offending value, price, quantity, position, risk state.

    ``halted`` is the circuit breaker's state read one event back (``prev(breaker.halted)``): 0 RUNNING, 1
    HALTED (only orders that reduce |position| pass: a quote on the side that reduces it, for at most the
    position; a target nearer 0 on the same side), 2 FLATTENING (HALTED, and the op itself works the position
    to 0: a quote for the whole position — at most ``max_order_qty``, in lots — on the reducing side at the
    strategy's price on that side; in target mode a target that steps toward 0 by at most ``max_order_qty``).
    ``position`` is the venue's (``prev(venue.position)``), int64 1e-9 units like every price and quantity.
    In target mode the inputs are ``target``, ``ref_px``, ``position``, ``halted`` and the output ``target``.

    It acts on events, one event behind the breaker and the venue (``prev``): quotes decided on the event that
    trips the breaker still go out, and a working quote is cancelled when the venue next runs.

    FPGA: no (not ported).

    Example::

        risk:
          op: risk.pre_trade
          in: {bid_px: quotes.bid_px, bid_qty: quotes.bid_qty, ask_px: quotes.ask_px, ask_qty: quotes.ask_qty,
               ref_px: ref.ref_px, position: prev(venue.position), halted: prev(breaker.halted)}
          with: {orders: quotes, max_order_qty: 0.002, max_order_notional: 200, price_band_bps: 50,
                 max_position: 0.005, max_exposure_notional: 400, max_orders_per_s: 5, order_burst: 10,
                 duplicate_window: 50ms, tick_size: 0.01, lot_size: 0.00001}
    """

    name = "risk.pre_trade"
    Params = PreTradeParams
    keyed = False
    context = ("key", "ts_event", "ts_recv")
    inputs = {"bid_px": I64, "bid_qty": I64, "ask_px": I64, "ask_qty": I64, "ref_px": I64, "position": I64,
              "halted": I64}
    outputs = {"bid_px": I64, "bid_qty": I64, "ask_px": I64, "ask_qty": I64, "reject_code": I64,
               "reject_limit": F64}
    output_scopes = {"bid_px": Scope.KEY, "bid_qty": Scope.KEY, "ask_px": Scope.KEY, "ask_qty": Scope.KEY,
                     "reject_code": Scope.ACCOUNT, "reject_limit": Scope.ACCOUNT}
    logs = ("rejects",)

    @classmethod
    def specialize(cls, params: PreTradeParams, base_dir: Path | None = None) -> type["PreTrade"]:
        """The op in ``params.orders`` mode: quotes (this class) or target (``PreTradeTarget``)."""
        return PreTradeTarget if params.orders == "target" else cls

    @staticmethod
    def constants(params):
        return pre_trade_constants(params)

    @staticmethod
    def init(c, n_keys):
        return new_state(c, n_keys)

    @staticmethod
    def drain(c, s):
        """Return the state with its rejects log emptied, and the rows logged since the last drain."""
        sides, marks, log_ints, log_floats, used, bucket_ns, last_ts = s
        rows = log_buffer.drain_columns(log_ints, log_floats, int(used), REJECT_COLUMNS)
        return (sides, marks, log_ints, log_floats, 0, bucket_ns, last_ts), {"rejects": rows}

    @staticmethod
    def logged_rows(c, s) -> int:
        """Return the rows logged since the last drain."""
        return int(s[4])

    @staticmethod
    def step(c, s, key, ts_event, ts_recv, bid_px, bid_qty, ask_px, ask_qty, ref_px, position, halted):
        sides, marks, log_ints, log_floats, used, bucket_ns, last_ts = s
        marks[key, M_POS] = position
        marks[key, M_REF] = ref_px
        bucket_ns, last_ts = refill(c, bucket_ns, last_ts, ts_recv)
        log_ints, log_floats = log_buffer.reserve(log_ints, log_floats, used, 2)
        ev = (key, ts_event, ts_recv, ref_px, position, halted)
        out_bid, code, limit, bucket_ns, used = quote_side(c, sides, marks, log_ints, log_floats, used, bucket_ns,
                                                           ev, 1, bid_px, bid_qty)
        out_ask, code_ask, limit_ask, bucket_ns, used = quote_side(c, sides, marks, log_ints, log_floats, used,
                                                                   bucket_ns, ev, -1, ask_px, ask_qty)
        if code == OK:
            code, limit = code_ask, limit_ask
        state = (sides, marks, log_ints, log_floats, used, bucket_ns, last_ts)
        return state, bid_px, out_bid, ask_px, out_ask, code, limit


class PreTradeTarget(PreTrade):
    """``risk.pre_trade`` in ``orders: target`` mode (what ``specialize`` returns for it)."""

    __doc__ = PreTrade.__doc__
    inputs = {"target": I64, "ref_px": I64, "position": I64, "halted": I64}
    outputs = {"target": I64, "reject_code": I64, "reject_limit": F64}
    output_scopes = {"target": Scope.KEY, "reject_code": Scope.ACCOUNT, "reject_limit": Scope.ACCOUNT}

    @staticmethod
    def step(c, s, key, ts_event, ts_recv, target, ref_px, position, halted):
        sides, marks, log_ints, log_floats, used, bucket_ns, last_ts = s
        marks[key, M_POS] = position
        marks[key, M_REF] = ref_px
        bucket_ns, last_ts = refill(c, bucket_ns, last_ts, ts_recv)
        log_ints, log_floats = log_buffer.reserve(log_ints, log_floats, used, 1)
        ev = (key, ts_event, ts_recv, ref_px, position, halted)
        out, code, limit, bucket_ns, used = target_order(c, sides, marks, log_ints, log_floats, used, bucket_ns, ev,
                                                         target)
        return (sides, marks, log_ints, log_floats, used, bucket_ns, last_ts), out, code, limit


def new_state(c, n_keys):
    sides = np.zeros((2 * n_keys, S_COLUMNS), np.int64)
    sides[:, S_SENT_TS] = -1
    marks = np.zeros((n_keys, 2), np.int64)
    marks[:, M_REF] = UNDEF_PRICE
    log_ints, log_floats = log_buffer.new_buffers(len(L_COLUMNS), 2)
    # the bucket starts full; the last time is far in the past (refill caps at the bucket's size)
    return (sides, marks, log_ints, log_floats, 0, c[C_BUCKET_NS], -(1 << 62))


L_COLUMNS = (L_TS_RECV, L_TS_EVENT, L_KEY, L_SIDE, L_CODE, L_PRICE, L_QTY, L_POSITION, L_HALTED)


@step_helper
def valid_price(price):
    return price > 0 and price < UNDEF_PRICE


@step_helper
def refill(c, bucket_ns, last_ts, ts_recv):
    """The token bucket (in ns of credit) refilled by the time since the last event, capped at its size."""
    elapsed = ts_recv - last_ts
    if elapsed > 0:
        room = c[C_BUCKET_NS] - bucket_ns
        bucket_ns = c[C_BUCKET_NS] if elapsed >= room else bucket_ns + elapsed
        last_ts = ts_recv
    return bucket_ns, last_ts


@step_helper
def exit_qty(c, room):
    """The most a flattening exit sends at once: ``room`` capped at max_order_qty, whole lots."""
    qty = min(room, c[C_MAX_QTY])
    if c[C_LOT] > 0:
        qty -= qty % c[C_LOT]
    return qty


@step_helper
def gross_exposure(marks, key, after, own_mark):
    """Σ |position| × mark over instruments in 1e-18 quote units, with ``key`` at ``after`` marked ``own_mark``;
    NaN when a held position has no mark."""
    total = 0.0
    for k in range(marks.shape[0]):
        qty = after if k == key else marks[k, M_POS]
        mark = own_mark if k == key else marks[k, M_REF]
        if qty != 0:
            if not valid_price(mark):
                return np.nan
            total += float(abs(qty)) * float(mark)
    return total


@step_helper
def static_check(c, marks, key, side, price, qty, ref_px, position, halted, reducing, priced):
    """``(code, limit, value)`` of the first check an order of ``qty`` on ``side`` breaks, ``(OK, NaN, NaN)`` when
    none; ``priced``: the order has its own ``price`` (quotes), else it is valued at ``ref_px`` (target)."""
    if qty < 0 or qty > NO_LIMIT_UNITS or (priced and not valid_price(price)):
        return INVALID, 0.0, (qty / UNIT if qty < 0 or qty > NO_LIMIT_UNITS else price / UNIT)
    if halted != RUNNING and not reducing:
        room = -position if side == 1 else position
        return HALTED, max(room, 0) / UNIT, qty / UNIT
    if priced and c[C_TICK] > 0 and price % c[C_TICK] != 0:
        return TICK, c[C_TICK_F], price / UNIT
    if c[C_LOT] > 0 and qty % c[C_LOT] != 0:
        return LOT, c[C_LOT_F], qty / UNIT
    if qty > c[C_MAX_QTY]:
        return MAX_QTY, c[C_MAX_QTY_F], qty / UNIT
    mark = price if priced else ref_px
    if c[C_NOTIONAL_E18] < np.inf:
        if not valid_price(mark):
            return NO_REFERENCE, c[C_NOTIONAL_F], np.nan
        notional = float(mark) * float(qty)
        if notional > c[C_NOTIONAL_E18]:
            return MAX_NOTIONAL, c[C_NOTIONAL_F], notional / 1e18
    if priced and c[C_BAND_BPS] >= 0.0:
        if not valid_price(ref_px):
            return NO_REFERENCE, c[C_BAND_BPS], np.nan
        deviation = float(abs(price - ref_px)) * 1e4
        if deviation > c[C_BAND_BPS] * float(ref_px):
            return PRICE_BAND, c[C_BAND_BPS], deviation / float(ref_px)
    if not reducing:
        after = position + side * qty
        if abs(after) > c[C_MAX_POS]:
            return POSITION, c[C_MAX_POS_F], abs(after) / UNIT
        if c[C_EXPOSURE_E18] < np.inf:
            exposure = gross_exposure(marks, key, after, ref_px if valid_price(ref_px) else mark)
            if exposure != exposure:
                return NO_REFERENCE, c[C_EXPOSURE_F], np.nan
            if exposure > c[C_EXPOSURE_E18]:
                return EXPOSURE, c[C_EXPOSURE_F], exposure / 1e18
    return OK, np.nan, np.nan


@step_helper
def dynamic_check(c, sides, row, bucket_ns, ts_recv, sent_px, sent_qty):
    """``(code, limit, value)`` of the rate limit and the duplicate guard for a new order."""
    if c[C_NS_PER_ORDER] > 0 and bucket_ns < c[C_NS_PER_ORDER]:
        return RATE, c[C_RATE_F], bucket_ns / c[C_NS_PER_ORDER]
    if c[C_DUP_NS] > 0 and sides[row, S_SENT_TS] >= 0 and sides[row, S_SENT_PX] == sent_px \
            and sides[row, S_SENT_QTY] == sent_qty:
        elapsed = ts_recv - sides[row, S_SENT_TS]
        if elapsed < c[C_DUP_NS]:
            return DUPLICATE, c[C_DUP_NS] / 1e9, elapsed / 1e9
    return OK, np.nan, np.nan


@step_helper
def send(c, sides, row, bucket_ns, ts_recv, sent_px, sent_qty):
    """Record a new order let through; return the bucket after paying for it."""
    sides[row, S_SENT_PX] = sent_px
    sides[row, S_SENT_QTY] = sent_qty
    sides[row, S_SENT_TS] = ts_recv
    return bucket_ns - c[C_NS_PER_ORDER]


@step_helper
def remember(sides, log_ints, log_floats, used, ev, row, side, want_a, want_b, price, qty, code, limit, value):
    """Keep what was wanted (``want_a``, ``want_b``: a quote's price and qty, or a target) and its code; log a
    refusal that is new (the wanted order or the check changed). Return ``(code shown, used)``."""
    key, ts_event, ts_recv, ref_px, position, halted = ev
    fresh = code != OK and (code != sides[row, S_CODE] or want_a != sides[row, S_WANT_PX]
                            or want_b != sides[row, S_WANT_QTY])
    sides[row, S_WANT_PX] = want_a
    sides[row, S_WANT_QTY] = want_b
    sides[row, S_CODE] = code
    if not fresh:
        return OK, used
    r = used
    log_ints[r, L_TS_RECV] = ts_recv
    log_ints[r, L_TS_EVENT] = ts_event
    log_ints[r, L_KEY] = key
    log_ints[r, L_SIDE] = side
    log_ints[r, L_CODE] = code
    log_ints[r, L_PRICE] = price
    log_ints[r, L_QTY] = qty
    log_ints[r, L_POSITION] = position
    log_ints[r, L_HALTED] = halted
    log_floats[r, LF_LIMIT] = limit
    log_floats[r, LF_VALUE] = value
    return code, used + 1


@step_helper
def quote_side(c, sides, marks, log_ints, log_floats, used, bucket_ns, ev, side, price, qty):
    """Check one side's wanted quote; return ``(qty let through, code shown, its limit, bucket, used)``."""
    key, ts_event, ts_recv, ref_px, position, halted = ev
    row = 2 * key + (0 if side == 1 else 1)
    if halted == FLATTENING:
        room = -position if side == 1 else position
        qty = exit_qty(c, room) if room > 0 else 0
    code, limit, value = OK, np.nan, np.nan
    if qty != 0:
        reducing = qty > 0 and ((side == 1 and position < 0 and qty <= -position)
                                or (side == -1 and position > 0 and qty <= position))
        code, limit, value = static_check(c, marks, key, side, price, qty, ref_px, position, halted, reducing, True)
        if code == OK and (price != sides[row, S_OUT_PX] or qty != sides[row, S_OUT_QTY]):
            code, limit, value = dynamic_check(c, sides, row, bucket_ns, ts_recv, price, qty)
            if code == OK:
                bucket_ns = send(c, sides, row, bucket_ns, ts_recv, price, qty)
    passed = qty if code == OK else 0
    sides[row, S_OUT_PX] = price
    sides[row, S_OUT_QTY] = passed
    shown, used = remember(sides, log_ints, log_floats, used, ev, row, side, price, qty, price, qty, code, limit,
                           value)
    return passed, shown, limit if shown != OK else np.nan, bucket_ns, used


@step_helper
def target_order(c, sides, marks, log_ints, log_floats, used, bucket_ns, ev, target):
    """Check the order a wanted target implies; return ``(target let through, code shown, limit, bucket, used)``."""
    key, ts_event, ts_recv, ref_px, position, halted = ev
    row = 2 * key
    if halted == FLATTENING:
        step_qty = exit_qty(c, abs(position))
        target = position - step_qty if position > 0 else position + step_qty
    code, limit, value = OK, np.nan, np.nan
    passed = position
    side = 0
    qty = 0
    if abs(target) > NO_LIMIT_UNITS or abs(position) > NO_LIMIT_UNITS:
        code, limit, value = INVALID, 0.0, target / UNIT
    elif target != position:
        order = target - position
        side = 1 if order > 0 else -1
        qty = abs(order)
        reducing = target == 0 or ((target > 0) == (position > 0) and abs(target) <= abs(position))
        code, limit, value = static_check(c, marks, key, side, 0, qty, ref_px, position, halted, reducing, False)
        if code == OK and target != sides[row, S_OUT_QTY]:
            code, limit, value = dynamic_check(c, sides, row, bucket_ns, ts_recv, 0, order)
            if code == OK:
                bucket_ns = send(c, sides, row, bucket_ns, ts_recv, 0, order)
        if code == OK:
            passed = target
    else:
        passed = target
    sides[row, S_OUT_QTY] = passed
    shown, used = remember(sides, log_ints, log_floats, used, ev, row, side, target, 0, 0, qty, code, limit, value)
    return passed, shown, limit if shown != OK else np.nan, bucket_ns, used
