"""Drive ``backtest.tick_venue`` over hand-built or real events, without a spec: the tick venue tests' harness.

Events are dicts: ``ts`` (ts_event; ``ts_recv`` defaults to it), ``key``, the market fields (``side``, ``price``,
``size``, ``action`` as a letter, ``flags``; ``order_id`` for L3) and any strategy inputs of the mode. Strategy
inputs are **held** between events the way the engine holds an upstream node's outputs: an event that does not
name an input repeats its last value (0 before the first). Prices and quantities are given in units (floats)
and converted to the data's 1e-9 units.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from hardware.targets import step_function
from nodes.backtest.tick import TickVenue
from nodes.backtest.tick.result import summarize_tick_backtest
from nodes.marketdata.schemas import F_LAST, UNDEF_PRICE

U = 1_000_000_000
PRICE_FIELDS = ("price", "bid_px", "ask_px", "cmd_price")
QTY_FIELDS = ("size", "bid_qty", "ask_qty", "target", "cmd_qty")


def units(value: float) -> int:
    """A price or quantity in 1e-9 units (exact for the decimals the tests use)."""
    return int(round(value * U))


@dataclass
class Run:
    """What a drive produced: per-event outputs (one array per port), the logs as frames, the final state."""

    outputs: dict[str, np.ndarray]
    logs: dict[str, pl.DataFrame]
    state: tuple
    op: type

    @property
    def fills(self) -> pl.DataFrame:
        return self.logs["fills"]

    @property
    def orders(self) -> pl.DataFrame:
        return self.logs["orders"]

    @property
    def queue(self) -> pl.DataFrame:
        return self.logs["queue"]

    @property
    def equity(self) -> pl.DataFrame:
        return self.logs["equity"]

    def events_of(self, order_id: int) -> list[str]:
        return self.orders.filter(pl.col("order_id") == order_id)["event"].to_list()


def venue(params: dict, base_dir: Path | None = None) -> tuple[type, object]:
    """The specialized venue op and its validated params."""
    validated = TickVenue.Params.model_validate(params)
    return TickVenue.specialize(validated, base_dir=base_dir), validated


def columns_from_events(op: type, events: list[dict]) -> dict[str, np.ndarray]:
    """Context and input columns from event dicts (strategy inputs held, units converted, letters coded)."""
    market = {"order_id", "side", "price", "size", "action", "flags"}
    held = {name: 0 for name in op.inputs if name not in market}
    columns: dict[str, list] = {name: [] for name in ("key", "ts_event", "ts_recv", *op.inputs)}
    for event in events:
        columns["key"].append(event.get("key", 0))
        columns["ts_event"].append(event["ts"])
        columns["ts_recv"].append(event.get("ts_recv", event["ts"]))
        for name in op.inputs:
            if name in market:
                value = event.get(name, 0)
                if name == "action":
                    value = ord(event.get("action", "N"))
                elif name == "flags":
                    value = event.get("flags", F_LAST)
                elif name in PRICE_FIELDS + QTY_FIELDS:
                    value = units(value)
            else:
                if name in event:
                    value = event[name]
                    if name in PRICE_FIELDS + QTY_FIELDS and value is not None:
                        value = units(value)
                    elif value is None:
                        value = UNDEF_PRICE
                    held[name] = value
                value = held[name]
            columns[name].append(value)
    return {name: np.asarray(values, dtype=np.int64) for name, values in columns.items()}


def drive_columns(op: type, params, columns: dict[str, np.ndarray], target: str = "cpu", n_keys: int = 1,
                  drain_every: int = 0) -> Run:
    """Run the venue's step over columns in a plain loop; drain the logs every ``drain_every`` events (0: at the
    end), as the engine drains after every chunk."""
    step = step_function(op.step, target)
    c = tuple(op.constants(params))
    s = op.init(c, n_keys)
    n = len(columns["ts_event"])
    outputs = {port: np.empty(n, dtype=t.dtype) for port, t in op.outputs.items()}
    arrays = [columns[name] for name in ("key", "ts_event", "ts_recv", *op.inputs)]
    parts: list[dict] = []
    for i in range(n):
        returned = step(c, s, *(a[i] for a in arrays))
        s = returned[0]
        for (port, out), value in zip(outputs.items(), returned[1:]):
            out[i] = value
        if drain_every and (i + 1) % drain_every == 0:
            s, logs = op.drain(c, s)
            parts.append(logs)
    s, logs = op.drain(c, s)
    parts.append(logs)
    frames = {}
    for name in parts[0]:
        pieces = [pl.DataFrame(p[name])
                  for p in parts]
        frames[name] = pl.concat(pieces)
    return Run(outputs, frames, s, op)


def drive(params: dict, events: list[dict], target: str = "cpu", n_keys: int = 1,
          base_dir: Path | None = None) -> Run:
    """Run the venue configured by ``params`` over hand-built ``events``."""
    op, validated = venue(params, base_dir)
    return drive_columns(op, validated, columns_from_events(op, events), target, n_keys)


def summary(params: dict, run: Run):
    return summarize_tick_backtest(TickVenue.Params.model_validate(params), run.logs)


# --- event builders ------------------------------------------------------------------------------------------

def level(ts: int, side: int, price: float, size: float, flags: int = F_LAST, **inputs) -> dict:
    """An L2 level update (action M: the level's new total)."""
    return {"ts": ts, "side": side, "price": price, "size": size, "action": "M", "flags": flags, **inputs}


def trade(ts: int, aggressor: int, price: float, size: float, **inputs) -> dict:
    """A trade row (action T); ``aggressor`` 1 buyer, -1 seller."""
    return {"ts": ts, "side": aggressor, "price": price, "size": size, "action": "T", "flags": F_LAST, **inputs}


def tick(ts: int, **inputs) -> dict:
    """A market event that changes nothing (action N): lets time pass and the strategy act."""
    return {"ts": ts, "action": "N", "flags": F_LAST, **inputs}


def book_events(ts: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> list[dict]:
    """Level updates building a book at ``ts``; only the last carries F_LAST."""
    rows = [level(ts, 1, p, q, flags=0) for p, q in bids] + [level(ts, -1, p, q, flags=0) for p, q in asks]
    rows[-1]["flags"] = F_LAST
    return rows
