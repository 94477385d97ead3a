"""Circuit breakers: trip to HALTED on drawdown, loss, position, rejects, stale data, latency or drift; resume only
by an operator's command."""

import datetime as dt

import numpy as np
from pydantic import Field, field_validator, model_validator

from nodes.backtest.tick.latency import Duration, duration_ns
from nodes.contract import F64, I64, OpParams, Scope, StreamOp, step_helper
from nodes.risk import log_buffer
from nodes.risk.codes import (
    CMD_FLATTEN, CMD_HALT, CMD_RESUME, COMMAND_NAMES, DAILY_LOSS, DATA_GAP, DRAWDOWN, DRAWDOWN_FRACTION, DRIFT,
    EV_HALT, EV_RESUME, EV_RESUME_IGNORED, EV_TRIP, EVENT_NAMES, FEED_DELAY, FLATTENING, HALTED_STATE, LATENCY,
    MANUAL, NO_TRIP, POSITION_BREACH, REJECT_RATE, RUNNING, STATE_NAMES, TRIP_NAMES,
)
from nodes.risk.units import UNIT, units

DAY_NS = 86_400_000_000_000

# constants (c[...])
(C_MAX_DD, C_MAX_DD_FRACTION, C_MAX_DAILY_LOSS, C_DAY_OFFSET_NS, C_MAX_POS, C_MAX_POS_F, C_MAX_REJECTS,
 C_REJECT_WINDOW_NS, C_MAX_FEED_DELAY_NS, C_MAX_GAP_NS, C_MAX_LATENCY_NS, C_MAX_DRIFT, C_FLATTEN) = range(13)

# the trips log
L_TS_RECV, L_TS_EVENT, L_KEY, L_EVENT, L_BREAKER, L_SEQ, L_OPERATOR, L_REASON, L_COMMAND, L_STATE = range(10)
LF_VALUE, LF_LIMIT = 0, 1
TRIP_COLUMNS = {
    "ts_recv": ("i", L_TS_RECV, None),
    "ts_event": ("i", L_TS_EVENT, None),
    "key": ("i", L_KEY, None),
    "event": ("i", L_EVENT, EVENT_NAMES),
    "breaker": ("i", L_BREAKER, TRIP_NAMES),  # which breaker tripped (resume: the one that had halted)
    "value": ("f", LF_VALUE, None),  # the breaker's value, in its limit's unit (quote, fraction, units, count, s)
    "limit": ("f", LF_LIMIT, None),
    "control_seq": ("i", L_SEQ, None),  # the control file's line (0: not an operator command)
    "command": ("i", L_COMMAND, COMMAND_NAMES),
    "operator": ("i", L_OPERATOR, None),  # code into the control file's text table (nodes.risk.control)
    "reason": ("i", L_REASON, None),
    "state": ("i", L_STATE, STATE_NAMES),  # the risk state after the event
}


class CircuitBreakerParams(OpParams):
    max_drawdown: float | None = Field(None, gt=0, description="trip when peak equity − equity exceeds this, in "
                                       "quote currency")
    max_drawdown_fraction: float | None = Field(None, gt=0, lt=1, description="trip when (peak − equity) / peak "
                                                "exceeds this fraction")
    max_daily_loss: float | None = Field(None, gt=0, description="trip when the equity at the day's start − "
                                         "equity exceeds this, in quote currency")
    day_start_utc: str = Field("00:00", description="when a trading day starts, HH:MM UTC (a session time such "
                               "as 22:00 for FX); the daily loss is measured from the equity then")
    max_position: float | None = Field(None, ge=0, description="trip when |position| of an instrument exceeds "
                                       "this, in instrument units")
    max_rejects: int | None = Field(None, ge=0, le=1_000_000, description="trip when more than this many "
                                    "pre-trade rejects fall within reject_window")
    reject_window: Duration = Field("60s", description="the window of max_rejects, e.g. 60s")
    max_feed_delay: Duration | None = Field(None, description="trip when a market event's ts_recv − ts_event "
                                            "exceeds this (a stale feed), e.g. 2s")
    max_data_gap: Duration | None = Field(None, description="trip when the time since the last market event "
                                          "exceeds this, seen at the next market or control (heartbeat) event")
    max_latency: Duration | None = Field(None, description="trip when a measured latency (a control event's "
                                         "latency_ns) exceeds this, e.g. 5ms")
    max_drift: float | None = Field(None, gt=0, description="trip when the drift input (risk.drift's psi or ks) "
                                    "exceeds this")
    flatten_on_halt: bool = Field(False, description="on a trip, go to FLATTENING (the pre-trade op works the "
                                  "position to 0) instead of HALTED")

    @field_validator("day_start_utc")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"day_start_utc {value!r} is not a time of day like 00:00 or 22:00") from None
        return value

    @model_validator(mode="after")
    def _exact(self):
        units(self.max_position, "max_position")
        if duration_ns(self.reject_window) == 0:
            raise ValueError("reject_window must be longer than 0")
        return self


def breaker_constants(params: CircuitBreakerParams) -> tuple:
    clock = dt.time.fromisoformat(params.day_start_utc)
    offset_ns = ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000_000

    def limit_ns(value):
        return -1 if value is None else duration_ns(value)

    return (
        np.inf if params.max_drawdown is None else float(params.max_drawdown),
        np.inf if params.max_drawdown_fraction is None else float(params.max_drawdown_fraction),
        np.inf if params.max_daily_loss is None else float(params.max_daily_loss),
        offset_ns,
        units(params.max_position, "max_position"),
        np.inf if params.max_position is None else float(params.max_position),
        -1 if params.max_rejects is None else params.max_rejects,
        duration_ns(params.reject_window),
        limit_ns(params.max_feed_delay), limit_ns(params.max_data_gap), limit_ns(params.max_latency),
        np.inf if params.max_drift is None else float(params.max_drift),
        int(params.flatten_on_halt),
    )


class CircuitBreaker(StreamOp):
    """Watch equity, position, rejects, data freshness, latency and drift; trip to HALTED; resume on command.

    A state machine RUNNING → HALTED on the first breaker that trips; HALTED → RUNNING only on an operator's
    ``resume`` command (a ``source.control`` event; there is no other way back). An operator's ``halt`` halts
    (manual trip), ``flatten`` halts and flattens. Output ``halted``: 0 RUNNING, 1 HALTED, 2 FLATTENING (HALTED
    with the position worked to 0; every trip goes there with ``flatten_on_halt``); feed it to
    ``risk.pre_trade`` as ``prev(breaker.halted)``, which then lets only risk-reducing orders through
    (working quotes are cancelled). ``trip_code`` is the breaker that halted (``nodes.risk.codes``), 0 while
    RUNNING; ``drawdown`` (peak − equity) and ``daily_pnl`` (equity − the day's start) in quote currency.

    Breakers (each a maximum: at the limit nothing trips, beyond it trips; unset limits are off):
    ``max_drawdown`` and ``max_drawdown_fraction`` (from the peak equity since the start or the last resume),
    ``max_daily_loss`` (from the last equity before the first event of the day, days starting at
    ``day_start_utc`` on ``ts_recv``), ``max_position`` (|position| of the event's instrument),
    ``max_rejects`` pre-trade rejects (events with ``reject_code`` ≠ 0) within ``reject_window``,
    ``max_feed_delay`` (a market event's ``ts_recv − ts_event``), ``max_data_gap`` (``ts_recv`` since the last
    market event, at a market event or a control event such as the runtime's heartbeat), ``max_latency`` (a
    control event's measured ``latency_ns``) and ``max_drift`` (the ``drift`` input, NaN ignored).

    Events: the node runs on the market's events and on the control source's; a control event is one whose
    ``seq`` differs from the last seen (the control source numbers its lines). A resume resets the drawdown's
    peak, the day's start equity and the reject window to now, so the limits count from the operator's
    decision; a position still beyond ``max_position`` trips again at once. Every trip, halt and resume (with
    the control line, operator and reason codes) is a row of the ``trips`` log; trips while HALTED are not
    logged again. Inputs: ``equity`` (F64, the venue's), ``position`` (I64, 1e-9 units), ``reject_code``
    (the pre-trade op's), ``drift`` (F64), and the control source's ``command``, ``seq``, ``operator``,
    ``reason``, ``latency_ns``.

    FPGA: no (not ported).

    Example::

        breaker:
          op: risk.circuit_breaker
          in: {equity: venue.equity, position: venue.position, reject_code: risk.reject_code, drift: drift.psi,
               command: control.command, seq: control.seq, operator: control.operator, reason: control.reason,
               latency_ns: control.latency_ns}
          with: {max_drawdown: 50, max_daily_loss: 100, max_position: 0.006, max_rejects: 20, reject_window: 60s,
                 max_feed_delay: 2s, max_data_gap: 30s, max_latency: 50ms, max_drift: 1.0}
    """

    name = "risk.circuit_breaker"
    Params = CircuitBreakerParams
    keyed = False
    context = ("key", "ts_event", "ts_recv")
    inputs = {"equity": F64, "position": I64, "reject_code": I64, "drift": F64, "command": I64, "seq": I64,
              "operator": I64, "reason": I64, "latency_ns": I64}
    outputs = {"halted": I64, "trip_code": I64, "drawdown": F64, "daily_pnl": F64}
    output_scopes = {"halted": Scope.ACCOUNT, "trip_code": Scope.ACCOUNT, "drawdown": Scope.ACCOUNT,
                     "daily_pnl": Scope.ACCOUNT}
    logs = ("trips",)
    # its trips log is its record; per event only when asked (record=[breaker])
    record_events = False

    @staticmethod
    def constants(params):
        return breaker_constants(params)

    @staticmethod
    def initial_outputs(c):
        return {"halted": RUNNING, "trip_code": NO_TRIP, "drawdown": 0.0, "daily_pnl": 0.0}

    @staticmethod
    def init(c, n_keys):
        log_ints, log_floats = log_buffer.new_buffers(10, 2)
        ring = np.zeros(max(c[C_MAX_REJECTS] + 1, 1), np.int64)
        # scalars: state, trip, peak, day, day's start equity, last equity, last control seq, last market
        # ts_recv (and whether there was one), reject ring position and count; log rows used
        scalars = (RUNNING, NO_TRIP, np.nan, -(1 << 62), np.nan, np.nan, 0, 0, 0, 0, 0, 0)
        return (scalars, ring, log_ints, log_floats)

    @staticmethod
    def drain(c, s):
        """Return the state with its trips log emptied, and the rows logged since the last drain."""
        scalars, ring, log_ints, log_floats = s
        rows = log_buffer.drain_columns(log_ints, log_floats, int(scalars[11]), TRIP_COLUMNS)
        return (scalars[:11] + (0,), ring, log_ints, log_floats), {"trips": rows}

    @staticmethod
    def logged_rows(c, s) -> int:
        """Return the rows logged since the last drain."""
        return int(s[0][11])

    @staticmethod
    def step(c, s, key, ts_event, ts_recv, equity, position, reject_code, drift, command, seq, operator, reason,
             latency_ns):
        scalars, ring, log_ints, log_floats = s
        state, trip, peak, day, day_start, last_equity, last_seq, last_mkt_ts, have_mkt, ring_pos, ring_n, used = \
            scalars
        log_ints, log_floats = log_buffer.reserve(log_ints, log_floats, used, 2)
        control = seq != last_seq
        ev = (key, ts_event, ts_recv)
        found, value, limit = NO_TRIP, np.nan, np.nan
        if control:
            last_seq = seq
            who = (seq, command, operator, reason)
            if command == CMD_RESUME:
                if state != RUNNING:
                    used = log_event(log_ints, log_floats, used, ev, EV_RESUME, trip, np.nan, np.nan, who, RUNNING)
                    state, trip = RUNNING, NO_TRIP
                    peak, day_start, ring_n = equity, equity, 0
                else:
                    used = log_event(log_ints, log_floats, used, ev, EV_RESUME_IGNORED, NO_TRIP, np.nan, np.nan,
                                     who, state)
            elif command == CMD_HALT or command == CMD_FLATTEN:
                if state == RUNNING:
                    trip = MANUAL
                if command == CMD_FLATTEN or c[C_FLATTEN] != 0:
                    state = FLATTENING
                elif state == RUNNING:
                    state = HALTED_STATE
                used = log_event(log_ints, log_floats, used, ev, EV_HALT, MANUAL, np.nan, np.nan, who, state)
            if have_mkt != 0:
                found, value, limit = gap_trip(c, ts_recv, last_mkt_ts)
            if found == NO_TRIP and latency_ns >= 0 and c[C_MAX_LATENCY_NS] >= 0 \
                    and latency_ns > c[C_MAX_LATENCY_NS]:
                found, value, limit = LATENCY, latency_ns / 1e9, c[C_MAX_LATENCY_NS] / 1e9
        else:
            found, value, limit, ring_pos, ring_n = market_trips(c, ring, ring_pos, ring_n, ts_event, ts_recv,
                                                                 last_mkt_ts, have_mkt, position, reject_code,
                                                                 drift)
            last_mkt_ts, have_mkt = ts_recv, 1
        drawdown, daily_pnl = np.nan, np.nan
        if equity == equity:
            this_day = (ts_recv - c[C_DAY_OFFSET_NS]) // DAY_NS
            if this_day != day:
                day = this_day
                day_start = last_equity if last_equity == last_equity else equity
            if not (peak >= equity):
                peak = equity
            drawdown = peak - equity
            daily_pnl = equity - day_start
            last_equity = equity
            money, money_value, money_limit = money_trips(c, peak, drawdown, daily_pnl)
            if money != NO_TRIP:
                found, value, limit = money, money_value, money_limit
        if found != NO_TRIP and state == RUNNING:
            state = FLATTENING if c[C_FLATTEN] != 0 else HALTED_STATE
            trip = found
            used = log_event(log_ints, log_floats, used, ev, EV_TRIP, found, value, limit, (0, 0, 0, 0), state)
        scalars = (state, trip, peak, day, day_start, last_equity, last_seq, last_mkt_ts, have_mkt, ring_pos, ring_n,
                   used)
        return (scalars, ring, log_ints, log_floats), state, trip, drawdown, daily_pnl


@step_helper
def money_trips(c, peak, drawdown, daily_pnl):
    """The first of drawdown, drawdown fraction and daily loss beyond its limit: ``(code, value, limit)``."""
    if drawdown > c[C_MAX_DD]:
        return DRAWDOWN, drawdown, c[C_MAX_DD]
    if peak > 0.0 and drawdown / peak > c[C_MAX_DD_FRACTION]:
        return DRAWDOWN_FRACTION, drawdown / peak, c[C_MAX_DD_FRACTION]
    if -daily_pnl > c[C_MAX_DAILY_LOSS]:
        return DAILY_LOSS, -daily_pnl, c[C_MAX_DAILY_LOSS]
    return NO_TRIP, np.nan, np.nan


@step_helper
def gap_trip(c, ts_recv, last_mkt_ts):
    gap = ts_recv - last_mkt_ts
    if c[C_MAX_GAP_NS] >= 0 and gap > c[C_MAX_GAP_NS]:
        return DATA_GAP, gap / 1e9, c[C_MAX_GAP_NS] / 1e9
    return NO_TRIP, np.nan, np.nan


@step_helper
def market_trips(c, ring, ring_pos, ring_n, ts_event, ts_recv, last_mkt_ts, have_mkt, position, reject_code, drift):
    """Position, rejects, feed delay, data gap and drift on a market event (the reject window is updated even
    when another breaker trips first): ``(code, value, limit, ring_pos, ring_n)``."""
    found, value, limit = NO_TRIP, np.nan, np.nan
    if reject_code != 0 and c[C_MAX_REJECTS] >= 0:
        ring[ring_pos] = ts_recv
        ring_pos = (ring_pos + 1) % ring.shape[0]
        ring_n = min(ring_n + 1, ring.shape[0])
        # full ring: max_rejects + 1 rejects, the oldest at ring_pos; within the window means one too many
        if ring_n == ring.shape[0] and ts_recv - ring[ring_pos] < c[C_REJECT_WINDOW_NS]:
            found, value, limit = REJECT_RATE, float(ring_n), float(c[C_MAX_REJECTS])
    if abs(position) > c[C_MAX_POS]:
        return POSITION_BREACH, abs(position) / UNIT, c[C_MAX_POS_F], ring_pos, ring_n
    if found != NO_TRIP:
        return found, value, limit, ring_pos, ring_n
    delay = ts_recv - ts_event
    if c[C_MAX_FEED_DELAY_NS] >= 0 and delay > c[C_MAX_FEED_DELAY_NS]:
        return FEED_DELAY, delay / 1e9, c[C_MAX_FEED_DELAY_NS] / 1e9, ring_pos, ring_n
    if have_mkt != 0:
        found, value, limit = gap_trip(c, ts_recv, last_mkt_ts)
        if found != NO_TRIP:
            return found, value, limit, ring_pos, ring_n
    if drift == drift and drift > c[C_MAX_DRIFT]:
        return DRIFT, drift, c[C_MAX_DRIFT], ring_pos, ring_n
    return NO_TRIP, np.nan, np.nan, ring_pos, ring_n


@step_helper
def log_event(log_ints, log_floats, used, ev, event, breaker, value, limit, who, state):
    """Append a row to the trips log; return the rows used."""
    key, ts_event, ts_recv = ev
    seq, command, operator, reason = who
    r = used
    log_ints[r, L_TS_RECV] = ts_recv
    log_ints[r, L_TS_EVENT] = ts_event
    log_ints[r, L_KEY] = key
    log_ints[r, L_EVENT] = event
    log_ints[r, L_BREAKER] = breaker
    log_ints[r, L_SEQ] = seq
    log_ints[r, L_COMMAND] = command
    log_ints[r, L_OPERATOR] = operator
    log_ints[r, L_REASON] = reason
    log_ints[r, L_STATE] = state
    log_floats[r, LF_VALUE] = value
    log_floats[r, LF_LIMIT] = limit
    return used + 1
