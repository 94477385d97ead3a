"""``book.l2`` on the fabric: the top ``max_levels`` of each side in a sorted register array, updated in place.

Each side is ``max_levels`` cells (key, size, valid), best first, with the book's key (``price × side``, so the
best level has the largest key on both sides). An update compares its key with every cell at once: ``match``
(equal) and ``better`` (larger); a cell then keeps its value, takes the new level, or takes its neighbour's
(an insert shifts the worse levels down by one, a delete shifts them up). The worst level falls off the end of
a full side, exactly as ``book.l2`` pushes it out at its capacity, so the outputs (best bid/ask, sizes, level
counts, crossed, overflow and inconsistent counts) are ``book.l2``'s with the same ``max_levels``, bit for
bit (error bound 0). The golden model keeps the same cells in software (``cells[row, key|size, slot]``, best
first) and finds a level by scanning from the touch, where real feeds update: the loops it runs are what the
fabric does in one pass of parallel comparators. It is about twice as fast as ``book.l2``'s general ladder
at these depths, which the path's golden-model throughput needs.

Formats: all ports int64 (prices and sizes in 1e-9 units, as the normalized schema); counts UQ62.0.

Structure: ``in`` (decode the action, validate, make the key) → ``update`` (the recurrence over the cells: a
64-bit compare per cell, an OR tree over the matches, a 4:1 mux per cell bit; the cell's select logic merges
into the OR tree's last LUT level) → ``top`` (best levels, crossed = ``key_bid + key_ask >= 0``). The OR tree
grows with ``max_levels``: up to 36 levels the loop fits 322 MHz at II 1, above it needs II 2.

Capacity: ``max_levels`` up to 64 per side (2 × 64 × 129 flip-flops); a deeper book belongs on numba.
"""

import numpy as np
from amaranth import Module, Mux, Signal, signed, unsigned

from hardware.fpga import resources as R
from hardware.fpga import timing as T
from hardware.fpga.fixed import FixedFormat
from hardware.fpga.lint import FpgaPlacementError, Reason
from hardware.fpga.registry import FpgaImpl
from hardware.fpga.rtl import INT64, Issue, Recurrence, StreamModule, hold_on, stage_valid
from hardware.fpga.timing import DEFAULT_CLOCK_HZ, stage_cycles
from nodes.contract import step_helper
from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.book.ladder import is_crossed, valid_price
from nodes.marketdata.schemas import (
    ACTION_ADD,
    ACTION_CANCEL,
    ACTION_CLEAR,
    ACTION_FILL,
    ACTION_MODIFY,
    ACTION_NONE,
    ACTION_TRADE,
    UNDEF_PRICE,
)

MAX_LEVELS = 64
KEY, SIZE = 0, 1
INT64_MIN = -(1 << 63)
CELL_BITS = 64 + 64 + 1


class TopOfBookFpga(FpgaImpl):
    op = BookL2

    def check(self, params) -> None:
        if params.max_levels > MAX_LEVELS:
            raise FpgaPlacementError(self.op_name, [Reason(
                "capacity", f"max_levels {params.max_levels} > {MAX_LEVELS}: the fpga book keeps each side in a "
                            f"register array of at most {MAX_LEVELS} levels", "params.max_levels")],
                f"Set max_levels <= {MAX_LEVELS} (the top levels stay exact; deeper ones are counted in "
                "overflow), or place the node on numba.")

    def constants(self, params) -> tuple:
        return BookL2.constants(params)

    @staticmethod
    def init(c, n_keys):
        # overflow and inconsistent counts, levels held per side, the cells
        return (0, 0, 0, 0, np.zeros((2, 2, c[0]), np.int64))

    @staticmethod
    def step(c, s, side, price, size, action, flags):
        overflow, inconsistent, n_bid, n_ask, cells = s
        if action == ACTION_CLEAR:
            n_bid = 0
            n_ask = 0
        elif action == ACTION_ADD or action == ACTION_CANCEL or action == ACTION_MODIFY:
            if (side == 1 or side == -1) and valid_price(price) and size >= 0:
                if side == 1:
                    n_bid, overflowed = set_cell(cells, 0, n_bid, price, size)
                else:
                    n_ask, overflowed = set_cell(cells, 1, n_ask, -price, size)
                overflow += overflowed
            else:
                inconsistent += 1
        elif action != ACTION_TRADE and action != ACTION_FILL and action != ACTION_NONE:
            inconsistent += 1
        best_bid, bid_size = UNDEF_PRICE, 0
        if n_bid > 0:
            best_bid, bid_size = cells[0, KEY, 0], cells[0, SIZE, 0]
        best_ask, ask_size = UNDEF_PRICE, 0
        if n_ask > 0:
            best_ask, ask_size = -cells[1, KEY, 0], cells[1, SIZE, 0]
        crossed = is_crossed(n_bid, n_ask, best_bid, best_ask)
        state = (overflow, inconsistent, n_bid, n_ask, cells)
        return state, best_bid, best_ask, bid_size, ask_size, n_bid, n_ask, crossed, overflow, inconsistent

    def formats(self, params) -> dict[str, FixedFormat]:
        word = FixedFormat(True, 63, 0)  # int64 ports: the golden model computes in int64 like the op
        return {**{name: word for name in ("side", "price", "size", "action", "flags")},
                **{name: word for name in BookL2.outputs}, "state.cell.key": word, "state.cell.size": word}

    def structure(self, params) -> T.Structure:
        levels = params.max_levels
        return T.Structure((
            T.Stage("in", {"decode": (T.eq(64), T.logic(2)), "key": (T.add(64), T.mux(2))}),
            T.Stage("update", {"cells": (T.eq(64), T.or_tree(levels), T.mux(4)), "counts": (T.add(62),)},
                    loop=True),
            T.Stage("top", {"crossed": (T.add(65), T.logic(1))}),
        ))

    def resources(self, params) -> R.Resources:
        levels = params.max_levels
        cells = 2 * levels
        return R.total([
            R.equality(64, 6), R.adder(64), R.multiplexer(64, 2), R.random_logic(8),  # in
            R.equality(64, cells), R.comparator(64, cells), R.reduction(levels, 2),  # compares, match trees
            R.multiplexer(CELL_BITS, 4, cells), R.random_logic(2 * cells),  # cell selects and muxes
            R.adder(62, 2), R.adder(levels.bit_length() + 1, 2),  # counters
            R.adder(65), R.multiplexer(64, 2, 4), R.random_logic(4),  # top
            R.register(4 + 128),  # in
            R.register(cells * CELL_BITS + 2 * (levels.bit_length() + 1) + 2 * 62),  # the book
            R.register(9 * 64),  # outputs
        ])

    def module(self, params, clock_hz: float = DEFAULT_CLOCK_HZ) -> "TopOfBookModule":
        self.check(params)
        cycles = stage_cycles(self.structure(params).stages[1], clock_hz)[0]
        return TopOfBookModule(params.max_levels, cycles)

    def rtl_inputs(self, params, columns):
        names = ("side", "price", "size", "action", "flags")
        return {name: np.asarray(column, np.int64) for name, column in zip(names, columns)}

    def rtl_outputs(self, params, signals):
        return [np.array([int(v) for v in signals[name]], np.int64) for name in BookL2.outputs]


@step_helper(_nrt=False)
def set_cell(cells, row, n, key, size):
    """Set the level ``key`` of a side (``n`` cells held, best first) to ``size`` as the RTL does.

    Returns ``(n, overflowed 0/1)``: 0 removes the level; a new level is inserted in key order, and on a full
    side the worst level falls off (or the new one is dropped if it is the worst), counted as an overflow.
    """
    capacity = cells.shape[2]
    # most updates of a deep feed are below the held levels: one compare with the worst settles them
    p = n if n > 0 and cells[row, KEY, n - 1] > key else 0
    while p < n and cells[row, KEY, p] > key:
        p += 1
    if p < n and cells[row, KEY, p] == key:
        if size == 0:
            for i in range(p, n - 1):
                cells[row, KEY, i] = cells[row, KEY, i + 1]
                cells[row, SIZE, i] = cells[row, SIZE, i + 1]
            return n - 1, 0
        cells[row, SIZE, p] = size
        return n, 0
    if size == 0:
        return n, 0
    if p == capacity:
        return n, 1
    last = n - 1 if n == capacity else n
    for i in range(last, p, -1):
        cells[row, KEY, i] = cells[row, KEY, i - 1]
        cells[row, SIZE, i] = cells[row, SIZE, i - 1]
    cells[row, KEY, p] = key
    cells[row, SIZE, p] = size
    if n == capacity:
        return n, 1
    return n + 1, 0


class TopOfBookModule(StreamModule):
    """``in_side``, ``in_price``, ``in_size``, ``in_action``, ``in_flags`` (int64, the ``book_deltas`` schema) →
    ``book.l2``'s nine outputs (int64)."""

    def __init__(self, levels: int, cycles: int):
        super().__init__({n: INT64 for n in ("side", "price", "size", "action", "flags")},
                         {n: INT64 for n in BookL2.outputs})
        self.levels = levels
        self.cycles = cycles

    def elaborate(self, platform):
        m = Module()
        issue = Issue(m, self, self.cycles, self.cycles)
        apply, clear, bad, ask, key, size = self._decode(m, issue)
        valid = stage_valid(m, issue.accept, "in_valid_r")

        loop = Recurrence(m, valid, self.cycles)
        k = self.levels
        keys = [[Signal(signed(64), name=f"key_{r}_{i}") for i in range(k)] for r in range(2)]
        sizes = [[Signal(signed(64), name=f"size_{r}_{i}") for i in range(k)] for r in range(2)]
        valids = [[Signal(name=f"valid_{r}_{i}") for i in range(k)] for r in range(2)]
        counts = [Signal(range(k + 1), name=f"levels_{r}") for r in range(2)]
        overflow = Signal(unsigned(62), name="overflow")
        inconsistent = Signal(unsigned(62), name="inconsistent")
        with m.If(loop.fire):
            with m.If(clear):
                m.d.sync += [v.eq(0) for row in valids for v in row] + [c.eq(0) for c in counts]
            with m.If(bad):
                m.d.sync += inconsistent.eq(inconsistent + 1)
            for row in range(2):
                selected = apply & (ask if row == 1 else ~ask)
                with m.If(selected):
                    self._update_row(m, keys[row], sizes[row], valids[row], counts[row], overflow, key, size)

        outputs = {name: Signal(INT64, name=f"{name}_o") for name in BookL2.outputs}
        bid_top, ask_top = valids[0][0], valids[1][0]
        hold_on(m, loop.valid, [
            (outputs["best_bid"], Mux(bid_top, keys[0][0], UNDEF_PRICE)),
            (outputs["best_ask"], Mux(ask_top, -keys[1][0], UNDEF_PRICE)),
            (outputs["bid_size"], Mux(bid_top, sizes[0][0], 0)),
            (outputs["ask_size"], Mux(ask_top, sizes[1][0], 0)),
            (outputs["levels_bid"], counts[0]), (outputs["levels_ask"], counts[1]),
            (outputs["crossed"], (counts[0] > 0) & (counts[1] > 0) & (keys[0][0] + keys[1][0] >= 0)),
            (outputs["overflow"], overflow), (outputs["inconsistent"], inconsistent),
        ])
        out_valid = stage_valid(m, loop.valid, "out_valid_r")
        m.d.comb += [self.out_valid.eq(out_valid)] + [self.o[n].eq(s) for n, s in outputs.items()]
        return m

    def _decode(self, m: Module, issue: Issue):
        side, price, size, action = (self.i[n] for n in ("side", "price", "size", "action"))
        is_set = (action == ACTION_ADD) | (action == ACTION_CANCEL) | (action == ACTION_MODIFY)
        is_clear = action == ACTION_CLEAR
        is_pass = (action == ACTION_TRADE) | (action == ACTION_FILL) | (action == ACTION_NONE)
        well_formed = ((side == 1) | (side == -1)) & (price != UNDEF_PRICE) & (price != INT64_MIN) & (size >= 0)
        registers = (Signal(name="apply_r"), Signal(name="clear_r"), Signal(name="bad_r"), Signal(name="ask_r"),
                     Signal(signed(64), name="key_r"), Signal(signed(64), name="size_r"))
        apply, clear, bad, ask, key, size_r = registers
        hold_on(m, issue.accept, [
            (apply, is_set & well_formed), (clear, is_clear),
            (bad, (is_set & ~well_formed) | ~(is_set | is_clear | is_pass)),
            (ask, side == -1), (key, Mux(side == 1, price, -price)), (size_r, size),
        ])
        return registers

    def _update_row(self, m, keys, sizes, valids, count, overflow, key, size) -> None:
        """Set, remove or insert the level ``key`` in one side's cells (the caller gates on the row)."""
        k = self.levels
        match = [valids[i] & (keys[i] == key) for i in range(k)]
        better = [valids[i] & (keys[i] > key) for i in range(k)]
        any_match = Signal(name="any_match")
        m.d.comb += any_match.eq(0)
        for bit in match:
            with m.If(bit):
                m.d.comb += any_match.eq(1)

        def cell(i, key_value, size_value, valid_value):
            m.d.sync += [keys[i].eq(key_value), sizes[i].eq(size_value), valids[i].eq(valid_value)]

        with m.If(any_match):
            with m.If(size == 0):  # remove: the cells from the match on take their worse neighbour
                for i in range(k):
                    with m.If(~better[i]):
                        if i + 1 < k:
                            cell(i, keys[i + 1], sizes[i + 1], valids[i + 1])
                        else:
                            m.d.sync += valids[i].eq(0)
                m.d.sync += count.eq(count - 1)
            with m.Else():
                for i in range(k):
                    with m.If(match[i]):
                        m.d.sync += sizes[i].eq(size)
        with m.Elif(size != 0):
            with m.If(better[k - 1]):  # full, and the new level is worse than all: dropped
                m.d.sync += overflow.eq(overflow + 1)
            with m.Else():  # insert: the first non-better cell takes it, the worse ones shift down
                for i in range(k):
                    with m.If(~better[i]):
                        if i == 0:
                            cell(i, key, size, 1)
                        else:
                            with m.If(better[i - 1]):
                                cell(i, key, size, 1)
                            with m.Else():
                                cell(i, keys[i - 1], sizes[i - 1], valids[i - 1])
                with m.If(valids[k - 1]):  # the worst level falls off a full side
                    m.d.sync += overflow.eq(overflow + 1)
                with m.Else():
                    m.d.sync += count.eq(count + 1)
