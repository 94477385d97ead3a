"""The ``bybit`` ingest format: Bybit order-book files (``orderbook.<depth>.<symbol>`` JSON lines, zip/gzip/plain).

Symbols come from the messages; the venue is ``BYBIT`` unless ``venue`` says more (``BYBIT_LINEAR``, ...:
the files do not say which category they are). The quality report is the normalizer's
(``BybitQualityReport``: update-id gaps, stale and dropped deltas, bad lines) with the catalog's counts:
``records`` = lines, ``bad_records`` = lines quarantined. The run's ``max_bad_record_rate`` decides.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BybitOptions(BaseModel):
    """Options of the ``bybit`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue: str = Field("BYBIT", min_length=1, description="the venue of every row")
    assumed_latency_ns: int = Field(
        0, ge=0, description="added to Bybit's publish time ts to make ts_recv (the files hold no receive time)"
    )
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="messages whose cts is after ts_recv: clamp ts_event, report only, or reject"
    )
    chunk_messages: int = Field(10_000, ge=1, description="messages decoded per frame (bounds memory)")


def decode_bybit_file(path: Path, options: dict[str, Any]):
    from nodes.marketdata.bybit import normalize_bybit_orderbook

    opts = BybitOptions.model_validate(options)
    run = normalize_bybit_orderbook(path, venue=opts.venue, assumed_latency_ns=opts.assumed_latency_ns,
                                    clock_policy=opts.clock_policy, chunk_messages=opts.chunk_messages,
                                    max_bad_fraction=1.0)

    def frames():
        for chunk in run:
            yield "book_deltas", chunk.frame

    return frames(), _Report(run.report)


decode_bybit_file.options_model = BybitOptions


class _Report:
    def __init__(self, report):
        self._report = report

    def to_dict(self) -> dict:
        report = self._report.to_dict()
        return {**report, "format": "bybit", "records": report["lines_total"], "bad_records": report["lines_bad"]}
