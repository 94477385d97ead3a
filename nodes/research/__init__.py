"""Research table ops: volatility, return distributions, autocorrelation, correlation, intraday profiles, sessions.

Scope: batch statistics over whole recorded tables (``docs/contracts.md`` 2.3), written as polars expressions.
Every input is a table with ``ts_event``, ``ts_recv`` (int64 ns UTC), ``instrument`` and one column per output
port of the node it reads; every statistic is computed per instrument, rows taken in ``ts_recv`` order.
Bars are known at their close (``ts_recv``): rolling values at a bar use that bar and earlier ones only, and the
as-of alignment of instruments never reads a value before its ``ts_recv``.

Non-goals: streaming versions of these statistics (stream ops live in ``nodes/indicators``), holiday calendars
(a session with no input bars has no output bar; no exchange calendar is consulted), and corrections for
non-synchronous trading beyond choosing the clock of the correlation.
"""
