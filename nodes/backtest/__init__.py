"""Backtest ops: simulated venues, trades, stats and reports."""
