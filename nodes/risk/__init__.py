"""Risk: pre-trade limits on the order path, circuit breakers with an operator-controlled HALTED state, drift.

Risk lives in the graph as stream ops, so a backtest runs exactly the checks the live system runs. Signals only
the runtime has (measured latency, operator commands) enter the graph as events of ``source.control``.
"""
