"""Correlation matrices of instrument returns, aligned as-of on a common clock (Pearson and Spearman)."""

import polars as pl
from pydantic import Field

from nodes.contract import TABLE, OpParams, TableOp
from nodes.errors import SpecError
from nodes.research._table import ReturnKind, by_instrument, check_positive, instrument_order, require_columns

CLOCK_KEYWORDS = ("union", "intersection")


class CorrelationParams(OpParams):
    column: str = Field("close", description="the price column whose returns are correlated")
    returns: ReturnKind = Field("log", description="log: ln(p_T/p_T'); simple: p_T/p_T' − 1, between clock ticks")
    clock: str = Field(
        "union",
        description="the common clock: 'union' (every ts_recv of any instrument), 'intersection' (ts_recv "
        "shared by all instruments) or an instrument's name (its ts_recv)",
    )


class Correlation(TableOp):
    """Correlate instrument returns sampled as-of on a common clock: Pearson and Spearman matrices.

    Alignment, never reading the future: at each clock time T every instrument's price is its last value with
    ``ts_recv`` <= T (a backward as-of join; before its first row an instrument has no price). Several rows of
    an instrument at the same ``ts_recv`` leave the last one. Returns are then taken between consecutive clock
    times, per instrument: ln(p_T / p_T') for ``returns: log``. An instrument that has not moved between two
    ticks has a zero return there (previous-tick sampling; with the ``union`` clock a closed market thus pulls
    correlations toward zero, the Epps effect — use ``intersection`` or an instrument's clock against it).

    Only clock ticks where every instrument has a return enter the matrices (listwise deletion, so both
    matrices are positive semi-definite and use the same n rows):

    - Pearson: ρ_ab = Σ (a − ā)(b − b̄) / √(Σ (a − ā)² Σ (b − b̄)²);
    - Spearman (1904): Pearson's ρ of the ranks, ties sharing their average rank.

    Outputs:

    - ``out``: the matrices stacked: ``method`` (pearson, spearman), ``instrument``, ``observations`` (n) and
      one column per instrument, instruments in order of first appearance;
    - ``aligned``: the aligned returns, one row per clock tick: ``ts_recv`` and one column per instrument (null
      before an instrument's first two prices). Row T depends on rows with ``ts_recv`` <= T only.

    Raises:
        SpecError: ``clock`` is neither keyword nor an instrument of the table.
        GraphError: the input table lacks ``column``.
        DataQualityError: ``returns: log`` and a price is zero or negative.

    Example::

        correlation:
          op: research.correlation
          in: bars
          with: {column: close, returns: log, clock: union}
    """

    name = "research.correlation"
    Params = CorrelationParams
    inputs = {"table": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: CorrelationParams, tables: dict) -> dict:
        table = tables["table"]
        require_columns(cls.name, table, ["ts_recv", "instrument", params.column])
        aligned = align_returns(table, params)
        names = [c for c in aligned.columns if c != "ts_recv"]
        complete = aligned.drop_nulls(names)
        ranks = complete.select(pl.col(names).rank("average").cast(pl.Float64))
        out = pl.concat([_matrix(complete, names, "pearson"), _matrix(ranks, names, "spearman")])
        return {"out": out, "aligned": aligned}


def align_returns(table: pl.DataFrame, params: CorrelationParams) -> pl.DataFrame:
    """Return the clock (``ts_recv``) with one return column per instrument, each price taken as-of the tick."""
    column = params.column
    prices = by_instrument(table).filter(pl.col(column).is_not_null() & pl.col(column).is_not_nan())
    if params.returns == "log":
        check_positive("research.correlation", prices, [column])
    names = instrument_order(table)
    # the last row at a ts_recv is what is known at that time
    last = prices.select("ts_recv", "instrument", column).unique(["instrument", "ts_recv"], keep="last",
                                                                  maintain_order=True)
    clock = _clock(last, names, params.clock)
    aligned = clock
    for name in names:
        one = last.filter(pl.col("instrument") == name).select("ts_recv", pl.col(column).alias(name))
        aligned = aligned.join_asof(one, on="ts_recv", strategy="backward", allow_exact_matches=True)
    if params.returns == "log":
        ret = [(pl.col(n) / pl.col(n).shift(1)).log().alias(n) for n in names]
    else:
        ret = [(pl.col(n) / pl.col(n).shift(1) - 1.0).alias(n) for n in names]
    return aligned.select("ts_recv", *ret)


def _clock(last: pl.DataFrame, names: list[str], clock: str) -> pl.DataFrame:
    if clock == "union":
        times = last.select("ts_recv").unique()
    elif clock == "intersection":
        times = (
            last.group_by("ts_recv").agg(pl.col("instrument").n_unique().alias("_n"))
            .filter(pl.col("_n") == len(names)).select("ts_recv")
        )
    elif clock in names:
        times = last.filter(pl.col("instrument") == clock).select("ts_recv")
    else:
        raise SpecError.at(
            None,
            f"research.correlation: clock {clock!r} is neither {' nor '.join(CLOCK_KEYWORDS)} nor an instrument "
            f"of the table ({', '.join(names)})",
        )
    return times.sort("ts_recv")


def _matrix(frame: pl.DataFrame, names: list[str], method: str) -> pl.DataFrame:
    """The Pearson matrix of ``frame``'s columns, one row per instrument: symmetric bit for bit, diagonal 1."""
    width = len(names)
    # each pair once: corr(a, b) and corr(b, a) may round differently
    pairs = [(i, j) for i in range(width) for j in range(i, width)]
    if frame.height >= 2:
        values = frame.select(
            (_diagonal(names[i]) if i == j else pl.corr(names[i], names[j], method="pearson")).alias(f"{i},{j}")
            for i, j in pairs
        ).row(0)
    else:
        values = [float("nan")] * len(pairs)
    cell = {}
    for (i, j), value in zip(pairs, values):
        cell[i, j] = cell[j, i] = float("nan") if value is None else value
    return pl.DataFrame(
        {
            "method": [method] * width,
            "instrument": names,
            "observations": [frame.height] * width,
            **{b: [cell[i, j] for i in range(width)] for j, b in enumerate(names)},
        },
        schema={"method": pl.String, "instrument": pl.String, "observations": pl.Int64,
                **{n: pl.Float64 for n in names}},
    )


def _diagonal(name: str) -> pl.Expr:
    """1 exactly for a series that varies, NaN for a constant one (its correlation is undefined)."""
    return pl.when(pl.col(name).std() > 0).then(1.0).otherwise(float("nan"))
