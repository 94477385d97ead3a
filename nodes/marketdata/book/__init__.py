"""Order books as stream ops, one book per instrument, the same step on cpu (Python) and numba.

- ``book.l2`` (``l2.py``): a price-level book from ``book_deltas`` (each event sets a level's total size);
- ``book.l3`` (``l3.py``): an order-by-order book from DBN MBO ``orders``, by Databento's rules
  (``mbo_rules.py``), with FIFO priority per order and exact levels;
- ``book.l3_mbp`` (``l3_mbp.py``): the same L3 book emitting the L2 deltas each MBO record implies;
- ``replay_book`` / ``mbo_to_mbp`` / ``run_op`` (``replay.py``): run a book over a table, chunks or a DBN file
  from Python (``tickloom book FILE --json``).

Shared pieces: ``ladder.py`` (sorted level arrays growing at both ends, best level last), ``levels.py``
(L3 levels: size and order count), ``order_table.py`` (open-addressing hash map order id → order).
"""

from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.book.l3 import BookL3, queue_ahead
from nodes.marketdata.book.l3_mbp import BookL3Mbp
from nodes.marketdata.book.replay import book_levels, mbo_to_mbp, replay_book, run_op

__all__ = ["BookL2", "BookL3", "BookL3Mbp", "book_levels", "mbo_to_mbp", "queue_ahead", "replay_book", "run_op"]
