"""The venue's step: the per-event order of work, built around a queue model.

``build_steps(advance)`` returns the six steps (``book`` l2/l3 × ``orders`` quotes/target/commands): thin
wrappers that make room in the growable arrays and call one shared core with their inputs in a fixed order, so
numba compiles the core once per queue model whatever the mode. The queue model is a closure variable of the L2
level update (not a value passed around), because numba compiles a call to a known function but not to a
function value: the built-in models share one set of steps (``BUILTIN_STEPS``, the model picked by a constant);
a user's model gets its own set (``venue._user_model_steps``).

Per market event (``docs/tick_venue.md``, "Clocks and the order of work"):

1. the venue processes the requests that have arrived by the event's exchange time, in arrival order, against
   the book as the previous event left it;
2. the event updates the book; trades and level changes move our resting orders' queues and fill them;
3. the strategy's side applies the responses it has seen by the event's local time;
4. the strategy's inputs of this event become requests.

An equity row is logged when the exchange clock passes an ``equity_interval`` boundary (after step 1).

Speed: the core and every helper are compiled without NRT reference counting (``_nrt=False``): nothing in them
allocates. The only allocation, growing the logs and queues, happens in the wrapper before the core runs,
bounded by what the event can add (``room_needed``), and only when the bound does not fit. With reference
counting, every helper call paid an atomic increment and decrement per array it was passed (eight in the state,
seven in the constants), which measured at about half the time of a whole event.
"""

from nodes.backtest.tick.account import log_equity_rows, set_mark
from nodes.backtest.tick.book import load_sides, set_level_l2, snapshot, store_sides
from nodes.backtest.tick.clocks import count_event, draw_latency_ns
from nodes.backtest.tick.exchange import venue_request
from nodes.backtest.tick.fifo_l3 import l3_event
from nodes.backtest.tick.layout import (
    A_DECISION,
    A_LAST_CMD,
    A_FILLS_L,
    A_LOG_N,
    A_LT,
    A_N_KEYS,
    A_NEXT_EQ,
    A_RESP_LAT,
    A_RESP_VIS,
    A_RQ_HEAD,
    A_RQ_TAIL,
    A_RS_HEAD,
    A_RS_TAIL,
    A_XT,
    ACC,
    AF_CASH_L,
    AF_HOLD_L,
    C_BOOK,
    C_DECIDE_LAST,
    C_EQUITY_NS,
    C_HALFLIFE_NS,
    C_LAT_FEED,
    C_LAT_RESPONSE,
    C_MAX_LEVELS,
    C_MAX_ORDERS,
    C_MODE,
    C_RESPONSE_NS,
    C_TABLES,
    K_FLIGHT_ASK,
    K_FLIGHT_BID,
    K_INCONSISTENT,
    K_LIVE_ASK,
    K_LIVE_BID,
    K_LO_ASK,
    K_LO_BID,
    K_LW_ASK,
    K_LW_BID,
    K_N_ASK,
    K_N_BID,
    K_OPEN_L,
    K_OVERFLOW,
    K_POS_L,
    K_STRAYS,
    KEY,
    KEY0,
    KF_MARK,
    LAT_FEED,
    LAT_RESPONSE,
    MODE_COMMANDS,
    MODE_QUOTES,
    O_KEY,
    O_SIDE,
    Q_ARRIVE,
    Q_SLOT,
    S_VISIBLE,
)
from nodes.backtest.tick.latency import KIND_DATA
from nodes.backtest.tick.local import QUOTE_KEEP, apply_responses, decide, quote_action
from nodes.backtest.tick.logs import reserve_log
from nodes.backtest.tick.match import fill_crossed, fill_traded_through, may_cross
from nodes.backtest.tick.queue_l2 import builtin_advance, make_level_update, trade_at_level
from nodes.backtest.tick.queues import reserve_queue
from nodes.contract import step_helper
from nodes.marketdata.book.ladder import ASK, BID, empty_sides, row_of, valid_price
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_FILL,
    ACTION_MODIFY,
    ACTION_NONE,
    ACTION_TRADE,
    F_LAST,
)

BOOKS = ("l2", "l3")
MODES = ("quotes", "target", "commands")
MARKET_INPUTS = {"l2": ("side", "price", "size", "action", "flags"),
                 "l3": ("order_id", "side", "price", "size", "action", "flags")}
ORDER_INPUTS = {
    "quotes": ("bid_px", "bid_qty", "ask_px", "ask_qty"),
    "target": ("target",),
    "commands": ("cmd", "cmd_id", "cmd_side", "cmd_type", "cmd_price", "cmd_qty", "cmd_ref"),
}
_ORDER_SLOTS = 7  # the core's strategy inputs: the most any mode has


@step_helper(_nrt=False)
def room_needed(c, ints, requests, ts_event):
    """Log rows and responses one event may add at most: per request due, a walk over the whole opposite side
    of its instrument (a fill and an order row per level) and a few rows; for the market event, a few rows per
    order of ours; then the decisions and the equity rows."""
    exchange_ns = ints[ACC, A_XT] if ints[ACC, A_XT] > ts_event else ts_event
    log_rows = 8 * c[C_MAX_ORDERS] + ints[ACC, A_N_KEYS] + 32
    response_rows = 2 * c[C_MAX_ORDERS] + 8
    r = ints[ACC, A_RQ_HEAD]
    while r < ints[ACC, A_RQ_TAIL] and requests[r, Q_ARRIVE] <= exchange_ns:
        slot = requests[r, Q_SLOT]
        row = KEY0 + ints[slot, O_KEY]
        opposite_levels = ints[row, K_N_ASK] if ints[slot, O_SIDE] == 1 else ints[row, K_N_BID]
        log_rows += 2 * opposite_levels + 16
        response_rows += opposite_levels + 8
        r += 1
    return log_rows, response_rows


@step_helper(_nrt=False)
def _l2_trade(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, exchange_ns, side, price, qty):
    """A trade row: ``side`` is the aggressor (0 unknown: inferred from where it printed, if it can be)."""
    snap = snapshot(levels, sides)
    aggressor = side
    if aggressor != 1 and aggressor != -1:
        aggressor = 0
        if sides[3] > 0 and price >= snap[1]:
            aggressor = 1
        elif sides[1] > 0 and price <= snap[0]:
            aggressor = -1
    if aggressor != 0:
        resting = -aggressor
        live = ints[KEY0 + k, K_LIVE_BID if resting == 1 else K_LIVE_ASK]
        if live > 0:
            trade_at_level(c, ints, floats, responses, log_ints, log_floats, k, resting, price, qty, snap,
                           exchange_ns)
    fill_traded_through(c, ints, floats, responses, log_ints, log_floats, k, price, snap, exchange_ns)


def build_steps(advance) -> dict[tuple[str, str], object]:
    """The venue's steps around queue model ``advance(model, n, front, back, decrease) -> front`` (units)."""
    update_queues_at_level = make_level_update(advance)

    @step_helper(_nrt=False)
    def l2_event(c, ints, floats, responses, log_ints, log_floats, levels, k, exchange_ns, side, price, size,
                 action):
        row_k = KEY0 + k
        if action == ACTION_ADD or action == ACTION_CANCEL or action == ACTION_MODIFY:
            if (side == 1 or side == -1) and valid_price(price) and size >= 0:
                sides, overflowed, old_size = set_level_l2(
                    levels, (ints[row_k, K_LO_BID], ints[row_k, K_N_BID], ints[row_k, K_LO_ASK],
                             ints[row_k, K_N_ASK]), row_of(side), c[C_MAX_LEVELS], price * side, size)
                ints[row_k, K_LO_BID] = sides[0]
                ints[row_k, K_N_BID] = sides[1]
                ints[row_k, K_LO_ASK] = sides[2]
                ints[row_k, K_N_ASK] = sides[3]
                ints[row_k, K_OVERFLOW] += overflowed
                if ints[row_k, K_LIVE_BID if side == 1 else K_LIVE_ASK] > 0:
                    update_queues_at_level(c, ints, log_ints, log_floats, k, side, price, old_size, size, exchange_ns)
                if size > 0 and may_cross(ints, k, -side, price):
                    fill_crossed(c, ints, floats, responses, log_ints, log_floats, levels, sides, k, -side,
                                 snapshot(levels, sides), exchange_ns)
            else:
                ints[row_k, K_INCONSISTENT] += 1
        elif action == ACTION_TRADE:
            if valid_price(price) and size > 0:
                _l2_trade(c, ints, floats, responses, log_ints, log_floats, levels, load_sides(ints, k), k,
                          exchange_ns, side, price, size)
            else:
                ints[row_k, K_INCONSISTENT] += 1
        elif action == ACTION_CLEAR:
            # our orders stay; their queues are clamped by the levels the snapshot sets
            store_sides(ints, k, empty_sides(c[C_MAX_LEVELS]))
        elif action != ACTION_FILL and action != ACTION_NONE:
            ints[row_k, K_INCONSISTENT] += 1

    @step_helper(_nrt=False)
    def core(c, tables, book, table, ints, floats, requests, responses, log_ints, log_floats, k, ts_event, ts_recv,
             order_id, side, price, size, action, flags, a0, a1, a2, a3, a4, a5, a6):
        # Written flat on purpose: this runs on every event, and each helper call not inlined by LLVM copies its
        # arguments (the constants and the arrays) — cheap tests first, helpers only when something happens.
        exchange_ns = ints[ACC, A_XT]
        if ts_event > exchange_ns:
            exchange_ns = ts_event
            ints[ACC, A_XT] = exchange_ns
        if c[C_HALFLIFE_NS] > 0:
            count_event(c, ints, floats, exchange_ns)
        local_ns = ts_recv
        if c[C_LAT_FEED][0] != KIND_DATA:
            local_ns = exchange_ns + draw_latency_ns(c[C_LAT_FEED], tables, ints, floats, LAT_FEED, exchange_ns)
        if local_ns < ints[ACC, A_LT]:
            local_ns = ints[ACC, A_LT]
        ints[ACC, A_LT] = local_ns
        ints[ACC, A_DECISION] = -1
        # 1. requests that have arrived, then the equity log
        head = ints[ACC, A_RQ_HEAD]
        while head < ints[ACC, A_RQ_TAIL] and requests[head, Q_ARRIVE] <= exchange_ns:
            venue_request(c, tables, book, ints, floats, requests, responses, log_ints, log_floats, head)
            head = ints[ACC, A_RQ_HEAD]
        if exchange_ns >= ints[ACC, A_NEXT_EQ]:
            log_equity_rows(c[C_EQUITY_NS], ints, floats, log_ints, log_floats, exchange_ns)
        # 2. the market event
        row = KEY0 + k
        ints[ACC, A_RESP_VIS] = -1
        ints[ACC, A_RESP_LAT] = 0
        if c[C_RESPONSE_NS] >= 0:
            ints[ACC, A_RESP_LAT] = c[C_RESPONSE_NS]
        elif ints[row, K_LIVE_BID] + ints[row, K_LIVE_ASK] > 0:  # only then can the event send responses
            ints[ACC, A_RESP_LAT] = draw_latency_ns(c[C_LAT_RESPONSE], tables, ints, floats, LAT_RESPONSE,
                                                    exchange_ns)
        levels = book[k]
        if c[C_BOOK] == 1:
            l3_event(c, ints, floats, responses, log_ints, log_floats, levels, table[k], k, exchange_ns, order_id,
                     side, price, size, action, flags)
        else:
            l2_event(c, ints, floats, responses, log_ints, log_floats, levels, k, exchange_ns, side, price, size,
                     action)
        lo_bid, n_bid, lo_ask, n_ask = ints[row, K_LO_BID], ints[row, K_N_BID], ints[row, K_LO_ASK], ints[row, K_N_ASK]
        if n_bid > 0 and n_ask > 0:
            mid = levels[KEY, BID, lo_bid + n_bid - 1] / 2e9 - levels[KEY, ASK, lo_ask + n_ask - 1] / 2e9
            if mid != floats[row, KF_MARK]:
                set_mark(ints, floats, k, mid)
        # 3. what the strategy has seen by now
        head = ints[ACC, A_RS_HEAD]
        heard = 0
        if head < ints[ACC, A_RS_TAIL] and responses[head, S_VISIBLE] <= local_ns:
            heard = apply_responses(c, ints, floats, responses, local_ns)
        # 4. what it asks for now
        mode = c[C_MODE]
        act = False
        if mode == MODE_COMMANDS:
            act = a1 != 0 and a1 != ints[ACC, A_LAST_CMD]
        elif c[C_DECIDE_LAST] == 0 or (flags & F_LAST) != 0:
            if mode == MODE_QUOTES:
                act = (ints[row, K_STRAYS] != 0 or quote_action(ints, k, 1, a0, a1) != QUOTE_KEEP
                       or quote_action(ints, k, -1, a2, a3) != QUOTE_KEEP)
            else:
                act = (ints[row, K_FLIGHT_BID] + ints[row, K_FLIGHT_ASK] == 0
                       and (ints[row, K_OPEN_L] > 0 or a0 != ints[row, K_POS_L]))
        if act:
            decide(c, tables, ints, floats, requests, log_ints, log_floats, levels, (lo_bid, n_bid, lo_ask, n_ask), k,
                   local_ns, flags, heard, a0, a1, a2, a3, a4, a5, a6)
        return (ints[row, K_POS_L], floats[ACC, AF_CASH_L], floats[ACC, AF_CASH_L] + floats[ACC, AF_HOLD_L],
                ints[row, K_LW_BID], ints[row, K_LW_ASK], ints[ACC, A_FILLS_L])

    scope = {"core": core, "room_needed": room_needed, "reserve_log": reserve_log, "reserve_queue": reserve_queue,
             "ACC": ACC, "A_LOG_N": A_LOG_N, "A_RQ_HEAD": A_RQ_HEAD, "A_RQ_TAIL": A_RQ_TAIL,
             "A_RS_HEAD": A_RS_HEAD, "A_RS_TAIL": A_RS_TAIL}
    # six wrappers from one template (compiled under this file's name: the kernel cache digests this file)
    exec(compile(_STEPS_SOURCE, __file__, "exec"), scope)  # noqa: S102
    steps = {(book_kind, mode): scope[f"step_{book_kind}_{mode}"] for book_kind in BOOKS for mode in MODES}
    for (book_kind, mode), step in steps.items():
        step.__qualname__ = f"TickVenue.step_{book_kind}_{mode}"
    return steps


def _step_source(book_kind: str, mode: str) -> str:
    """One step: make room for what the event may log or queue (the only allocation), then run the core."""
    market = MARKET_INPUTS[book_kind]
    orders = ORDER_INPUTS[mode]
    # unused slots of the core get an input of the same type: a literal would make numba compile the core again
    slots = orders + (orders[0],) * (_ORDER_SLOTS - len(orders))
    order_id = "order_id" if book_kind == "l3" else "side"
    return f'''
def step_{book_kind}_{mode}(c, s, key, ts_event, ts_recv, {", ".join(market + orders)}):
    book, table, ints, floats, requests, responses, log_ints, log_floats = s
    tables = c[{C_TABLES}]
    c = c[:{C_TABLES}]
    log_rows, response_rows = room_needed(c, ints, requests, ts_event)
    if ints[ACC, A_LOG_N] + log_rows > log_ints.shape[0]:
        log_ints, log_floats = reserve_log(log_ints, log_floats, ints, log_rows)
    if ints[ACC, A_RS_TAIL] + response_rows > responses.shape[0]:
        responses = reserve_queue(responses, ints, A_RS_HEAD, A_RS_TAIL, response_rows)
    if ints[ACC, A_RQ_TAIL] + 8 > requests.shape[0]:
        requests = reserve_queue(requests, ints, A_RQ_HEAD, A_RQ_TAIL, 8)
    out = core(c, tables, book, table, ints, floats, requests, responses, log_ints, log_floats, key, ts_event, ts_recv,
               {order_id}, side, price, size, action, flags, {", ".join(slots)})
    state = (book, table, ints, floats, requests, responses, log_ints, log_floats)
    return state, out[0], out[1], out[2], out[3], out[4], out[5]
'''


_STEPS_SOURCE = "".join(_step_source(book_kind, mode) for book_kind in BOOKS for mode in MODES)
BUILTIN_STEPS = build_steps(builtin_advance)
