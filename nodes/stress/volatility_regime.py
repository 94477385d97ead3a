"""``volatility_regime``: from a moment on, every return is ``factor`` times what it was."""

from collections.abc import Iterator

import numpy as np
from pydantic import Field, model_validator

from nodes.stress.contract import Chunk, StreamTransform, Timestamp, TransformParams
from nodes.stress.regime import References, Regime, run_regime
from nodes.stress.streams import trade_rows, valid_prices


class VolatilityRegimeParams(TransformParams):
    start: Timestamp = Field(description="market time (ts_event) the regime starts: a date, an ISO date-time or "
                                         "int ns, UTC")
    end: Timestamp | None = Field(None, description="market time it ends (none: it lasts to the end of the data)")
    factor: float = Field(gt=0.0, description="multiplier of log returns: 2 doubles volatility (and drift), 0.5 "
                                              "halves it")

    @model_validator(mode="after")
    def _ordered(self):
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end} ns) must be after start ({self.start} ns)")
        return self


class VolatilityRegime(StreamTransform):
    """Scale log returns by ``factor`` from ``start`` (to ``end``), around each instrument's price at the start.

    With ``a`` the instrument's original price just before ``start`` (bars: the last close; ticks: the book's
    mid, else the last trade, else the last quote mid; an instrument first seen inside the regime anchors on
    its first price), a price ``p`` inside the regime becomes ``a × (p / a)^factor``: every return measured
    from ``a``, and so every return between two moments of the regime, is ``factor`` times the original in log
    terms. The map is monotone, so a bar stays a bar (high ≥ open, close ≥ low) and a book stays uncrossed.
    After ``end`` prices keep the level the regime left them at: they are multiplied by the constant
    ``a × (b / a)^factor / b``, ``b`` the original price just before ``end``; returns are original again.

    The map is constant within the regime (one anchor per instrument), so for ticks the book is re-published
    only at ``start`` and ``end``. A moving anchor would change nothing for returns (the power map composes:
    re-anchoring with continuity gives the same prices) but would make the book inconsistent between updates.

    Example::

        high_vol:
          - {transform: volatility_regime, source: bars, start: 2013-06-01, factor: 2.5}
    """

    name = "volatility_regime"
    Params = VolatilityRegimeParams

    @classmethod
    def transform(cls, params: VolatilityRegimeParams, chunks: Iterator[Chunk]) -> Iterator[Chunk]:
        return run_regime(lambda kind: _Vol(kind, params), chunks, cls.name)


class _Vol(Regime):
    def __init__(self, kind: str, params: VolatilityRegimeParams):
        super().__init__(kind)
        self.p = params
        self.epoch = 0
        self.anchor: dict[int, float] = {}
        self.after: dict[int, float] = {}  # multiplier after the end

    def epochs(self, t: np.ndarray) -> np.ndarray:
        inside = t >= self.p.start
        if self.p.end is None:
            return inside.astype(np.int64)
        return np.where(t >= self.p.end, 2, inside.astype(np.int64))

    def enter(self, epoch: int, references: References) -> None:
        self.epoch = epoch
        if epoch == 1:
            known = {*references.close, *references.trade, *references.quote_mid,
                     *references.book.instrument.tolist()}
            prices = {i: references.price(i) for i in known}
            self.anchor = {i: p for i, p in prices.items() if p == p and p > 0}
        elif epoch == 2:
            for i, a in self.anchor.items():
                b = references.price(i)
                self.after[i] = a * (b / a) ** self.p.factor / b if b == b and b > 0 else 1.0

    def begin(self, rows: dict[str, np.ndarray]) -> None:
        if self.epoch != 1:
            return
        for i, price in _first_prices(self.kind, rows).items():
            self.anchor.setdefault(i, price)

    def prices(self, epoch, t, instrument, price, direction):
        if epoch == 1:
            anchor = _lookup(self.anchor, instrument)
            mapped = anchor * (price / anchor) ** self.p.factor
            return np.where(np.isnan(anchor), price, mapped)  # no anchor yet (one-sided book): unchanged
        return price * np.nan_to_num(_lookup(self.after, instrument), nan=1.0)


def _first_prices(kind: str, rows: dict[str, np.ndarray]) -> dict[int, float]:
    """Per instrument of ``rows``, the first price to anchor on: a bar's open; a trade's price, else a quote's
    mid, else any price."""
    instrument = rows["instrument"].astype(np.int64)
    if kind == "bars":
        candidates = [(np.ones(len(instrument), bool), rows["open"])]
    else:
        candidates = []
        if "price" in rows:
            candidates.append((trade_rows(rows), rows["price"].astype(float)))
        if {"bid_px", "ask_px"} <= rows.keys():
            quoted = valid_prices(rows["bid_px"]) & valid_prices(rows["ask_px"])
            candidates.append((quoted, (rows["bid_px"].astype(float) + rows["ask_px"].astype(float)) / 2.0))
        if "price" in rows:
            candidates.append((valid_prices(rows["price"]), rows["price"].astype(float)))
    found: dict[int, float] = {}
    for usable, values in candidates:
        for i in np.unique(instrument[usable]).tolist():
            if i not in found:
                found[i] = float(values[np.flatnonzero(usable & (instrument == i))[0]])
    return found


def _lookup(values: dict[int, float], instrument: np.ndarray) -> np.ndarray:
    """``values[i]`` for each instrument index (NaN when missing)."""
    size = max(int(instrument.max(initial=-1)), max(values, default=-1)) + 1
    table = np.full(size, np.nan)
    if values:
        table[list(values)] = list(values.values())
    return table[instrument.astype(np.int64)]
