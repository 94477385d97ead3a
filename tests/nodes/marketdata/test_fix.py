"""The FIX market-data decoder: framing, dictionary validation, normalization, bad input, the source op, ingest.

Always-on tests run on the samples in ``data/samples/fix`` (real Binance book updates and trades written as
FIX 4.4, FIX 5.0 SP2 over FIXT.1.1 and FIX 4.2 by ``make_samples.py``) and on hand-made logs in ``tmp_path``;
the dictionaries are the vendored ``data/fix`` ones, so everything runs on a fresh clone.
"""

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.errors import DataQualityError
from nodes.marketdata.book.replay import replay_book
from nodes.marketdata.fix import decode_fix, protocol_for
from nodes.marketdata.fix.dictionary import DEFAULT_DICTIONARY_DIR, DictionaryError
from nodes.marketdata.fix.encode import encode_message
from nodes.marketdata.fix.parse import BadFrame, Frame, frame_messages, utc_timestamp_ns
from nodes.marketdata.fix.source import FixMarketData
from nodes.marketdata.fix.validate import Rejection, Validator
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_MODIFY,
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    SCHEMAS,
    UNDEF_PRICE,
)

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "data" / "samples" / "fix"
NS = 1_000_000_000
UNITS = 1_000_000_000
SENT = "20240808-23:54:14.123"
SENT_NS = utc_timestamp_ns(SENT)


def _make_samples():
    spec = importlib.util.spec_from_file_location("fix_make_samples", SAMPLES / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fix_make_samples", module)
    spec.loader.exec_module(module)
    return module


make_samples = _make_samples()
SAMPLE_SPECS = {spec.name: spec for spec in make_samples.SAMPLES}


# -- helpers ------------------------------------------------------------------------------------------------------

def header(msg_type: str, seq: int = 2, sent: str = SENT, sender: str = "VENUE", appl_ver: str | None = None):
    fields = [(35, msg_type)] + ([(1128, appl_ver)] if appl_ver else [])
    return fields + [(49, sender), (56, "ME"), (34, seq), (52, sent)]


def x_message(entries: list[list[tuple]], seq: int = 2, begin: str = "FIX.4.4", sent: str = SENT, **kw) -> bytes:
    body = [(268, len(entries))] + [field for entry in entries for field in entry]
    return encode_message(begin, header("X", seq, sent, **kw) + body)


def w_message(symbol: str, levels: list[tuple], seq: int = 1, begin: str = "FIX.4.4", sent: str = SENT) -> bytes:
    body = [(55, symbol), (268, len(levels))]
    for entry_type, price, size in levels:
        body += [(269, entry_type), (270, price)] + ([(271, size)] if size is not None else [])
    return encode_message(begin, header("W", seq, sent) + body)


def book_entry(action: str, side: str, price: str, size: str | None = None, symbol: str | None = "BTC") -> list:
    entry = [(279, action), (269, side)] + ([(55, symbol)] if symbol else []) + [(270, price)]
    return entry + ([(271, size)] if size is not None else [])


def write_log(path: Path, messages: list[bytes], prefix_ns: list[int] | None = None) -> Path:
    lines = []
    for k, message in enumerate(messages):
        if prefix_ns is not None:
            from nodes.marketdata.fix.encode import utc_timestamp_text

            message = f"{utc_timestamp_text(prefix_ns[k], 9)} : ".encode() + message
        lines.append(message)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def decode_all(path: Path, **options):
    decoding = decode_fix(path, **{"max_bad_fraction": 1.0, **options})
    parts: dict[str, list[pl.DataFrame]] = {}
    for chunk in decoding:
        for schema, frame in chunk.tables.items():
            parts.setdefault(schema, []).append(frame)
    tables = {s: pl.concat(parts[s]) if s in parts else pl.DataFrame(schema=SCHEMAS[s]) for s in SCHEMAS
              if s in ("book_deltas", "trades", "quotes")}
    return tables, decoding.report


def validate_one(message: bytes, validator: Validator | None = None):
    frames = list(frame_messages([message]))
    assert len(frames) == 1 and isinstance(frames[0], Frame), frames
    return (validator or Validator()).validate(frames[0])


# -- framing: BeginString, BodyLength, CheckSum -------------------------------------------------------------------

def test_checksum_and_body_length_follow_the_fix_reference_example():
    # the Logon of the FIX protocol's Wikipedia article, with its published BodyLength 65 and CheckSum 062
    reference = (b"8=FIX.4.2\x019=65\x0135=A\x0149=SERVER\x0156=CLIENT\x0134=177\x0152=20090107-18:15:16\x01"
                 b"98=0\x01108=30\x0110=062\x01")
    assert encode_message("FIX.4.2", [(35, "A"), (49, "SERVER"), (56, "CLIENT"), (34, 177),
                                      (52, "20090107-18:15:16"), (98, 0), (108, 30)]) == reference
    assert sum(reference[: reference.index(b"10=")]) % 256 == 62
    (frame,) = frame_messages([reference])
    assert isinstance(frame, Frame) and frame.begin_string == "FIX.4.2" and frame.size == len(reference)
    assert not isinstance(Validator().validate(frame), Rejection)


def test_a_bad_checksum_is_rejected_with_its_offset_and_the_next_message_still_read():
    good = x_message([book_entry("0", "0", "100", "1")])
    bad = bytearray(x_message([book_entry("0", "0", "101", "1")], seq=3))
    bad[-4:-1] = b"%03d" % ((int(bad[-4:-1]) + 1) % 256)
    data = good + b"\n" + bytes(bad) + b"\n" + x_message([book_entry("1", "0", "100", "2")], seq=4) + b"\n"
    items = list(frame_messages([data]))
    assert [type(i).__name__ for i in items] == ["Frame", "BadFrame", "Frame"]
    rejected = items[1]
    assert (rejected.offset, rejected.line, rejected.reason) == (len(good) + 1, 2, "bad_checksum")
    assert "CheckSum 10=" in rejected.detail and "sum to" in rejected.detail and rejected.msg_type == "X"


@pytest.mark.parametrize("delta", [-5, 7])
def test_a_wrong_body_length_is_rejected_with_declared_and_actual_length(delta):
    first = x_message([book_entry("0", "0", "100", "1")])
    message = x_message([book_entry("0", "0", "101", "1")], seq=3)
    declared = int(message.split(b"\x019=")[1].split(b"\x01")[0])
    broken = message.replace(b"\x019=%d\x01" % declared, b"\x019=%d\x01" % (declared + delta), 1)
    data = first + broken + x_message([book_entry("1", "0", "100", "2")], seq=4)
    items = list(frame_messages([data]))
    assert [type(i).__name__ for i in items] == ["Frame", "BadFrame", "Frame"]
    assert items[1].offset == len(first) and items[1].reason == "body_length_mismatch"
    assert f"BodyLength 9={declared + delta} but the body is {declared} bytes" in items[1].detail


def test_framing_does_not_depend_on_how_the_bytes_arrive():
    log = (SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes()[:60_000] + b"20240808-23:54:17.686: 8=FIX.4.2|9=7"
    whole = [(i.offset, i.line, type(i).__name__, getattr(i, "reason", None)) for i in frame_messages([log])]
    assert whole[-1][2:] == ("BadFrame", "truncated")
    for size in (1, 13, 4096):
        pieces = [log[k : k + size] for k in range(0, len(log), size)]
        assert [(i.offset, i.line, type(i).__name__, getattr(i, "reason", None))
                for i in frame_messages(pieces)] == whole


def test_pipe_logs_are_checked_on_the_soh_form_and_a_declared_delimiter_is_enforced():
    soh = x_message([book_entry("0", "0", "100", "1")])
    pipe = encode_message("FIX.4.4", header("X") + [(268, 1)] + book_entry("0", "0", "100", "1"), "|")
    assert pipe.replace(b"|", b"\x01") == soh  # the same CheckSum: the one the sender computed
    (frame,) = frame_messages([pipe])
    assert isinstance(frame, Frame) and frame.delimiter == "|"
    (refused,) = frame_messages([pipe], delimiter="soh")
    assert isinstance(refused, BadFrame) and refused.reason == "wrong_delimiter"


def test_garbage_between_messages_and_a_truncated_last_message_are_quarantined_and_the_run_goes_on(tmp_path):
    snapshot = w_message("BTC", [("0", "100", "1"), ("1", "101", "2")])
    update = x_message([book_entry("1", "0", "100", "3")], seq=2)
    tail = x_message([book_entry("0", "1", "102", "1")], seq=3)
    data = snapshot + b"\nthis line is not FIX\n" + update + b"\n" + tail[:-20]
    path = tmp_path / "log.fix"
    path.write_bytes(data)
    tables, report = decode_all(path)
    assert report.messages_good == 2 and report.messages_bad == 2 and report.records == 4
    garbage, truncated = report.quarantine
    assert (garbage.reason, garbage.line, garbage.byte) == ("garbage", 2, len(snapshot) + 1)
    assert garbage.raw == "this line is not FIX"
    assert (truncated.reason, truncated.line, truncated.byte) == ("truncated", 4, data.rindex(tail[:20]))
    assert truncated.stage == "framing" and truncated.msg_type == "X"
    assert tables["book_deltas"]["size"].to_list() == [0, 1 * UNITS, 2 * UNITS, 3 * UNITS]


# -- validation against the dictionaries --------------------------------------------------------------------------

def _reject_case(name: str) -> tuple[bytes, str, int, str]:
    """(message, expected reason, offending tag, bytes the offending field starts with)."""
    e = book_entry("0", "0", "100", "1")
    cases = {
        "unknown tag": (x_message([e + [(9999, "x")]]), "unknown_tag", 9999, "9999=x"),
        "missing required header field": (
            encode_message("FIX.4.4", [(35, "X"), (49, "V"), (56, "ME"), (34, 2), (268, 1)] + e),
            "required_tag_missing", 52, ""),
        "bad enum": (x_message([book_entry("9", "0", "100", "1")]), "bad_enum", 279, "279=9"),
        "fewer entries than NoMDEntries": (
            encode_message("FIX.4.4", header("X") + [(268, 3)] + e + book_entry("2", "1", "101")),
            "group_count_mismatch", 268, "268=3"),
        "more entries than NoMDEntries": (
            encode_message("FIX.4.4", header("X") + [(268, 1)] + e + book_entry("2", "1", "101")),
            "group_count_mismatch", 268, "268=1"),
        "group fields out of order": (
            encode_message("FIX.4.4", header("X") + [(268, 1), (279, "0"), (269, "0"), (270, "100"), (55, "BTC")]),
            "group_out_of_order", 55, "55=BTC"),
        "entry not starting with the delimiter": (
            encode_message("FIX.4.4", header("X") + [(268, 1), (269, "0"), (279, "0"), (270, "100")]),
            "group_delimiter", 269, "269=0"),
        "bad price": (x_message([book_entry("0", "0", "1.2.3", "1")]), "bad_value_format", 270, "270=1.2.3"),
        "bad timestamp": (x_message([e], sent="20240231-23:54:14"), "bad_value_format", 52, "52=20240231"),
        "tag without value": (x_message([book_entry("0", "0", "100", "")]), "tag_without_value", 271, "271="),
        "header field after the body": (
            encode_message("FIX.4.4", [(35, "X"), (49, "V"), (56, "ME"), (34, 2), (268, 1)] + e + [(52, SENT)]),
            "out_of_order", 52, "52="),
        "MsgType not third": (encode_message("FIX.4.4", [(49, "V"), (35, "X"), (56, "ME"), (34, 2), (52, SENT),
                                                         (268, 0)]), "msg_type_not_third", 49, "49=V"),
        "unknown MsgType": (encode_message("FIX.4.4", header("ZZ")), "invalid_msg_type", 35, "35=ZZ"),
        "no dictionary": (encode_message("FIX.4.3", header("X") + [(268, 0)]), "no_dictionary", 8, ""),
    }
    return cases[name]


@pytest.mark.parametrize("name", [
    "unknown tag", "missing required header field", "bad enum", "fewer entries than NoMDEntries",
    "more entries than NoMDEntries", "group fields out of order", "entry not starting with the delimiter",
    "bad price", "bad timestamp", "tag without value", "header field after the body", "MsgType not third",
    "unknown MsgType", "no dictionary",
])
def test_each_dictionary_violation_is_rejected_with_its_reason_tag_and_position(name, tmp_path):
    message, reason, tag, field_start = _reject_case(name)
    before = x_message([book_entry("0", "0", "99", "1")], seq=1)
    path = write_log(tmp_path / "log.fix", [before, message])
    tables, report = decode_all(path)
    assert report.messages_good == 1 and report.messages_bad == 1
    (bad,) = report.quarantine
    assert (bad.stage, bad.reason, bad.tag, bad.byte, bad.line) == ("validation", reason, tag, len(before) + 1, 2)
    data = path.read_bytes()
    if field_start:
        assert data[bad.field_byte :].startswith(field_start.encode()), data[bad.field_byte :][:20]
        assert data[bad.field_byte - 1] == 1  # right after a delimiter
    else:
        assert bad.field_byte is None
    assert bad.detail and bad.raw.startswith("8=FIX")


def test_required_fields_duplicates_and_misplaced_tags_inside_messages():
    # FIX 4.2 W: MDEntryPx is required in each entry; Symbol at message level
    no_price = encode_message("FIX.4.2", header("W") + [(55, "BTC"), (268, 2), (269, "0"), (270, "100"),
                                                         (269, "1"), (271, "3")])
    result = validate_one(no_price)
    assert (result.reason, result.tag) == ("required_tag_missing", 270) and "entry 2" in result.detail
    no_symbol = encode_message("FIX.4.2", header("W") + [(268, 1), (269, "0"), (270, "100")])
    assert (validate_one(no_symbol).reason, validate_one(no_symbol).tag) == ("required_tag_missing", 55)
    twice = encode_message("FIX.4.4", header("X") + [(262, "a"), (262, "b"), (268, 0)])
    assert (validate_one(twice).reason, validate_one(twice).tag) == ("duplicate_tag", 262)
    misplaced = encode_message("FIX.4.4", header("X") + [(44, "1"), (268, 0)])
    assert (validate_one(misplaced).reason, validate_one(misplaced).tag) == ("tag_not_defined_for_message", 44)
    in_entry = encode_message("FIX.4.4", header("X") + [(268, 1), (279, "0"), (269, "0"), (270, "1"), (270, "2")])
    assert validate_one(in_entry).reason == "duplicate_tag"


def test_data_fields_may_hold_the_delimiter_and_their_length_is_checked():
    # SecureData (91) holds SOH and '=': SecureDataLen (90) says how much of the body is its value
    good = Frame(0, 1, None, "FIX.4.4", "\x01", f"35=X\x0149=V\x0156=ME\x0190=5\x0191=a\x01b=c\x0134=2\x0152={SENT}"
                 "\x01268=0\x01", 15, 0)
    result = Validator().validate(good)
    assert not isinstance(result, Rejection) and result.header["91"] == "a\x01b=c"
    short = Frame(0, 1, None, "FIX.4.4", "\x01", good.body.replace("90=5", "90=4"), 15, 0)
    assert Validator().validate(short).reason == "bad_value_format"
    # on the wire: BodyLength frames it whatever the data holds
    wire = f"8=FIX.4.4\x019={len(good.body)}\x01{good.body}".encode("latin-1")
    wire += b"10=%03d\x01" % (sum(wire) % 256)
    assert validate_one(wire).header["91"] == "a\x01b=c"


def test_unknown_tags_can_be_ignored_and_are_counted(tmp_path):
    message = x_message([book_entry("0", "0", "100", "1") + [(5999, "venue-specific")]])
    path = write_log(tmp_path / "log.fix", [message])
    _, strict = decode_all(path)
    assert strict.bad_reasons == {"unknown_tag": 1}
    tables, lenient = decode_all(path, unknown_tags="ignore")
    assert lenient.messages_bad == 0 and lenient.ignored_tags == {"5999": 1} and tables["book_deltas"].height == 1


def test_fixt_messages_take_their_application_version_from_applverid_or_the_logon():
    logon = encode_message("FIXT.1.1", header("A", 1) + [(98, 0), (108, 30), (1137, "9")])
    update = encode_message("FIXT.1.1", header("X", 2) + [(268, 1)] + book_entry("0", "0", "100", "1"))
    validator = Validator(default_appl_ver_id="7")  # no FIX50.xml: only the Logon makes this valid
    assert validate_one(update, validator).reason == "no_dictionary"
    assert validate_one(logon, validator).protocol == "FIXT.1.1"  # a session message: no application layer
    assert validate_one(update, validator).protocol == "FIXT.1.1/FIX.5.0SP2"
    explicit = encode_message("FIXT.1.1", header("X", 3, appl_ver="7") + [(268, 0)])
    rejected = validate_one(explicit, validator)
    assert rejected.reason == "no_dictionary" and "FIX50.xml" in rejected.detail and rejected.tag == 1128


def test_dictionaries_flatten_components_with_their_required_flags_and_know_group_delimiters():
    fix42, fix44, fix50 = protocol_for("FIX.4.2"), protocol_for("FIX.4.4"), protocol_for("FIXT.1.1", "9")
    assert fix50.name == "FIXT.1.1/FIX.5.0SP2" and fix50.header is fix50.session.header
    assert fix42.message("W").body.required == (55, 268)  # Symbol is a field of the 4.2 message itself
    assert fix44.message("W").body.required == (268,)  # the Instrument component is required, Symbol in it not
    assert fix50.message("W").body.required == (779,)  # as QuickFIX's FIX50SP2.xml says
    for protocol in (fix42, fix44, fix50):
        assert protocol.message("W").body.group(268).delimiter == 269
        assert protocol.message("X").body.group(268).delimiter == 279
    x44 = fix44.message("X").body.group(268).body
    assert [m.tag for m in x44.members[:6]] == [279, 285, 269, 278, 280, 55]  # Instrument expanded in place
    assert x44.group(454).delimiter == 455  # a nested group of the component: NoSecurityAltID
    assert fix44.data_lengths[95] == 96 and fix50.data_lengths[93] == 89
    assert fix44.fields[269].enums >= {"0", "1", "2"} and fix44.fields[270].type == "PRICE"
    with pytest.raises(DictionaryError, match="FIX43.xml"):
        protocol_for("FIX.4.3")
    assert sorted(p.name for p in DEFAULT_DICTIONARY_DIR.glob("*")) == [
        "FIX42.xml", "FIX44.xml", "FIX50SP2.xml", "FIXT11.xml", "LICENSE.quickfix", "README.md"]


# -- the samples: three versions, real data -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def decoded():
    return {name: decode_all(SAMPLES / name, max_bad_fraction=0.0) for name in SAMPLE_SPECS}


@pytest.fixture(scope="module")
def sources():
    return {name: make_samples.source_frames(spec) for name, spec in SAMPLE_SPECS.items()}


@pytest.mark.parametrize("name, protocol, delimiter, ts_source", [
    ("spot_btcusdt.fix44.log.gz", "FIX.4.4", "soh", "log"),
    ("spot_ethusdt.fix50sp2.log.zst", "FIXT.1.1/FIX.5.0SP2", "soh", "sending_time"),
    ("cm_btcusd_perp.fix42.log", "FIX.4.2", "pipe", "log"),
])
def test_every_version_validates_its_sample(decoded, name, protocol, delimiter, ts_source):
    tables, report = decoded[name]
    assert report.messages_bad == 0 and report.messages_good == report.records > 250
    assert set(report.protocols) - {"FIXT.1.1"} == {protocol} and set(report.delimiters) == {delimiter}
    assert report.by_msg_type["W"] == 1 and report.by_msg_type["X"] > 250 and report.by_msg_type["A"] == 1
    assert report.clock[ "ts_recv_source"][ts_source] > 0 and report.clock["ts_event_clamped"] == 0
    assert all(s["gaps"] == 0 and s["backwards"] == 0 for s in report.sequence.values())
    assert report.book == {"losses": 0, "tainted_rows": 0} and not report.problems()
    book = tables["book_deltas"]
    assert (book["ts_recv"].diff().drop_nulls() >= 0).all() and (book["ts_event"] <= book["ts_recv"]).all()
    assert book.schema == pl.Schema(SCHEMAS["book_deltas"])


@pytest.mark.parametrize("name", list(SAMPLE_SPECS))
def test_snapshot_then_incrementals_give_the_book_of_the_source_data(decoded, sources, name):
    tables, _ = decoded[name]
    source_book, source_trades = sources[name]
    fix_book = tables["book_deltas"]
    symbol = source_book["symbol"][0]
    got = replay_book(fix_book, kind="l2", depth=10_000, target="cpu")["books"][symbol]
    want = replay_book(source_book, kind="l2", depth=10_000, target="cpu")["books"][symbol]
    assert got["levels_bid"] == want["levels_bid"] > 500 and got["levels_ask"] == want["levels_ask"] > 500
    assert (got["bids"], got["asks"]) == (want["bids"], want["asks"])
    assert got["inconsistent"] == 0 and not got["crossed"]
    # the snapshot: a clear row, then every level, flagged; its quote is the source's top of book
    first = fix_book.head(2001)
    assert first["action"][0] == ACTION_CLEAR and (first["flags"] & F_SNAPSHOT > 0).all()
    assert first["flags"][-1] & F_LAST and (first["action"][1:] == ACTION_ADD).all()
    quote = tables["quotes"].row(0, named=True)
    snapshot = source_book.head(2001).filter(pl.col("action") == ACTION_ADD)
    assert quote["bid_px"] == snapshot.filter(pl.col("side") == 1)["price"].max()
    assert quote["ask_px"] == snapshot.filter(pl.col("side") == -1)["price"].min()
    # trades: the same prices, sizes and venue times; receive times as exact as the log keeps them
    trades = tables["trades"]
    for column in ("price", "size", "ts_event"):
        assert trades[column].to_list() == source_trades[column].to_list()
    precision = 1_000_000 if name.endswith("fix42.log") else 1
    assert trades["ts_recv"].to_list() == (source_trades["ts_recv"] - source_trades["ts_recv"] % precision).to_list()
    if "fix50sp2" in name:  # AggressorSide and TradeID are FIX 5.0 fields
        assert trades["side"].to_list() == source_trades["side"].to_list()
        assert trades["trade_id"].to_list() == source_trades["trade_id"].to_list()


def test_the_book_matches_the_source_at_every_cut_of_the_log(decoded, sources):
    name = "spot_ethusdt.fix50sp2.log.zst"  # receive times are exact: cut both at the same instant
    fix_book = decoded[name][0]["book_deltas"]
    source_book = sources[name][0]
    symbol = source_book["symbol"][0]
    cuts = fix_book.filter(pl.col("flags") & F_LAST > 0)["ts_recv"]
    for cut in (cuts[1], cuts[len(cuts) // 3], cuts[2 * len(cuts) // 3]):
        got = replay_book(fix_book.filter(pl.col("ts_recv") <= cut), kind="l2", depth=20, target="cpu")
        want = replay_book(source_book.filter(pl.col("ts_recv") <= cut), kind="l2", depth=20, target="cpu")
        got, want = got["books"][symbol], want["books"][symbol]
        assert (got["bids"], got["asks"], got["levels_bid"]) == (want["bids"], want["asks"], want["levels_bid"])


def test_sample_files_are_what_the_generator_writes():
    for name, spec in SAMPLE_SPECS.items():
        data = (SAMPLES / name).read_bytes()
        if spec.compression == "gzip":
            data = gzip.decompress(data)
        elif spec.compression == "zstd":
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        assert data == make_samples.fix_log(spec), f"{name} differs from make_samples.py: run it again"


# -- normalization rules ------------------------------------------------------------------------------------------

def test_incremental_entries_map_to_book_actions_and_trades(tmp_path):
    update = encode_message("FIXT.1.1", header("X", 2, appl_ver="9") + [(268, 6)]
                            + book_entry("0", "0", "99.5", "4")
                            + book_entry("1", "0", "100", "0.25", symbol=None)  # inherits BTC
                            + book_entry("2", "1", "101", symbol=None)
                            + book_entry("5", "1", "102", "7", symbol="ETH")
                            + [(279, "0"), (269, "2"), (55, "BTC"), (270, "100.75"), (271, "0.1"), (1003, "42"),
                               (2446, "2")]
                            + [(279, "0"), (269, "J"), (55, "ETH")])
    logon = encode_message("FIXT.1.1", header("A", 1) + [(98, 0), (108, 30), (1137, "9")])
    w50 = encode_message("FIXT.1.1", header("W", 1, appl_ver="9") + [(55, "BTC"), (779, SENT), (268, 5)]
                         + [f for lv in [("0", "100", "1"), ("0", "100", "0.5"), ("1", "101", "2"),
                                         ("2", "100.5", "1"), ("4", "99", None)]
                            for f in [(269, lv[0]), (270, lv[1])] + ([(271, lv[2])] if lv[2] else [])])
    path = write_log(tmp_path / "log.fix", [logon, w50, update])
    tables, report = decode_all(path)
    assert report.messages_bad == 0, report.quarantine
    book = tables["book_deltas"]
    rows = book.select("symbol", "side", "price", "size", "action", "flags").rows()
    snap = F_SNAPSHOT
    assert rows == [
        ("BTC", 0, UNDEF_PRICE, 0, ACTION_CLEAR, snap),
        ("BTC", 1, 100 * UNITS, 1_500_000_000, ACTION_ADD, snap),  # two entries at one price: one level
        ("BTC", -1, 101 * UNITS, 2 * UNITS, ACTION_ADD, snap | F_LAST),
        ("BTC", 1, 99_500_000_000, 4 * UNITS, ACTION_ADD, 0),
        ("BTC", 1, 100 * UNITS, 250_000_000, ACTION_MODIFY, 0),
        ("BTC", -1, 101 * UNITS, 0, ACTION_CANCEL, F_LAST),
        ("ETH", -1, 102 * UNITS, 7 * UNITS, ACTION_MODIFY, 0),
        ("ETH", 0, UNDEF_PRICE, 0, ACTION_CLEAR, F_LAST),
    ]
    assert tables["quotes"].select("bid_px", "ask_px", "bid_sz", "ask_sz").row(0) == (
        100 * UNITS, 101 * UNITS, 1_500_000_000, 2 * UNITS)
    trade = tables["trades"].row(0, named=True)
    assert (trade["price"], trade["size"], trade["side"], trade["trade_id"]) == (100_750_000_000, 100_000_000, -1, 42)
    assert report.snapshot_trades_skipped == 1 and report.entries_skipped == {"4": 1}
    assert report.symbols == ["BTC", "ETH"]


@pytest.mark.parametrize("entry, reason", [
    ([(279, "3"), (269, "0"), (55, "BTC"), (270, "100")], "unsupported_update_action"),  # 5.0: Delete Thru
    ([(279, "0"), (269, "0"), (55, "BTC")], "missing_price"),
    ([(279, "1"), (269, "1"), (55, "BTC"), (270, "100")], "missing_size"),
    ([(279, "2"), (55, "BTC"), (270, "100")], "missing_entry_type"),
    ([(279, "0"), (269, "0"), (270, "100"), (271, "1")], "missing_symbol"),
    ([(279, "0"), (269, "0"), (55, "BTC"), (270, "100.0000000001"), (271, "1")], "bad_decimal"),
    ([(279, "0"), (269, "0"), (55, "BTC"), (270, "100"), (271, "-1")], "negative_size"),
])
def test_valid_fix_that_cannot_become_rows_is_quarantined_with_its_reason(tmp_path, entry, reason):
    message = encode_message("FIXT.1.1", header("X", appl_ver="9") + [(268, 1)] + entry)  # 5.0 SP2 knows 279=3
    path = write_log(tmp_path / "log.fix", [message])
    tables, report = decode_all(path)
    (bad,) = report.quarantine
    assert (bad.stage, bad.reason, bad.byte, bad.line) == ("normalization", reason, 0, 1)
    assert tables["book_deltas"].height == 0


def test_event_times_come_from_entries_else_sending_time_and_receive_times_from_the_log_prefix(tmp_path):
    sent = "20240809-00:00:00.100"  # just after midnight
    messages = [
        x_message([book_entry("0", "0", "100", "1") + [(273, "23:59:59.900")]], seq=2, sent=sent),  # day before
        x_message([book_entry("0", "0", "101", "1") + [(272, "20240808"), (273, "12:00:00")]], seq=3, sent=sent),
        x_message([book_entry("0", "0", "102", "1")], seq=4, sent=sent),
    ]
    received = utc_timestamp_ns(sent) + 5_000_000
    path = write_log(tmp_path / "log.fix", messages, prefix_ns=[received] * 3)
    tables, report = decode_all(path)
    assert tables["book_deltas"]["ts_event"].to_list() == [
        utc_timestamp_ns("20240808-23:59:59.900"), utc_timestamp_ns("20240808-12:00:00"), utc_timestamp_ns(sent)]
    assert tables["book_deltas"]["ts_recv"].to_list() == [received] * 3
    assert report.clock["ts_recv_source"] == {"log": 3, "sending_time": 0}
    assert report.clock["offset"]["min_ns"] == 5_000_000


def test_clock_policies_for_events_received_before_they_happened(tmp_path):
    late = x_message([book_entry("0", "0", "100", "1")], seq=2)  # SendingTime after the receive time below
    early = utc_timestamp_ns(SENT) - 2 * NS
    path = write_log(tmp_path / "log.fix", [late, x_message([book_entry("0", "0", "99", "1")], seq=3)],
                     prefix_ns=[early, early - NS])  # the second line's clock also stepped back
    tables, report = decode_all(path)  # clamp
    book = tables["book_deltas"]
    assert book["ts_event"].to_list() == [early, early] and book["ts_recv"].to_list() == [early, early]
    assert (book["flags"] & F_BAD_TS_RECV > 0).all()
    assert report.clock["ts_event_clamped"] == 2 and report.clock["ts_recv_repaired"] == 1
    assert report.clock["first_clamped_line"] == 1 and report.problems()
    kept, reported = decode_all(path, clock_policy="report")
    assert kept["book_deltas"]["ts_event"].to_list() == [SENT_NS, SENT_NS] and reported.clock["ts_recv_before_ts_event"] == 2
    with pytest.raises(DataQualityError, match="byte 30 \\(line 1\\).*after ts_recv"):  # after the prefix
        decode_all(path, clock_policy="reject")


def test_a_lost_incremental_or_a_sequence_gap_flags_the_book_until_the_next_snapshot(tmp_path):
    bad = bytearray(x_message([book_entry("1", "0", "100", "3")], seq=2))
    bad[-4:-1] = b"000" if bytes(bad[-4:-1]) != b"000" else b"001"
    messages = [
        w_message("BTC", [("0", "100", "1")], seq=1),
        bytes(bad),                                               # lost: bad CheckSum
        x_message([book_entry("1", "0", "100", "4")], seq=3),     # flagged
        w_message("BTC", [("0", "100", "4")], seq=4),             # a snapshot heals it
        x_message([book_entry("1", "0", "100", "5")], seq=5),     # clean
        x_message([book_entry("1", "0", "100", "6")], seq=8),     # MsgSeqNum gap: flagged again
        x_message([book_entry("1", "0", "100", "6")], seq=5).replace(b"\x0152=", b"\x0143=Y\x0152="),  # resend
    ]
    messages[-1] = encode_message("FIX.4.4", [(35, "X"), (49, "VENUE"), (56, "ME"), (34, 6), (43, "Y"), (52, SENT),
                                              (268, 1)] + book_entry("1", "0", "100", "6"))
    path = write_log(tmp_path / "log.fix", messages)
    tables, report = decode_all(path)
    flagged = (tables["book_deltas"]["flags"] & F_MAYBE_BAD_BOOK > 0).to_list()
    assert flagged == [False, False, True, False, False, False, True]
    session = report.sequence["VENUE->ME"]
    assert (session["gaps"], session["missing"], session["duplicates_dropped"]) == (2, 3, 1)
    assert session["gap_list"][1] == {"expected": 6, "got": 8, "byte": path.read_bytes().index(messages[5]),
                                      "line": 6}
    assert report.book["losses"] == 3 and report.book["tainted_rows"] == 2


_SMALL_LOG = b"\n".join(line for line in (SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes().split(b"\n")[:40]
                        if b"|35=W|" not in line) + b"\n"


@settings(max_examples=40, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(_SMALL_LOG) - 1), st.sampled_from(["flip", "drop", "insert"]),
                                st.binary(min_size=1, max_size=3)), min_size=1, max_size=6))
def test_damaged_logs_never_crash_and_every_message_is_accounted_for(tmp_path_factory, edits):
    data = bytearray(_SMALL_LOG)
    for position, kind, payload in sorted(edits, reverse=True):
        position = min(position, len(data) - 1)
        if kind == "flip":
            data[position] ^= payload[0] or 1
        elif kind == "drop":
            del data[position : position + len(payload)]
        else:
            data[position:position] = payload
    path = tmp_path_factory.mktemp("fuzz") / "log.fix"
    path.write_bytes(bytes(data))
    tables, report = decode_all(path)
    assert report.records == report.messages_good + report.messages_bad
    assert report.messages_good + report.messages_bad >= 1
    assert sum(report.bad_reasons.values()) == report.messages_bad
    assert all(q.byte < len(data) and q.reason and q.detail for q in report.quarantine)
    assert (tables["book_deltas"]["ts_recv"].diff().drop_nulls() >= 0).all()


# -- bad-record threshold, compression, chunking -----------------------------------------------------------------

def test_more_bad_messages_than_allowed_fail_loudly_after_the_whole_file(tmp_path):
    messages = [x_message([book_entry("0", "0", str(100 + k), "1")], seq=k + 2) for k in range(9)]
    messages.append(b"8=FIX.4.4\x019=5\x0135=X\x0110=000\x01")
    path = write_log(tmp_path / "log.fix", messages)
    tables, report = decode_all(path, max_bad_fraction=0.1)  # 1 of 10: at the limit, not above
    assert report.bad_fraction == 0.1 and tables["book_deltas"].height == 9
    decoding = decode_fix(path, max_bad_fraction=0.05)
    with pytest.raises(DataQualityError, match=r"1 bad record\(s\) of 10 \(10.00%\) is above max_bad_fraction 5.00%"):
        for _ in decoding:
            pass
    assert decoding.report.messages_good == 9  # the report is complete when it fails


def test_gzip_and_zstd_logs_decode_like_the_plain_one_and_chunks_do_not_change_rows(tmp_path):
    plain = (SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes()
    (tmp_path / "a.log").write_bytes(plain)
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(plain))
    (tmp_path / "a.log.zst").write_bytes(zstandard.ZstdCompressor().compress(plain[:100_000])
                                         + zstandard.ZstdCompressor().compress(plain[100_000:]))
    want, _ = decode_all(tmp_path / "a.log")
    for name in ("a.log.gz", "a.log.zst"):
        got, report = decode_all(tmp_path / name, read_bytes=4096)
        assert report.stream["compression"] == name.rsplit(".", 1)[1].replace("gz", "gzip").replace("zst", "zstd")
        assert all(got[s].equals(want[s]) for s in want)
    chunked = decode_fix(tmp_path / "a.log", chunk_messages=7)
    chunks = list(chunked)
    assert len(chunks) > 30 and all(c.messages <= 7 for c in chunks)
    merged = pl.concat([c.tables["book_deltas"] for c in chunks if "book_deltas" in c.tables])
    assert merged.equals(want["book_deltas"])


def test_memory_stays_flat_as_the_log_grows(tmp_path):
    import tracemalloc

    plain = (SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes()
    decode_all(SAMPLES / "cm_btcusd_perp.fix42.log")  # load the dictionary and caches before measuring
    peaks = []
    for copies in (2, 3):  # both repeat the session once or more: the same clock spread, more messages
        path = tmp_path / f"x{copies}.log.gz"
        path.write_bytes(gzip.compress(plain * copies, compresslevel=1))
        tracemalloc.start()
        decoding = decode_fix(path, chunk_messages=100, read_bytes=1 << 16, max_bad_fraction=0.0)
        rows = sum(frame.height for chunk in decoding for frame in chunk.tables.values())
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert rows == copies * 3951
    assert peaks[1] < 1.1 * peaks[0], peaks  # 50% more messages, the same peak


def test_a_truncated_gzip_log_keeps_every_whole_message(tmp_path):
    plain = (SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes()
    packed = gzip.compress(plain)
    (tmp_path / "cut.log.gz").write_bytes(packed[: len(packed) * 2 // 3])
    tables, report = decode_all(tmp_path / "cut.log.gz")
    assert report.stream["truncated"] and report.notes
    assert report.messages_good > 50 and report.bad_reasons in ({"truncated": 1}, {})
    assert report.problems()[0].endswith("truncated (ends before its end marker)")


# -- the source op and the catalog --------------------------------------------------------------------------------

def test_source_op_emits_sorted_int64_chunks_and_finds_its_instruments(tmp_path):
    params = FixMarketData.Params.model_validate({"path": "cm_btcusd_perp.fix42.log", "schema": "book_deltas"})
    assert FixMarketData.instruments(params, SAMPLES) == ["BTCUSD_PERP"]
    reader = FixMarketData.open(params, SAMPLES)
    chunks = list(reader.chunks(500))
    assert all(len(c["ts_recv"]) <= 500 for c in chunks)
    columns = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    assert set(columns) == {"ts_event", "ts_recv", "instrument", *FixMarketData.outputs}
    assert all(columns[p].dtype == np.int64 for p in FixMarketData.outputs) and (columns["instrument"] == 0).all()
    assert (np.diff(columns["ts_recv"]) >= 0).all() and reader.report.messages_bad == 0
    assert len(columns["price"]) == reader.report.rows["book_deltas"] and (columns["bid_px"] == 0).all()
    listed = FixMarketData.Params.model_validate({"path": "cm_btcusd_perp.fix42.log", "symbols": ["OTHER"]})
    filtered = FixMarketData.open(listed, SAMPLES)
    assert list(filtered.chunks(500)) == [] and filtered.filtered_out == {"BTCUSD_PERP": len(columns["price"])}
    with pytest.raises(ValueError, match="without duplicates"):
        FixMarketData.Params.model_validate({"path": "x", "symbols": ["A", "A"]})


def test_symbol_scan_reads_fields_cut_by_piece_boundaries(tmp_path, monkeypatch):
    import nodes.marketdata.fix.source as source_module

    path = tmp_path / "symbols.log"
    path.write_bytes(b"".join(b"8=FIX.4.4|55=SYM%d|10=000|\n" % (k % 37) for k in range(2000)))
    read = source_module.read_pieces
    monkeypatch.setattr(source_module, "read_pieces", lambda p, status: read(p, status, read_bytes=7))
    assert source_module.file_symbols(path) == [f"SYM{k}" for k in range(37)]


def test_source_op_docstring_example_runs_as_a_spec(tmp_path):
    from pipelines.run import run_spec

    nodes = yaml.safe_load(FixMarketData.__doc__.split("Example::", 1)[1])
    nodes["trades"]["with"]["path"] = str(REPO / nodes["trades"]["with"]["path"])
    spec = tmp_path / "fix.yaml"
    spec.write_text(yaml.safe_dump({"tickloom": 1, "name": "fix", "kind": "research", "nodes": nodes}))
    recorded = run_spec(spec, record=["trades"], write=False).replay.recorded["trades"]
    assert recorded.height == 279 and recorded["price"].min() > 0


def test_ingest_through_the_catalog_and_its_threshold(tmp_path):
    from nodes.catalog import Catalog
    from pipelines.ingest import ingest_files

    files = [SAMPLES / name for name in SAMPLE_SPECS]
    result = ingest_files(tmp_path / "catalog", "fix", files, durable=False)
    assert result.rows["trades"] == 297 + 279 + 7 and result.outcomes() == {"new": 9}
    assert [(r["records"], r["bad_records"]) for r in result.reports] == [(485, 0), (472, 0), (269, 0)]
    catalog = Catalog(tmp_path / "catalog")
    stored = catalog.read("book_deltas").filter(pl.col("symbol") == "BTCUSD_PERP")
    assert stored.height == result.reports[2]["rows"]["book_deltas"] and set(stored["venue"]) == {"BINANCE_COINM"}
    broken = tmp_path / "broken.log"
    broken.write_bytes((SAMPLES / "cm_btcusd_perp.fix42.log").read_bytes().replace(b"|10=", b"|10=9", 3))
    with pytest.raises(DataQualityError, match="above max_bad_record_rate"):
        ingest_files(tmp_path / "catalog", "fix", [broken], durable=False)
    passed = ingest_files(tmp_path / "catalog", "fix", [broken], durable=False, max_bad_record_rate=0.05)
    (report,) = passed.reports
    assert report["bad_records"] == 3 and report["quarantine"][0]["reason"] in ("bad_header", "body_length_mismatch",
                                                                               "missing_checksum")
