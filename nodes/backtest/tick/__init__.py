"""The tick-level simulated venue, ``backtest.tick_venue`` (contract: docs/tick_venue.md).

One concept per file: ``venue.py`` (the op), ``params.py`` (its parameters), ``kernel.py`` (the per-event order
of work), ``exchange.py`` (requests at the venue), ``local.py`` (the strategy's side), ``match.py`` (taker walks,
crossing, trade-throughs), ``queue_l2.py`` (L2 queue models), ``fifo_l3.py`` (L3 FIFO), ``fills.py`` and
``account.py`` (fills and the two accounts), ``fees.py``, ``clocks.py`` and ``latency.py`` (time), ``queues.py``
(message queues), ``orders.py`` (order slots), ``book.py`` (the venue's book), ``logs.py``, ``layout.py`` and
``codes.py`` (state and vocabulary), ``result.py`` (``TickBacktestResult``).
"""

from nodes.backtest.tick.result import TickBacktestResult, summarize_tick_backtest
from nodes.backtest.tick.venue import TickVenue

__all__ = ["TickBacktestResult", "TickVenue", "summarize_tick_backtest"]
