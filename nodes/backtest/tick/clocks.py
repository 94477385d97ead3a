"""The venue's two clocks and the latencies between them.

- exchange time: the market events' ``ts_event``, made monotone (a feed may interleave streams whose venue
  times are not in order; the venue's clock never runs backwards);
- local time: when the strategy sees an event, ``ts_recv`` with ``feed_latency: data`` (default), else the
  exchange time plus a drawn feed latency; also monotone.

The kernel moves both clocks itself on every event (``kernel.core``); the helpers here draw the latencies.

Latencies are drawn by ``nodes.backtest.tick.latency`` (one PRNG stream and replay cursor per latency in
``ints[RNG]``): one compute latency per event that sends requests (all its requests leave together), one entry
or cancel latency per request, one response latency per exchange batch (a request's processing, or a market
event on an instrument where we have live orders: the messages of a batch travel together).
"""

from nodes.backtest.tick.latency import uniform_draw, sample_latency_ns, update_activity
from nodes.backtest.tick.layout import (
    A_ACT_LAST,
    A_DECISION,
    A_RESP_LAT,
    A_RESP_VIS,
    ACC,
    AF_RATE,
    C_HALFLIFE_NS,
    C_LAT_COMPUTE,
    C_LAT_RESPONSE,
    C_REJECT_N,
    C_REJECT_OFF,
    CURSOR0,
    LAT_COMPUTE,
    LAT_RESPONSE,
    RNG,
    RNG_REJECT,
)
from nodes.backtest.tick.queues import later_than_last_visible
from nodes.contract import step_helper


@step_helper(_nrt=False)
def latency_of(spec, tables):
    """``latency_constants``' tuple from the venue's ``(kind, p1, p2, p3, offset, length)`` and tables array."""
    return spec[0], spec[1], spec[2], spec[3], tables[spec[4]:spec[4] + spec[5]]


@step_helper(_nrt=False)
def draw_latency_ns(spec, tables, ints, floats, which, now_ns):
    """Draw one latency of kind ``which`` (``layout.LAT_*``) whose constants are ``spec`` (``c[C_LAT_*]``)."""
    latency_ns, rng, cursor = sample_latency_ns(latency_of(spec, tables), ints[RNG, which],
                                                ints[RNG, CURSOR0 + which], now_ns, floats[ACC, AF_RATE])
    ints[RNG, which] = rng
    ints[RNG, CURSOR0 + which] = cursor
    return latency_ns


@step_helper(_nrt=False)
def count_event(c, ints, floats, exchange_ns):
    """Count a market event in the recent event rate that activity latencies read."""
    rate, last = update_activity(floats[ACC, AF_RATE], ints[ACC, A_ACT_LAST], exchange_ns, c[C_HALFLIFE_NS])
    floats[ACC, AF_RATE] = rate
    ints[ACC, A_ACT_LAST] = last


@step_helper(_nrt=False)
def decision_ns(c, tables, ints, floats, local_ns):
    """When this event's requests leave the strategy: local time + one compute latency (drawn once per event)."""
    decided = ints[ACC, A_DECISION]
    if decided < 0:
        decided = local_ns + draw_latency_ns(c[C_LAT_COMPUTE], tables, ints, floats, LAT_COMPUTE, local_ns)
        ints[ACC, A_DECISION] = decided
    return decided


@step_helper(_nrt=False)
def start_batch(c, tables, ints, floats, exchange_ns, may_respond):
    """Start an exchange batch: its responses share one response latency, drawn now when it ``may_respond``.

    Drawn up front so the matching helpers need no latency tables; the visibility time itself is fixed at the
    batch's first response (``response_visible_ns``), so a batch that sends nothing delays nothing.
    """
    ints[ACC, A_RESP_VIS] = -1
    ints[ACC, A_RESP_LAT] = 0
    if may_respond:
        ints[ACC, A_RESP_LAT] = draw_latency_ns(c[C_LAT_RESPONSE], tables, ints, floats, LAT_RESPONSE, exchange_ns)


@step_helper(_nrt=False)
def response_visible_ns(ints, exchange_ns):
    """When the strategy sees the current batch's responses: exchange time + the batch's response latency,
    never before an earlier response."""
    visible = ints[ACC, A_RESP_VIS]
    if visible < 0:
        visible = later_than_last_visible(ints, exchange_ns + ints[ACC, A_RESP_LAT])
        ints[ACC, A_RESP_VIS] = visible
    return visible


_TWO_POW_53 = 9007199254740992.0


@step_helper(_nrt=False)
def rejected_by_window(c, tables, ints, arrive_ns):
    """Whether a request arriving at ``arrive_ns`` is rejected by the first reject window containing it.

    The PRNG is drawn only for arrivals inside a window, so windows elsewhere never shift other draws.
    """
    base = c[C_REJECT_OFF]
    for i in range(c[C_REJECT_N]):
        row = base + 3 * i
        if tables[row] <= arrive_ns < tables[row + 1]:
            rng, u = uniform_draw(ints[RNG, RNG_REJECT])
            ints[RNG, RNG_REJECT] = rng
            return u * _TWO_POW_53 < tables[row + 2]  # exact: u is a multiple of 2^-53
    return False
