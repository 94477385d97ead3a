"""The tick venue's vocabulary: order types, order states, log events, reasons, liquidity and queue causes.

Codes are small ints inside the step (numba sees plain int64); the ``*_NAMES`` tuples turn them into the
strings the logs carry once drained. A code's name is its index in its tuple.
"""

# order types, as the `commands` mode's `cmd_type` input writes them
LIMIT = 0  # good till cancelled: takes what crosses, rests the rest
MARKET = 1  # walks the book, the rest is cancelled; rejected in an empty book
IOC = 2  # immediate or cancel at a limit price
FOK = 3  # fill in full at once at a limit price, or not at all
POST_ONLY = 4  # a limit that is rejected when it would cross
ORDER_TYPE_NAMES = ("limit", "market", "ioc", "fok", "post_only")

# commands (`cmd` input)
CMD_NEW = 1
CMD_CANCEL = 2
CMD_MODIFY = 3

# exchange-side state of an order
X_PENDING = 0  # sent, not arrived yet
X_LIVE = 1  # accepted and resting (or being matched)
X_DONE = 2  # filled, cancelled or rejected

# local-side state of an order (the state machine the strategy sees); 0 marks a free slot
L_FREE = 0
L_SENT = 1
L_ACKED = 2
L_PARTIAL = 3
L_FILLED = 4
L_CANCELLED = 5
L_REJECTED = 6
LOCAL_STATE_NAMES = ("free", "sent", "acknowledged", "partially_filled", "filled", "cancelled", "rejected")

# requests the local side sends
REQ_NEW = 1
REQ_CANCEL = 2
REQ_MODIFY = 3

# responses the exchange sends back
RESP_ACK = 1
RESP_FILL = 2
RESP_CANCELLED = 3
RESP_REJECTED = 4
RESP_MODIFIED = 5
RESP_CANCEL_REJECTED = 6
RESP_MODIFY_REJECTED = 7

# order log events
EV_SENT = 1
EV_ACKED = 2
EV_REJECTED = 3
EV_MODIFY_SENT = 4
EV_MODIFIED = 5
EV_MODIFY_REJECTED = 6
EV_CANCEL_SENT = 7
EV_CANCELLED = 8
EV_CANCEL_REJECTED = 9
EV_PARTIALLY_FILLED = 10
EV_FILLED = 11
EVENT_NAMES = (
    "", "sent", "acked", "rejected", "modify_sent", "modified", "modify_rejected", "cancel_sent", "cancelled",
    "cancel_rejected", "partially_filled", "filled",
)

# reasons of rejects and cancels
R_NONE = 0
R_POST_ONLY_CROSS = 1
R_FOK_UNFILLABLE = 2
R_IOC_REMAINDER = 3
R_NO_LIQUIDITY = 4
R_MARKET_REMAINDER = 5
R_MAX_ORDERS = 6
R_INVALID_QTY = 7
R_INVALID_PRICE = 8
R_INVALID_SIDE = 9
R_INVALID_TYPE = 10
R_UNKNOWN_ORDER = 11
R_NOT_LIVE = 12
R_DUPLICATE_CMD = 13
R_UNKNOWN_CMD = 14
R_REJECT_WINDOW = 15
R_BELOW_FILLED = 16
R_REQUESTED = 17
R_ALREADY_FILLED = 18
R_ALREADY_CANCELLED = 19
R_ALREADY_REJECTED = 20
REASON_NAMES = (
    "", "post-only order would cross", "FOK cannot fill in full", "IOC remainder cancelled",
    "no liquidity for a market order", "market order remainder: book exhausted",
    "max_orders working orders reached", "quantity must be > 0", "invalid price", "side must be 1 or -1",
    "unknown order type", "unknown order id", "too late: the order is no longer live at the venue",
    "duplicate or out-of-order cmd_id", "unknown cmd", "venue reject burst (reject_windows)",
    "modified to at most the filled quantity", "cancel requested", "the order is already filled",
    "the order is already cancelled", "the order is already rejected",
)

# liquidity of a fill
MAKER = 1
TAKER = 2
LIQUIDITY_NAMES = ("", "maker", "taker")

# why the queue ahead of a resting order changed
Q_ARRIVAL = 1
Q_TRADE = 2
Q_DEPTH = 3
Q_CLAMP = 4
Q_L3_AHEAD = 5
Q_RESYNC = 6
Q_REQUEUE = 7
QUEUE_CAUSE_NAMES = ("", "arrival", "trade", "depth_decrease", "level_below_ahead", "order_ahead_left", "resync",
                     "requeue")

# queue models (L2)
QM_CONSERVATIVE = 0
QM_PROB_POWER = 1
QM_PROB_LOG = 2
QM_USER = 3
