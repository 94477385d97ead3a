"""The ``ingest.files`` op: the node of an ingest spec, decoding input files of one format for the catalog.

Why a source op: an ingest node reads events from outside the graph (files) and takes no inputs, which is
what a source is in the op contract (``docs/contracts.md`` 2.2); a table op with no inputs could never run.
Its output is not a stream of scalar ports but normalized tables, which only the catalog consumes: an ingest
spec (``kind: ingest``) is run by ``tickloom ingest`` (``pipelines/ingest.py``), which writes every node's
frames into the catalog. Nothing can read its (absent) ports, and ``open`` refuses to replay it.
"""

import glob
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from nodes.catalog.formats import get_decoder, prepare_options
from nodes.contract import OpParams, SourceOp
from nodes.errors import SpecError


class IngestFilesParams(OpParams):
    format: str = Field(description="the decoder: a name in nodes.catalog.formats.FORMATS, e.g. bars_csv")
    paths: list[str] = Field(min_length=1, description="input files relative to the spec's folder; glob patterns allowed")
    venue: str | None = Field(None, description="the venue, for formats whose files do not say it (bars_csv)")
    symbol: str | None = Field(None, description="the symbol, for formats whose files do not say it")
    options: dict[str, Any] = Field(default_factory=dict, description="the format's own options (see its options model)")
    max_bad_record_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="fail the run when a file's bad_records / records is above this"
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        get_decoder(value)
        return value

    @model_validator(mode="after")
    def _options_fit_the_format(self):
        prepare_options(self.format, self.venue, self.symbol, self.options)
        return self

    def decoder_options(self) -> dict[str, Any]:
        """The options the decoder receives: venue and symbol merged in, defaults filled."""
        return prepare_options(self.format, self.venue, self.symbol, self.options)

    def files(self, base_dir: Path) -> list[Path]:
        """The input files: each path relative to ``base_dir``; a glob pattern expands to its sorted matches
        (a pattern that matches nothing stays as it is, and fails as a missing file)."""
        found: list[Path] = []
        for pattern in self.paths:
            path = base_dir / pattern  # an absolute pattern stays absolute
            matches = sorted(glob.glob(str(path))) if glob.has_magic(pattern) else []
            found.extend([Path(m) for m in matches] or [path])
        return found


class IngestFiles(SourceOp):
    """Decode input files of one format into normalized frames for the catalog (ingest specs only).

    Run by ``tickloom ingest SPEC``: every file is decoded, checked against ``max_bad_record_rate``, and its
    frames written into the catalog's partitions (a re-run replaces them). ``tickloom run`` refuses it.

    Example::

        us_equities:
          op: ingest.files
          with: {format: bars_csv, paths: ["../../data/samples/*.csv.gz"], venue: XNAS,
                 options: {timezone: America/New_York}}
    """

    name = "ingest.files"
    Params = IngestFilesParams
    outputs = {}

    @classmethod
    def instruments(cls, params: IngestFilesParams, base_dir: Path) -> list[str]:
        return [params.symbol] if params.symbol else []

    @classmethod
    def open(cls, params: IngestFilesParams, base_dir: Path):
        raise SpecError.at(
            None, "ingest.files nodes write the catalog and cannot be replayed: run the spec with `tickloom ingest SPEC`"
        )
