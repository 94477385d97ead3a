"""exit ops: stop loss, take profit, trailing stop and time stop on a strategy's target.

Each exit op sits between the sizing op and the venue (before ``sizing.rebalance`` when there is one): it
passes the strategy's ``target`` through, replaces it by 0 (flat) on the bar its exit condition is met, and
holds it flat until the strategy's target changes side. What they share is in ``_exit.py``.
"""
