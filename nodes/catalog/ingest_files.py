"""The ``ingest.files`` op: the node of an ingest spec, decoding input files of one format for the catalog.

Why a source op: an ingest node reads events from outside the graph (files) and takes no inputs, which is
what a source is in the op contract (``docs/contracts.md`` 2.2); a table op with no inputs could never run.
Its output is not a stream of scalar ports but normalized tables, which only the catalog consumes: an ingest
spec (``kind: ingest``) is run by ``tickloom ingest`` (``pipelines/ingest.py``), which writes every node's
frames into the catalog. Nothing can read its (absent) ports, and ``open`` refuses to replay it.

The optional scheduling fields (``partition_start``, ``schedule``, ``landing``, ``checks``) do not change what
``tickloom ingest`` writes; they tell the batch orchestrator (``pipelines/dagster``) how to present the node:
daily partitions from ``partition_start``, a daily schedule, a sensor on a landing folder and data-quality
checks. They are part of the spec's identity like every other value.
"""

import datetime as dt
import glob
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nodes.catalog.formats import get_decoder, prepare_options
from nodes.contract import OpParams, SourceOp
from nodes.errors import SpecError


_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,\-?]+$")


class IngestChecks(BaseModel):
    """Data-quality rules checked on what a node wrote (in Dagster: one asset check per rule that is on).

    Rows are counted per catalog partition (one day of one symbol of one schema), as the catalog stores them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    monotonic_time: bool = Field(True, description="ts_recv never goes backwards: in the written partitions nor in the inputs")
    max_sequence_gaps: int | None = Field(
        None, ge=0, description="most sequence steps > 1 allowed per run, over rows that carry a sequence (off when unset)"
    )
    no_crossed_books: bool = Field(True, description="no quote with bid >= ask (formats that can write quotes or books)")
    min_rows: int | None = Field(None, ge=0, description="fewest rows a written partition may have (off when unset)")
    max_rows: int | None = Field(None, ge=1, description="most rows a written partition may have (off when unset)")
    freshness_hours: float | None = Field(
        None, gt=0, description="the newest ts_recv of every written series is at most this old (off when unset)"
    )

    @model_validator(mode="after")
    def _bounds_in_order(self):
        if self.min_rows is not None and self.max_rows is not None and self.min_rows > self.max_rows:
            raise ValueError(f"min_rows {self.min_rows} is above max_rows {self.max_rows}")
        return self


class IngestFilesParams(OpParams):
    format: str = Field(description="the decoder: a name in nodes.catalog.formats.FORMATS, e.g. bars_csv")
    paths: list[str] = Field(min_length=1, description="input files relative to the spec's folder; glob patterns allowed")
    venue: str | None = Field(None, description="the venue, for formats whose files do not say it (bars_csv)")
    symbol: str | None = Field(None, description="the symbol, for formats whose files do not say it")
    options: dict[str, Any] = Field(default_factory=dict, description="the format's own options (see its options model)")
    max_bad_record_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="fail the run when a file's bad_records / records is above this"
    )
    partition_start: dt.date | None = Field(
        None, description="first UTC date of the node's daily partitions in Dagster (unpartitioned when unset)"
    )
    schedule: str | None = Field(
        None, description="cron (5 fields, UTC) of a Dagster schedule that ingests the previous day's partition"
    )
    landing: str | None = Field(
        None, description="a folder (or glob) relative to the spec that a Dagster sensor watches for new files"
    )
    checks: IngestChecks = Field(default_factory=IngestChecks, description="data-quality rules (Dagster asset checks)")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            fields = value.split()
            if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
                raise ValueError(f"schedule {value!r} is not a 5-field cron expression such as '30 6 * * *'")
        return value

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
