"""DuckDB SQL over recorded tables."""

import duckdb
from pydantic import Field

from nodes.contract import TABLE, OpParams, TableOp


class SqlParams(OpParams):
    query: str = Field(description="a DuckDB SELECT over the table named `input`")


class Sql(TableOp):
    """Run a DuckDB query over a node's recorded outputs (the table ``input``); the result is the table ``out``.

    The input has ``ts_event``, ``ts_recv`` (int64 ns UTC), ``instrument`` and one column per output port.

    Example::

        monthly:
          op: table.sql
          in: sim
          with: {query: "select instrument, count(*) filter (where fill_qty <> 0) as fills from input group by 1"}
    """

    name = "table.sql"
    Params = SqlParams
    inputs = {"input": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: SqlParams, tables: dict) -> dict:
        with duckdb.connect() as connection:
            connection.register("input", tables["input"])
            return {"out": connection.sql(params.query).pl()}
