"""Write FIX tag=value messages: BodyLength and CheckSum computed, times and decimals in FIX's text forms.

For the sample logs (``data/samples/fix/make_samples.py``), tests and benchmarks. With ``delimiter="|"`` the
CheckSum is the one of the SOH form, as a log written for people shows a wire message.

Example::

    encode_message("FIX.4.4", [(35, "0"), (49, "VENUE"), (56, "ME"), (34, 2), (52, "20240808-23:54:14.123")])
"""

from collections.abc import Iterable

_DAY_NS = 86_400_000_000_000


def encode_message(begin_string: str, fields: Iterable[tuple[int | str, object]], delimiter: str = "\x01") -> bytes:
    """The message ``8=<begin_string> 9=<length> <fields...> 10=<checksum>`` as bytes (latin-1).

    ``fields`` are (tag, value) pairs in order, from MsgType (35) on; values are written with ``str``.

    Raises:
        ValueError: a delimiter other than SOH or ``|``, or a value holding the delimiter.
    """
    if delimiter not in ("\x01", "|"):
        raise ValueError(f"delimiter must be SOH or '|', not {delimiter!r}")
    parts = []
    for tag, value in fields:
        text = str(value)
        if delimiter in text:
            raise ValueError(f"tag {tag}: the value {text!r} holds the delimiter")
        parts.append(f"{tag}={text}{delimiter}")
    body = "".join(parts)
    head = f"8={begin_string}{delimiter}9={len(body.encode('latin-1'))}{delimiter}"
    data = (head + body).encode("latin-1")
    total = sum(data)
    if delimiter == "|":
        total -= data.count(b"|") * (0x7C - 0x01)
    return data + f"10={total % 256:03d}{delimiter}".encode("ascii")


def utc_timestamp_text(ns: int, digits: int = 3) -> str:
    """ns since the epoch → ``YYYYMMDD-HH:MM:SS[.f]`` with ``digits`` (0-9) fraction digits, truncated."""
    day, in_day = divmod(ns, _DAY_NS)
    return f"{date_text(day * _DAY_NS)}-{time_only_text(in_day, digits)}"


def time_only_text(ns_in_day: int, digits: int = 3) -> str:
    """ns since midnight → ``HH:MM:SS[.f]`` with ``digits`` fraction digits, truncated."""
    seconds, fraction = divmod(ns_in_day % _DAY_NS, 1_000_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return text + (f".{fraction:09d}"[: digits + 1] if digits else "")


def date_text(ns: int) -> str:
    """ns since the epoch → the UTC date ``YYYYMMDD``."""
    year, month, day = _civil_from_days(ns // _DAY_NS)
    return f"{year:04d}{month:02d}{day:02d}"


def decimal_text(units: int, scale: int = 1_000_000_000) -> str:
    """An integer amount of 1/``scale`` units as the shortest exact decimal text (``61837630000000`` → ``61837.63``)."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), scale)
    if not fraction:
        return f"{sign}{whole}"
    width = len(str(scale)) - 1
    return f"{sign}{whole}.{fraction:0{width}d}".rstrip("0")


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of days since 1970-01-01 (H. Hinnant's algorithm)."""
    days += 719_468
    era = days // 146_097
    doe = days - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day
