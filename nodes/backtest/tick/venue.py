"""``backtest.tick_venue``: a simulated exchange for tick-level backtests (the contract: docs/tick_venue.md)."""

import hashlib
import inspect
import math
from pathlib import Path

import numpy as np

from nodes.backtest.tick.codes import (
    FOK, IOC, LIMIT, MARKET, POST_ONLY, QM_CONSERVATIVE, QM_PROB_LOG, QM_PROB_POWER, QM_USER,
)
from nodes.backtest.tick.kernel import BUILTIN_STEPS, build_steps
from nodes.backtest.tick.latency import KIND_ACTIVITY, KIND_CONSTANT, duration_ns, latency_constants
from nodes.backtest.tick.layout import (
    A_LOG_N, A_N_KEYS, ACC, C_CASH, C_TABLES, K_LIVE_ASK, K_LIVE_BID, K_POS_X, KEY0, MODE_COMMANDS, MODE_QUOTES,
    MODE_TARGET, new_state,
)
from nodes.backtest.tick.logs import drain_rows
from nodes.backtest.tick.params import NamedQueueModel, TickVenueParams, UserQueueModel
from nodes.contract import I64, F64, Scope, StreamOp, step_helper
from nodes.contract.registry import load_module_from_path
from nodes.errors import SpecError
from nodes.marketdata.schemas import UNDEF_PRICE

MARKET_L2 = {"side": I64, "price": I64, "size": I64, "action": I64, "flags": I64}
MARKET_L3 = {"order_id": I64, **MARKET_L2}
ORDER_INPUTS = {
    "quotes": {"bid_px": I64, "bid_qty": I64, "ask_px": I64, "ask_qty": I64},
    "target": {"target": I64},
    "commands": {"cmd": I64, "cmd_id": I64, "cmd_side": I64, "cmd_type": I64, "cmd_price": I64, "cmd_qty": I64,
                 "cmd_ref": I64},
}
_MODES = {"quotes": MODE_QUOTES, "target": MODE_TARGET, "commands": MODE_COMMANDS}
_TAKER_TYPES = {"market": MARKET, "ioc": IOC, "fok": FOK}
_QUEUE_MODELS = {"conservative": QM_CONSERVATIVE, "prob_power": QM_PROB_POWER, "prob_log": QM_PROB_LOG}


def venue_constants(params: TickVenueParams, base_dir: Path | None) -> tuple:
    """The step's constants (``layout.C_*``); replay latency files resolve against ``base_dir``."""
    model = params.queue_model
    if isinstance(model, str):
        queue, power = _QUEUE_MODELS[model], 2.0
    elif isinstance(model, NamedQueueModel):
        queue, power = _QUEUE_MODELS[model.model], float(model.n)
    else:
        queue, power = QM_USER, 0.0
    latencies = (  # in the order of C_LAT_FEED .. C_LAT_COMPUTE
        params.feed_latency, params.entry_latency,
        params.cancel_latency if params.cancel_latency is not None else params.entry_latency,
        params.response_latency, params.compute_latency,
    )
    tables: list[np.ndarray] = []
    offset = 0
    specs = []
    halflives = []
    for spec in latencies:
        kind, p1, p2, p3, table = latency_constants(spec, base_dir)
        specs.append((int(kind), float(p1), float(p2), float(p3), offset, len(table)))
        tables.append(np.asarray(table, np.int64))
        offset += len(table)
        if kind == KIND_ACTIVITY:
            halflives.append(int(p3))
    windows = [(*w.span_ns(), math.ceil(w.rate * 2.0**53)) for w in params.reject_windows]
    tables.append(np.array(windows, np.int64).reshape(-1))
    scalars = (
        int(params.book == "l3"), _MODES[params.orders], params.max_levels, params.max_orders,
        params.max_book_orders, float(params.cash), float(params.maker_fee), float(params.taker_fee),
        float(params.maker_fee_per_unit), float(params.taker_fee_per_unit), queue, power,
        POST_ONLY if params.quote_post_only else LIMIT, _TAKER_TYPES[params.taker_order],
        params.taker_limit_bps / 1e4, int(params.decide_at == "f_last"), duration_ns(params.equity_interval),
        int(params.seed), min(halflives) if halflives else 0, int(params.log_queue), offset, len(windows), *specs,
        int(specs[3][1]) if specs[3][0] == KIND_CONSTANT else -1,
    )
    assert len(scalars) == C_TABLES
    return (*scalars, np.ascontiguousarray(np.concatenate(tables)))


class TickVenue(StreamOp):
    """Simulate an exchange event by event: book, latencies, queue position, matching, fees, both clocks.

    The market stream (``book: l2``: book deltas with trades as action T rows; ``book: l3``: DBN MBO orders)
    rebuilds each instrument's book; the strategy's orders (``orders: quotes | target | commands``, the inputs
    follow the mode) reach the venue after modeled latencies, are matched level by level (partial fills, depth
    consumed remembered until the data updates the level), rest with a queue position (L2: a queue model; L3:
    exact FIFO by order id) and fill as trades and the book reach them; maker/taker fees are charged per fill.
    The strategy learns of acks, fills and cancels only after the response latency. The whole contract,
    including the per-event order of work, is docs/tick_venue.md.

    Outputs, as the strategy knows them: ``position`` (int64, 1e-9 units, per instrument), ``cash`` and
    ``equity`` (float, quote currency; equity = cash + Σ position × mid), ``working_bid_px``/``working_ask_px``
    (its best acknowledged working prices per instrument, UNDEF_PRICE for none) and ``fills`` (a running count).
    The venue's record is its logs (``orders``, ``fills``, ``queue``, ``equity``; ``record_events`` is False),
    drained after every chunk; ``summarize`` turns them into a ``TickBacktestResult``.

    Example::

        venue: {op: backtest.tick_venue,
                in: {side: md.side, price: md.price, size: md.size, action: md.action, flags: md.flags,
                     bid_px: mm.bid_px, bid_qty: mm.bid_qty, ask_px: mm.ask_px, ask_qty: mm.ask_qty},
                with: {book: l2, orders: quotes, queue_model: {model: prob_power, n: 3}, maker_fee: -0.0001,
                       taker_fee: 0.0004, entry_latency: 200us, response_latency: 200us}}
    """

    name = "backtest.tick_venue"
    Params = TickVenueParams
    keyed = False
    context = ("key", "ts_event", "ts_recv")
    inputs = {**MARKET_L2, **ORDER_INPUTS["quotes"]}
    triggers = tuple(MARKET_L2)
    outputs = {"position": I64, "cash": F64, "equity": F64, "working_bid_px": I64, "working_ask_px": I64,
               "fills": I64}
    output_scopes = {"position": Scope.KEY, "cash": Scope.ACCOUNT, "equity": Scope.ACCOUNT,
                     "working_bid_px": Scope.KEY, "working_ask_px": Scope.KEY, "fills": Scope.ACCOUNT}
    logs = ("orders", "fills", "queue", "equity")
    record_events = False
    step = staticmethod(BUILTIN_STEPS[("l2", "quotes")])
    base_dir: Path | None = None

    @classmethod
    def specialize(cls, params: TickVenueParams, base_dir: Path | None = None) -> type["TickVenue"]:
        """The venue for ``params``: the inputs of its book and order mode, and a step around its queue model.

        ``base_dir`` (the spec's folder) resolves a user queue model's module and replay latency files; without
        it they resolve against the working directory.

        Raises:
            SpecError: a user queue model's file or function cannot be found or has the wrong signature.
        """
        market = MARKET_L3 if params.book == "l3" else MARKET_L2
        steps = BUILTIN_STEPS
        name_suffix = ""
        if isinstance(params.queue_model, UserQueueModel):
            steps, name_suffix = _user_model_steps(params.queue_model, base_dir)
        step = steps[(params.book, params.orders)]
        namespace = {
            "inputs": {**market, **ORDER_INPUTS[params.orders]},
            "triggers": tuple(market),
            "step": staticmethod(step),
            "base_dir": base_dir,
            "__doc__": cls.__doc__,
            "__module__": cls.__module__,
        }
        if base_dir is not None:
            namespace["constants"] = staticmethod(lambda p, _base=base_dir: venue_constants(p, _base))
        specialized = type(f"TickVenue_{params.book}_{params.orders}{name_suffix}", (cls,), namespace)
        if name_suffix:
            # the compiled step names the user's function in errors and compiles at plan time (early errors)
            step.tickloom_example_args = lambda: _example_args(specialized, params)
        return specialized

    @staticmethod
    def constants(params: TickVenueParams) -> tuple:
        return venue_constants(params, None)

    @staticmethod
    def initial_outputs(c):
        return {"cash": c[C_CASH], "equity": c[C_CASH], "working_bid_px": UNDEF_PRICE,
                "working_ask_px": UNDEF_PRICE}

    @staticmethod
    def init(c, n_keys):
        return new_state(c, n_keys)

    @staticmethod
    def drain(c, s):
        """Return the state with its log buffer emptied, and the rows logged since the last drain per log."""
        log_ints, log_floats, ints = s[6], s[7], s[2]
        rows = int(ints[ACC, A_LOG_N])
        logs = drain_rows(log_ints, log_floats, rows)
        ints[ACC, A_LOG_N] = 0
        return s, logs

    @staticmethod
    def logged_rows(c, s) -> int:
        """Return the rows logged since the last drain."""
        return int(s[2][ACC, A_LOG_N])

    @staticmethod
    def account(c, s) -> dict[str, np.ndarray]:
        """The venue's own book of our account, per instrument key: what a gateway's position and open-order
        query returns (``position`` at the venue in 1e-9 units, ``working_orders`` live at the venue). Python,
        called between batches (a session's reconciliation), like ``drain``."""
        ints = s[2]
        rows = ints[KEY0:KEY0 + int(ints[ACC, A_N_KEYS])]
        return {"position": rows[:, K_POS_X].copy(), "working_orders": rows[:, K_LIVE_BID] + rows[:, K_LIVE_ASK]}

    @classmethod
    def summarize(cls, params, recorded, logs):
        """Turn the logs into fills, orders, the equity curve and stats (``nodes.backtest.tick.result``)."""
        from nodes.backtest.tick.result import summarize_tick_backtest

        return summarize_tick_backtest(params, logs)


_USER_STEPS: dict[tuple, tuple[dict, str]] = {}  # one compilation per user model (file content) per process


def _user_model_steps(model: UserQueueModel, base_dir: Path | None) -> tuple[dict, str]:
    """The six steps around a user's queue model, and a name suffix carrying the digest of its file."""
    path = (Path(base_dir) if base_dir is not None else Path.cwd()) / model.module
    if not path.is_file():
        raise SpecError.at(None, f"queue_model: module {model.module!r} not found (looked for {path}; the path is "
                                 f"relative to the spec's folder)")
    module = load_module_from_path(path)
    function = getattr(module, model.function, None)
    if not callable(function):
        raise SpecError.at(None, f"queue_model: {path} has no function {model.function!r}")
    parameters = list(inspect.signature(function).parameters)
    if len(parameters) != 3:
        raise SpecError.at(None, f"queue_model: {model.function}({', '.join(parameters)}) in {path} must take "
                                 f"(front_qty, back_qty, decrease_qty) and return the new front_qty")
    digest = hashlib.sha256(path.read_bytes() + model.function.encode()).hexdigest()[:16]
    cached = _USER_STEPS.get((str(path), model.function, digest))
    if cached is not None:
        return cached
    user = step_helper(function)

    @step_helper(_nrt=False)
    def advance(model_code, n, front, back, decrease):
        return user(front, back, decrease)

    steps = build_steps(advance)
    for (book, mode), step in steps.items():
        # the kernel cache is keyed by the steps' names: a changed user model must never reuse a kernel
        step.__qualname__ = f"TickVenue.step_{book}_{mode}[{path.name}:{model.function}:{digest}]"
        step.tickloom_user_function = function
        step.tickloom_user_name = f"{model.function} (queue_model of backtest.tick_venue)"
    _USER_STEPS[(str(path), model.function, digest)] = steps, f"_{digest}"
    return steps, f"_{digest}"


def _example_args(op: type[TickVenue], params: TickVenueParams) -> tuple:
    c = op.constants(params)
    return (c, op.init(c, 1), np.int64(0), np.int64(0), np.int64(0),
            *[np.int64(0) for _ in op.inputs])
