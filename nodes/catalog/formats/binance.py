"""The ``binance`` ingest format: Binance websocket captures (``<local ns> <raw JSON>`` lines, gzip or plain).

Depth diffs, trades and bookTicker go to ``book_deltas``, ``trades`` and ``quotes`` through
``normalize_capture``, with its clock policy and update-id rules. The catalog's bad-record rate is the
capture's bad-line rate; the normalizer's own ``max_bad_fraction`` is left to the catalog's threshold.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BinanceOptions(BaseModel):
    """Options of the ``binance`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue_kind: Literal["auto", "spot", "futures"] = Field("auto", description="spot or futures update-id rules")
    clock_policy: Literal["shift", "report", "reject"] = Field(
        "shift", description="when the local clock runs behind the venue: shift it, only report, or reject the file"
    )
    symbols: list[str] | None = Field(None, description="keep only these symbols (default: every symbol)")
    chunk_lines: int = Field(65_536, ge=1, description="capture lines normalized per frame (bounds memory)")


def decode_binance_file(path: Path, options: dict[str, Any]):
    from nodes.marketdata.binance import normalize_capture

    normalization = normalize_capture(
        path,
        venue_kind=options.get("venue_kind", "auto"),
        clock_policy=options.get("clock_policy", "shift"),
        chunk_lines=options.get("chunk_lines", 65_536),
        symbols=options.get("symbols"),
        max_bad_fraction=1.0,  # the catalog applies the run's threshold to the counts below
    )

    def frames():
        for chunk in normalization:
            for schema in ("book_deltas", "trades", "quotes"):
                frame = getattr(chunk, schema)
                if frame.height:
                    yield schema, frame

    return frames(), _Report(normalization)


decode_binance_file.options_model = BinanceOptions


class _Report:
    def __init__(self, normalization):
        self._normalization = normalization

    def to_dict(self) -> dict:
        report = self._normalization.report.to_dict()
        return {**report, "records": report["lines_total"], "bad_records": report["lines_bad"]}
