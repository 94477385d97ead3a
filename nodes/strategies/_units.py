"""What the strategy ops share: decimal params turned into the tick path's int64 units, and one book check."""

from nodes.contract import step_helper
from nodes.marketdata.schemas import PRICE_SCALE, SIZE_SCALE, UNDEF_PRICE


def price_units(price: float) -> int:
    """A price in the data's int64 units (1e-9), rounded to the nearest unit (0.01 → 10,000,000)."""
    return int(round(price * PRICE_SCALE))


def size_units(qty: float) -> int:
    """A quantity in the data's int64 units (1e-9), rounded to the nearest unit."""
    return int(round(qty * SIZE_SCALE))


@step_helper
def two_sided(best_bid, best_ask):
    """True when both sides hold a price and the book is not crossed or locked (bid < ask)."""
    return best_bid != UNDEF_PRICE and best_ask != UNDEF_PRICE and best_bid < best_ask
