"""Validate a framed FIX message against the data dictionary of its BeginString (and ApplVerID for FIXT.1.1).

The checks follow what a FIX engine's session layer rejects (the SessionRejectReason of each in brackets);
the first problem found is the message's reason, with the tag and the byte offset of the field:

| reason | what | |
|---|---|---|
| ``no_dictionary`` | no dictionary for the BeginString / ApplVerID | |
| ``malformed_field`` | a field without ``=``, or a tag that is not a number | [0] |
| ``msg_type_not_third`` | MsgType (35) is not the field after BodyLength | [14] |
| ``invalid_msg_type`` | MsgType not in the dictionary | [11] |
| ``unknown_tag`` | a tag the dictionary does not define (``unknown_tags="ignore"`` drops them instead) | [0] |
| ``tag_not_defined_for_message`` | a known tag that this message type does not have | [2] |
| ``out_of_order`` | a header field after the body started, or a body field after the trailer | [14] |
| ``duplicate_tag`` | a tag twice outside repeating groups, or twice in one group entry | [13] |
| ``tag_without_value`` | ``tag=`` with nothing after it | [4] |
| ``bad_value_format`` | a value not of its field's type (INT, PRICE, UTCTIMESTAMP, BOOLEAN, ...) | [6] |
| ``bad_enum`` | a value outside the field's enumeration | [5] |
| ``required_tag_missing`` | a required field of the header, the body or a group entry is absent | [1] |
| ``group_count_mismatch`` | fewer or more entries than the NumInGroup (NoXXX) value says | [16] |
| ``group_delimiter`` | an entry that does not start with the group's delimiter field | [15] |
| ``group_out_of_order`` | fields of one entry not in the dictionary's order | [15] |

Structure rules, as QuickFIX applies them: header fields first (any order among themselves), then the body
(any order, except inside repeating groups), then the trailer. An entry of a group starts with the group's
delimiter (its first field in the dictionary), holds its fields in dictionary order and ends at the next
delimiter or at the first tag that is not a member; a tag that is out of order inside an entry but belongs to
the enclosing level ends the entry. Required fields of a component count only when the component is required
where it is used (see ``dictionary``). A DATA field (RawData 96, EncodedText 355, ...) may hold the
delimiter: its length field says how much to read. Values may use 0 to 12 fraction digits in timestamps (FIX
4.2 allows milliseconds, 5.0 picoseconds); the decoder keeps nanoseconds.

Example::

    validator = Validator()
    result = validator.validate(frame)        # a parse.Frame
    if isinstance(result, Rejection): print(result.reason, result.detail, result.field_offset)
    else: result.body["268"]                  # the NoMDEntries entries, each a dict tag → value
"""

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from nodes.marketdata.fix.dictionary import DictionaryError, FixProtocol, GroupDef, Structure, protocol_for
from nodes.marketdata.fix.parse import Frame, utc_date_ns, utc_time_only_ns, utc_timestamp_ns

NO_DICTIONARY = "no_dictionary"
MALFORMED_FIELD = "malformed_field"
MSG_TYPE_NOT_THIRD = "msg_type_not_third"
INVALID_MSG_TYPE = "invalid_msg_type"
UNKNOWN_TAG = "unknown_tag"
TAG_NOT_DEFINED_FOR_MESSAGE = "tag_not_defined_for_message"
OUT_OF_ORDER = "out_of_order"
DUPLICATE_TAG = "duplicate_tag"
TAG_WITHOUT_VALUE = "tag_without_value"
BAD_VALUE_FORMAT = "bad_value_format"
BAD_ENUM = "bad_enum"
REQUIRED_TAG_MISSING = "required_tag_missing"
GROUP_COUNT_MISMATCH = "group_count_mismatch"
GROUP_DELIMITER = "group_delimiter"
GROUP_OUT_OF_ORDER = "group_out_of_order"

_FRAMED_TAGS = frozenset({"8", "9", "10"})  # checked by the framer


@dataclass(slots=True)
class FixMessage:
    """A valid message: its protocol, MsgType, header and body as dicts tag (text) → value (text), where a
    group's counter tag maps to its entries (a list of such dicts, nested groups alike)."""

    protocol: str
    msg_type: str
    header: dict
    body: dict
    frame: Frame


@dataclass(slots=True)
class Rejection:
    """Why a framed message is invalid: ``reason`` (a code above), ``detail`` (for a person), the offending
    ``tag`` and ``field_offset`` (bytes from the message's start) when one field is at fault."""

    reason: str
    detail: str
    tag: int | None = None
    field_offset: int | None = None
    msg_type: str | None = None
    protocol: str | None = None


class _Reject(Exception):
    def __init__(self, reason: str, detail: str, index: int | None = None, tag: str | None = None):
        self.reason, self.detail, self.index, self.tag = reason, detail, index, tag


class _Resplit(Exception):
    """A DATA field's value holds the delimiter: split again, reading data fields by their length."""


# -- value checks ----------------------------------------------------------------------------------------------

def _regex(pattern: str):
    return re.compile(pattern).fullmatch


def _parses(function):
    def check(value: str) -> bool:
        try:
            function(value)
        except ValueError:
            return False
        return True
    return check


_UNSIGNED = _regex(r"\d+")
_TZ = r"(?:Z|[+-]\d{2}(?::?\d{2})?)"
_CHECKS = {
    "INT": _regex(r"-?\d+"),
    "LENGTH": _UNSIGNED, "SEQNUM": _UNSIGNED, "NUMINGROUP": _UNSIGNED, "TAGNUM": _regex(r"[1-9]\d*"),
    "DAYOFMONTH": _regex(r"0?[1-9]|[12]\d|3[01]"),
    **dict.fromkeys(("PRICE", "QTY", "AMT", "FLOAT", "PERCENTAGE", "PRICEOFFSET"),
                    _regex(r"-?(?:\d+(?:\.\d*)?|\.\d+)")),
    "BOOLEAN": _regex(r"[YN]"),
    "UTCTIMESTAMP": _parses(utc_timestamp_ns),
    "UTCTIMEONLY": _parses(utc_time_only_ns), "LOCALMKTTIME": _parses(utc_time_only_ns),
    "UTCDATEONLY": _parses(utc_date_ns), "UTCDATE": _parses(utc_date_ns), "LOCALMKTDATE": _parses(utc_date_ns),
    "MONTHYEAR": _regex(r"\d{4}(?:0[1-9]|1[0-2])(?:\d{2}|w[1-5])?"),
    "TZTIMEONLY": _regex(r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,12})?)?" + _TZ),
    "TZTIMESTAMP": _regex(r"\d{8}-\d{2}:\d{2}(?::\d{2}(?:\.\d{1,12})?)?" + _TZ),
    "CURRENCY": _regex(r"[A-Za-z0-9]{3}"),
    "COUNTRY": _regex(r"[A-Za-z]{2}"),
    "LANGUAGE": _regex(r"[A-Za-z]{2}"),
}


def _type_check(type_name: str, enums: frozenset[str] | None):
    if type_name == "CHAR" and (enums is None or all(len(v) == 1 for v in enums)):
        return lambda value: len(value) == 1
    return _CHECKS.get(type_name)


# -- compiled structures ---------------------------------------------------------------------------------------

_VALID_CACHE = 4096  # values remembered as valid per field: prices, symbols and codes repeat


class _Field:
    """How to check one field's value; ``valid`` remembers values already found valid (bounded)."""

    __slots__ = ("tag", "name", "type", "check", "enums", "multiple", "data_tag", "valid")

    def __init__(self, definition, data_tag: str | None):
        self.tag = str(definition.tag)
        self.name = definition.name
        self.type = definition.type
        self.check = _type_check(definition.type, definition.enums)
        self.enums = definition.enums
        self.multiple = definition.multiple
        self.data_tag = data_tag
        self.valid: set[str] = set()


class _Scope:
    """A structure ready for the walk: members by tag text → (position, group scope or None, field check)."""

    __slots__ = ("members", "required", "delimiter", "counter", "name")

    def __init__(self, structure: Structure, fields: dict[str, _Field], group: GroupDef | None = None):
        self.members: dict[str, tuple[int, _Scope | None, _Field]] = {}
        for position, member in enumerate(structure.members):
            inner = _Scope(member.group.body, fields, member.group) if member.group is not None else None
            self.members[str(member.tag)] = (position, inner, fields[str(member.tag)])
        self.required = tuple(str(t) for t in structure.required if str(t) not in _FRAMED_TAGS)
        self.delimiter = str(group.delimiter) if group is not None else None
        self.counter = str(group.counter) if group is not None else None
        self.name = group.name if group is not None else None


class _Compiled:
    """A protocol with its checks and scopes built for the walk (one per protocol, messages on first use)."""

    def __init__(self, protocol: FixProtocol):
        self.protocol = protocol
        self.name = protocol.name
        data_lengths = {str(k): str(v) for k, v in protocol.data_lengths.items()}
        self.fields: dict[str, _Field] = {
            str(d.tag): _Field(d, data_lengths.get(str(d.tag))) for d in protocol.fields.values()
        }
        self.data_lengths = data_lengths
        self.header = _Scope(protocol.header, self.fields)
        self.trailer = _Scope(protocol.trailer, self.fields)
        self._bodies: dict[str, _Scope | None] = {}

    def body(self, msg_type: str) -> "_Scope | None":
        if msg_type not in self._bodies:
            message = self.protocol.message(msg_type)
            self._bodies[msg_type] = _Scope(message.body, self.fields) if message is not None else None
        return self._bodies[msg_type]

    def field_name(self, tag: str) -> str:
        known = self.fields.get(tag)
        return f"{tag} ({known.name})" if known else tag


@cache
def _compiled(protocol: FixProtocol) -> _Compiled:
    """One compiled form per protocol (protocols are cached per dictionary file), shared by every validator."""
    return _Compiled(protocol)


# -- the validator ---------------------------------------------------------------------------------------------

class Validator:
    """Validate frames against the dictionaries in ``dictionary_dir`` (default: the vendored ``data/fix``).

    Parameters:
        dictionary_dir: folder of QuickFIX dictionary files named ``FIX44.xml``, ``FIXT11.xml``, ...
        unknown_tags: ``reject`` (default) or ``ignore`` (drop fields whose tag the dictionary does not define,
            such as a venue's user-defined tags 5000-9999, and validate the rest).
        default_appl_ver_id: the application version of a FIXT.1.1 message that has no ApplVerID (1128) and
            whose session has sent no Logon with DefaultApplVerID (1137); default ``9`` (FIX 5.0 SP2).

    Raises:
        ValueError: an unknown ``unknown_tags`` value.
    """

    def __init__(self, dictionary_dir: str | Path | None = None, unknown_tags: Literal["reject", "ignore"] = "reject",
                 default_appl_ver_id: str = "9"):
        if unknown_tags not in ("reject", "ignore"):
            raise ValueError(f"unknown_tags must be 'reject' or 'ignore', not {unknown_tags!r}")
        self.dictionary_dir = dictionary_dir
        self.unknown_tags = unknown_tags
        self.default_appl_ver_id = default_appl_ver_id
        self._compiled: dict[tuple[str, str | None], _Compiled | Rejection] = {}
        self._session_appl_ver: dict[tuple[str, str], str] = {}  # (sender, target) → DefaultApplVerID (1137)
        self.ignored_tags: dict[str, int] = {}  # tag → times dropped (unknown_tags="ignore")

    def validate(self, frame: Frame) -> FixMessage | Rejection:
        """Return the valid message or the reason it is not (never raises on bad input)."""
        d = frame.delimiter
        parts = frame.body.split(d)
        parts.pop()  # the body ends with the delimiter: the last part is empty
        pairs = [p.partition("=") for p in parts]
        msg_type = pairs[0][2] if pairs and pairs[0][0] == "35" else None
        compiled = self._protocol(frame, pairs)
        if isinstance(compiled, Rejection):
            compiled.msg_type = msg_type
            return compiled
        try:
            try:
                return self._walk_message(frame, pairs, compiled)
            except _Resplit:
                pairs = _split_with_data(frame.body, d, compiled.data_lengths)
                return self._walk_message(frame, pairs, compiled, resplit=True)
        except _Reject as problem:
            offset = None
            if problem.index is not None:
                offset = frame.head_bytes + sum(len(t) + len(e) + len(v) + 1 for t, e, v in pairs[: problem.index])
            tag = int(problem.tag) if problem.tag is not None and problem.tag.isdigit() else None
            return Rejection(problem.reason, problem.detail, tag, offset, msg_type, compiled.name)

    # -- protocol choice ---------------------------------------------------------------------------------------

    def _protocol(self, frame: Frame, pairs: list) -> "_Compiled | Rejection":
        appl_ver = None
        if frame.begin_string.startswith("FIXT") and not self._session_message(frame, pairs):
            header = {}
            for tag, _, value in pairs[:16]:
                if tag in ("1128", "49", "56"):
                    header[tag] = value
            appl_ver = header.get("1128") or self._session_appl_ver.get(
                (header.get("49", ""), header.get("56", "")), self.default_appl_ver_id)
        key = (frame.begin_string, appl_ver)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = _compiled(protocol_for(frame.begin_string, appl_ver, self.dictionary_dir))
            except DictionaryError as error:
                compiled = Rejection(NO_DICTIONARY, str(error), 8 if appl_ver is None else 1128)
            self._compiled[key] = compiled
        if isinstance(compiled, Rejection):
            return Rejection(compiled.reason, compiled.detail, compiled.tag)
        return compiled

    def _session_message(self, frame: Frame, pairs: list) -> bool:
        """Whether a FIXT message is one of the session layer's own (Logon, Heartbeat, ...): no ApplVerID needed."""
        if not pairs or pairs[0][0] != "35":
            return False
        key = (frame.begin_string, None)
        session = self._compiled.get(key)
        if session is None:
            try:
                session = _compiled(protocol_for(frame.begin_string, None, self.dictionary_dir))
            except DictionaryError as error:
                session = Rejection(NO_DICTIONARY, str(error), 8)
            self._compiled[key] = session
        return not isinstance(session, Rejection) and pairs[0][2] in session.protocol.session.msg_types

    # -- the walk ----------------------------------------------------------------------------------------------

    def _walk_message(self, frame: Frame, pairs: list, compiled: _Compiled, resplit: bool = False) -> FixMessage:
        if not pairs or pairs[0][0] != "35":
            raise _Reject(MSG_TYPE_NOT_THIRD, "MsgType (35) must be the third field, after BeginString and BodyLength",
                          0, pairs[0][0] if pairs else None)
        msg_type = pairs[0][2]
        body_scope = compiled.body(msg_type)
        if body_scope is None:
            raise _Reject(INVALID_MSG_TYPE, f"MsgType {msg_type!r} is not a message of {compiled.name}", 0, "35")
        if self.unknown_tags == "ignore":
            kept = [p for p in pairs if p[0] in compiled.fields]
            if len(kept) != len(pairs):
                for p in pairs:
                    if p[0] not in compiled.fields:
                        self.ignored_tags[p[0]] = self.ignored_tags.get(p[0], 0) + 1
                index = [i for i, p in enumerate(pairs) if p[0] in compiled.fields]
                try:
                    return self._walk(frame, kept, compiled, body_scope, msg_type, resplit)
                except _Reject as problem:  # point at the field in the original message
                    if problem.index is not None:
                        problem.index = index[problem.index] if problem.index < len(index) else len(pairs)
                    raise
        return self._walk(frame, pairs, compiled, body_scope, msg_type, resplit)

    def _walk(self, frame, pairs, compiled, body_scope, msg_type, resplit) -> FixMessage:
        n = len(pairs)
        header: dict = {}
        body: dict = {}
        trailer: dict = {}
        i = self._fields(pairs, 0, n, compiled.header, header, compiled, resplit)
        i = self._fields(pairs, i, n, body_scope, body, compiled, resplit)
        i = self._fields(pairs, i, n, compiled.trailer, trailer, compiled, resplit)
        if i < n:
            tag = pairs[i][0]
            name = compiled.field_name(tag)
            if tag in compiled.header.members:
                if tag in header:
                    raise _Reject(DUPLICATE_TAG, f"tag {name} appears twice", i, tag)
                raise _Reject(OUT_OF_ORDER, f"header field {name} after the body started", i, tag)
            if tag in body_scope.members:
                raise _Reject(DUPLICATE_TAG if tag in body else OUT_OF_ORDER,
                              f"tag {name} appears twice" if tag in body else f"body field {name} after the trailer",
                              i, tag)
            if tag in compiled.fields:
                raise _Reject(TAG_NOT_DEFINED_FOR_MESSAGE,
                              f"tag {name} is not a field of {msg_type} in {compiled.name} (not at this level)", i, tag)
            if not pairs[i][1] or not tag.isdigit():
                raise _Reject(MALFORMED_FIELD, f"malformed field {'='.join(pairs[i][::2])[:40]!r}", i, tag)
            raise _Reject(UNKNOWN_TAG, f"tag {tag} is not defined in {compiled.name}", i, tag)
        for scope, found, where in ((compiled.header, header, "header"), (body_scope, body, msg_type)):
            for tag in scope.required:
                if tag not in found:
                    raise _Reject(REQUIRED_TAG_MISSING,
                                  f"required tag {compiled.field_name(tag)} missing from the {where}", None, tag)
        if msg_type == "A" and "1137" in body:  # the session's default application version
            self._session_appl_ver[(header.get("49", ""), header.get("56", ""))] = body["1137"]
        return FixMessage(compiled.name, msg_type, header, body, frame)

    def _fields(self, pairs, i, n, scope: _Scope, out: dict, compiled: _Compiled, resplit: bool) -> int:
        """Read the fields of a top-level ``scope`` (header, body, trailer) from ``pairs[i:]`` into ``out``.

        Returns where it stopped: the first tag that is not a member of ``scope``.
        """
        members = scope.members
        while i < n:
            tag, eq, value = pairs[i]
            member = members.get(tag)
            if member is None:
                break
            position, group, field = member
            if tag in out:
                raise _Reject(DUPLICATE_TAG, f"tag {compiled.field_name(tag)} appears twice", i, tag)
            if value not in field.valid:
                self._check_value(field, tag, eq, value, i, compiled)
            if field.data_tag is not None:
                self._check_data(pairs, i, n, field, value, compiled, resplit)
            if group is not None:
                i = self._group(pairs, i, n, tag, int(value), group, members, out, compiled, resplit)
                continue
            out[tag] = value
            i += 1
        return i

    @staticmethod
    def _check_value(field: _Field, tag: str, eq: str, value: str, i: int, compiled: _Compiled) -> None:
        """Check a value not seen before for its field; remember it when it is valid."""
        if not eq:
            raise _Reject(MALFORMED_FIELD, f"field {tag!r} has no '='", i, tag)
        if not value:
            raise _Reject(TAG_WITHOUT_VALUE, f"tag {compiled.field_name(tag)} has no value", i, tag)
        if field.check is not None and not field.check(value):
            raise _Reject(BAD_VALUE_FORMAT, f"tag {compiled.field_name(tag)} = {value[:40]!r} is not a {field.type}",
                          i, tag)
        enums = field.enums
        if enums is not None:
            if field.multiple:
                bad = next((v for v in value.split(" ") if v not in enums), None)
            else:
                bad = None if value in enums else value
            if bad is not None:
                raise _Reject(BAD_ENUM, f"tag {compiled.field_name(tag)} = {bad[:40]!r} is not one of its values "
                              f"({', '.join(sorted(enums)[:12])}{', ...' if len(enums) > 12 else ''})", i, tag)
        if len(field.valid) < _VALID_CACHE:
            field.valid.add(value)

    def _group(self, pairs, i, n, tag, count, group: _Scope, parent: dict, out, compiled, resplit) -> int:
        """Read ``count`` entries of ``group`` (its counter field is at ``pairs[i]``) into ``out[tag]``.

        An entry starts with the delimiter (position 0), takes members in increasing position and ends at the
        next delimiter, at a tag that is not a member, or at a member of ``parent`` that comes out of order.
        """
        counter_index = i
        if count < 0:  # FIX 4.2 types counters as INT
            raise _Reject(BAD_VALUE_FORMAT, f"{group.name} ({tag}) = {count} is not a count", i, tag)
        i += 1
        entries = []
        delimiter = group.delimiter
        members = group.members
        required = group.required
        for k in range(count):
            if i >= n or pairs[i][0] != delimiter:
                found = pairs[i][0] if i < n else None
                if found is not None and found in members:
                    raise _Reject(GROUP_DELIMITER, f"entry {k + 1} of group {group.name} ({tag}) starts with "
                                  f"{compiled.field_name(found)}, not its delimiter {compiled.field_name(delimiter)}",
                                  i, found)
                raise _Reject(GROUP_COUNT_MISMATCH, f"{group.name} ({tag}) = {count} but the message has {k} "
                              f"entr{'y' if k == 1 else 'ies'}", counter_index, tag)
            entry: dict = {}
            start = i
            last = -1
            while i < n:
                field_tag, eq, value = pairs[i]
                member = members.get(field_tag)
                if member is None:
                    break
                position, inner, field = member
                if position <= last:
                    if field_tag == delimiter or field_tag in parent:
                        break  # the next entry, or the enclosing level's field: this entry is over
                    name = compiled.field_name(field_tag)
                    if field_tag in entry:
                        raise _Reject(DUPLICATE_TAG, f"tag {name} twice in one entry of group {group.name} ({tag})",
                                      i, field_tag)
                    raise _Reject(GROUP_OUT_OF_ORDER, f"tag {name} out of order in group {group.name} ({tag}): the "
                                  "dictionary puts it before the previous field", i, field_tag)
                last = position
                if value not in field.valid:
                    self._check_value(field, field_tag, eq, value, i, compiled)
                if field.data_tag is not None:
                    self._check_data(pairs, i, n, field, value, compiled, resplit)
                if inner is not None:
                    i = self._group(pairs, i, n, field_tag, int(value), inner, members, entry, compiled, resplit)
                    continue
                entry[field_tag] = value
                i += 1
            for tag_required in required:
                if tag_required not in entry:
                    raise _Reject(REQUIRED_TAG_MISSING, f"required tag {compiled.field_name(tag_required)} missing "
                                  f"from entry {k + 1} of group {group.name} ({tag})", start, tag_required)
            entries.append(entry)
        if i < n and pairs[i][0] == delimiter:
            extra = sum(1 for p in pairs[i:] if p[0] == delimiter)
            raise _Reject(GROUP_COUNT_MISMATCH, f"{group.name} ({tag}) = {count} but more entries follow "
                          f"(at least {count + extra})", counter_index, tag)
        out[tag] = entries
        return i

    @staticmethod
    def _check_data(pairs, i, n, field: _Field, value: str, compiled: _Compiled, resplit: bool) -> None:
        """A length field must be followed by its DATA field of that many bytes (else split again, or reject)."""
        data_tag = field.data_tag
        if i + 1 >= n or pairs[i + 1][0] != data_tag or len(pairs[i + 1][2]) != int(value):
            if not resplit:
                raise _Resplit()
            raise _Reject(BAD_VALUE_FORMAT, f"tag {compiled.field_name(field.tag)} = {value} is not followed by "
                          f"{compiled.field_name(data_tag)} of that many bytes", i, field.tag)


def _split_with_data(body: str, d: str, data_lengths: dict[str, str]) -> list[tuple[str, str, str]]:
    """Split ``body`` into fields, reading the value of a DATA field as exactly the bytes its length field gives."""
    pairs = []
    i, n = 0, len(body)
    pending_length: tuple[str, int] | None = None
    while i < n:
        eq = body.find("=", i)
        cut = body.find(d, i)
        if eq < 0 or (0 <= cut < eq):
            end = cut if cut >= 0 else n
            pairs.append((body[i:end], "", ""))
            i = end + 1
            pending_length = None
            continue
        tag = body[i:eq]
        if pending_length is not None and pending_length[0] == tag:
            end = eq + 1 + pending_length[1]
            if end > n - 1 or body[end] != d:
                end = body.find(d, eq + 1)  # the length is wrong: the value check will say so
                end = n if end < 0 else end
        else:
            end = body.find(d, eq + 1)
            end = n if end < 0 else end
        value = body[eq + 1 : end]
        pairs.append((tag, "=", value))
        data_tag = data_lengths.get(tag)
        pending_length = (data_tag, int(value)) if data_tag is not None and value.isdigit() else None
        i = end + 1
    return pairs
