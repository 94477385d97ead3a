"""Backward split and dividend adjustment of daily bars, as CRSP and Yahoo define it.

Rows are in time order; an event belongs to its **ex-date** row ``e`` (the first day the stock trades without
the split or the dividend): ``split`` is the ratio of new shares to old (7 for 7:1, 0.5 for a 1:2 reverse
split; empty, 0 or 1 = none) and ``dividend`` the cash paid per share, in the share basis of that row.

Per event, the price factor is

    s_e = 1 / split_e                              (splits)
    d_e = 1 - dividend_e / (close_{e-1} * s_e)     (dividends: Yahoo's and CRSP's factor; ``close_{e-1} * s_e``
                                                    is the previous close in the ex-date's share basis)
    f_e = s_e * d_e   (only the parts asked for: ``splits`` → s_e, ``dividends`` → d_e, both → s_e * d_e)

and a row's cumulative factor is the product over the events **after** it, ``F_t = prod_{e > t} f_e``: the
last row is never changed, and prices before an ex-date are multiplied by the factor of every event since.
Open, high, low and close are multiplied by ``F_t``; volume is divided by the split part alone,
``V_t = volume_t * prod_{e > t} split_e`` (shares before a 7:1 split count 7 times), so ``price × volume``
stays the traded value across a split. A dividend leaves volume alone.

A file without ``split``/``dividend`` columns but with Yahoo's ``Adj Close`` (whose ``Close`` is already
split-adjusted and whose ``Adj Close`` is split- and dividend-adjusted) uses the ratio ``adj_close / close``
as ``F_t`` for ``dividends`` and ``splits_and_dividends``; ``splits`` is refused there (the prices already are).

**Look-ahead**: a backward-adjusted price depends on events after its row (that is what makes a series
continuous across ex-dates). Returns computed from it are right; price levels before the last event are
not prices that ever traded, and a strategy that compares levels with a fixed threshold sees the future's
dividends. Keep ``adjust: none`` for fills at traded prices.

Checks: a split row whose prices do not jump by the split (``open_e / close_{e-1}`` nearer 1 than the split
implies) means the file is adjusted already: adjusting again would be wrong by the ratio, so it is refused
with the line; a dividend at least the previous close (``d_e <= 0``), a negative dividend or split ratio,
or a non-numeric value is refused with its line.
"""

from pathlib import Path
from typing import Literal

import numpy as np

from nodes.errors import DataQualityError

AdjustMode = Literal["none", "splits", "dividends", "splits_and_dividends"]
_JUMP_CHECKED = 1.5  # splits at least this large (or reverse splits this small) are checked against the prices


def adjust_bars(columns: dict[str, np.ndarray], events: dict[str, np.ndarray | None], mode: AdjustMode,
                path: Path, first_line: int, dates: list[str] | None = None) -> dict[str, np.ndarray]:
    """Return ``columns`` (open, high, low, close, volume and others, float64) backward-adjusted by ``mode``.

    ``events`` holds ``split``, ``dividend`` and ``adj_close`` arrays (None when the file has no such column;
    NaN where a row leaves it empty). ``first_line`` is the file line of row 0, for messages.

    Raises:
        DataQualityError: the file lacks what ``mode`` needs, looks adjusted already, or holds a bad event.
    """
    if mode == "none":
        return columns
    split, dividend, adj_close = events.get("split"), events.get("dividend"), events.get("adj_close")
    close = columns["close"]
    if split is None and dividend is None:
        if adj_close is None:
            raise DataQualityError(f"{path}: adjust: {mode} needs split/dividend columns (or Yahoo's Adj Close); "
                                   "the file has neither")
        if mode == "splits":
            raise DataQualityError(
                f"{path}: adjust: splits needs a split column; this file has Yahoo's Adj Close only, and Yahoo's Close "
                "is already split-adjusted: use adjust: none (split-adjusted) or splits_and_dividends (Adj Close)")
        _check_finite(adj_close, "adj close", path, first_line)
        factor = adj_close / close
        out = {**columns}
        for name in ("open", "high", "low"):
            out[name] = columns[name] * factor
        out["close"] = adj_close.astype(np.float64)
        return out
    wants_splits = mode in ("splits", "splits_and_dividends")
    wants_dividends = mode in ("dividends", "splits_and_dividends")
    if wants_splits and split is None:
        raise DataQualityError(f"{path}: adjust: {mode} needs a split column (found dividend only)")
    if wants_dividends and dividend is None:
        raise DataQualityError(f"{path}: adjust: {mode} needs a dividend column (found split only)")
    n = len(close)
    ratio = np.ones(n) if split is None else _events(split, 1.0, "split", path, first_line)
    ratio = np.where(ratio == 0.0, 1.0, ratio)  # yfinance writes 0 for "no split"
    cash = np.zeros(n) if dividend is None else _events(dividend, 0.0, "dividend", path, first_line)
    if wants_splits:
        _refuse_adjusted_splits(columns, ratio, path, first_line, dates)
    s = 1.0 / ratio if wants_splits else np.ones(n)
    d = np.ones(n)
    if wants_dividends:
        previous = np.concatenate([[np.nan], close[:-1]])
        paid = np.flatnonzero(cash > 0)
        paid = paid[paid > 0]  # a dividend on the first row has no earlier price to adjust
        d[paid] = 1.0 - cash[paid] / (previous[paid] * (1.0 / ratio[paid]))
        bad = paid[~(d[paid] > 0)]
        if len(bad):
            r = int(bad[0])
            raise DataQualityError(f"{path}: line {first_line + r}: dividend {cash[r]} is not below the previous close "
                                   f"{previous[r]}: the dividend factor would be {d[r]:.6g}")
    event_factor = s * d
    # F_t = product of the factors of rows after t
    after = np.concatenate([np.cumprod(event_factor[::-1])[::-1][1:], [1.0]])
    volume_after = np.concatenate([np.cumprod(ratio[::-1])[::-1][1:], [1.0]]) if wants_splits else np.ones(n)
    out = {**columns}
    for name in ("open", "high", "low", "close"):
        out[name] = columns[name] * after
    out["volume"] = columns["volume"] * volume_after
    return out


def _events(values: np.ndarray, empty: float, name: str, path: Path, first_line: int) -> np.ndarray:
    values = np.where(np.isnan(values), empty, values)
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if len(bad):
        r = int(bad[0])
        raise DataQualityError(f"{path}: line {first_line + r}: {name} {values[r]} is not a finite non-negative number "
                               f"({len(bad)} such row(s))")
    return values


def _check_finite(values: np.ndarray, name: str, path: Path, first_line: int) -> None:
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if len(bad):
        raise DataQualityError(f"{path}: {name} is missing or not positive on {len(bad)} row(s), first at line "
                               f"{first_line + int(bad[0])}")


def _refuse_adjusted_splits(columns: dict[str, np.ndarray], ratio: np.ndarray, path: Path, first_line: int,
                            dates: list[str] | None) -> None:
    rows = np.flatnonzero((ratio >= _JUMP_CHECKED) | (ratio <= 1.0 / _JUMP_CHECKED))
    for r in rows[rows > 0].tolist():
        gap = columns["open"][r] / columns["close"][r - 1]
        if abs(np.log(gap)) < abs(np.log(gap * ratio[r])):
            when = f" ({dates[r]})" if dates else ""
            raise DataQualityError(
                f"{path}: line {first_line + r}{when}: split {ratio[r]:g} but the price does not jump (open "
                f"{columns['open'][r]:g} after close {columns['close'][r - 1]:g}): the file is split-adjusted already, "
                "and adjusting again would be wrong by the ratio; use adjust: none or dividends"
            )
