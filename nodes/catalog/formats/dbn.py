"""The ``dbn`` ingest format: Databento DBN files (plain or zstd), every schema, through ``decode_dbn``.

Symbols come from the file's own symbology and the venue from its dataset, so there are no options. The
quality report is the decoder's, with the counts the catalog needs: ``bad_records`` counts unknown records
and damaged regions (a region of corrupt bytes counts once: how many records it held cannot be known).
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DbnOptions(BaseModel):
    """Options of the ``dbn`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_records: int = Field(65_536, ge=1, description="records decoded per frame (bounds memory)")


def decode_dbn_file(path: Path, options: dict[str, Any]):
    from nodes.marketdata.dbn import decode_dbn

    decoding = decode_dbn(path, chunk_records=options.get("chunk_records", 65_536))

    def frames():
        for chunk in decoding:
            yield from chunk.tables.items()

    return frames(), _Report(decoding)


decode_dbn_file.options_model = DbnOptions


class _Report:
    def __init__(self, decoding):
        self._decoding = decoding

    def to_dict(self) -> dict:
        report = self._decoding.report.to_dict()
        bad = sum(report["unknown_records"].values()) + len(report["quarantined"])
        return {**report, "records": report["records"] + bad, "bad_records": bad}
