"""The ``fix`` ingest format: FIX tag=value market-data logs (35=W snapshots, 35=X incrementals), any of FIX 4.2,
4.4 and 5.0 SP2 over FIXT.1.1, plain, gzip or zstd, SOH or ``|`` delimited, with or without receive-time prefixes.

Symbols come from the messages (Symbol 55, else SecurityID 48; ``symbol`` names entries that carry neither),
the venue from SecurityExchange (207) or SenderCompID (49) unless ``venue`` is given. Every message is
checked against the vendored QuickFIX dictionaries (``data/fix``). The quality report is the decoder's
(``FixQualityReport``): ``records`` = messages in the log (plus stretches of garbage), ``bad_records`` =
those quarantined, each with byte offset, line and reason. The decoder itself never fails on bad messages
here: the run's ``max_bad_record_rate`` decides.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FixOptions(BaseModel):
    """Options of the ``fix`` format."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue: str | None = Field(None, min_length=1, description="the venue of every row; default: SecurityExchange "
                                                               "(207), else SenderCompID (49)")
    symbol: str | None = Field(None, min_length=1, description="the instrument of entries that name none (no 55/48)")
    delimiter: Literal["auto", "soh", "pipe"] = Field("auto", description="field delimiter: per message (auto), "
                                                                          "SOH or '|'")
    clock_policy: Literal["clamp", "report", "reject"] = Field(
        "clamp", description="rows received before their event time: clamp ts_event, report only, or reject the file"
    )
    unknown_tags: Literal["reject", "ignore"] = Field(
        "reject", description="tags the dictionary does not define: reject the message, or drop the field"
    )
    default_appl_ver_id: str = Field("9", description="FIXT.1.1 ApplVerID when neither message nor Logon gives one")
    dictionary_dir: str | None = Field(None, description="folder of QuickFIX dictionaries (default: data/fix)")
    chunk_messages: int = Field(65_536, ge=1, description="messages decoded per frame (bounds memory)")
    max_message_bytes: int = Field(1 << 20, ge=64, description="longest BodyLength accepted")


def decode_fix_file(path: Path, options: dict[str, Any]):
    from nodes.marketdata.fix import decode_fix

    opts = FixOptions.model_validate(options)
    decoding = decode_fix(
        path, delimiter=opts.delimiter, clock_policy=opts.clock_policy, venue=opts.venue, symbol=opts.symbol,
        unknown_tags=opts.unknown_tags, dictionary_dir=opts.dictionary_dir,
        default_appl_ver_id=opts.default_appl_ver_id, chunk_messages=opts.chunk_messages,
        max_message_bytes=opts.max_message_bytes,
        max_bad_fraction=1.0,  # the catalog applies the run's threshold to the report's counts
    )

    def frames():
        for chunk in decoding:
            yield from chunk.tables.items()

    return frames(), decoding.report


decode_fix_file.options_model = FixOptions
