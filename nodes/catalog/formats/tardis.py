"""The ``tardis`` ingest format: Tardis.dev CSV files (incremental_book_L2, book_snapshot_N, trades, quotes).

Symbols and the venue come from the file (``symbol`` and ``exchange`` columns; ``venue`` overrides the
latter); the schema from its header. The quality report is the normalizer's (``TardisQualityReport``) with
the counts the catalog needs: ``records`` = data lines, ``bad_records`` = lines quarantined. The normalizer
itself never fails on bad lines here: the run's ``max_bad_record_rate`` decides.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TardisOptions(BaseModel):
    """Options of the ``tardis`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue: str | None = Field(None, min_length=1, description="the venue of every row; default: the exchange column, "
                                                               "upper-cased with '-' → '_' (binance-futures → BINANCE_FUTURES)")
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="lines received before their exchange time: clamp ts_event, report only, or reject"
    )
    chunk_lines: int = Field(65_536, ge=1, description="lines decoded per frame (bounds memory)")


def decode_tardis_file(path: Path, options: dict[str, Any]):
    from nodes.marketdata.tardis import normalize_tardis

    opts = TardisOptions.model_validate(options)
    run = normalize_tardis(path, venue=opts.venue, clock_policy=opts.clock_policy, chunk_lines=opts.chunk_lines,
                           max_bad_fraction=1.0)

    def frames():
        for chunk in run:
            yield chunk.schema, chunk.frame

    return frames(), _Report(run.report)


decode_tardis_file.options_model = TardisOptions


class _Report:
    def __init__(self, report):
        self._report = report

    def to_dict(self) -> dict:
        report = self._report.to_dict()
        return {**report, "format": "tardis", "records": report["lines_total"], "bad_records": report["lines_bad"]}
