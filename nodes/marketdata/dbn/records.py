"""DBN record layouts: which rtype is which record, its numpy dtype per DBN version, and where it goes.

A DBN record starts with a 16-byte header: ``length`` (u8, the record size in 4-byte words), ``rtype`` (u8),
``publisher_id``, ``instrument_id``, ``ts_event``. Every record of one rtype has one fixed size per DBN
version, so a run of records of one rtype is a numpy structured array over the raw bytes. The dtypes are
databento-dbn's own (``Record._dtypes``, the ones ``DBNStore.to_ndarray`` uses), taken from the package's
``v1``/``v2``/``v3`` modules so that files of older DBN versions are read with their own layout, not upgraded.

``databento_dbn`` is imported lazily: the op registry imports every module under ``nodes``, and a machine
without the package must still be able to list and run the other ops.
"""

from dataclasses import dataclass
from functools import cache

import numpy as np

HEADER_BYTES = 16

# rtype → (layout class name in databento_dbn, what the record is)
_RTYPES: dict[int, tuple[str, str]] = {
    0x00: ("TradeMsg", "trade"),
    0x01: ("MBP1Msg", "mbp1"),
    0x0A: ("MBP10Msg", "mbp10"),
    0x11: ("OHLCVMsg", "ohlcv"),  # deprecated OHLCV rtype: the interval comes from the metadata's schema
    0x20: ("OHLCVMsg", "ohlcv"),
    0x21: ("OHLCVMsg", "ohlcv"),
    0x22: ("OHLCVMsg", "ohlcv"),
    0x23: ("OHLCVMsg", "ohlcv"),
    0x24: ("OHLCVMsg", "ohlcv"),
    0x12: ("StatusMsg", "status"),
    0x13: ("InstrumentDefMsg", "definition"),
    0x14: ("ImbalanceMsg", "imbalance"),
    0x15: ("ErrorMsg", "error"),
    0x16: ("SymbolMappingMsg", "symbol_mapping"),
    0x17: ("SystemMsg", "system"),
    0x18: ("StatMsg", "statistics"),
    0xA0: ("MBOMsg", "mbo"),
    0xB1: ("CMBP1Msg", "mbp1"),
    0xC0: ("CBBOMsg", "bbo"),
    0xC1: ("CBBOMsg", "bbo"),
    0xC2: ("CMBP1Msg", "mbp1"),  # tcbbo: databento-dbn lays it out as CMBP-1
    0xC3: ("BBOMsg", "bbo"),
    0xC4: ("BBOMsg", "bbo"),
    0xC5: ("MBP1Msg", "mbp1"),  # tbbo with its own rtype
}

_NS = {"1s": 1_000_000_000, "1m": 60_000_000_000, "1h": 3_600_000_000_000, "1d": 86_400_000_000_000}
OHLCV_INTERVAL_NS = {0x20: _NS["1s"], 0x21: _NS["1m"], 0x22: _NS["1h"], 0x23: _NS["1d"], 0x24: _NS["1d"]}
SCHEMA_INTERVAL_NS = {
    "ohlcv-1s": _NS["1s"], "ohlcv-1m": _NS["1m"], "ohlcv-1h": _NS["1h"], "ohlcv-1d": _NS["1d"],
    "ohlcv-eod": _NS["1d"],
}

# The DBN versions whose layouts databento-dbn ships (its ``v1``, ``v2``, ``v3`` modules).
SUPPORTED_VERSIONS = (1, 2, 3)


def dbn_module():
    """Import databento_dbn, or say how to install it."""
    try:
        import databento_dbn
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading DBN files needs the databento-dbn package: pip install databento-dbn==0.72.0"
        ) from error
    return databento_dbn


@dataclass(frozen=True)
class RecordLayout:
    """One rtype in one DBN version: its kind (what it normalizes to), numpy dtype and size in bytes."""

    rtype: int
    kind: str
    name: str
    dtype: np.dtype

    @property
    def size(self) -> int:
        return self.dtype.itemsize


@cache
def layout(rtype: int, version: int, ts_out: bool) -> RecordLayout | None:
    """Return the layout of ``rtype`` in DBN ``version`` (``ts_out`` appends the 8-byte send time), or None."""
    known = _RTYPES.get(rtype)
    if known is None:
        return None
    class_name, kind = known
    module = getattr(dbn_module(), f"v{version}")
    fields = list(getattr(module, class_name)._dtypes)
    if ts_out:
        fields.append(("ts_out", "u8"))
    return RecordLayout(rtype, kind, class_name, np.dtype(fields))


def is_known_rtype(rtype: int) -> bool:
    return rtype in _RTYPES
