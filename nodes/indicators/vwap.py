"""Session-anchored volume-weighted average price of the typical price."""

import datetime as dt

import numpy as np
from pydantic import Field, field_validator

from nodes.contract import F64, OpParams, StreamOp

_DAY_NS = 86_400_000_000_000


class VwapParams(OpParams):
    session_start_utc: str = Field(
        "00:00",
        description="UTC time of day (HH:MM) at which a session starts and the average resets; pick a time in "
        "the overnight gap (00:00 UTC suits US equities' daily and intraday bars in both DST regimes)",
    )

    @field_validator("session_start_utc")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"session_start_utc {value!r} is not a time of day like 00:00 or 13:30")
        return value


class Vwap(StreamOp):
    """Session-anchored VWAP: ``Σ typical · volume / Σ volume`` since the session's first bar.

    typical = (high + low + close) / 3. A session is the UTC day that starts at ``session_start_utc``; a bar
    belongs to the session of its ``ts_event`` (its open), and the sums reset on the first bar of each
    session. Within a session this is TA-Lib's VWAP (which anchors at the first bar of its input). For daily
    bars every bar is its own session, so the VWAP is the bar's typical price. Warm-up: none (TA-Lib's
    lookback 0); NaN while the session has had no volume. NaN inputs are skipped.

    FPGA: partly — multiply-accumulates; the final divide needs a divider (iterative or LUT).

    Example::

        vwap:
          op: indicator.vwap
          in: {high: bars.high, low: bars.low, close: bars.close, volume: bars.volume}
          with: {session_start_utc: "00:00"}
    """

    name = "indicator.vwap"
    Params = VwapParams
    inputs = {"high": F64, "low": F64, "close": F64, "volume": F64}
    outputs = {"out": F64}
    context = ("ts_event",)

    @staticmethod
    def constants(params):
        clock = dt.time.fromisoformat(params.session_start_utc)
        return ((clock.hour * 60 + clock.minute) * 60_000_000_000,)

    @staticmethod
    def init(c, n_keys):
        return (-(2**62), 0.0, 0.0)

    @staticmethod
    def step(c, s, ts_event, high, low, close, volume):
        session, sum_pv, sum_v = s
        if high != high or low != low or close != close or volume != volume:
            return s, np.nan
        today = (ts_event - c[0]) // _DAY_NS
        if today != session:
            session = today
            sum_pv = 0.0
            sum_v = 0.0
        sum_pv += (high + low + close) / 3.0 * volume
        sum_v += volume
        out = sum_pv / sum_v if sum_v > 0.0 else np.nan
        return (session, sum_pv, sum_v), out
