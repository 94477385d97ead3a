"""The tick venue's parameters: a frozen pydantic model whose errors name the key and say what was expected."""

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, WrapValidator, field_validator,
    model_validator,
)

from nodes.backtest.tick.latency import Duration, FeedLatencySpec, LatencySpec, duration_ns
from nodes.contract import OpParams

QUEUE_MODEL_NAMES = ("conservative", "prob_power", "prob_log")
_QUEUE_EXPECTED = (
    "expected conservative, prob_power, prob_log, {model: prob_power, n: 3} or a user model "
    "{module: my_queue.py, function: advance}"
)


class _Closed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NamedQueueModel(_Closed):
    """A built-in L2 queue model, with the exponent of ``prob_power``."""

    model: Literal["conservative", "prob_power", "prob_log"] = Field(description="the model's name")
    n: float = Field(2.0, gt=0.0, le=100.0, description="exponent of prob_power: f(x) = x^n (2 = square)")


class UserQueueModel(_Closed):
    """A queue model written by the user: ``function(front_qty, back_qty, decrease_qty) -> new_front_qty``."""

    module: str = Field(description="the Python file defining it, relative to the spec's folder")
    function: str = Field("advance", description="the function's name in that file")

    @field_validator("module")
    def _python_file(cls, value):
        if not value.endswith(".py"):
            raise ValueError(f"queue model module {value!r} must be a Python file (.py)")
        return value


def _queue_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "name"
    if isinstance(value, NamedQueueModel) or (isinstance(value, dict) and "model" in value):
        return "model"
    if isinstance(value, UserQueueModel) or (isinstance(value, dict) and "module" in value):
        return "user"
    return None


def _queue_errors(value, handler):
    """Validate a queue model with messages that name the user's keys (no union tags in the location)."""
    if _queue_form(value) is None:
        raise ValueError(f"queue model {value!r} is not a model: {_QUEUE_EXPECTED}")
    name = value if isinstance(value, str) else value.get("model") if isinstance(value, dict) else None
    if name is not None and name not in QUEUE_MODEL_NAMES:
        raise ValueError(f"unknown queue model {name!r}: {_QUEUE_EXPECTED}")
    try:
        return handler(value)
    except ValidationError as error:
        details = []
        for e in error.errors():
            loc = e["loc"][1:] if e["loc"] and e["loc"][0] in ("name", "model", "user") else e["loc"]
            detail = {"type": e["type"], "loc": loc, "input": e["input"]}
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(error.title, details) from None


QueueModelSpec = Annotated[
    Union[
        Annotated[Literal["conservative", "prob_power", "prob_log"], Tag("name")],
        Annotated[NamedQueueModel, Tag("model")],
        Annotated[UserQueueModel, Tag("user")],
    ],
    Discriminator(_queue_form),
    WrapValidator(_queue_errors),
]


def time_ns(value: str | int, what: str) -> int:
    """An ISO 8601 time (UTC when it has no offset) or an int of ns since the epoch, as int ns."""
    if isinstance(value, bool):
        raise ValueError(f"{what} {value!r} is not a time")
    if isinstance(value, int):
        return value
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO time (e.g. 2024-08-08T23:00:00Z) nor ns since the "
                         f"epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class RejectWindow(_Closed):
    """A span of exchange time in which arriving requests are rejected with probability ``rate``."""

    start: str | int = Field(description="first instant, ISO 8601 (UTC without an offset) or ns since the epoch")
    end: str | int = Field(description="first instant after the window (exclusive), same forms as start")
    rate: float = Field(ge=0.0, le=1.0, description="probability that a request arriving in the window is "
                        "rejected, 0..1")

    @model_validator(mode="after")
    def _ordered(self):
        start, end = time_ns(self.start, "reject window start"), time_ns(self.end, "reject window end")
        if end <= start:
            raise ValueError(f"reject window end ({self.end!r}) is not after its start ({self.start!r})")
        return self

    def span_ns(self) -> tuple[int, int]:
        return time_ns(self.start, "start"), time_ns(self.end, "end")


class TickVenueParams(OpParams):
    book: Literal["l2", "l3"] = Field(
        "l2", description="l2: the market is book_deltas with trades (action T) in the same stream; "
        "l3: the market is DBN MBO orders (with order_id), matched in exact FIFO")
    orders: Literal["quotes", "target", "commands"] = Field(
        "quotes", description="how the strategy gives orders: quotes (bid_px, bid_qty, ask_px, ask_qty), target "
        "(a position, traded as taker orders) or commands (explicit new/cancel/modify); the inputs follow")
    cash: float = Field(100_000.0, ge=0.0, description="starting cash, in quote currency")
    maker_fee: float = Field(0.0, ge=-0.01, le=0.05, description="fee on a maker fill as a fraction of its "
                             "notional; negative is a rebate (-0.0001 = 1 bp rebate)")
    taker_fee: float = Field(0.0, ge=-0.01, le=0.05, description="fee on a taker fill as a fraction of notional")
    maker_fee_per_unit: float = Field(0.0, ge=-1e6, le=1e6, description="fee per unit of quantity on a maker fill, "
                                      "in quote currency (negative: a rebate)")
    taker_fee_per_unit: float = Field(0.0, ge=-1e6, le=1e6, description="fee per unit of quantity on a taker "
                                      "fill, in quote currency")
    queue_model: QueueModelSpec = Field(
        "conservative", description="L2 queue position model: conservative (only trades advance us), prob_power "
        "({model: prob_power, n: 3}), prob_log, or {module: file.py, function: advance} (a numba-compilable "
        "advance(front_qty, back_qty, decrease_qty) -> new_front_qty, quantities in units)")
    quote_post_only: bool = Field(True, description="quotes mode: send quotes as post-only (a quote that would "
                                  "cross is rejected) instead of plain limits")
    taker_order: Literal["market", "ioc", "fok"] = Field(
        "market", description="target mode: the order type that moves the position")
    taker_limit_bps: float = Field(50.0, ge=0.0, le=10_000.0, description="target mode, ioc/fok: the limit "
                                   "price is the best opposite price moved this many bps against us")
    decide_at: Literal["f_last", "every"] = Field(
        "f_last", description="quotes/target: act on the strategy's inputs at records flagged F_LAST (a venue "
        "event complete) or at every record; commands are taken at every record")
    feed_latency: FeedLatencySpec = Field(
        "data", description="market data to strategy: data (the data's ts_recv) or a latency model from ts_event")
    entry_latency: LatencySpec = Field("0", description="strategy to venue for new orders and modifies")
    cancel_latency: LatencySpec | None = Field(None, description="strategy to venue for cancels; default: "
                                               "entry_latency")
    response_latency: LatencySpec = Field("0", description="venue to strategy for acks, fills, cancels, rejects")
    compute_latency: Literal["plan"] | LatencySpec = Field(
        "0", description="from seeing an event to sending the requests; plan: the modeled tick-to-trade of the "
        "spec's placement (docs/hardware.md), so the same strategy placed differently fills differently")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="seed of the random latency models and reject draws")
    reject_windows: list[RejectWindow] = Field(
        default_factory=list, description="spans of time in which arriving requests are rejected with a "
        "probability: [{start, end, rate}] (the first window containing the arrival applies)")
    equity_interval: Duration = Field("1s", description="exchange time between two rows of the equity log")
    max_orders: int = Field(64, ge=1, le=65_536, description="working orders the strategy may have at once "
                            "(all instruments); a new order past it is rejected locally")
    max_levels: int = Field(4096, ge=1, le=1_000_000, description="price levels kept per side and instrument")
    max_book_orders: int = Field(65_536, ge=1, le=1 << 26, description="l3: resting market orders kept per "
                                 "instrument")
    log_queue: bool = Field(True, description="log every change of a resting order's queue ahead")

    @field_validator("equity_interval")
    def _positive_interval(cls, value):
        if duration_ns(value) <= 0:
            raise ValueError(f"equity_interval must be > 0 (got {value!r})")
        return value
