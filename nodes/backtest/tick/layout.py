"""Where the tick venue keeps things: the constants tuple, the eight state arrays and their columns.

The state is eight arrays and no scalar (``new_state``): everything the venue knows lives in them, so the many
helpers of a step share it by reference instead of threading dozens of scalars through every call, and a state
tuple of few arrays keeps numba's reference counting per event small (see ``ladder``'s docstring):

- ``book``: int64 ``(n_keys, fields, 2, 2 × max_levels)``, each instrument's ladder (``ladder.py``): L2 KEY and
  SIZE; L3 KEY, SIZE, COUNT and CONSUMED (see ``book.py``);
- ``table``: int64 ``(n_keys, rows, 4)``, each instrument's L3 order table (``order_table.py``); a stub for L2;
- ``ints``: int64 2-D, rows ``ACC`` (account), ``RNG`` (PRNG states and replay cursors), one row per
  instrument from ``KEY0`` and one per order slot from ``first_order_row``; an order's slot IS its row;
- ``floats``: float64, the same rows (account cash and holdings, each instrument's mark, each order's notional
  and fees);
- ``requests`` / ``responses``: int64 FIFO queues (rows between a head and a tail kept in ``ints[ACC]``);
- ``log_ints`` / ``log_floats``: the log buffer (one row per logged event, every log kind in one buffer, drained
  by ``TickVenue.drain``).

Arrays that can fill up (queues, logs) are grown at a phase boundary of the step, never inside a helper, so
the helpers allocate nothing.
"""

import numpy as np

from nodes.backtest.tick.latency import (
    STREAM_CANCEL, STREAM_COMPUTE, STREAM_ENTRY, STREAM_FEED, STREAM_RESPONSE, seed_rng,
)
from nodes.marketdata.book.ladder import empty_sides, new_levels
from nodes.marketdata.book.order_table import new_table
from nodes.marketdata.schemas import UNDEF_PRICE

# ---- constants tuple c (built by venue.venue_constants): scalars and nested tuples of scalars, then one array.
# Only scalars reach the core and its helpers (the wrapper splits the array off): a numba call copies every
# element of its arguments, and an array is nine words.
C_BOOK = 0  # 0 l2, 1 l3
C_MODE = 1  # MODE_*
C_MAX_LEVELS = 2
C_MAX_ORDERS = 3
C_MAX_BOOK_ORDERS = 4
C_CASH = 5
C_MAKER_FEE = 6
C_TAKER_FEE = 7
C_MAKER_PER_UNIT = 8
C_TAKER_PER_UNIT = 9
C_QUEUE = 10  # codes.QM_*
C_QUEUE_N = 11
C_QUOTE_TYPE = 12  # LIMIT or POST_ONLY
C_TAKER_TYPE = 13  # MARKET, IOC or FOK
C_TAKER_LIMIT = 14  # fraction of the reference price an IOC/FOK may pay beyond it
C_DECIDE_LAST = 15  # 1: quotes/target are read at F_LAST records only
C_EQUITY_NS = 16
C_SEED = 17
C_HALFLIFE_NS = 18  # half-life of the event-rate EWMA; 0 when no latency is an activity model
C_LOG_QUEUE = 19
C_REJECT_OFF = 20  # reject windows in the tables array: (start, end, rate × 2^53) per window
C_REJECT_N = 21
# latencies: (kind, p1, p2, p3, offset, length) — latency_constants' numbers, its table in the tables array
C_LAT_FEED = 22
C_LAT_ENTRY = 23
C_LAT_CANCEL = 24
C_LAT_RESPONSE = 25
C_LAT_COMPUTE = 26
C_RESPONSE_NS = 27  # the response latency when it is a constant (no draw per event), else -1
C_TABLES = 28  # int64 array: replay latency tables and reject windows
C_SCALARS = C_TABLES  # c[:C_SCALARS] is what the core's helpers receive as c

MODE_QUOTES = 0
MODE_TARGET = 1
MODE_COMMANDS = 2

# ---- book fields (first index of book[k])
KEY = 0
SIZE = 1
COUNT = 2  # L3
CONSUMED = 3  # L3
BOOK_FIELDS_L2 = 2
BOOK_FIELDS_L3 = 4

# ---- ints rows
ACC = 0
RNG = 1
KEY0 = 2

# ints[ACC, ...]
A_XT = 0  # exchange clock (monotone ts_event)
A_LT = 1  # local clock
A_NEXT_EQ = 2  # next equity log time
A_LOG_N = 3  # rows in the log buffer
A_RQ_HEAD = 4
A_RQ_TAIL = 5
A_RS_HEAD = 6
A_RS_TAIL = 7
A_LAST_ARRIVAL = 8  # requests arrive in the order they were sent (one session)
A_LAST_VISIBLE = 9  # responses are seen in the order they were sent
A_ORDER_SEQ = 10  # next generated order id
A_PRIO_SEQ = 11  # next priority among our own resting orders
A_LAST_CMD = 12
A_MAX_CMD = 13
A_FILLS_L = 14
A_FILLS_X = 15
A_HI = 16  # one past the highest order row in use
A_FIRST_ORDER = 17
A_N_KEYS = 18
A_RESP_VIS = 19  # response visibility time of the current exchange batch, -1 before its first response
A_ACT_LAST = 20  # time of the last event counted in the activity rate
A_DECISION = 21  # decision time of the current event's requests, -1 before it is drawn
A_EVENTS = 22
A_RESP_LAT = 23  # the response latency drawn for the current exchange batch
A_END_ORDERS = 24  # one past the last order row
A_DONE_POS = 25  # next row of the ring of ended orders

# ints[RNG, ...]: PRNG states, then replay cursors, in the order of the latency kinds
LAT_FEED = 0
LAT_ENTRY = 1
LAT_CANCEL = 2
LAT_RESPONSE = 3
LAT_COMPUTE = 4
RNG_REJECT = 5  # the draws of reject_windows
CURSOR0 = 6  # + LAT_*: replay cursors
STREAM_REJECT = 6  # its PRNG stream (the latency module numbers its own 1..5)

# ints[KEY0 + k, ...]
K_LO_BID = 0
K_N_BID = 1
K_LO_ASK = 2
K_N_ASK = 3
K_POS_X = 4  # position at the venue
K_POS_L = 5  # position as the strategy knows it
K_LIVE_BID = 6  # our live orders at the venue, per side
K_LIVE_ASK = 7
K_OWN_BID = 8  # highest live bid / lowest live ask of ours at the venue (for crossing checks)
K_OWN_ASK = 9
K_FLIGHT_BID = 10  # requests sent whose completing response the strategy has not seen, per side
K_FLIGHT_ASK = 11
K_QUOTE_BID = 12  # the order row of the current quote (quotes mode), -1 none
K_QUOTE_ASK = 13
K_LW_BID = 14  # best working price as the strategy knows it (UNDEF_PRICE none)
K_LW_ASK = 15
K_NORDERS = 16  # L3 book counters (mbo_rules)
K_NEXT_PRIO = 17
K_OVERFLOW = 18
K_INCONSISTENT = 19
K_RESYNC = 20  # L3: the book was cleared; our queue places are re-taken at the next F_LAST record
K_OPEN_L = 21  # orders not done as the strategy knows them
K_STRAYS = 22  # quotes mode: a replaced quote's cancel was refused while it still rests; cancel it again

# ints[order row, ...]
O_ID = 0
O_KEY = 1
O_SIDE = 2
O_TYPE = 3
O_PRICE = 4
O_QTY = 5  # total quantity (a modify sets it)
O_LEAVES = 6
O_XSTATE = 7
O_LSTATE = 8
O_AHEAD = 9  # queue ahead, 1e-9 units
O_PRIO = 10  # priority among our own orders at a level
O_MARK = 11  # L3: the book's priority counter when the order took its place
O_PENDING = 12  # requests about the order whose completing response the strategy has not seen
O_LPRICE = 13
O_LQTY = 14
O_LLEAVES = 15
O_FILLED = 16
O_SENT_TS = 17
O_LFILLED = 18
O_TRADED = 19  # L2: traded at the order's price since the data last set its level (explains a decrease)

# rows after the orders: a ring of the last orders that ended and left their slot, [order id, local state], so a
# late cancel or modify of one is rejected with what happened to it, not as an unknown order
DONE_RING = 64
D_ID = 0
D_STATE = 1

INT_WIDTH = 26

# floats
AF_CASH_X = 0
AF_CASH_L = 1
AF_HOLD_X = 2  # Σ position × mark at the venue, quote currency
AF_HOLD_L = 3
AF_RATE = 4  # activity: recent events per second
KF_MARK = 0  # floats[KEY0 + k]: the instrument's mark (mid), NaN before the first one
OF_NOTIONAL = 0  # floats[order row]
OF_FEES = 1
FLOAT_WIDTH = 6

# ---- request queue columns
Q_ARRIVE = 0
Q_KIND = 1
Q_SLOT = 2
Q_ID = 3
Q_PRICE = 4
Q_QTY = 5
Q_SENT = 6
REQUEST_WIDTH = 7

# ---- response queue columns
S_VISIBLE = 0
S_KIND = 1
S_SLOT = 2
S_ID = 3
S_PRICE = 4
S_QTY = 5
S_LIQ = 6
S_COMPLETES = 7
S_LEAVES = 8
RESPONSE_WIDTH = 9

# ---- log buffer columns (one buffer, a kind per row; see logs.py for what each kind keeps)
LOG_ORDER = 1
LOG_FILL = 2
LOG_QUEUE = 3
LOG_EQUITY = 4

L_KIND = 0
L_TS_X = 1
L_TS_L = 2
L_KEY = 3
L_ID = 4
L_SIDE = 5
L_TYPE = 6
L_PRICE = 7
L_QTY = 8
L_LEAVES = 9
L_AHEAD = 10
L_CODE = 11
L_REASON = 12
L_BEST_BID = 13
L_BEST_ASK = 14
L_BID_SIZE = 15
L_ASK_SIZE = 16
L_LEVELS = 17
L_POSITION = 18
LOG_INT_WIDTH = 19

LF_FEE = 0
LF_NOTIONAL = 1
LF_AVG_PRICE = 2
LF_CASH = 3
LF_EQUITY = 4
LF_MID = 5
LOG_FLOAT_WIDTH = 6

_MIN_LOG_ROWS = 4096
_MIN_QUEUE_ROWS = 64


def new_state(c: tuple, n_keys: int) -> tuple:
    """The venue's initial state: the eight arrays described above, for ``n_keys`` instruments."""
    max_levels, max_orders = c[C_MAX_LEVELS], c[C_MAX_ORDERS]
    fields = BOOK_FIELDS_L3 if c[C_BOOK] == 1 else BOOK_FIELDS_L2
    book = np.ascontiguousarray(np.stack([new_levels(fields, max_levels) for _ in range(n_keys)]))
    table_orders = c[C_MAX_BOOK_ORDERS] if c[C_BOOK] == 1 else 1
    table = np.ascontiguousarray(np.stack([new_table(table_orders) for _ in range(n_keys)]))
    first_order = KEY0 + n_keys
    ints = np.zeros((first_order + max_orders + DONE_RING, INT_WIDTH), np.int64)
    floats = np.zeros((first_order + max_orders, FLOAT_WIDTH), np.float64)
    account = ints[ACC]
    account[A_ORDER_SEQ] = 1
    account[A_PRIO_SEQ] = 1
    account[A_HI] = first_order
    account[A_FIRST_ORDER] = first_order
    account[A_END_ORDERS] = first_order + max_orders
    account[A_N_KEYS] = n_keys
    account[A_RESP_VIS] = -1
    account[A_DECISION] = -1
    account[A_NEXT_EQ] = -(1 << 62)  # the first event logs the opening equity
    account[A_XT] = -(1 << 62)
    account[A_LT] = -(1 << 62)
    streams = {LAT_FEED: STREAM_FEED, LAT_ENTRY: STREAM_ENTRY, LAT_CANCEL: STREAM_CANCEL,
               LAT_RESPONSE: STREAM_RESPONSE, LAT_COMPUTE: STREAM_COMPUTE, RNG_REJECT: STREAM_REJECT}
    for column, stream in streams.items():
        ints[RNG, column] = seed_rng(c[C_SEED], stream)
    for k in range(n_keys):
        row = ints[KEY0 + k]
        row[K_LO_BID], row[K_N_BID], row[K_LO_ASK], row[K_N_ASK] = empty_sides(max_levels)
        row[K_QUOTE_BID] = -1
        row[K_QUOTE_ASK] = -1
        row[K_LW_BID] = UNDEF_PRICE
        row[K_LW_ASK] = UNDEF_PRICE
        row[K_NEXT_PRIO] = 1
        floats[KEY0 + k, KF_MARK] = np.nan
    floats[ACC, AF_CASH_X] = c[C_CASH]
    floats[ACC, AF_CASH_L] = c[C_CASH]
    requests = np.zeros((max(_MIN_QUEUE_ROWS, 4 * max_orders), REQUEST_WIDTH), np.int64)
    responses = np.zeros((max(_MIN_QUEUE_ROWS, 4 * max_orders), RESPONSE_WIDTH), np.int64)
    log_rows = max(_MIN_LOG_ROWS, 16 * max_orders)  # grown when an event may need more (kernel.room_needed)
    log_ints = np.zeros((log_rows, LOG_INT_WIDTH), np.int64)
    log_floats = np.zeros((log_rows, LOG_FLOAT_WIDTH), np.float64)
    return (book, table, ints, floats, requests, responses, log_ints, log_floats)
