"""What every bar source shares: the output ports, instrument lists and the checks on parsed bars."""

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from nodes.contract import F64, OpParams
from nodes.errors import DataQualityError

BAR_OUTPUTS = {"open": F64, "high": F64, "low": F64, "close": F64, "volume": F64}
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class InstrumentFilesParams(OpParams):
    """Where the bars are: one file per instrument (``{instrument}`` in the path) or one file of one instrument."""

    path: str = Field(description="file path, relative to the spec's folder; may contain {instrument}")
    instrument: str | None = Field(None, description="the instrument of a single-instrument file")
    instruments: list[str] | None = Field(None, description="instruments, each read from path with {instrument}")

    @model_validator(mode="after")
    def _one_way_to_name_instruments(self):
        if (self.instrument is None) == (self.instruments is None):
            raise ValueError("give exactly one of 'instrument' (one file) or 'instruments' (path with {instrument})")
        if self.instruments is not None:
            if "{instrument}" not in self.path:
                raise ValueError("'instruments' needs '{instrument}' in 'path' to find each file")
            if not self.instruments or len(set(self.instruments)) != len(self.instruments):
                raise ValueError("'instruments' must be a non-empty list without duplicates")
        return self

    def instrument_list(self) -> list[str]:
        return list(self.instruments) if self.instruments is not None else [self.instrument]

    def files(self, base_dir: Path) -> list[tuple[str, Path]]:
        return [(name, base_dir / self.path.replace("{instrument}", name)) for name in self.instrument_list()]


def check_bars(columns: dict[str, np.ndarray], file: Path, first_line: int) -> None:
    """Reject bars that would lie to a backtest: missing prices, time going backwards, ts_recv < ts_event.

    ``first_line`` is the file line of row 0, so errors point at the line an editor shows.
    """
    problems = []
    for name in PRICE_COLUMNS:
        bad = np.flatnonzero(~np.isfinite(columns[name]))
        if len(bad):
            problems.append((f"missing or non-numeric {name}", bad))
    backwards = np.flatnonzero(np.diff(columns["ts_recv"]) < 0) + 1
    if len(backwards):
        problems.append(("time goes backwards (rows must be sorted by time)", backwards))
    early = np.flatnonzero(columns["ts_recv"] < columns["ts_event"])
    if len(early):
        problems.append(("bar known before it started (ts_recv < ts_event)", early))
    if problems:
        lines = [
            f"{what}: {len(rows)} row(s), first at line(s) {', '.join(str(first_line + int(r)) for r in rows[:5])}"
            for what, rows in problems
        ]
        raise DataQualityError(f"{file}: bad bars rejected:\n  " + "\n  ".join(lines))


def merge_instruments(per_instrument: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate single-instrument columns and order them by (ts_recv, instrument index, row)."""
    columns = {k: np.concatenate([c[k] for c in per_instrument]) for k in per_instrument[0]}
    order = np.lexsort((np.arange(len(columns["ts_recv"])), columns["instrument"], columns["ts_recv"]))
    return {k: v[order] for k, v in columns.items()}


def iter_chunks(columns: dict[str, np.ndarray], max_rows: int):
    n = len(columns["ts_recv"])
    for start in range(0, n, max_rows):
        yield {k: v[start : start + max_rows] for k, v in columns.items()}
