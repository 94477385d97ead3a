"""Intraday profiles: volume, volatility and spread by local time of day."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
from pydantic import Field, field_validator, model_validator

from nodes.contract import TABLE, OpParams, TableOp
from nodes.research._table import by_instrument, check_positive, require_columns

MINUTES_PER_DAY = 1440
NS_PER_MINUTE = 60_000_000_000


def check_zone(value: str) -> str:
    """Return ``value`` when it names an IANA time zone; raise ``ValueError`` (a spec error) otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as 'America/New_York'")
    return value


class IntradayProfileParams(OpParams):
    timezone: str = Field(description="IANA zone whose wall clock the buckets follow (DST-aware), e.g. America/Chicago")
    bucket_minutes: int = Field(30, ge=1, le=MINUTES_PER_DAY, description="bucket length in minutes; divides 1440")
    price_column: str = Field(
        "close", description="the price whose returns measure volatility; 'mid' is (bid + ask)/2 of a quote table"
    )
    volume_column: str = Field("volume", description="volume column; volume statistics are null when it is absent")
    bid_column: str = Field("bid", description="bid column; spread statistics need it and ask_column")
    ask_column: str = Field("ask", description="ask column; spread statistics need it and bid_column")
    max_gap_minutes: float = Field(
        5.0, gt=0,
        description="a return between two rows further apart than this (ts_event) is left out: a session break, "
        "a halt or a weekend is not the volatility of a time of day",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("bucket_minutes")
    @classmethod
    def _divides_day(cls, value: int) -> int:
        if MINUTES_PER_DAY % value:
            raise ValueError(f"bucket_minutes {value} does not divide a day (1440 minutes): try 1, 5, 15, 30 or 60")
        return value

    @model_validator(mode="after")
    def _distinct_quote_columns(self):
        if self.bid_column == self.ask_column:
            raise ValueError("bid_column and ask_column must differ")
        return self


class IntradayProfile(TableOp):
    """Profile each instrument by local time of day: volume, return volatility and quoted spread per bucket.

    A row falls in the bucket of its ``ts_event`` (a bar's open, a quote's or trade's time) read on the wall
    clock of ``timezone``, so a bucket keeps its local meaning across DST changes (09:30 New York is 14:30 UTC
    in winter and 13:30 UTC in summer). Days are local calendar dates; rows without a price (NaN) are left out.

    Per instrument and bucket b (start ``bucket``, "HH:MM", and ``bucket_minute`` since local midnight):

    - ``observations``: rows; ``days``: distinct local dates with a row in b;
    - ``volume_mean``: mean volume per row (per bar: the classic volume profile); ``volume_per_day``: total
      volume in b / ``days``; ``volume_share``: b's share of the instrument's total volume;
    - returns r = ln(p_t / p_t') between consecutive rows of the instrument, left out when the rows' ``ts_event``
      are more than ``max_gap_minutes`` apart; a return belongs to the bucket of its later row.
      ``return_std``: sample standard deviation of r (per row: comparable across buckets for equal bars);
      ``realized_vol``: √(mean over days of Σ r² within b), the bucket's realized volatility, which does not
      depend on how many rows a bucket holds (ticks);
    - ``spread_mean``: mean of ask − bid (in price units); ``spread_bps_mean``: mean of 10⁴ (ask − bid)/mid —
      means over quote rows, not time-weighted; rows with a non-positive or missing bid or ask are left out.

    A statistic whose column the table lacks (no volume, no bid/ask) is null, so the columns are always the
    same. ``price_column: mid`` needs both quote columns.

    Raises:
        GraphError: the input table lacks ``price_column`` (or, for ``mid``, a quote column).
        DataQualityError: a price is zero or negative.

    Example::

        profile:
          op: research.intraday_profile
          in: bars
          with: {timezone: America/New_York, bucket_minutes: 30}
    """

    name = "research.intraday_profile"
    Params = IntradayProfileParams
    inputs = {"table": TABLE}
    outputs = {}

    @classmethod
    def run(cls, params: IntradayProfileParams, tables: dict) -> dict:
        table = tables["table"]
        has_quotes = params.bid_column in table.columns and params.ask_column in table.columns
        has_volume = params.volume_column in table.columns
        needed = ["ts_event", "ts_recv", "instrument"]
        if params.price_column == "mid":
            needed += [params.bid_column, params.ask_column]
        else:
            needed.append(params.price_column)
        require_columns(cls.name, table, needed, hint="for a quote table use price_column: mid")
        frame = by_instrument(table)
        bid, ask = pl.col(params.bid_column), pl.col(params.ask_column)
        price = (bid + ask) / 2.0 if params.price_column == "mid" else pl.col(params.price_column)
        frame = frame.with_columns(price.cast(pl.Float64).alias("_price"))
        frame = frame.filter(pl.col("_price").is_not_null() & pl.col("_price").is_not_nan())
        check_positive(cls.name, frame, ["_price"])

        local = pl.from_epoch("ts_event", time_unit="ns").dt.replace_time_zone("UTC").dt.convert_time_zone(params.timezone)
        minute_of_day = local.dt.hour().cast(pl.Int64) * 60 + local.dt.minute().cast(pl.Int64)
        gap_ok = (pl.col("ts_event") - pl.col("ts_event").shift(1)).over("instrument") <= params.max_gap_minutes * NS_PER_MINUTE
        log_return = (pl.col("_price") / pl.col("_price").shift(1)).log().over("instrument")
        quote_ok = bid.is_finite() & ask.is_finite() & (bid > 0) & (ask > 0) if has_quotes else pl.lit(False)
        frame = frame.with_columns(
            (minute_of_day // params.bucket_minutes * params.bucket_minutes).alias("bucket_minute"),
            local.dt.date().alias("_day"),
            pl.when(gap_ok).then(log_return).alias("_r"),
            (pl.col(params.volume_column).cast(pl.Float64) if has_volume else pl.lit(None, pl.Float64)).alias("_volume"),
            (pl.when(quote_ok).then(ask - bid) if has_quotes else pl.lit(None, pl.Float64)).cast(pl.Float64).alias("_spread"),
            (pl.when(quote_ok).then(1e4 * (ask - bid) / ((ask + bid) / 2.0)) if has_quotes else pl.lit(None, pl.Float64))
            .cast(pl.Float64).alias("_spread_bps"),
        )
        daily_rv = (
            frame.group_by("instrument", "bucket_minute", "_day")
            .agg((pl.col("_r") ** 2).sum().alias("_rv"), pl.col("_r").is_not_null().any().alias("_has_r"))
            .filter(pl.col("_has_r"))
            .group_by("instrument", "bucket_minute")
            .agg(pl.col("_rv").mean().sqrt().alias("realized_vol"))
        )
        profile = (
            frame.group_by("instrument", "bucket_minute")
            .agg(
                pl.len().cast(pl.Int64).alias("observations"),
                pl.col("_day").n_unique().cast(pl.Int64).alias("days"),
                pl.col("_volume").mean().alias("volume_mean"),
                pl.col("_volume").sum().alias("_volume_sum"),
                pl.col("_volume").count().alias("_volume_n"),
                pl.col("_r").std(ddof=1).alias("return_std"),
                pl.col("_spread").mean().alias("spread_mean"),
                pl.col("_spread_bps").mean().alias("spread_bps_mean"),
            )
            .join(daily_rv, on=["instrument", "bucket_minute"], how="left")
        )
        volume = pl.when(pl.col("_volume_n") > 0)
        names = frame["instrument"].unique(maintain_order=True).to_list()
        out = (
            profile.with_columns(
                volume.then(pl.col("_volume_sum") / pl.col("days")).alias("volume_per_day"),
                volume.then(pl.col("_volume_sum") / pl.col("_volume_sum").sum().over("instrument")).alias("volume_share"),
                pl.format(
                    "{}:{}",
                    (pl.col("bucket_minute") // 60).cast(pl.String).str.zfill(2),
                    (pl.col("bucket_minute") % 60).cast(pl.String).str.zfill(2),
                ).alias("bucket"),
            )
            .sort(pl.col("instrument").cast(pl.Enum(names)), "bucket_minute")
            .select(
                "instrument", "bucket", "bucket_minute", "observations", "days",
                "volume_mean", "volume_per_day", "volume_share", "return_std", "realized_vol",
                "spread_mean", "spread_bps_mean",
            )
        )
        return {"out": out.with_columns(pl.col("return_std", "realized_vol").fill_null(np.nan))}
