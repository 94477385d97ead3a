"""Instrument id → symbol, from the DBN metadata's symbology mappings and SymbolMappingMsg records.

Rules, in order:

1. A ``SymbolMappingMsg`` seen earlier in the stream (live captures) maps its ``instrument_id`` to its
   ``stype_out_symbol`` — Databento's raw symbol — for every later record.
2. The metadata mappings (historical files): each input symbol maps to instrument ids over date intervals
   ``[start_date, end_date)``. The symbol is the input symbol: the raw symbol for ``stype_in: raw_symbol``
   (the usual case), the continuous symbol (``ES.c.0``) for ``continuous``. An id that maps to one symbol
   everywhere in the file resolves to it at any time; an id that maps to several symbols (ids that a venue
   reuses from day to day) resolves by the UTC date of the record's ``ts_recv`` (``ts_event`` for bars).
   Mappings from ``parent`` symbols are not used: a parent (``ES.FUT``) names many instruments.
3. Otherwise the symbol is the instrument id as a string.
"""

import datetime as dt

import numpy as np

_DAY_NS = 86_400_000_000_000
_EPOCH = dt.date(1970, 1, 1)


def _day(date: dt.date) -> int:
    return (date - _EPOCH).days


class SymbolResolver:
    """Map instrument ids to symbol codes (indexes into ``symbols``) for whole arrays at once."""

    def __init__(self, metadata):
        self.symbols: list[str] = []
        self._codes: dict[str, int] = {}
        self._override: dict[int, int] = {}  # from SymbolMappingMsg
        # instrument id → (start days, end days, codes) sorted by start, or a single code
        self._intervals: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._single: dict[int, int] = {}
        self._load_metadata(metadata)

    def code(self, symbol: str) -> int:
        found = self._codes.get(symbol)
        if found is None:
            found = self._codes[symbol] = len(self.symbols)
            self.symbols.append(symbol)
        return found

    def metadata_symbols(self) -> list[str]:
        """The symbols the metadata maps to (in the order the metadata lists them)."""
        return list(self.symbols)

    def _load_metadata(self, metadata) -> None:
        stype_in = str(metadata.stype_in) if metadata.stype_in is not None else None
        stype_out = str(metadata.stype_out)
        if stype_out != "instrument_id" or stype_in in ("parent", "instrument_id"):
            return
        spans: dict[int, list[tuple[int, int, int]]] = {}
        for symbol in metadata.symbols:  # codes in the order the request listed the symbols
            if symbol in metadata.mappings:
                self.code(symbol)
        for symbol, intervals in metadata.mappings.items():
            code = self.code(symbol)
            for interval in intervals:
                target = interval["symbol"]
                if not target or not target.isdigit():
                    continue
                spans.setdefault(int(target), []).append(
                    (_day(interval["start_date"]), _day(interval["end_date"]), code)
                )
        for instrument_id, items in spans.items():
            codes = {c for _, _, c in items}
            if len(codes) == 1:
                self._single[instrument_id] = items[0][2]
            else:
                items.sort()
                starts, ends, codes_ = (np.array(column, dtype=np.int64) for column in zip(*items))
                self._intervals[instrument_id] = (starts, ends, codes_)

    def add_mapping_records(self, instrument_ids: np.ndarray, raw_symbols: list[str]) -> None:
        """Take the mappings of SymbolMappingMsg records (raw symbol per instrument id), in stream order."""
        for instrument_id, symbol in zip(instrument_ids.tolist(), raw_symbols):
            if symbol:
                self._override[int(instrument_id)] = self.code(symbol)

    def resolve(self, instrument_ids: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
        """Return one symbol code (int32) per record; ``ts_ns`` dates ids that map to several symbols."""
        if len(instrument_ids) and (instrument_ids == instrument_ids[0]).all():  # one instrument: no sort
            unique, inverse = instrument_ids[:1], np.zeros(len(instrument_ids), dtype=np.intp)
        else:
            unique, inverse = np.unique(instrument_ids, return_inverse=True)
        per_unique = np.empty(len(unique), dtype=np.int32)
        dated: list[int] = []
        for index, instrument_id in enumerate(unique.tolist()):
            code = self._override.get(instrument_id)
            if code is None:
                code = self._single.get(instrument_id)
            if code is None and instrument_id in self._intervals:
                dated.append(index)
                code = -1
            if code is None:
                code = self.code(str(instrument_id))
            per_unique[index] = code
        codes = per_unique[inverse]
        for index in dated:
            instrument_id = int(unique[index])
            starts, ends, interval_codes = self._intervals[instrument_id]
            rows = np.flatnonzero(inverse == index)
            days = ts_ns[rows].astype(np.int64) // _DAY_NS
            slot = np.searchsorted(starts, days, side="right") - 1
            inside = (slot >= 0) & (days < ends[np.maximum(slot, 0)])
            fallback = self.code(str(instrument_id))
            codes[rows] = np.where(inside, interval_codes[np.maximum(slot, 0)], fallback)
        return codes
