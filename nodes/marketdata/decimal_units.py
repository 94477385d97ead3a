"""Decimal strings → int64 in 1e-9 units, exactly and vectorised: one compiled pass over Arrow's string buffers.

Used by the decoders whose prices and sizes arrive as text (Tardis CSV, Bybit JSON). The grammar is
``[-]digits[.digits][(e|E)[+|-]digits]``: ``"61773.6"``, ``"0.00002853"``, ``"1e-05"``, ``"-3.5"``. Leading
zeros are fine, and so are zeros past the 9th decimal place (``"1.1234567890000"``). Refused, never rounded:
a value that needs a 10th significant decimal place (``"1.5e-10"``), one beyond int64 in 1e-9 units (above
9223372036.854775807 in magnitude), anything outside the grammar (``"+2"``, ``".5"``, ``" 1"``, ``"1,5"``,
``"nan"``). Null and the empty string are *missing* (CSV writers leave absent values empty), which is not bad.

The kernel never builds a float or a Python object per value: it reads the digits into an int64 mantissa with
an overflow check, drops trailing fractional zeros, and scales by ``10^(9 + exponent - fraction digits)``,
refusing a scale-down that would drop a non-zero digit. Measured: about 70 ns a value with the conversion to
Arrow (the same rules written with polars' regex and string expressions took about 3 µs).

Example::

    values, status = parse_units(pl.Series(["61773.6", "", "1.2.3"]))
    values.tolist(), status.tolist()        # [61773600000000, 0, 0], [OK, MISSING, BAD]
"""

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit

OK, MISSING, BAD = 0, 1, 2
_INT64_MAX = 9_223_372_036_854_775_807
_MAX_EXPONENT = 9999


def parse_units(strings) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``strings`` (a polars Series, a pyarrow array or a list of str/None) into (int64 values, int8 status).

    ``status`` is ``OK``, ``MISSING`` (null or empty) or ``BAD`` (see the module docstring); ``values`` is 0
    where the status is not ``OK``.
    """
    array = _large_strings(strings)
    n = len(array)
    values = np.zeros(n, np.int64)
    status = np.zeros(n, np.int8)
    if n == 0:
        return values, status
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None and data_buffer.size else np.zeros(1, np.uint8)
    valid = (~np.asarray(array.is_null(), dtype=bool)) if array.null_count else np.ones(n, bool)
    _parse(data, offsets, valid, values, status)
    return values, status


def units_series(strings: pl.Series, name: str | None = None) -> tuple[pl.Series, pl.Series]:
    """``parse_units`` as polars: (Int64 values, null where not OK; Boolean ``bad``)."""
    values, status = parse_units(strings)
    column = pl.Series(name or strings.name, values, dtype=pl.Int64)
    column = column.scatter(np.flatnonzero(status != OK), None) if (status != OK).any() else column
    return column, pl.Series(f"{name or strings.name}_bad", status == BAD)


def _large_strings(strings) -> pa.LargeStringArray:
    if isinstance(strings, pl.Series):
        array = strings.cast(pl.String).to_arrow(compat_level=pl.CompatLevel.oldest())
    elif isinstance(strings, (pa.Array, pa.ChunkedArray)):
        array = strings
    else:
        array = pa.array(strings, type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    return array


@njit(cache=True, nogil=True)
def _parse(data, offsets, valid, values, status):
    for i in range(len(values)):
        start = offsets[i]
        end = offsets[i + 1]
        if not valid[i] or start == end:
            status[i] = MISSING
            continue
        value, ok = _one(data, start, end)
        if ok:
            values[i] = value
        else:
            status[i] = BAD


@njit(cache=True, nogil=True, inline="always")
def _one(data, start, end):
    k = start
    negative = False
    if data[k] == 45:  # '-'
        negative = True
        k += 1
    mantissa = 0
    fraction_digits = 0
    pending_zeros = 0  # fractional zeros not folded in yet: dropped if nothing but zeros follows
    whole_digits = 0
    while k < end and 48 <= data[k] <= 57:
        d = data[k] - 48
        if mantissa > (_INT64_MAX - d) // 10:
            return 0, False
        mantissa = mantissa * 10 + d
        whole_digits += 1
        k += 1
    if whole_digits == 0:
        return 0, False
    if k < end and data[k] == 46:  # '.'
        k += 1
        digits = 0
        while k < end and 48 <= data[k] <= 57:
            d = data[k] - 48
            digits += 1
            k += 1
            if d == 0:
                pending_zeros += 1
                continue
            for _ in range(pending_zeros + 1):
                if mantissa > _INT64_MAX // 10:
                    return 0, False
                mantissa = mantissa * 10
            if mantissa > _INT64_MAX - d:
                return 0, False
            mantissa += d
            fraction_digits += pending_zeros + 1
            pending_zeros = 0
        if digits == 0:
            return 0, False
    exponent = 0
    if k < end and (data[k] == 101 or data[k] == 69):  # 'e' or 'E'
        k += 1
        exponent_negative = False
        if k < end and (data[k] == 43 or data[k] == 45):
            exponent_negative = data[k] == 45
            k += 1
        digits = 0
        while k < end and 48 <= data[k] <= 57:
            exponent = exponent * 10 + (data[k] - 48)
            digits += 1
            k += 1
            if exponent > _MAX_EXPONENT:
                return 0, False
        if digits == 0:
            return 0, False
        if exponent_negative:
            exponent = -exponent
    if k != end:
        return 0, False
    shift = 9 + exponent - fraction_digits
    if mantissa != 0:
        if shift >= 0:
            for _ in range(shift):
                if mantissa > _INT64_MAX // 10:
                    return 0, False
                mantissa *= 10
        else:
            if -shift > 18:
                return 0, False
            scale = 1
            for _ in range(-shift):
                scale *= 10
            if mantissa % scale != 0:
                return 0, False
            mantissa //= scale
    return (-mantissa if negative else mantissa), True
