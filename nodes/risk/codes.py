"""The risk ops' vocabulary: pre-trade checks, circuit breakers, risk states and operator commands.

Codes are small ints inside the steps (numba sees plain int64); the ``*_NAMES`` tuples turn them into the
strings the logs carry once drained. A code's name is its index in its tuple.
"""

import numpy as np

# pre-trade checks (risk.pre_trade), in the order they are applied to one order
OK = 0
INVALID = 1  # quantity < 0 or beyond 2^62, or a price that is not in (0, UNDEF_PRICE)
HALTED = 2  # the system is HALTED and the order does not reduce |position|
TICK = 3  # the price is not a multiple of tick_size
LOT = 4  # the quantity is not a multiple of lot_size
MAX_QTY = 5  # quantity above max_order_qty
MAX_NOTIONAL = 6  # price × quantity above max_order_notional
NO_REFERENCE = 7  # a price band or notional limit needs a reference price and there is none yet
PRICE_BAND = 8  # |price − reference| above price_band_bps of the reference (fat finger)
POSITION = 9  # the position after a fill would be beyond ±max_position
EXPOSURE = 10  # the gross exposure after a fill would be above max_exposure_notional
RATE = 11  # more than max_orders_per_s new orders (token bucket on the event clock)
DUPLICATE = 12  # the same order as the last one on this side, within duplicate_window
CHECK_NAMES = ("ok", "invalid", "halted", "tick", "lot", "max_order_qty", "max_order_notional", "no_reference",
               "price_band", "max_position", "max_exposure_notional", "max_orders_per_s", "duplicate")

# circuit breakers (risk.circuit_breaker)
NO_TRIP = 0
DRAWDOWN = 1  # peak equity − equity above max_drawdown (quote currency)
DRAWDOWN_FRACTION = 2  # (peak − equity) / peak above max_drawdown_fraction
DAILY_LOSS = 3  # equity at the day's start − equity above max_daily_loss
POSITION_BREACH = 4  # |position| above max_position
REJECT_RATE = 5  # more than max_rejects pre-trade rejects within reject_window
FEED_DELAY = 6  # a market event's ts_recv − ts_event above max_feed_delay (stale feed)
DATA_GAP = 7  # time since the last market event above max_data_gap (stale data)
LATENCY = 8  # a measured latency (control event) above max_latency
DRIFT = 9  # the drift statistic above max_drift
MANUAL = 10  # an operator's halt or flatten command
TRIP_NAMES = ("none", "max_drawdown", "max_drawdown_fraction", "max_daily_loss", "max_position", "max_rejects",
              "max_feed_delay", "max_data_gap", "max_latency", "max_drift", "manual")

# risk states (risk.circuit_breaker's ``halted`` output, risk.pre_trade's ``halted`` input)
RUNNING = 0
HALTED_STATE = 1  # working orders cancelled; only risk-reducing orders pass
FLATTENING = 2  # HALTED, and the pre-trade op works the position down to 0
STATE_NAMES = ("running", "halted", "flattening")

# the breaker's log events
EV_TRIP = 1
EV_RESUME = 2
EV_RESUME_IGNORED = 3  # a resume while RUNNING: logged, changes nothing
EV_HALT = 4  # an operator's halt or flatten
EVENT_NAMES = ("none", "trip", "resume", "resume_ignored", "halt")

# operator commands (source.control's ``command`` port)
CMD_NONE = 0
CMD_RESUME = 1
CMD_HALT = 2
CMD_FLATTEN = 3  # halt and work the position down to 0
CMD_HEARTBEAT = 4  # a tick of the runtime's clock: lets staleness be seen while the market is silent
CMD_LATENCY = 5  # a measured latency (``latency_ns``)
COMMAND_NAMES = ("none", "resume", "halt", "flatten", "heartbeat", "latency")


def named(codes, names: tuple):
    """Codes (a numpy int array) as their names; a code outside ``names`` as its number."""
    codes = np.asarray(codes)
    known = (codes >= 0) & (codes < len(names))
    text = np.array(names, dtype=str)[np.where(known, codes, 0)]
    return text if known.all() else np.where(known, text, codes.astype(str))
