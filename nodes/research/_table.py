"""What every research op does to its input table first: check the columns, order the rows, make returns."""

from typing import Literal

import polars as pl

from nodes.errors import DataQualityError, GraphError

ReturnKind = Literal["log", "simple"]

# Row order of every research computation: instruments in the order they first appear (the source's own
# order, since simultaneous bars tie-break by instrument index), then time.
_FIRST_ROW = "__first_row"


def require_columns(op_name: str, table: pl.DataFrame, columns: list[str], hint: str = "") -> None:
    """Raise ``GraphError`` naming the op, the missing columns and the ones the input has."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise GraphError.at(
            None,
            f"{op_name}: the input table has no column(s) {', '.join(missing)}; it has {', '.join(table.columns)}"
            + (f". {hint}" if hint else ""),
        )


def by_instrument(table: pl.DataFrame) -> pl.DataFrame:
    """Return the rows grouped by instrument (in order of first appearance), each in ``ts_recv`` order (stable)."""
    return (
        table.with_columns(pl.int_range(pl.len()).min().over("instrument").alias(_FIRST_ROW))
        .sort([_FIRST_ROW, "ts_recv"], maintain_order=True)
        .drop(_FIRST_ROW)
    )


def instrument_order(table: pl.DataFrame) -> list[str]:
    """Instruments in the order they first appear."""
    return table["instrument"].unique(maintain_order=True).to_list()


def check_positive(op_name: str, table: pl.DataFrame, columns: list[str]) -> None:
    """Raise ``DataQualityError`` when a price that enters a logarithm is not a finite positive number."""
    for column in columns:
        bad = table.filter(~(pl.col(column).is_finite() & (pl.col(column) > 0)))
        if bad.height:
            first = bad.row(0, named=True)
            raise DataQualityError(
                f"{op_name}: {bad.height} row(s) with a non-positive or missing {column!r}; first: instrument "
                f"{first['instrument']!r} at ts_recv {first['ts_recv']} ({column} = {first[column]})"
            )


def returns_of(op_name: str, table: pl.DataFrame, column: str, kind: ReturnKind) -> pl.DataFrame:
    """Per-instrument returns of ``column`` between consecutive rows, as the column ``ret``.

    Rows where ``column`` is NaN or null (an indicator's warm-up) are dropped first; each instrument's first
    remaining row has no return and is dropped too. Log returns need positive values (``DataQualityError``).
    The result keeps ``ts_event``, ``ts_recv`` and ``instrument`` of the row that ends each return.
    """
    require_columns(op_name, table, ["ts_event", "ts_recv", "instrument", column])
    values = by_instrument(table).filter(pl.col(column).is_not_null() & pl.col(column).is_not_nan())
    if kind == "log":
        check_positive(op_name, values, [column])
        ret = (pl.col(column) / pl.col(column).shift(1)).log().over("instrument")
    else:
        ret = (pl.col(column) / pl.col(column).shift(1) - 1.0).over("instrument")
    return (
        values.select("ts_event", "ts_recv", "instrument", ret.alias("ret"))
        .filter(pl.col("ret").is_not_null())
    )
