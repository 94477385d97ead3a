"""Ingest formats: every decoder the catalog can ingest, by name. Adding a format is one line in ``FORMATS``.

A decoder is a callable ``decode(path, options) -> (frames, report)``:

- ``path``: one input file; ``options``: a dict, already checked against ``decoder.options_model`` when the
  decoder has one (a pydantic model; it also makes a spec's ``options`` fail at load time, with the spec's
  file:line:col). ``venue`` and ``symbol`` arrive in ``options`` when the user gave them.
- ``frames``: an iterator of ``(schema, frame)``, frames in a normalized schema (``nodes/marketdata/
  schemas.py``), any size, any interleaving of schemas. It is consumed once, chunk by chunk.
- ``report``: a dict, or an object with ``to_dict()``, read after ``frames`` is exhausted. It must carry
  ``records`` (records read from the file, good and bad) and ``bad_records`` (records rejected, not written):
  the run fails when ``bad_records / records`` is above the run's ``max_bad_record_rate``. Anything else in
  it (gaps, crossed books, clock skew) is stored as it is in ``quality_reports``.

Decoders raise ``DataQualityError`` for a file they cannot read at all.
"""

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from pydantic import ValidationError

from nodes.catalog.formats.bars_csv import decode_bars_csv
from nodes.catalog.formats.binance import decode_binance_file
from nodes.catalog.formats.bybit import decode_bybit_file
from nodes.catalog.formats.dbn import decode_dbn_file
from nodes.catalog.formats.fix import decode_fix_file
from nodes.catalog.formats.tardis import decode_tardis_file
from nodes.errors import InvariantError

Frames = Iterator[tuple[str, pl.DataFrame]]


class Decoder(Protocol):
    """Decode one input file into normalized frames and a quality report (see the module docstring)."""

    def __call__(self, path: Path, options: dict[str, Any]) -> tuple[Frames, Any]: ...


FORMATS: dict[str, Decoder] = {
    "bars_csv": decode_bars_csv,
    "dbn": decode_dbn_file,
    "binance": decode_binance_file,
    "fix": decode_fix_file,
    "tardis": decode_tardis_file,
    "bybit": decode_bybit_file,
}


def get_decoder(name: str) -> Decoder:
    """The decoder of format ``name``.

    Raises:
        ValueError: an unknown format, with a "did you mean" and the known formats.
    """
    if name not in FORMATS:
        close = difflib.get_close_matches(str(name), FORMATS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown format {name!r}{hint}; formats: {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def prepare_options(name: str, venue: str | None, symbol: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """Merge ``venue``/``symbol`` (when given) into ``options`` and check them against the decoder's model.

    Returns the options with defaults filled in (as the decoder will see them).

    Raises:
        ValueError: an unknown format or options the decoder refuses (every problem, one per line).
    """
    decoder = get_decoder(name)
    merged = dict(options)
    for key, value in (("venue", venue), ("symbol", symbol)):
        if value is not None:
            if key in merged and merged[key] != value:
                raise ValueError(f"{key} is given twice ({value!r} and options.{key} {merged[key]!r})")
            merged[key] = value
    model = getattr(decoder, "options_model", None)
    if model is None:
        return merged
    try:
        return model.model_validate(merged).model_dump()
    except ValidationError as error:
        raise ValueError(f"format {name}: " + "; ".join(_describe(e) for e in error.errors())) from None


def _describe(error: dict) -> str:
    where = ".".join(map(str, error["loc"]))
    if error["type"] == "extra_forbidden":
        message = "unknown option"
    elif error["type"] == "value_error":
        message = str(error["ctx"]["error"])  # our own words, without pydantic's "Value error, " prefix
    else:
        message = error["msg"]
    return f"{where}: {message}" if where else message


def report_dict(report: Any) -> dict:
    """A decoder's report as a plain dict."""
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    if isinstance(report, dict):
        return dict(report)
    raise InvariantError(f"a decoder returned a quality report of type {type(report).__name__}; expected a dict or to_dict()")


def bad_record_rate(name: str, report: dict) -> tuple[int, int, float]:
    """Return (records, bad_records, bad_records / records) from a decoder's report.

    Raises:
        InvariantError: the report lacks the counts (the decoder's wiring in ``FORMATS`` is wrong).
    """
    try:
        records, bad = int(report["records"]), int(report["bad_records"])
    except (KeyError, TypeError, ValueError):
        raise InvariantError(
            f"the {name!r} decoder's quality report has no integer 'records' and 'bad_records' "
            f"(keys: {', '.join(sorted(report))}); adapt it where the format is registered"
        ) from None
    rate = bad / records if records else (1.0 if bad else 0.0)
    return records, bad, rate
