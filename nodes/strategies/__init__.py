"""strategy ops: whole decision rules for tick-level backtests (quotes for a market maker, targets for a taker).

Inputs and outputs are int64 on the tick path (prices and quantities in 1e-9 units, ``UNDEF_PRICE`` for an
empty side), so they plug straight into ``book.l2``/``book.l3`` and ``backtest.tick_venue``.
"""
