"""Read one capture line with orjson: the reference the fast scanner must agree with, and the judge of bad lines.

``scan.py`` hands every line it does not plainly accept to ``parse_line``, which either returns the same
numbers the scanner would have produced or raises ``BadLine`` with a reason category and a message that a
person can act on. Tests run whole captures through both and compare every field.

Rules (the scanner applies the same ones, or stricter ones that send the line here):

- ``<ts> <json>``: the receive timestamp is 1-19 ASCII digits (int64 ns), one space, then one JSON object.
- A combined-stream envelope ``{"stream": ..., "data": {...}}`` or a bare payload.
- A payload with ``lastUpdateId`` (and no stream name or event type) is a REST depth snapshot: ``bids``,
  ``asks`` required; ``E``, ``T``, ``symbol`` optional.
- Otherwise the kind comes from ``e`` (``depthUpdate``, ``trade``, ``bookTicker``) or, when ``e`` is absent
  (spot bookTicker), from the stream name (``<symbol>@depth[@speed]``, ``@trade``, ``@bookTicker``); any other
  type is an unknown stream. Required: depth ``s E U u b a`` (``T``, ``pu`` optional); trade ``s t p q T m``
  (``E`` optional); bookTicker ``s u b B a A`` (``E``, ``T`` optional).
- Integers (times, ids) are non-negative JSON integers that fit int64; prices and quantities are decimal
  strings ``\\d+(\\.\\d+)?`` converted exactly to int64 in 1e-9 units (see ``decimal_to_units``); levels are
  ``[price, quantity]`` pairs; the symbol is a string of 1-32 bytes (``s``, or ``symbol`` on a snapshot;
  the later key wins when both are present, as in the scanner).
"""

import re
from dataclasses import dataclass, field

import orjson

from nodes.marketdata.binance import scan as S

_LINE = re.compile(rb"(\d{1,19}) (.*)", re.DOTALL)
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")  # ASCII digits only: \\d would take any script's
_INT64_MAX = 9_223_372_036_854_775_807
_EVENTS = {"depthUpdate": S.K_DEPTH, "trade": S.K_TRADE, "bookTicker": S.K_QUOTE}
_STREAM_NAMES = {S.K_DEPTH: "depth", S.K_TRADE: "trade", S.K_QUOTE: "bookTicker", S.K_SNAPSHOT: "snapshot"}

# reason categories of bad lines, as counted in the quality report
EMPTY_LINE = "empty_line"
BAD_TIMESTAMP = "bad_receive_timestamp"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_STREAM = "unknown_stream"
UNRECOGNISED = "unrecognised_message"
MISSING_FIELD = "missing_field"
BAD_FIELD = "bad_field"
BAD_DECIMAL = "bad_decimal"
TRUNCATED = "truncated_line"


class BadLine(Exception):
    """Raised when a line cannot be normalized; ``category`` is one of the reason constants above."""

    def __init__(self, category: str, message: str):
        self.category = category
        self.message = message
        super().__init__(f"{category}: {message}")


@dataclass
class ParsedLine:
    """The fields of one good line, as the scanner's ``M_*`` columns hold them (``MISSING`` when absent)."""

    kind: int
    ts_recv: int
    symbol: str | None
    fields: dict[int, int] = field(default_factory=dict)  # M_* column → value
    levels: list[tuple[int, int, int]] = field(default_factory=list)  # (side, price, size)
    stream: int = S.K_NONE
    event: int = S.K_NONE
    level_keys: int = 0


def decimal_to_units(text: str, name: str = "value") -> int:
    """Convert a decimal string to int64 units of 1e-9 exactly ("61773.6" → 61773600000000).

    Raises:
        BadLine: not ``\\d+(\\.\\d+)?``, more than 9 significant decimal places, or above int64.
    """
    if not isinstance(text, str):
        raise BadLine(BAD_DECIMAL, f"{name} must be a decimal string, got {type(text).__name__} {text!r}")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise BadLine(BAD_DECIMAL, f"{name} {text!r} is not a plain decimal (digits, optionally '.' and digits)")
    whole, frac = match.group(1), match.group(2) or ""
    if len(frac) > 9 and frac[9:].strip("0"):
        raise BadLine(BAD_DECIMAL, f"{name} {text!r} has more than 9 decimal places: 1e-9 units cannot hold it exactly")
    value = int(whole) * 1_000_000_000 + int((frac[:9] or "0").ljust(9, "0"))
    if value > _INT64_MAX:
        raise BadLine(BAD_DECIMAL, f"{name} {text!r} is above int64 in 1e-9 units (max 9223372036.854775807)")
    return value


def parse_line(raw: bytes) -> ParsedLine:
    """Parse one capture line (without its newline).

    Raises:
        BadLine: the line is not a normalizable Binance message; the reason says why.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw.strip():
        raise BadLine(EMPTY_LINE, "empty line")
    match = _LINE.fullmatch(raw)
    if match is None or int(match.group(1)) > _INT64_MAX:
        raise BadLine(BAD_TIMESTAMP, "expected '<receive ts: 1-19 digits, ns> <JSON>'")
    ts_recv = int(match.group(1))
    try:
        payload = orjson.loads(match.group(2))
    except orjson.JSONDecodeError as error:
        raise BadLine(INVALID_JSON, f"invalid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise BadLine(NOT_AN_OBJECT, f"the message is a JSON {type(payload).__name__}, not an object")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, str):
        raise BadLine(BAD_FIELD, "'stream' is not a string")
    if "data" in payload:
        data = payload["data"]
        if not isinstance(data, dict):
            raise BadLine(BAD_FIELD, "'data' is not an object")
    else:
        data = payload
    return _parse_fields(data, stream, ts_recv)


def _parse_fields(data: dict, stream: str | None, ts_recv: int) -> ParsedLine:
    event = data.get("e")
    if event is not None and not isinstance(event, str):
        raise BadLine(BAD_FIELD, "'e' (event type) is not a string")
    event_kind = _EVENTS.get(event, S.K_OTHER) if event is not None else S.K_NONE
    stream_kind = _stream_kind(stream) if stream is not None else S.K_NONE
    if "lastUpdateId" in data:
        if stream is not None or event is not None:
            raise BadLine(UNKNOWN_STREAM, f"unknown stream type: stream {stream!r}, event {event!r} carries 'lastUpdateId' "
                          "(partial book streams are not normalized)")
        kind = S.K_SNAPSHOT
    else:
        if event_kind != S.K_NONE and stream_kind != S.K_NONE and event_kind != stream_kind:
            raise BadLine(UNKNOWN_STREAM, f"stream {stream!r} carries event type {event!r}")
        kind = event_kind if event_kind != S.K_NONE else stream_kind
        if kind == S.K_NONE:
            raise BadLine(UNRECOGNISED, "no stream name, event type ('e') or snapshot id ('lastUpdateId'); keys: "
                          + ", ".join(list(data)[:12]))
        if kind == S.K_OTHER:
            raise BadLine(UNKNOWN_STREAM, f"unknown stream type: stream {stream!r}, event {event!r}")
    parsed = ParsedLine(kind=kind, ts_recv=ts_recv, symbol=None, stream=stream_kind, event=event_kind)
    symbol_key = None
    for key in data:
        if key in ("s", "symbol"):
            symbol_key = key
    if symbol_key is not None:
        symbol = data[symbol_key]
        if not isinstance(symbol, str) or not 1 <= len(symbol.encode()) <= S.MAX_SYMBOL_BYTES:
            raise BadLine(BAD_FIELD, f"symbol {symbol!r} is not a string of 1-{S.MAX_SYMBOL_BYTES} bytes")
        parsed.symbol = symbol
    f = parsed.fields
    if kind == S.K_SNAPSHOT:
        f[S.M_LAST_ID] = _uint(data, "lastUpdateId", required=True)
        f[S.M_SNAPSHOT_ID] = f[S.M_LAST_ID]
        f[S.M_E] = _uint(data, "E")
        f[S.M_T] = _uint(data, "T")
        _levels_in_order(data, parsed, ("bids", "asks"))
    elif kind == S.K_DEPTH:
        _require_symbol(parsed)
        f[S.M_E] = _uint(data, "E", required=True)
        f[S.M_T] = _uint(data, "T")
        f[S.M_FIRST_ID] = _uint(data, "U", required=True)
        f[S.M_LAST_ID] = _uint(data, "u", required=True)
        f[S.M_PREV_ID] = _uint(data, "pu")
        _levels_in_order(data, parsed, ("b", "a"))
    elif kind == S.K_TRADE:
        _require_symbol(parsed)
        f[S.M_E] = _uint(data, "E")
        f[S.M_T] = _uint(data, "T", required=True)
        f[S.M_TRADE_ID] = _uint(data, "t", required=True)
        f[S.M_PRICE] = _decimal(data, "p")
        f[S.M_QTY] = _decimal(data, "q")
        maker = data.get("m")
        if not isinstance(maker, bool):
            raise BadLine(MISSING_FIELD if maker is None else BAD_FIELD, "'m' (buyer is maker) must be true or false")
        f[S.M_MAKER] = int(maker)
    else:
        _require_symbol(parsed)
        f[S.M_E] = _uint(data, "E")
        f[S.M_T] = _uint(data, "T")
        f[S.M_LAST_ID] = _uint(data, "u", required=True)
        f[S.M_BID_PX] = _decimal(data, "b")
        f[S.M_BID_SZ] = _decimal(data, "B")
        f[S.M_ASK_PX] = _decimal(data, "a")
        f[S.M_ASK_SZ] = _decimal(data, "A")
    return parsed


def _stream_kind(stream: str) -> int:
    _, at, rest = stream.partition("@")
    if not at:
        return S.K_OTHER
    head = rest.split("@", 1)[0]
    if head == "depth":
        return S.K_DEPTH
    if rest == "trade":
        return S.K_TRADE
    if rest == "bookTicker":
        return S.K_QUOTE
    return S.K_OTHER


def _require_symbol(parsed: ParsedLine) -> None:
    if parsed.symbol is None:
        raise BadLine(MISSING_FIELD, f"{_STREAM_NAMES[parsed.kind]} message without 's' (symbol)")


def _uint(data: dict, key: str, required: bool = False) -> int:
    if key not in data:
        if required:
            raise BadLine(MISSING_FIELD, f"missing '{key}'")
        return S.MISSING
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT64_MAX:
        raise BadLine(BAD_FIELD, f"'{key}' must be a non-negative integer, got {value!r}")
    return value


def _decimal(data: dict, key: str) -> int:
    if key not in data:
        raise BadLine(MISSING_FIELD, f"missing '{key}'")
    return decimal_to_units(data[key], f"'{key}'")


def _levels_in_order(data: dict, parsed: ParsedLine, keys: tuple[str, str]) -> None:
    for key in keys:
        if key not in data:
            raise BadLine(MISSING_FIELD, f"missing '{key}' (price levels)")
    for key, value in data.items():  # in the message's own order, as the scanner writes them
        if key not in keys:
            continue
        if not isinstance(value, list):
            raise BadLine(BAD_FIELD, f"'{key}' must be a list of [price, quantity]")
        side = 1 if key == keys[0] else -1
        for level in value:
            if not isinstance(level, list) or len(level) != 2:
                raise BadLine(BAD_FIELD, f"'{key}' level {level!r} is not a [price, quantity] pair")
            parsed.levels.append((side, decimal_to_units(level[0], f"{key} price"), decimal_to_units(level[1], f"{key} quantity")))
