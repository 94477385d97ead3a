"""Load QuickFIX XML data dictionaries and combine them into the protocol a message is validated against.

A dictionary (``FIX42.xml``, ``FIX44.xml``, ``FIXT11.xml``, ``FIX50SP2.xml``; vendored in ``data/fix`` with
their licence) lists fields (tag, name, type, enum values), the header and trailer, the messages and the
components they share. Loading flattens components into the structures that use them, the way QuickFIX does:
a field inside a component is required only when the component is required where it is used and the field is
required inside it. A repeating group keeps its own structure: its counter field (``NoMDEntries`` = 268), its
delimiter (the first field of every entry) and its members in dictionary order, nested groups included.

A **protocol** is what one message is checked against:

- ``FIX.4.2``, ``FIX.4.4`` (and any ``FIX.x.y`` whose ``FIXxy.xml`` is in the folder): one dictionary.
- ``FIXT.1.1``: the session dictionary (``FIXT11.xml``: header, trailer, admin messages) with the application
  dictionary named by the message's ``ApplVerID`` (1128), or the session's ``DefaultApplVerID`` (1137, from its
  Logon): ``9`` → ``FIX50SP2.xml``. Session messages (Logon, Heartbeat, ...) use the session dictionary alone. Other ApplVerIDs need their file (``FIX50SP1.xml`` for 8, ...) in the
  folder. Fields of both are merged (the application's definition wins where both define a tag).

Messages compile to structures on first use and are cached; a dictionary file is parsed once per process (per
path and modification time).

Example::

    protocol = protocol_for("FIX.4.4")
    protocol.message("W").body.required            # (268,): NoMDEntries
    protocol.message("X").body.group(268).delimiter   # 279: MDUpdateAction starts every entry
"""

import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DEFAULT_DICTIONARY_DIR = Path(__file__).resolve().parents[3] / "data" / "fix"

# ApplVerID (1128) → the application dictionary's file name
APPL_VER_FILES = {
    "2": "FIX40.xml", "3": "FIX41.xml", "4": "FIX42.xml", "5": "FIX43.xml", "6": "FIX44.xml",
    "7": "FIX50.xml", "8": "FIX50SP1.xml", "9": "FIX50SP2.xml",
}
DATA_TYPES = frozenset({"DATA", "XMLDATA"})
MULTIPLE_VALUE_TYPES = frozenset({"MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"})


class DictionaryError(ValueError):
    """Raised when a dictionary file is missing or malformed, or no dictionary covers a BeginString/ApplVerID."""


@dataclass(frozen=True)
class FieldDef:
    """One field: ``tag``, ``name``, QuickFIX ``type`` and the allowed values (``enums``; None: any value)."""

    tag: int
    name: str
    type: str
    enums: frozenset[str] | None = None

    @property
    def multiple(self) -> bool:
        """Whether the value is a space-separated list (each item must be one of ``enums``)."""
        return self.type in MULTIPLE_VALUE_TYPES


@dataclass(frozen=True)
class Member:
    """A field of a structure, or the counter field of a group (``group`` set)."""

    tag: int
    required: bool
    group: "GroupDef | None" = None


@dataclass(frozen=True)
class Structure:
    """An ordered list of members (components expanded). ``position`` maps a tag (as text) to its index."""

    members: tuple[Member, ...]
    position: dict[str, int] = field(compare=False)
    required: tuple[int, ...] = field(compare=False)

    @classmethod
    def of(cls, members: list[Member]) -> "Structure":
        position: dict[str, int] = {}
        unique: list[Member] = []
        for member in members:
            if str(member.tag) not in position:  # a tag listed twice keeps its first place
                position[str(member.tag)] = len(unique)
                unique.append(member)
        return cls(tuple(unique), position, tuple(m.tag for m in unique if m.required))

    def group(self, counter: int) -> "GroupDef":
        """The group whose counter field is ``counter`` (KeyError when there is none at this level)."""
        member = self.members[self.position[str(counter)]]
        if member.group is None:
            raise KeyError(f"tag {counter} is a field, not a group counter, here")
        return member.group


@dataclass(frozen=True)
class GroupDef:
    """A repeating group: ``counter`` (NoXXX) tag, ``delimiter`` (first field of each entry) and ``body``."""

    counter: int
    name: str
    delimiter: int
    body: Structure


@dataclass(frozen=True)
class MessageDef:
    """A message type: ``msg_type`` (35), ``name``, ``category`` (admin or app) and its ``body``."""

    msg_type: str
    name: str
    category: str
    body: Structure


class FixDictionary:
    """One parsed QuickFIX dictionary file. Use ``load_dictionary`` (cached) rather than this constructor.

    Raises:
        DictionaryError: the file is missing, not XML, or refers to an unknown field or component.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            root = ET.parse(self.path).getroot()
        except (OSError, ET.ParseError) as error:
            raise DictionaryError(f"{self.path}: cannot read the FIX dictionary: {error}") from None
        if root.tag != "fix":
            raise DictionaryError(f"{self.path}: not a QuickFIX dictionary (root element <{root.tag}>, expected <fix>)")
        self.fix_type = root.get("type", "FIX")
        self.major, self.minor = root.get("major", "?"), root.get("minor", "?")
        self.servicepack = root.get("servicepack", "0")
        self.fields: dict[int, FieldDef] = {}
        self._tags_by_name: dict[str, int] = {}
        for element in root.iterfind("fields/field"):
            values = [v.get("enum") for v in element.iterfind("value")]
            definition = FieldDef(int(element.get("number")), element.get("name"), element.get("type"),
                                  frozenset(values) if values else None)
            self.fields[definition.tag] = definition
            self._tags_by_name[definition.name] = definition.tag
        self._components = {c.get("name"): c for c in root.iterfind("components/component")}
        self._expanded: dict[tuple[str, bool], list[Member]] = {}
        self._message_elements = {m.get("msgtype"): m for m in root.iterfind("messages/message")}
        self._messages: dict[str, MessageDef] = {}
        self._lock = threading.Lock()
        header, trailer = root.find("header"), root.find("trailer")
        self.header = Structure.of(self._members(header, True)) if header is not None else Structure.of([])
        self.trailer = Structure.of(self._members(trailer, True)) if trailer is not None else Structure.of([])

    @property
    def label(self) -> str:
        """``FIX.4.4``, ``FIXT.1.1``, ``FIX.5.0SP2``: the version this file describes."""
        sp = f"SP{self.servicepack}" if self.servicepack not in ("", "0") else ""
        return f"{self.fix_type}.{self.major}.{self.minor}{sp}"

    @property
    def msg_types(self) -> list[str]:
        return list(self._message_elements)

    def tag(self, name: str) -> int:
        """The tag of field ``name`` (KeyError when the dictionary has no such field)."""
        return self._tags_by_name[name]

    def message(self, msg_type: str) -> MessageDef | None:
        """The message of type ``msg_type`` (None when this dictionary does not define it)."""
        found = self._messages.get(msg_type)
        if found is not None:
            return found
        element = self._message_elements.get(msg_type)
        if element is None:
            return None
        with self._lock:
            found = MessageDef(msg_type, element.get("name"), element.get("msgcat", "app"),
                               Structure.of(self._members(element, True)))
            self._messages[msg_type] = found
        return found

    # -- expansion -------------------------------------------------------------------------------------------

    def _members(self, element, required_here: bool) -> list[Member]:
        """The members of ``element``'s children, components expanded; ``required_here``: is the context required."""
        members: list[Member] = []
        for child in element:
            required = required_here and child.get("required", "N") == "Y"
            name = child.get("name")
            if child.tag == "field":
                members.append(Member(self._field_tag(name, element), required))
            elif child.tag == "group":
                members.append(self._group(child, required))
            elif child.tag == "component":
                members.extend(self._component(name, required))
        return members

    def _component(self, name: str, required: bool) -> list[Member]:
        key = (name, required)
        if key not in self._expanded:
            element = self._components.get(name)
            if element is None:
                raise DictionaryError(f"{self.path}: component {name!r} is used but not defined")
            self._expanded[key] = self._members(element, required)
        return self._expanded[key]

    def _group(self, element, required: bool) -> Member:
        name = element.get("name")
        counter = self._field_tag(name, element)
        # entries' own required fields count whenever an entry is there, whatever the group's flag
        body = Structure.of(self._members(element, True))
        if not body.members:
            raise DictionaryError(f"{self.path}: group {name} has no members")
        return Member(counter, required, GroupDef(counter, name, body.members[0].tag, body))

    def _field_tag(self, name: str, where) -> int:
        tag = self._tags_by_name.get(name)
        if tag is None:
            raise DictionaryError(f"{self.path}: <{where.tag} name={where.get('name')!r}> uses field {name!r}, "
                                  "which <fields> does not define")
        return tag


@cache
def _load(path: Path, mtime_ns: int) -> FixDictionary:
    return FixDictionary(path)


def load_dictionary(path: str | Path) -> FixDictionary:
    """Parse the QuickFIX dictionary at ``path`` (cached per path and modification time).

    Raises:
        DictionaryError: the file is missing or not a QuickFIX dictionary.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DictionaryError(f"{path}: no such FIX dictionary file")
    return _load(path, path.stat().st_mtime_ns)


class FixProtocol:
    """The session and application dictionaries one message is validated against (see the module docstring).

    ``fields`` merges both (tag → ``FieldDef``); ``header``/``trailer`` are the session's; ``message(t)`` looks
    in the application dictionary, then the session's (admin messages). ``data_lengths`` maps the LENGTH field
    of each DATA field to that field (95 → 96, 93 → 89): the data value may hold the delimiter.
    """

    def __init__(self, session: FixDictionary, application: FixDictionary, appl_ver_id: str | None = None):
        self.session = session
        self.application = application
        self.appl_ver_id = appl_ver_id
        self.begin_string = session.label
        self.name = session.label if session is application else f"{session.label}/{application.label}"
        self.fields: dict[int, FieldDef] = {**session.fields, **application.fields}
        self.header = session.header
        self.trailer = session.trailer
        self.data_lengths: dict[int, int] = {}
        lengths = {f.name: f.tag for f in self.fields.values() if f.type == "LENGTH"}
        for definition in self.fields.values():
            if definition.type in DATA_TYPES:
                # the length field is named after the data field (SignatureLength 93 → Signature 89), or is
                # the tag just before it (RawDataLength 95 → RawData 96)
                named = lengths.get(definition.name + "Len") or lengths.get(definition.name + "Length")
                before = self.fields.get(definition.tag - 1)
                if named is not None:
                    self.data_lengths[named] = definition.tag
                elif before is not None and before.type == "LENGTH":
                    self.data_lengths[before.tag] = definition.tag

    def message(self, msg_type: str) -> MessageDef | None:
        found = self.application.message(msg_type)
        if found is None and self.session is not self.application:
            found = self.session.message(msg_type)
        return found

    def __repr__(self) -> str:
        return f"FixProtocol({self.name})"


def dictionary_file(begin_string: str, folder: Path) -> Path:
    """``FIX.4.4`` → ``folder/FIX44.xml``, ``FIXT.1.1`` → ``folder/FIXT11.xml``."""
    return Path(folder) / (begin_string.replace(".", "") + ".xml")


@cache
def _protocol(begin_string: str, appl_ver_id: str | None, folder: Path, stamp: tuple) -> FixProtocol:
    session = load_dictionary(dictionary_file(begin_string, folder))
    if session.fix_type != "FIXT" or appl_ver_id is None:  # FIX 4.x, or FIXT's own session messages
        return FixProtocol(session, session)
    application_file = APPL_VER_FILES.get(appl_ver_id or "")
    if application_file is None:
        raise DictionaryError(f"ApplVerID {appl_ver_id!r} names no FIX application version "
                              f"(known: {', '.join(sorted(APPL_VER_FILES))})")
    path = folder / application_file
    if not path.is_file():
        raise DictionaryError(f"no dictionary for ApplVerID {appl_ver_id} ({application_file} is not in {folder})")
    return FixProtocol(session, load_dictionary(path), appl_ver_id)


def protocol_for(begin_string: str, appl_ver_id: str | None = None, folder: str | Path | None = None) -> FixProtocol:
    """The protocol of a message with this BeginString (8) and, for FIXT.1.1, ApplVerID (1128).

    Parameters:
        begin_string: ``FIX.4.2``, ``FIX.4.4``, ``FIXT.1.1``, ...
        appl_ver_id: the application version of a FIXT message (``9`` = FIX 5.0 SP2); None for FIXT's session
            messages (Logon, Heartbeat, ...), which the session dictionary alone defines; ignored for FIX 4.x.
        folder: where the dictionary files are (default: the vendored ``data/fix``).

    Raises:
        DictionaryError: no dictionary file for this version in ``folder``, or a malformed one.
    """
    folder = Path(folder).resolve() if folder is not None else DEFAULT_DICTIONARY_DIR
    path = dictionary_file(begin_string, folder)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in folder.glob("FIX*.xml"))) or "none"
        raise DictionaryError(f"no dictionary for BeginString {begin_string!r} ({path.name} is not in {folder}; "
                              f"dictionaries there: {shipped})")
    stamp = (path.stat().st_mtime_ns,)
    return _protocol(begin_string, appl_ver_id if begin_string.startswith("FIXT") else None, folder, stamp)
