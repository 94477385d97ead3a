"""Run a book over a whole table or file from Python: ``replay_book`` (the final book) and ``mbo_to_mbp``.

Scope: batch replays for inspection (``tickloom book FILE --json``), tests and benchmarks. A spec runs the
same ops through the plan; this module drives their ``step`` in one loop per instrument, generated once per
op: plain Python on ``cpu``, compiled with numba on ``numba`` (the first process compiles it in a few seconds
and caches it on disk; later ones load it in ~0.1 s).

Example::

    from nodes.marketdata.book.replay import replay_book
    summary = replay_book("esh4-glbx-mdp3-20231224.mbo.dbn.zst", kind="l3", depth=5)
    summary["books"]["ESH4"]["best_bid"]    # int64 price, 1e-9 units
"""

import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from nodes.contract.cache import cache_dir
from nodes.contract import StreamOp
from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.book.ladder import side_levels
from nodes.marketdata.book.l3 import BookL3
from nodes.marketdata.book.l3_mbp import BookL3Mbp
from nodes.marketdata.schemas import F_LAST, PRICE_SCALE, SIZE_SCALE, UNDEF_PRICE

KINDS = {"l2": BookL2, "l3": BookL3}


def replay_book(
    source,
    kind: str = "l3",
    depth: int = 10,
    target: str = "numba",
    max_levels: int = 4096,
    max_orders: int = 65_536,
) -> dict:
    """Replay order-book events and return each instrument's final book as a JSON-able dict.

    Parameters:
        source: a polars DataFrame in the ``orders`` (L3) or ``book_deltas`` (L2) schema; a dict of equal-length
            numpy arrays with the same column names (``order_id``, ``side``, ``price``, ``size``, ``action``,
            ``flags``; optional ``symbol`` or ``instrument``, ``ts_recv``, ``sequence``); an iterable of such
            frames or dicts (chunks, in ``ts_recv`` order); or the path of a DBN MBO file (``.dbn`` or
            ``.dbn.zst``), streamed through ``nodes.marketdata.dbn.decode_dbn``.
        kind: ``"l3"`` (``book.l3``: MBO records by order id) or ``"l2"`` (``book.l2``: level sizes).
        depth: levels per side to list, best first (default 10).
        target: ``"numba"`` (default) or ``"cpu"``; both give the same book.
        max_levels, max_orders: the ops' capacities (see ``book.l2``/``book.l3``).

    Returns:
        ``{"kind", "depth", "price_scale", "size_scale", "events", "books": {symbol: book}}`` where each book is
        ``{"events", "levels_bid", "levels_ask", "best_bid", "best_ask" (int or None), "bids", "asks" (lists of
        {"price", "size", "orders"} best first; "orders" is None for L2), "orders" (resting orders; None for
        L2), "crossed" (bool, at the end), "crossed_at_f_last" (F_LAST records after which the book was
        crossed), "overflow", "inconsistent", "last_ts_recv", "last_sequence" (None when absent)}``.
        Rows without ``symbol``/``instrument`` form one book named ``""``; an ``instrument`` index becomes
        its decimal string.

    Raises:
        ValueError: an unknown ``kind`` or ``target``, a negative ``depth``, a DBN path with ``kind="l2"`` or
            without MBO records, or a source without the columns the book needs (the message names them).
        DataQualityError: a DBN path that is not a readable DBN file (from ``decode_dbn``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    if target not in ("cpu", "numba"):
        raise ValueError(f"target must be 'cpu' or 'numba', not {target!r}")
    if depth < 0:
        raise ValueError(f"depth must be >= 0, not {depth}")
    if kind == "l2" and isinstance(source, (str, Path)):
        raise ValueError("a DBN MBO file holds orders, not level totals: replay it with kind='l3' "
                         "(or derive L2 deltas with mbo_to_mbp)")
    op = KINDS[kind]
    params = {"max_levels": max_levels} if kind == "l2" else {"max_levels": max_levels, "max_orders": max_orders}
    c = tuple(op.constants(op.Params.model_validate(params)))
    loop = _summary_loop(op, target, c)
    books: dict[str, dict] = {}
    total = 0
    for chunk in _chunks(source):
        for symbol, rows in _by_symbol(chunk):
            columns = [_column(rows, name) for name in op.inputs]
            entry = books.get(symbol)
            if entry is None:
                entry = books[symbol] = {"state": op.init(c, 1), "events": 0, "crossed_at_f_last": 0,
                                         "last_ts_recv": None, "last_sequence": None}
            state, crossed_last = loop(c, entry["state"], *columns)
            entry["state"] = state
            entry["events"] += len(columns[0])
            entry["crossed_at_f_last"] += int(crossed_last)
            if len(columns[0]):
                for field in ("ts_recv", "sequence"):
                    value = rows.get(field)
                    if value is not None and len(value) and not _is_null(value[-1]):
                        entry[f"last_{field}"] = int(value[-1])
            total += len(columns[0])
    return {
        "kind": kind,
        "depth": depth,
        "price_scale": PRICE_SCALE,
        "size_scale": SIZE_SCALE,
        "events": total,
        "books": {symbol: _describe(kind, entry, depth) for symbol, entry in books.items()},
    }


def mbo_to_mbp(orders: pl.DataFrame, target: str = "numba", max_levels: int = 4096,
               max_orders: int = 65_536) -> pl.DataFrame:
    """Derive the L2 ``book_deltas`` implied by an ``orders`` (MBO) table, through ``book.l3_mbp``.

    One output row per changed level (``size`` = the level's new total, 0 removes it; ``action`` A/M/C) and one
    row with action R per clear, in input order; T/F/N records give no row. Columns: the ``book_deltas``
    schema's, event columns copied from the MBO record that caused the delta. ``flags`` too, except ``F_LAST``:
    it marks the last delta of each venue event (an event ends at an MBO record with ``F_LAST``), so the L2 book
    can be read where the MBO book could, even when the event's last record (a trade, say) changed no level.
    """
    op = BookL3Mbp
    c = tuple(op.constants(op.Params.model_validate({"max_levels": max_levels, "max_orders": max_orders})))
    parts = []
    for symbol, rows in _by_symbol(_frame_columns(orders)):
        columns = [_column(rows, name) for name in op.inputs]
        out, _ = run_op(op, c, columns, target)
        o = dict(zip(op.outputs, out))
        n = len(columns[0])
        index = np.arange(n)
        clear_rows = index[o["cleared"] == 1]
        first = index[o["levels_changed"] >= 1]
        second = index[o["levels_changed"] >= 2]
        source_row = np.concatenate([clear_rows, first, second])
        order = np.lexsort((np.concatenate([np.zeros(len(clear_rows)), np.ones(len(first)),
                                            np.full(len(second), 2)]), source_row))
        source_row = source_row[order]
        slot = np.concatenate([np.zeros(len(clear_rows), np.int64), np.ones(len(first), np.int64),
                               np.full(len(second), 2, np.int64)])[order]

        def pick(name1, name2, clear_value):
            return np.where(slot == 0, clear_value, np.where(slot == 1, o[name1][source_row], o[name2][source_row]))

        part = {
            "side": pick("side_1", "side_2", 0),
            "price": pick("price_1", "price_2", UNDEF_PRICE),
            "size": pick("size_1", "size_2", 0),
            "action": pick("action_1", "action_2", ord("R")),
            "flags": _event_ends(columns[list(op.inputs).index("flags")], source_row),
        }
        for name in ("ts_event", "ts_recv", "sequence", "venue"):
            if name in rows:
                part[name] = rows[name][source_row]
        part["symbol"] = np.full(len(source_row), symbol, dtype=object)
        parts.append(pl.DataFrame(part))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal")


def _event_ends(flags: np.ndarray, source_row: np.ndarray) -> np.ndarray:
    """Flags of derived rows: the source record's, with ``F_LAST`` moved to the last derived row of each event."""
    last = (flags & F_LAST) != 0
    event = np.cumsum(last) - last  # the event each record belongs to: F_LAST records end one
    derived_event = event[source_row]
    ends = np.ones(len(source_row), dtype=bool)
    ends[:-1] = derived_event[:-1] != derived_event[1:]
    complete = derived_event < last.sum()  # the data may stop inside an event
    return (flags[source_row] & ~F_LAST) | np.where(ends & complete, F_LAST, 0)


def run_op(op: type[StreamOp], c: tuple, columns: list[np.ndarray], target: str,
           state: tuple | None = None) -> tuple[list[np.ndarray], tuple]:
    """Run ``op``'s step over ``columns`` (one int64 array per input) from ``state`` (default: empty).

    Returns ``(outputs, state)``: every output per event (one array per output port) and the final state.
    """
    n = len(columns[0])
    outputs = [np.empty(n, dtype=t.dtype) for t in op.outputs.values()]
    state = op.init(c, 1) if state is None else state
    state = _recording_loop(op, target, c)(c, state, *columns, *outputs)
    return outputs, state


# -- internals ---------------------------------------------------------------------------------------------


def _chunks(source) -> Iterator[dict[str, np.ndarray]]:
    if isinstance(source, (str, Path)):
        yield from _dbn_orders(Path(source))
    elif isinstance(source, (pl.DataFrame, dict)):
        yield _frame_columns(source)
    elif isinstance(source, Iterable):
        for chunk in source:
            yield _frame_columns(chunk)
    else:
        raise ValueError(
            f"cannot replay a {type(source).__name__}: give a DataFrame, a dict of arrays, chunks or a path"
        )


def _dbn_orders(path: Path) -> Iterator[dict[str, np.ndarray]]:
    """The ``orders`` rows of a DBN file, chunk by chunk, through the project's decoder."""
    from nodes.marketdata.dbn import decode_dbn

    found = False
    for chunk in decode_dbn(path):
        frame = chunk.tables.get("orders")
        if frame is not None and frame.height:
            found = True
            yield _frame_columns(frame)
    if not found:
        raise ValueError(f"{path}: no MBO (orders) records: replay_book reads DBN MBO files")


def _frame_columns(frame) -> dict[str, np.ndarray]:
    if isinstance(frame, pl.DataFrame):
        return {name: frame[name].to_numpy() for name in frame.columns}
    if isinstance(frame, dict):
        return {name: np.asarray(values) for name, values in frame.items()}
    raise ValueError(f"a chunk must be a polars DataFrame or a dict of arrays, not {type(frame).__name__}")


def _by_symbol(columns: dict[str, np.ndarray]) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    names = columns.get("symbol")
    if names is None and "instrument" in columns:
        names = columns["instrument"]
    if names is None:
        yield "", columns
        return
    names = np.asarray(names).astype(str)
    unique, first = np.unique(names, return_index=True)
    if len(unique) == 1:
        yield str(unique[0]), columns
        return
    for symbol in unique[np.argsort(first)]:
        mask = names == symbol
        yield str(symbol), {name: values[mask] for name, values in columns.items()}


def _column(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in columns:
        raise ValueError(f"the source has no {name!r} column (it has {sorted(columns)})")
    values = columns[name]
    if values.dtype == np.uint64:
        return np.ascontiguousarray(values.view(np.int64))
    return np.ascontiguousarray(values, dtype=np.int64)


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _describe(kind: str, entry: dict, depth: int) -> dict:
    s = entry["state"]
    if kind == "l3":
        orders, overflow, inconsistent = int(s[0]), int(s[2]), int(s[3])
    else:
        orders, overflow, inconsistent = None, int(s[0]), int(s[1])
    levels = book_levels(kind, s)
    bids, asks = levels["bids"], levels["asks"]
    best_bid = bids[0]["price"] if bids else None
    best_ask = asks[0]["price"] if asks else None
    return {
        "events": entry["events"],
        "levels_bid": len(bids),
        "levels_ask": len(asks),
        "best_bid": best_bid,
        "best_ask": best_ask,
        "bids": bids[:depth],
        "asks": asks[:depth],
        "orders": orders,
        "crossed": bool(best_bid is not None and best_ask is not None and best_bid >= best_ask),
        "crossed_at_f_last": entry["crossed_at_f_last"],
        "overflow": overflow,
        "inconsistent": inconsistent,
        "last_ts_recv": entry["last_ts_recv"],
        "last_sequence": entry["last_sequence"],
    }


def book_levels(kind: str, state: tuple) -> dict[str, list[dict]]:
    """All levels of a ``book.l2`` or ``book.l3``/``book.l3_mbp`` state, best first, as
    ``{"bids": [{"price", "size", "orders"}, ...], "asks": [...]}`` ("orders" is None for L2)."""
    if kind == "l3":
        lo_bid, n_bid, lo_ask, n_ask, levels = state[4], state[5], state[6], state[7], state[8]
    else:
        lo_bid, n_bid, lo_ask, n_ask, levels = state[2], state[3], state[4], state[5], state[6]
    return {
        "bids": side_levels(levels, 0, int(lo_bid), int(n_bid)),
        "asks": side_levels(levels, 1, int(lo_ask), int(n_ask)),
    }


_loops: dict[tuple, object] = {}


def _scalar_slots(op: type[StreamOp], c: tuple) -> list[int]:
    """Indices of the scalar elements of ``op``'s state (the arrays are updated in place)."""
    return [i for i, value in enumerate(op.init(c, 1)) if not isinstance(value, np.ndarray)]


def _with_scalars(state: tuple, slots: list[int], scalars) -> tuple:
    updated = list(state)
    for i, value in zip(slots, scalars):
        updated[i] = value
    return tuple(updated)


def _summary_loop(op: type[StreamOp], target: str, c: tuple):
    """A loop over one instrument's events that updates the state and counts crossed books at F_LAST.

    Called as ``loop(c, state, *columns) -> (state, crossed_at_last)``.
    """
    slots = _scalar_slots(op, c)
    key = (op, target, "summary", tuple(slots))
    if key not in _loops:
        names = [f"x{i}" for i in range(len(op.inputs))]
        flags = names[list(op.inputs).index("flags")]
        crossed = 1 + list(op.outputs).index("crossed")
        source = "\n".join([
            f"def loop(c, s, {', '.join(names)}):",
            "    crossed_at_last = 0",
            f"    for i in range({names[0]}.shape[0]):",
            f"        r = step(c, s, {', '.join(f'{n}[i]' for n in names)})",
            "        s = r[0]",
            f"        if ({flags}[i] & F_LAST) != 0 and r[{crossed}] == 1:",
            "            crossed_at_last += 1",
            f"    return ({', '.join(f's[{i}]' for i in slots)}, crossed_at_last)",
        ])
        _loops[key] = _compile(source, op, target)
    loop = _loops[key]

    def run(c, state, *columns):
        returned = loop(c, state, *columns)
        return _with_scalars(state, slots, returned[:-1]), returned[-1]

    return run


def _recording_loop(op: type[StreamOp], target: str, c: tuple):
    """A loop that writes every output of every event into preallocated arrays.

    Called as ``loop(c, state, *columns, *outputs) -> state``.
    """
    slots = _scalar_slots(op, c)
    key = (op, target, "record", tuple(slots))
    if key not in _loops:
        names = [f"x{i}" for i in range(len(op.inputs))]
        outs = [f"y{j}" for j in range(len(op.outputs))]
        source = "\n".join([
            f"def loop(c, s, {', '.join(names + outs)}):",
            f"    for i in range({names[0]}.shape[0]):",
            f"        r = step(c, s, {', '.join(f'{n}[i]' for n in names)})",
            "        s = r[0]",
            *[f"        {y}[i] = r[{j + 1}]" for j, y in enumerate(outs)],
            f"    return ({', '.join(f's[{i}]' for i in slots)},)",
        ])
        _loops[key] = _compile(source, op, target)
    loop = _loops[key]

    def run(c, state, *arrays):
        return _with_scalars(state, slots, loop(c, state, *arrays))

    return run


def _compile(source: str, op: type[StreamOp], target: str):
    """Build a loop from ``source`` around ``op.step``: plain Python on cpu, one numba kernel on numba.

    On numba the kernel is compiled without NRT reference counting (``_nrt=False``): it allocates nothing and
    returns only scalars, and counting references to the state's arrays as the state tuple is rebuilt every
    event would cost more than the book update itself. The kernel's source is written to
    ``$TICKLOOM_CACHE/book`` (default ``~/.cache/tickloom/book``) under a hash of itself, of every module of
    this package and of the numba/numpy versions, and compiled with numba's on-disk cache, so a second process
    loads machine code (~0.1 s) instead of compiling (seconds) and a changed book never reuses a stale kernel.
    """
    scope = {"F_LAST": F_LAST}
    if target == "cpu":
        scope["step"] = op.step
        exec(compile(source, f"<book loop {op.name}>", "exec"), scope)
        return scope["loop"]
    import numba

    scope["step"] = numba.njit(inline="always")(op.step)
    digest = hashlib.sha256(source.encode())
    for path in [*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parents[1] / "schemas.py"]:
        digest.update(path.read_bytes())
    digest.update(f"{op.__module__}.{op.__qualname__} {numba.__version__} {np.__version__}".encode())
    name = f"tickloom_book_loop_{digest.hexdigest()[:24]}"
    if name not in sys.modules:
        folder = cache_dir("book")
        path = folder / f"{name}.py"
        if not path.exists():
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(source + "\n")
            temporary.replace(path)  # atomic: a concurrent process never imports a half-written file
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        module.__dict__.update(scope)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        module.loop = numba.njit(cache=True, _nrt=False)(module.loop)
    return sys.modules[name].loop
