"""The DBN tables: every normalized schema of ``nodes.marketdata.schemas``, including the three (imbalance,
statistics, status) that only DBN produces so far."""

from nodes.marketdata.schemas import SCHEMAS

EXTRA_SCHEMAS = {name: SCHEMAS[name] for name in ("imbalance", "statistics", "status")}

# Every table the DBN decoder emits.
DBN_TABLES = SCHEMAS
