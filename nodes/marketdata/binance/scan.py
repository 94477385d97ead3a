"""Scan capture lines into numbers in one compiled pass: the fast path of the Binance normalizer.

A capture line is ``<local receive ts, ns> <one JSON message as received>``. ``scan_lines`` walks the bytes
of a block of lines once (numba, no Python object per line or per level) and writes one row of int64 fields
per line (``M_*`` columns of ``messages``) and one row per price level (``L_*`` columns of ``levels``).

It is a strict JSON reader (RFC 8259 grammar, UTF-8 checked) that understands exactly the shapes Binance
sends and refuses everything else: a line it does not accept gets ``M_STATUS = NEEDS_REFERENCE`` and is
handed to the reference parser (``reference.py``, orjson), which either reads it (same numbers) or says why
the line is bad. So the fast path never decides that a line is bad; it only decides that it is plainly good.
Strings with escapes, numbers where strings were expected, unexpected level shapes, duplicate level keys:
all go to the reference parser.

Decimal strings (prices, quantities) become exact int64 in 1e-9 units by digit arithmetic, never through a
float: ``"61773.6"`` → ``61_773_600_000_000``. More than 9 decimal places (unless the extra digits are
zeros), a sign, an exponent or a value above int64 (9,223,372,036.854775807) is refused.
"""

import numpy as np

from nodes.marketdata.binance._jit import njit

MISSING = np.iinfo(np.int64).min

# messages[:, M_*]
M_STATUS = 0  # OK or NEEDS_REFERENCE
M_KIND = 1  # K_* below
M_TS_RECV = 2
M_E = 3  # "E" event time, ms (MISSING when absent)
M_T = 4  # "T" trade / transaction time, ms
M_FIRST_ID = 5  # "U"
M_LAST_ID = 6  # "u" (depth and bookTicker) or "lastUpdateId" (snapshot)
M_PREV_ID = 7  # "pu" (futures depth)
M_TRADE_ID = 8  # "t"
M_PRICE = 9  # trade "p"
M_QTY = 10  # trade "q"
M_MAKER = 11  # trade "m": 1 buyer is maker, 0 not
M_BID_PX = 12  # bookTicker "b"
M_BID_SZ = 13  # "B"
M_ASK_PX = 14  # "a"
M_ASK_SZ = 15  # "A"
M_SYMBOL = 16  # index into the symbol table, -1 when the message names none
M_STREAM = 17  # K_* read from the "stream" name (0 when absent)
M_EVENT = 18  # K_* read from "e" (0 when absent)
M_LEVEL_START = 19  # first row of this message in ``levels``
M_LEVEL_COUNT = 20
M_LEVEL_KEYS = 21  # bits: 1 "b" array, 2 "a" array, 4 "bids", 8 "asks"
M_SNAPSHOT_ID = 22  # "lastUpdateId"
M_HASH = 23  # identity of the message's content (for dedup), set by ``message_hashes``
N_FIELDS = 24

# levels[:, L_*]
L_SIDE = 0  # 1 bid, -1 ask
L_PRICE = 1
L_SIZE = 2
N_LEVEL_FIELDS = 3

OK = 0
NEEDS_REFERENCE = 1

K_NONE = 0
K_DEPTH = 1
K_TRADE = 2
K_QUOTE = 3
K_SNAPSHOT = 4
K_OTHER = 5  # a stream or event type this normalizer does not read (aggTrade, kline, markPrice, ...)

B_BIDS_ARRAY = 1
B_ASKS_ARRAY = 2
B_SNAP_BIDS = 4
B_SNAP_ASKS = 8

MAX_SYMBOL_BYTES = 32
MAX_DEPTH = 64


def _word(text: str) -> int:
    """Up to 8 ASCII bytes as a little-endian integer, to compare names as one or two numbers."""
    return int.from_bytes(text.encode()[:8], "little")


# names as (length, first 8 bytes, bytes 8..15): compared as integers, no array constants in the loop
_N_DEPTH = (5, _word("depth"), 0)
_N_DEPTH_UPDATE = (11, _word("depthUpd"), _word("ate"))
_N_TRADE = (5, _word("trade"), 0)
_N_BOOK_TICKER = (10, _word("bookTick"), _word("er"))
_N_DATA = (4, _word("data"), 0)
_N_STREAM = (6, _word("stream"), 0)
_N_SYMBOL = (6, _word("symbol"), 0)
_N_LAST_UPDATE_ID = (12, _word("lastUpda"), _word("teId"))
_N_BIDS = (4, _word("bids"), 0)
_N_ASKS = (4, _word("asks"), 0)
_N_PU = (2, _word("pu"), 0)

# bytes that may appear in a JSON string as they are: printable ASCII except '"' and '\\'
_PLAIN = np.zeros(256, dtype=np.bool_)
_PLAIN[0x20:0x80] = True
_PLAIN[ord('"')] = False
_PLAIN[ord("\\")] = False

_POW10 = np.array([10**k for k in range(10)], dtype=np.int64)

_NEWLINE = 10
_QUOTE = 34  # "
_BACKSLASH = 92
_COLON = 58
_COMMA = 44
_LBRACE = 123
_RBRACE = 125
_LBRACKET = 91
_RBRACKET = 93
_SPACE = 32
_ZERO = 48
_NINE = 57
_DOT = 46
_MINUS = 45
_PLUS = 43


@njit(cache=True, nogil=True)
def _bytes_word(b, start, n):
    w = 0
    for k in range(min(n, 8)):
        w |= np.int64(b[start + k]) << (8 * k)
    return w


@njit(cache=True, nogil=True)
def _eq(b, start, stop, name):
    """Whether ``b[start:stop]`` is the name ``(length, word0, word1)``."""
    n = stop - start
    if n != name[0]:
        return False
    if _bytes_word(b, start, n) != name[1]:
        return False
    if n > 8:
        return _bytes_word(b, start + 8, n - 8) == name[2]
    return True


@njit(cache=True, nogil=True)
def _skip_ws(b, i, end):
    """Skip JSON whitespace except the newline: a capture line's JSON never spans lines."""
    while i < end:
        c = b[i]
        if c == 32 or c == 9 or c == 13:
            i += 1
        else:
            break
    return i


@njit(cache=True, nogil=True)
def _string_end(b, i, end):
    """``b[i]`` is an opening quote: return the index after the closing quote, -1 if malformed, -2 if escaped."""
    i += 1
    while i < end:
        c = b[i]
        if _PLAIN[c]:
            i += 1
            continue
        if c == _QUOTE:
            return i + 1
        if c == _BACKSLASH:
            return -2
        if c < 0x80:
            return -1  # a control character
        # UTF-8: reject what a strict decoder rejects (overlongs, surrogates, > U+10FFFF, bad continuations)
        if 0xC2 <= c <= 0xDF:
            n = 1
            lo, hi = 0x80, 0xBF
        elif c == 0xE0:
            n = 2
            lo, hi = 0xA0, 0xBF
        elif c == 0xED:
            n = 2
            lo, hi = 0x80, 0x9F
        elif 0xE1 <= c <= 0xEF:
            n = 2
            lo, hi = 0x80, 0xBF
        elif c == 0xF0:
            n = 3
            lo, hi = 0x90, 0xBF
        elif c == 0xF4:
            n = 3
            lo, hi = 0x80, 0x8F
        elif 0xF1 <= c <= 0xF3:
            n = 3
            lo, hi = 0x80, 0xBF
        else:
            return -1
        if i + n >= end:
            return -1
        if not (lo <= b[i + 1] <= hi):
            return -1
        for k in range(2, n + 1):
            if not (0x80 <= b[i + k] <= 0xBF):
                return -1
        i += n + 1
    return -1


@njit(cache=True, nogil=True)
def _number_end(b, i, end):
    """Return the index after a JSON number starting at ``i``, or -1."""
    if i < end and b[i] == _MINUS:
        i += 1
    if i >= end:
        return -1
    if b[i] == _ZERO:
        i += 1
    elif 49 <= b[i] <= _NINE:
        while i < end and _ZERO <= b[i] <= _NINE:
            i += 1
    else:
        return -1
    if i < end and b[i] == _DOT:
        i += 1
        start = i
        while i < end and _ZERO <= b[i] <= _NINE:
            i += 1
        if i == start:
            return -1
    if i < end and (b[i] == 101 or b[i] == 69):  # e E
        i += 1
        if i < end and (b[i] == _PLUS or b[i] == _MINUS):
            i += 1
        start = i
        while i < end and _ZERO <= b[i] <= _NINE:
            i += 1
        if i == start:
            return -1
    return i


@njit(cache=True, nogil=True)
def _literal_end(b, i, end):
    """true / false / null at ``i``: index after it, or -1."""
    c = b[i]
    if c == 116 and i + 4 <= end and b[i + 1] == 114 and b[i + 2] == 117 and b[i + 3] == 101:
        return i + 4
    if c == 102 and i + 5 <= end and b[i + 1] == 97 and b[i + 2] == 108 and b[i + 3] == 115 and b[i + 4] == 101:
        return i + 5
    if c == 110 and i + 4 <= end and b[i + 1] == 117 and b[i + 2] == 108 and b[i + 3] == 108:
        return i + 4
    return -1


@njit(cache=True, nogil=True)
def _skip_value(b, i, end, stack):
    """Validate and skip any JSON value at ``i`` (after whitespace); return the index after it, or < 0."""
    sp = 0
    while True:
        # expect a value
        i = _skip_ws(b, i, end)
        if i >= end:
            return -1
        c = b[i]
        if c == _LBRACE or c == _LBRACKET:
            closing = _RBRACE if c == _LBRACE else _RBRACKET
            i = _skip_ws(b, i + 1, end)
            if i < end and b[i] == closing:
                i += 1
            else:
                if sp >= MAX_DEPTH:
                    return -1
                stack[sp] = c
                sp += 1
                if c == _LBRACE:
                    i = _key_then_colon(b, i, end)
                    if i < 0:
                        return i
                continue
        elif c == _QUOTE:
            i = _string_end(b, i, end)
            if i < 0:
                return i
        elif c == _MINUS or _ZERO <= c <= _NINE:
            i = _number_end(b, i, end)
            if i < 0:
                return -1
        else:
            i = _literal_end(b, i, end)
            if i < 0:
                return -1
        # after a value: close containers or move to the next element
        while True:
            if sp == 0:
                return i
            i = _skip_ws(b, i, end)
            if i >= end:
                return -1
            top = stack[sp - 1]
            c = b[i]
            if c == _COMMA:
                i += 1
                if top == _LBRACE:
                    i = _key_then_colon(b, _skip_ws(b, i, end), end)
                    if i < 0:
                        return i
                break
            if (c == _RBRACE and top == _LBRACE) or (c == _RBRACKET and top == _LBRACKET):
                sp -= 1
                i += 1
                continue
            return -1


@njit(cache=True, nogil=True)
def _key_then_colon(b, i, end):
    if i >= end or b[i] != _QUOTE:
        return -1
    i = _string_end(b, i, end)
    if i < 0:
        return i
    i = _skip_ws(b, i, end)
    if i >= end or b[i] != _COLON:
        return -1
    return i + 1


@njit(cache=True, nogil=True)
def parse_decimal(b, start, stop):
    """Exact int64 in 1e-9 units of the decimal text ``b[start:stop]`` (``\\d+(\\.\\d+)?``); MISSING if refused."""
    i = start
    whole = 0
    digits = 0
    while i < stop and _ZERO <= b[i] <= _NINE:
        if whole > 9_223_372_036:
            return MISSING
        whole = whole * 10 + (b[i] - _ZERO)
        digits += 1
        i += 1
    if digits == 0 or whole > 9_223_372_036:
        return MISSING
    frac = 0
    if i < stop:
        if b[i] != _DOT:
            return MISSING
        i += 1
        places = 0
        while i < stop and _ZERO <= b[i] <= _NINE:
            if places < 9:
                frac = frac * 10 + (b[i] - _ZERO)
            elif b[i] != _ZERO:
                return MISSING  # more precision than 1e-9: refuse rather than round
            places += 1
            i += 1
        if places == 0 or i != stop:
            return MISSING
        while places < 9:
            frac *= 10
            places += 1
    if whole == 9_223_372_036 and frac > 854_775_807:
        return MISSING
    return whole * 1_000_000_000 + frac


@njit(cache=True, nogil=True)
def _parse_uint(b, i, end):
    """A non-negative JSON integer at ``i`` (no fraction or exponent, fits int64): (value, next) or (MISSING, -1).

    One pass: the digits are validated and accumulated together.
    """
    value = 0
    start = i
    while i < end:
        c = b[i]
        if c < _ZERO or c > _NINE:
            break
        d = c - _ZERO
        if value > (9_223_372_036_854_775_807 - d) // 10:
            return MISSING, -1
        value = value * 10 + d
        i += 1
    n = i - start
    if n == 0 or (n > 1 and b[start] == _ZERO):
        return MISSING, -1
    if i < end and (b[i] == _DOT or b[i] == 101 or b[i] == 69):  # a fraction or exponent: not an integer
        return MISSING, -1
    return value, i


@njit(cache=True, nogil=True)
def _decimal_string(b, i, end):
    """A JSON string holding a decimal at ``i``: (value in 1e-9 units, next) or (MISSING, -1).

    One pass over the characters: only digits, one '.', and the closing quote are accepted (anything else,
    escapes included, is refused and left to the reference parser).
    """
    if i >= end or b[i] != _QUOTE:
        return MISSING, -1
    i += 1
    whole = 0
    digits = 0
    while i < end:
        c = b[i]
        if c < _ZERO or c > _NINE:
            break
        if whole > 9_223_372_036:
            return MISSING, -1
        whole = whole * 10 + (c - _ZERO)
        digits += 1
        i += 1
    if digits == 0 or whole > 9_223_372_036 or i >= end:
        return MISSING, -1
    frac = 0
    if b[i] == _DOT:
        i += 1
        places = 0
        while i < end:
            c = b[i]
            if c < _ZERO or c > _NINE:
                break
            if places < 9:
                frac = frac * 10 + (c - _ZERO)
            elif c != _ZERO:
                return MISSING, -1  # more precision than 1e-9: refuse rather than round
            places += 1
            i += 1
        if places == 0 or i >= end:
            return MISSING, -1
        if places < 9:
            frac *= _POW10[9 - places]
    if b[i] != _QUOTE:
        return MISSING, -1
    if whole == 9_223_372_036 and frac > 854_775_807:
        return MISSING, -1
    return whole * 1_000_000_000 + frac, i + 1


@njit(cache=True, nogil=True, inline="always")
def _levels(b, i, end, side, levels, n_levels):
    """Parse ``[["px","qty"], ...]`` at ``i`` into ``levels``; return (next index, rows written) or (-1, 0)."""
    if b[i] != _LBRACKET:
        return -1, 0
    i = _skip_ws(b, i + 1, end)
    written = 0
    if i < end and b[i] == _RBRACKET:
        return i + 1, 0
    cap = levels.shape[0]
    while True:
        if i >= end or b[i] != _LBRACKET:
            return -1, 0
        price, i = _decimal_string(b, _skip_ws(b, i + 1, end), end)
        if i < 0:
            return -1, 0
        i = _skip_ws(b, i, end)
        if i >= end or b[i] != _COMMA:
            return -1, 0
        size, i = _decimal_string(b, _skip_ws(b, i + 1, end), end)
        if i < 0:
            return -1, 0
        i = _skip_ws(b, i, end)
        if i >= end or b[i] != _RBRACKET:
            return -1, 0
        row = n_levels + written
        if row >= cap:
            return -1, 0
        levels[row, L_SIDE] = side
        levels[row, L_PRICE] = price
        levels[row, L_SIZE] = size
        written += 1
        i = _skip_ws(b, i + 1, end)
        if i >= end:
            return -1, 0
        if b[i] == _COMMA:
            i = _skip_ws(b, i + 1, end)
            continue
        if b[i] == _RBRACKET:
            return i + 1, written
        return -1, 0


@njit(cache=True, nogil=True)
def _kind_of_event(b, start, stop):
    """K_* of an ``"e"`` event type."""
    if _eq(b, start, stop, _N_DEPTH_UPDATE):
        return K_DEPTH
    if _eq(b, start, stop, _N_TRADE):
        return K_TRADE
    if _eq(b, start, stop, _N_BOOK_TICKER):
        return K_QUOTE
    return K_OTHER


@njit(cache=True, nogil=True)
def _stream_kind(b, start, stop):
    """K_* of a stream name ``<symbol>@depth[@<speed>]``, ``<symbol>@trade``, ``<symbol>@bookTicker``."""
    k = start
    while k < stop and b[k] != 64:
        k += 1
    if k >= stop:
        return K_OTHER
    k += 1
    j = k
    while j < stop and b[j] != 64:
        j += 1
    if _eq(b, k, j, _N_DEPTH):
        return K_DEPTH  # "depth", "depth@100ms", "depth@0ms"; depth5/10/20 (partial books) are another shape
    if j == stop and _eq(b, k, j, _N_TRADE):
        return K_TRADE
    if j == stop and _eq(b, k, j, _N_BOOK_TICKER):
        return K_QUOTE
    return K_OTHER


@njit(cache=True, nogil=True)
def symbol_id(b, start, stop, table, lengths, count):
    """Index of symbol ``b[start:stop]`` in ``table`` (added when new); -1 when too long or the table is full."""
    n = stop - start
    if n <= 0 or n > MAX_SYMBOL_BYTES:
        return -1
    for s in range(count[0]):
        if lengths[s] != n:
            continue
        same = True
        for k in range(n):
            if table[s, k] != b[start + k]:
                same = False
                break
        if same:
            return s
    s = count[0]
    if s >= table.shape[0]:
        return -1
    for k in range(n):
        table[s, k] = b[start + k]
    lengths[s] = n
    count[0] = s + 1
    return s


# keys the scanner reads, as codes; each kind of value is parsed at one call site (small code compiles fast).
# The per-line functions with one call site each (_read_line, _top_object, _key_code, _field, _levels) are
# inlined by numba (``inline="always"``): a call passing a dozen arrays costs more than the parse of a short
# bookTicker line (measured 30 → 24 ms on the futures capture), and one call site means no code is duplicated.
_KEY_OTHER, _KEY_DATA, _KEY_STREAM = 0, 1, 2
_KEY_UINT = 10  # E T U u t pu lastUpdateId: _KEY_UINT + column
_KEY_DECIMAL = 100  # p q B A: _KEY_DECIMAL + column
_KEY_B, _KEY_A, _KEY_BIDS, _KEY_ASKS, _KEY_M, _KEY_S, _KEY_E, _KEY_SYMBOL = 200, 201, 202, 203, 204, 205, 206, 207


@njit(cache=True, nogil=True, inline="always")
def _key_code(b, ks, ke):
    n = ke - ks
    if n == 1:
        c = b[ks]
        if c == 69:
            return _KEY_UINT + M_E
        if c == 84:
            return _KEY_UINT + M_T
        if c == 85:
            return _KEY_UINT + M_FIRST_ID
        if c == 117:
            return _KEY_UINT + M_LAST_ID
        if c == 116:
            return _KEY_UINT + M_TRADE_ID
        if c == 112:
            return _KEY_DECIMAL + M_PRICE
        if c == 113:
            return _KEY_DECIMAL + M_QTY
        if c == 66:
            return _KEY_DECIMAL + M_BID_SZ
        if c == 65:
            return _KEY_DECIMAL + M_ASK_SZ
        if c == 98:
            return _KEY_B
        if c == 97:
            return _KEY_A
        if c == 109:
            return _KEY_M
        if c == 115:
            return _KEY_S
        if c == 101:
            return _KEY_E
        return _KEY_OTHER
    if _eq(b, ks, ke, _N_PU):
        return _KEY_UINT + M_PREV_ID
    if _eq(b, ks, ke, _N_DATA):
        return _KEY_DATA
    if _eq(b, ks, ke, _N_STREAM):
        return _KEY_STREAM
    if _eq(b, ks, ke, _N_BIDS):
        return _KEY_BIDS
    if _eq(b, ks, ke, _N_ASKS):
        return _KEY_ASKS
    if _eq(b, ks, ke, _N_SYMBOL):
        return _KEY_SYMBOL
    if _eq(b, ks, ke, _N_LAST_UPDATE_ID):
        return _KEY_UINT + M_SNAPSHOT_ID
    return _KEY_OTHER


@njit(cache=True, nogil=True, inline="always")
def _field(b, code, i, end, row, msgs, levels, n_levels, sym_table, sym_lengths, sym_count, stack):
    """Read the value of a key with ``code`` at ``i``; return (next index, levels written) or (-1, 0) to refuse."""
    c = b[i]
    if _KEY_UINT <= code < _KEY_DECIMAL:
        value, nxt = _parse_uint(b, i, end)
        if nxt < 0:
            return -1, 0
        msgs[row, code - _KEY_UINT] = value
        return nxt, 0
    if (_KEY_DECIMAL <= code < _KEY_B) or ((code == _KEY_B or code == _KEY_A) and c == _QUOTE):
        value, nxt = _decimal_string(b, i, end)
        if nxt < 0:
            return -1, 0
        if code == _KEY_B:
            msgs[row, M_BID_PX] = value
        elif code == _KEY_A:
            msgs[row, M_ASK_PX] = value
        else:
            msgs[row, code - _KEY_DECIMAL] = value
        return nxt, 0
    if _KEY_B <= code <= _KEY_ASKS:
        bit = B_BIDS_ARRAY if code == _KEY_B else B_ASKS_ARRAY if code == _KEY_A else B_SNAP_BIDS if code == _KEY_BIDS else B_SNAP_ASKS
        if msgs[row, M_LEVEL_KEYS] & bit:
            return -1, 0
        msgs[row, M_LEVEL_KEYS] |= bit
        return _levels(b, i, end, 1 if (code == _KEY_B or code == _KEY_BIDS) else -1, levels, n_levels)
    if code == _KEY_M:
        nxt = _literal_end(b, i, end)
        if nxt == i + 4 and c == 116:
            msgs[row, M_MAKER] = 1
            return nxt, 0
        if nxt == i + 5 and c == 102:
            msgs[row, M_MAKER] = 0
            return nxt, 0
        return -1, 0
    if code == _KEY_S or code == _KEY_E or code == _KEY_SYMBOL or code == _KEY_STREAM:
        if c != _QUOTE:
            return -1, 0
        nxt = _string_end(b, i, end)
        if nxt < 0:
            return -1, 0
        if code == _KEY_E:
            msgs[row, M_EVENT] = _kind_of_event(b, i + 1, nxt - 1)
        elif code == _KEY_STREAM:
            msgs[row, M_STREAM] = _stream_kind(b, i + 1, nxt - 1)
        else:
            sym = symbol_id(b, i + 1, nxt - 1, sym_table, sym_lengths, sym_count)
            if sym < 0:
                return -1, 0
            msgs[row, M_SYMBOL] = sym
        return nxt, 0
    nxt = _skip_value(b, i, end, stack)
    if nxt < 0:
        return -1, 0
    return nxt, 0


@njit(cache=True, nogil=True, inline="always")
def _top_object(b, i, end, row, msgs, levels, n_levels, sym_table, sym_lengths, sym_count, stack):
    """Read a line's object: a combined-stream envelope ``{"stream": ..., "data": {...}}`` or a bare payload.

    The envelope's ``data`` object is read by the same loop, one level down (no recursion), into the same row.
    With ``data`` present, a key other than ``stream`` at the top sends the line to the reference parser.
    Return (next index, levels written) or (-1, 0).
    """
    if i >= end or b[i] != _LBRACE:
        return -1, 0
    written = 0
    depth = 0  # 1 inside "data"
    seen_data = False
    other_keys = 0
    i = _skip_ws(b, i + 1, end)
    if i < end and b[i] == _RBRACE:
        return i + 1, 0
    while True:
        if i >= end or b[i] != _QUOTE:
            return -1, 0
        ke = _string_end(b, i, end)
        if ke < 0:
            return -1, 0
        ks = i + 1
        ke -= 1
        i = _skip_ws(b, ke + 1, end)
        if i >= end or b[i] != _COLON:
            return -1, 0
        i = _skip_ws(b, i + 1, end)
        if i >= end:
            return -1, 0
        code = _key_code(b, ks, ke)
        if depth == 0 and code != _KEY_STREAM:
            other_keys += 1
        if depth == 0 and code == _KEY_DATA:
            other_keys -= 1
            if b[i] != _LBRACE or seen_data:
                return -1, 0
            seen_data = True
            i = _skip_ws(b, i + 1, end)
            if i < end and b[i] == _RBRACE:
                i += 1
            else:
                depth = 1
                continue
        else:
            i, w = _field(b, code, i, end, row, msgs, levels, n_levels + written, sym_table, sym_lengths, sym_count,
                          stack)
            if i < 0:
                return -1, 0
            written += w
        # after a value: the next key, or the end of "data", or the end of the line's object
        while True:
            i = _skip_ws(b, i, end)
            if i >= end:
                return -1, 0
            if b[i] == _COMMA:
                i = _skip_ws(b, i + 1, end)
                break
            if b[i] != _RBRACE:
                return -1, 0
            if depth == 1:
                depth = 0
                i += 1
                continue
            if seen_data and other_keys:
                return -1, 0
            return i + 1, written


@njit(cache=True, nogil=True)
def _classify(msgs, row):
    """Set M_KIND from what the line held; refuse (NEEDS_REFERENCE) anything incomplete or contradictory."""
    keys = msgs[row, M_LEVEL_KEYS]
    if msgs[row, M_SNAPSHOT_ID] != MISSING:
        if keys != (B_SNAP_BIDS | B_SNAP_ASKS) or msgs[row, M_EVENT] != K_NONE or msgs[row, M_STREAM] != K_NONE:
            return NEEDS_REFERENCE
        msgs[row, M_KIND] = K_SNAPSHOT
        msgs[row, M_LAST_ID] = msgs[row, M_SNAPSHOT_ID]
        return OK
    event = msgs[row, M_EVENT]
    stream = msgs[row, M_STREAM]
    kind = event if event != K_NONE else stream
    if event != K_NONE and stream != K_NONE and event != stream:
        return NEEDS_REFERENCE
    if kind == K_NONE:
        return NEEDS_REFERENCE
    if kind == K_OTHER:
        return NEEDS_REFERENCE  # the reference parser names the unknown stream
    if msgs[row, M_SYMBOL] < 0:
        return NEEDS_REFERENCE
    if kind == K_DEPTH:
        if keys != (B_BIDS_ARRAY | B_ASKS_ARRAY):
            return NEEDS_REFERENCE
        if msgs[row, M_E] == MISSING or msgs[row, M_FIRST_ID] == MISSING or msgs[row, M_LAST_ID] == MISSING:
            return NEEDS_REFERENCE
        if msgs[row, M_BID_PX] != MISSING or msgs[row, M_ASK_PX] != MISSING:
            return NEEDS_REFERENCE
    elif kind == K_TRADE:
        if keys != 0 or msgs[row, M_T] == MISSING or msgs[row, M_TRADE_ID] == MISSING:
            return NEEDS_REFERENCE
        if msgs[row, M_PRICE] == MISSING or msgs[row, M_QTY] == MISSING or msgs[row, M_MAKER] < 0:
            return NEEDS_REFERENCE
    else:  # quote
        if keys != 0 or msgs[row, M_LAST_ID] == MISSING:
            return NEEDS_REFERENCE
        if msgs[row, M_BID_PX] == MISSING or msgs[row, M_BID_SZ] == MISSING:
            return NEEDS_REFERENCE
        if msgs[row, M_ASK_PX] == MISSING or msgs[row, M_ASK_SZ] == MISSING:
            return NEEDS_REFERENCE
    msgs[row, M_KIND] = kind
    return OK


@njit(cache=True, nogil=True)
def scan_lines(b, pos, end, max_lines, starts, stops, msgs, levels, sym_table, sym_lengths, sym_count, stack):
    """Scan the lines of ``b[pos:end]`` (at most ``max_lines``) into ``msgs``, ``levels``, ``starts``/``stops``.

    Lines end at a newline (excluded from ``stops``) or at ``end``; a line is found while it is parsed, and a
    refused line is skipped to its newline, so there is no separate pass to split lines. ``stack`` is scratch
    space for nesting (uint8, at least ``MAX_DEPTH``). A refused line has ``M_STATUS = NEEDS_REFERENCE`` and
    no levels.

    Returns (lines scanned, position after the last one, level rows written).
    """
    # int64 from the start: a literal 0 would make numba compile every callee twice (literal, then int64)
    n_levels = np.int64(0)
    row = np.int64(0)
    while pos < end and row < max_lines:
        for k in range(N_FIELDS):
            msgs[row, k] = MISSING
        msgs[row, M_SYMBOL] = -1
        msgs[row, M_STREAM] = K_NONE
        msgs[row, M_EVENT] = K_NONE
        msgs[row, M_MAKER] = -1
        msgs[row, M_LEVEL_KEYS] = 0
        msgs[row, M_LEVEL_START] = n_levels
        msgs[row, M_LEVEL_COUNT] = 0
        msgs[row, M_KIND] = K_NONE
        msgs[row, M_STATUS] = NEEDS_REFERENCE
        starts[row] = pos
        stop = _read_line(b, pos, end, row, msgs, levels, n_levels, sym_table, sym_lengths, sym_count, stack)
        if stop < 0:  # refused: find the newline
            stop = pos
            while stop < end and b[stop] != _NEWLINE:
                stop += 1
        else:
            msgs[row, M_STATUS] = OK
            n_levels += msgs[row, M_LEVEL_COUNT]
        stops[row] = stop
        pos = stop + 1
        row += 1
    return row, min(pos, end), n_levels


@njit(cache=True, nogil=True, inline="always")
def _read_line(b, i, end, row, msgs, levels, n_levels, sym_table, sym_lengths, sym_count, stack):
    """Parse the line at ``i``: return the index of its newline (or ``end``), or -1 to refuse it."""
    ts = 0
    digits = 0
    while i < end and _ZERO <= b[i] <= _NINE and digits < 19:
        d = b[i] - _ZERO
        if ts > (9_223_372_036_854_775_807 - d) // 10:
            return -1
        ts = ts * 10 + d
        digits += 1
        i += 1
    if digits == 0 or i >= end or b[i] != _SPACE:
        return -1
    msgs[row, M_TS_RECV] = ts
    i = _skip_ws(b, i + 1, end)
    nxt, written = _top_object(b, i, end, row, msgs, levels, n_levels, sym_table, sym_lengths, sym_count, stack)
    if nxt < 0:
        return -1
    nxt = _skip_ws(b, nxt, end)
    if nxt < end and b[nxt] != _NEWLINE:
        return -1
    if _classify(msgs, row) != OK:
        return -1
    msgs[row, M_LEVEL_COUNT] = written
    return nxt


@njit(cache=True, nogil=True)
def message_hashes(msgs, levels):
    """Fill M_HASH with a 64-bit mix of exactly the fields a normalized row is made of, per kind.

    Two messages with equal normalized content get equal hashes whichever parser read them (scanner or
    reference); different content collides with probability about 2^-64 per pair.
    """
    for row in range(msgs.shape[0]):
        kind = msgs[row, M_KIND]
        h = _mix(np.uint64(0x9E3779B97F4A7C15), np.uint64(kind))
        h = _mix(h, np.uint64(msgs[row, M_SYMBOL] + 1))
        h = _mix(h, np.uint64(msgs[row, M_E] & 0x7FFFFFFFFFFFFFFF))
        h = _mix(h, np.uint64(msgs[row, M_T] & 0x7FFFFFFFFFFFFFFF))
        if kind == K_TRADE:
            h = _mix(h, np.uint64(msgs[row, M_TRADE_ID]))
            h = _mix(h, np.uint64(msgs[row, M_PRICE]))
            h = _mix(h, np.uint64(msgs[row, M_QTY]))
            h = _mix(h, np.uint64(msgs[row, M_MAKER] + 1))
        elif kind == K_QUOTE:
            h = _mix(h, np.uint64(msgs[row, M_LAST_ID]))
            h = _mix(h, np.uint64(msgs[row, M_BID_PX]))
            h = _mix(h, np.uint64(msgs[row, M_BID_SZ]))
            h = _mix(h, np.uint64(msgs[row, M_ASK_PX]))
            h = _mix(h, np.uint64(msgs[row, M_ASK_SZ]))
        else:
            h = _mix(h, np.uint64(msgs[row, M_FIRST_ID] & 0x7FFFFFFFFFFFFFFF))
            h = _mix(h, np.uint64(msgs[row, M_LAST_ID] & 0x7FFFFFFFFFFFFFFF))
            h = _mix(h, np.uint64(msgs[row, M_PREV_ID] & 0x7FFFFFFFFFFFFFFF))
            start = msgs[row, M_LEVEL_START]
            count = msgs[row, M_LEVEL_COUNT]
            h = _mix(h, np.uint64(count))
            for r in range(start, start + count):
                h = _mix(h, np.uint64(levels[r, L_PRICE] * 4 + levels[r, L_SIDE] + 1))
                h = _mix(h, np.uint64(levels[r, L_SIZE]))
        h = h >> np.uint64(1)
        msgs[row, M_HASH] = np.int64(h) if h != 0 else 1


@njit(cache=True, nogil=True)
def _mix(h, v):
    h ^= v + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    h *= np.uint64(0xBF58476D1CE4E5B9)
    return h ^ (h >> np.uint64(31))
