"""Shared helpers for engine-level tests: sample bars, example params, driving a step, writing specs.

Everything here reads the real sample data in ``data/samples`` (daily bars, 2012–2014) so the property tests
exercise the values a user's first backtest sees.
"""

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from hardware.targets import step_function
from nodes.contract import BOOL, F64, I64, ScalarType, StreamOp, default_registry
from nodes.marketdata.schemas import F_LAST, F_TOB, UNDEF_PRICE

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"
SMA_CROSS = REPO / "specs" / "strategies" / "sma_cross.yaml"
SAMPLE_INSTRUMENTS = ["AAPL", "MSFT", "IBM", "KO"]
BAR_FIELDS = ("open", "high", "low", "close", "volume")

TICK_VENUE_EXAMPLE_PARAMS = [
    {},
    {"queue_model": {"model": "prob_power", "n": 3}, "maker_fee": -0.0001, "taker_fee": 0.0004,
     "entry_latency": "3600s", "response_latency": "1800s", "equity_interval": "86400s"},
    {"queue_model": "prob_log", "quote_post_only": False, "decide_at": "every", "max_orders": 4, "seed": 3,
     "entry_latency": {"model": "uniform", "low": "60s", "high": "10800s"}, "maker_fee_per_unit": 0.01,
     "reject_windows": [{"start": 0, "end": 864_000_000_000_000, "rate": 0.5}]},
]


# Small valid params for every stream op of the library, several sets where a switch changes the code path.
# A new stream op must add an entry: the parity and prefix tests fail for an op that has none.
EXAMPLE_PARAMS: dict[str, list[dict]] = {
    "indicator.sma": [{"window": 1}, {"window": 5}, {"window": 30}],
    "indicator.ema": [{"window": 1}, {"window": 3}, {"window": 20}],
    "indicator.dema": [{"window": 1}, {"window": 3}, {"window": 20}],
    "indicator.tema": [{"window": 1}, {"window": 3}, {"window": 20}],
    "indicator.trix": [{"window": 1}, {"window": 3}, {"window": 15}],
    "indicator.wma": [{"window": 1}, {"window": 5}, {"window": 30}],
    "indicator.hma": [{"window": 2}, {"window": 5}, {"window": 20}],
    "indicator.kama": [{"window": 2}, {"window": 10}, {"window": 30}],
    "indicator.macd": [{"fast": 3, "slow": 7, "signal": 2}, {"fast": 12, "slow": 26, "signal": 9}],
    "indicator.ppo": [{"fast": 3, "slow": 7, "signal": 2, "ma": "ema"}, {"fast": 12, "slow": 26, "signal": 9, "ma": "sma"}],
    "indicator.pvo": [{"fast": 3, "slow": 7, "signal": 2, "ma": "ema"}, {"fast": 12, "slow": 26, "signal": 9, "ma": "sma"}],
    "indicator.momentum": [{"window": 1}, {"window": 10}],
    "indicator.roc": [{"window": 1}, {"window": 10}],
    "indicator.rsi": [{"window": 2}, {"window": 14}],
    "indicator.stoch_rsi": [{"rsi_window": 2, "k_window": 2, "d_window": 1},
                            {"rsi_window": 14, "k_window": 14, "d_window": 3}],
    "indicator.stochastic": [{"k_window": 1, "k_smooth": 1, "d_window": 1},
                             {"k_window": 14, "k_smooth": 3, "d_window": 3}],
    "indicator.williams_r": [{"window": 1}, {"window": 14}],
    "indicator.adx": [{"window": 2}, {"window": 14}],
    "indicator.atr": [{"window": 1}, {"window": 14}],
    "indicator.natr": [{"window": 1}, {"window": 14}],
    "indicator.cci": [{"window": 2}, {"window": 20}],
    "indicator.bollinger": [{"window": 2, "num_std": 1.0}, {"window": 20, "num_std": 2.0}],
    "indicator.linreg_slope": [{"window": 2}, {"window": 14}],
    "indicator.rolling_max": [{"window": 1}, {"window": 20}],
    "indicator.rolling_min": [{"window": 1}, {"window": 20}],
    "indicator.rolling_std": [{"window": 2}, {"window": 20}],
    "indicator.zscore": [{"window": 2}, {"window": 20}],
    "indicator.accumulation_distribution": [{}],
    "indicator.obv": [{}],
    "indicator.vpt": [{}],
    "indicator.aroon": [{"window": 2}, {"window": 25}],
    "indicator.chaikin_money_flow": [{"window": 2}, {"window": 20}],
    "indicator.donchian": [{"window": 1}, {"window": 20}],
    "indicator.ease_of_movement": [{"window": 1}, {"window": 14, "volume_scale": 1e6}],
    "indicator.force_index": [{"window": 1}, {"window": 13}],
    "indicator.keltner": [{"window": 2, "atr_window": 1, "multiplier": 1.0, "center": "close"},
                          {"window": 20, "atr_window": 10, "multiplier": 2.0, "center": "typical"}],
    "indicator.mfi": [{"window": 2}, {"window": 14}],
    "indicator.parabolic_sar": [{"acceleration": 0.02, "maximum": 0.2}, {"acceleration": 0.1, "maximum": 0.5}],
    "indicator.schaff_trend_cycle": [{"fast": 3, "slow": 7, "cycle": 3, "smooth1": 1, "smooth2": 1}, {}],
    "indicator.tsi": [{"long": 3, "short": 2, "signal": 1}, {}],
    "indicator.ulcer_index": [{"window": 2}, {"window": 14}],
    "indicator.ultimate_oscillator": [{"short": 1, "medium": 2, "long": 3}, {}],
    "indicator.vortex": [{"window": 1}, {"window": 14}],
    "indicator.vwap": [{}, {"session_start_utc": "14:30"}],
    "signal.and": [{"mode": "change"}, {"mode": "state"}],
    "signal.or": [{"mode": "change"}, {"mode": "state"}],
    "signal.vote": [{}, {"weights": [2.0, 1.0, 0.5], "threshold": 1.0, "mode": "state"}],
    "signal.cooldown": [{"events": 0}, {"events": 3, "during_cooldown": "defer"},
                        {"events": 5, "during_cooldown": "drop", "mode": "state"}],
    "signal.regime_filter": [{"condition": "direction"}, {"condition": "above", "level": 0.0, "mode": "state"},
                             {"condition": "below", "level": 1.0}],
    "signal.threshold": [{"upper": 100.0, "lower": 80.0, "center": 90.0},
                         {"upper": 110.0, "lower": 70.0, "center": 90.0, "short": True, "mode": "state"}],
    "signal.zscore_bands": [{}, {"entry": 1.0, "exit": 0.0, "short": False, "mode": "state"}],
    "sizing.atr_risk": [{}, {"risk_fraction": 0.05, "atr_multiple": 1.0, "max_leverage": 3.0, "lot_units": 10}],
    "sizing.kelly": [{}, {"kelly_scale": 0.5, "max_fraction": 2.0, "lot_units": 10}],
    "sizing.volatility_target": [{"target_vol_annual": 0.15},
                                 {"target_vol_annual": 0.4, "bars_per_year": 365, "max_leverage": 2.0, "lot_units": 10}],
    "signal.crossover": [
        {"mode": "cross", "short": True},
        {"mode": "cross", "short": False},
        {"mode": "state", "short": True},
        {"mode": "state", "short": False},
    ],
    "sizing.fixed_units": [{"units": 10}, {"units": 0.5}],
    "sizing.fraction_of_equity": [{"fraction": 0.95}, {"fraction": 0.25, "lot_units": 10}],
    "sizing.target_weights": [{}, {"lot_units": 100}],
    "sizing.rebalance": [{}, {"every_bars": 1}, {"every_bars": 7, "drift_fraction": 0.0, "lot_units": 10},
                         {"every_bars": 1_000_000_000, "drift_fraction": 0.5}],
    "exit.stop_loss": [{"stop_pct": 0.01}, {"stop_pct": 0.05}],
    "exit.take_profit": [{"take_pct": 0.01}, {"take_pct": 0.05}],
    "exit.trailing_stop": [{"trail_pct": 0.01}, {"trail_pct": 0.05}],
    "exit.time_stop": [{"bars": 1}, {"bars": 3}],
    "book.l2": [{"max_levels": 4}, {"max_levels": 64}, {"max_levels": 4096}],
    "book.l3": [{"max_levels": 4, "max_orders": 16}, {"max_levels": 64, "max_orders": 1024}, {"max_orders": 2048}],
    "book.l3_mbp": [{"max_levels": 4, "max_orders": 16}, {"max_levels": 64, "max_orders": 1024}, {"max_orders": 2048}],
    "strategy.market_maker": [
        {"tick_size": 0.01, "quote_qty": 0.001, "max_position": 0.005},
        {"tick_size": 0.01, "half_spread_ticks": 2, "min_spread_ticks": 5, "quote_qty": 0.002, "max_position": 0.01,
         "skew_ticks_per_unit": 500.0, "reserve_quotes": 0, "every_record": True},
    ],
    "strategy.imbalance_taker": [
        {"qty": 1.0, "threshold": 0.3},
        {"qty": 0.5, "threshold": 0.6, "hysteresis": 0.4, "cooldown_events": 3, "short": False, "every_record": True},
    ],
    "signal.book_imbalance": [{}, {"ratio": 1.5, "mode": "state"}],
    "risk.order_limits": [{"max_position_lots": 1, "max_notional": 100_000.0},
                          {"lots": 3, "max_position_lots": 5, "max_notional": 500.0, "lot_size": 0.01,
                           "collar_bps": 500, "max_orders": 7}],
    "order.encode": [{"instrument_id": 7},
                     {"instrument_id": 2_000_000_000, "client_id_base": 4_611_686_018_427_387_904, "tif": "day"}],
    "risk.pre_trade": [
        {},
        {"max_order_qty": 0.002, "max_order_notional": 0.3, "price_band_bps": 50, "max_position": 0.15,
         "max_exposure_notional": 20, "tick_size": 0.01, "lot_size": 0.001},
        # feeds are a day apart: a token every ~1.2 days, two at most; the same quote again within two days
        {"max_orders_per_s": 0.00001, "order_burst": 2, "duplicate_window": "172800s", "max_order_qty": 0.003},
    ],
    "risk.circuit_breaker": [
        {},
        {"max_drawdown": 300, "max_drawdown_fraction": 0.05, "max_daily_loss": 200, "max_position": 0.000000004,
         "max_rejects": 3, "reject_window": "400000s", "max_feed_delay": "23400s", "max_data_gap": "100000s",
         "max_latency": "1us", "max_drift": 0.02, "flatten_on_halt": True},
    ],
    "risk.drift": [
        {"reference_events": 20, "window": 10, "bins": 4},
        {"reference_events": 50, "window": 30, "bins": 10, "epsilon": 0.001, "every": 3},
        {"reference": [90.0, 95.0, 100.0, 105.0, 110.0, 115.0, 120.0], "bins": 3, "window": 5},
    ],
    "risk.reference_price": [{"use": "last_trade"}, {"use": "mid"}, {"use": "last_trade_else_mid"}],
    "backtest.tick_venue": TICK_VENUE_EXAMPLE_PARAMS,
    "backtest.bar_venue": [
        {"cash": 10_000, "commission": 0.002},
        {"cash": 50_000, "commission_per_unit": 0.01, "slippage_bps": 5, "fill": "close"},
        {"cash": 1_000, "commission": 0.001, "slippage_bps": 12.5, "close_at_end": False},
        {"cash": 10_000, "slippage_bps": 2, "impact": {"model": "fixed_bps", "bps": 7}},
        {"cash": 100_000, "commission": 0.001,
         "impact": {"model": "volume_share", "coef": 0.2, "max_participation": 1e-6}},
        {"cash": 100_000, "slippage_bps": 2, "fill": "close",
         "impact": {"model": "square_root", "y": 0.7, "sigma_halflife_bars": 10, "adv_halflife_bars": 5}},
        {"cash": 100_000, "impact": {"model": "almgren_chriss", "eta": 0.1, "gamma": 0.05,
                                     "permanent_halflife_bars": 10}},
    ],
}


def stream_ops() -> list[type[StreamOp]]:
    """Every stream op of the built-in library, in name order (new ops are picked up automatically)."""
    return [op for op in default_registry() if op.kind == "stream"]


def stream_op_names() -> list[str]:
    return [op.name for op in stream_ops()]


def example_params(op: type[StreamOp]) -> list:
    """The op's example params, validated by its own model; fails the test when the op has none."""
    if op.name not in EXAMPLE_PARAMS:
        pytest.fail(
            f"stream op {op.name!r} has no example params: add an entry to EXAMPLE_PARAMS in tests/support.py "
            f"(its params model {op.Params.__name__} has fields {list(op.Params.model_fields)})"
        )
    return [op.Params.model_validate(raw) for raw in EXAMPLE_PARAMS[op.name]]


def read_bars(instrument: str = "AAPL") -> dict[str, np.ndarray]:
    """The sample bars of ``instrument`` as float64 arrays (open, high, low, close, volume) plus ``date``."""
    frame = pl.read_csv(SAMPLES / f"{instrument}.csv.gz")
    bars = {name: frame[name].cast(pl.Float64).to_numpy().copy() for name in BAR_FIELDS}
    bars["date"] = frame["date"].to_numpy()
    return bars


def _rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean (causal: index i sees x[..i] only), NaN during warm-up and where the window holds a NaN."""
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=1)
    return out


def _rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing sample standard deviation, NaN during warm-up."""
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).std(axis=1, ddof=1)
    return out


def _returns(x: np.ndarray) -> np.ndarray:
    """Simple returns, 0 on the first value."""
    previous = np.concatenate([x[:1], x[:-1]])
    return x / previous - 1.0


def _target(b: dict) -> np.ndarray:
    """A target position in units, NaN (keep) now and then, changing side often."""
    return np.where(np.arange(len(b["close"])) % 4 == 1, np.nan,
                    np.round(10.0 * (b["close"] - _rolling_mean(b["close"], 10))))


def _position(b: dict) -> np.ndarray:
    """What ``prev(sim.position)`` carries for ``_target``: the last target (NaN keeps it) one bar late, flat first."""
    target = _target(b)
    held = np.zeros(len(target))
    for i in range(1, len(target)):
        held[i] = target[i - 1] if target[i - 1] == target[i - 1] else held[i - 1]
    return held


def _entry_price(b: dict) -> np.ndarray:
    """What ``prev(sim.entry_price)`` carries for ``_position``: the previous open when the side changed, NaN flat."""
    side = np.sign(_position(b))
    entry = np.full(len(side), np.nan)
    for i in range(1, len(side)):
        if side[i] != 0:
            entry[i] = entry[i - 1] if side[i] == side[i - 1] else b["open"][i - 1]
    return entry


def _sign_with_gaps(x: np.ndarray) -> np.ndarray:
    """+1 / -1 / 0 from a change, NaN (no signal) now and then: what a side port carries."""
    diff = np.diff(x, prepend=x[0])
    side = np.sign(diff)
    side[::7] = np.nan
    return side


# Causal feeds for scalar inputs by input name: each index depends on bars up to that index only, so the same
# feeds serve the prefix tests. Inputs not listed get the close (f64), a scaled close (i64) or close > open.
INPUT_FEEDS = {
    "fast": lambda b: _rolling_mean(b["close"], 3),
    "slow": lambda b: _rolling_mean(b["close"], 12),
    "side": lambda b: _sign_with_gaps(b["close"]),
    "price": lambda b: b["close"],
    "equity": lambda b: 10_000.0 * b["close"] / b["close"][0],
    "weight": lambda b: np.where(np.arange(len(b["close"])) % 5 == 0, np.nan,
                                 np.clip(50.0 * np.diff(b["close"], prepend=b["close"][0]) / b["close"], -1, 1)),
    "target": _target,
    # the venue's feedback as exit and rebalance ops read it (prev(sim.position), prev(sim.entry_price))
    "position": _position,
    "entry_price": _entry_price,
    # more sides to combine (and, or, vote), each from a different rule
    "a": lambda b: _sign_with_gaps(b["close"]),
    "b": lambda b: np.sign(b["close"] - _rolling_mean(b["close"], 10)),
    "c": lambda b: np.sign(_rolling_mean(b["close"], 3) - _rolling_mean(b["close"], 12)),
    "regime": lambda b: b["close"] - _rolling_mean(b["close"], 20),
    "z": lambda b: (b["close"] - _rolling_mean(b["close"], 20)) / _rolling_std(b["close"], 20),
    "atr": lambda b: _rolling_mean(b["high"] - b["low"], 14),
    "mean_per_bar": lambda b: _rolling_mean(_returns(b["close"]), 20),
    "variance_per_bar": lambda b: _rolling_std(_returns(b["close"]), 20) ** 2,
    "vol_per_bar": lambda b: _rolling_std(_returns(b["close"]), 20),
}


def _book_deltas(bars: dict) -> dict[str, np.ndarray]:
    """A ``book_deltas`` stream made from bars: quotes a few ticks around each close, alternating sides.

    Levels are added, modified and removed (size 0), the book is cleared now and then, and a few records are
    invalid (side 0, a missing price as UNDEF_PRICE, an unknown action), so every branch of a book op runs.
    """
    close, volume = bars["close"], bars["volume"]
    i = np.arange(len(close))
    side = np.where(i % 2 == 0, 1, -1)
    side[i % 53 == 52] = 0
    quoted = np.where(side == 1, close - 0.01 * (i % 7), close + 0.01 * (i % 7))
    price = np.where(np.isfinite(quoted), np.round(np.nan_to_num(quoted) * 1e9), 0).astype(np.int64)
    price[~np.isfinite(quoted)] = UNDEF_PRICE
    size = np.where(np.isfinite(volume), np.nan_to_num(volume) % 1e6, -1.0).astype(np.int64) * 1_000
    size[i % 6 == 5] = 0
    actions = np.array([ord(a) for a in "AMCAATAMFN"], dtype=np.int64)
    action = actions[i % len(actions)]
    action[i % 97 == 96] = ord("R")
    action[i % 89 == 88] = ord("X")
    flags = np.where(i % 3 == 2, F_LAST, 0).astype(np.int64)
    return {"side": side.astype(np.int64), "price": price, "size": size, "action": action, "flags": flags}


def _mbo_orders(bars: dict) -> dict[str, np.ndarray]:
    """An ``orders`` (MBO) stream made from bars: adds, then cancels and modifies of earlier orders.

    A/C/M refer to order ids added a few records before (some long gone, so some records contradict the
    book), prices move with the close (modifies change price or size), R clears, T/F/N pass, and a few
    records are invalid (side 0, UNDEF_PRICE, an unknown action, F_TOB), so every MBO rule runs.
    """
    deltas = _book_deltas(bars)
    i = np.arange(len(bars["close"]))
    pattern = np.array([ord(a) for a in "AAAMCAATACFAMNCA"], dtype=np.int64)
    action = pattern[i % len(pattern)]
    action[i % 97 == 96] = ord("R")
    action[i % 89 == 88] = ord("X")
    order_id = np.where(action == ord("A"), i + 1, np.maximum(i - 3, 0) + 1).astype(np.int64)
    size = np.abs(deltas["size"]) + 1_000
    size[action == ord("C")] //= np.where(i[action == ord("C")] % 2 == 0, 1, 3)  # partial cancels too
    flags = deltas["flags"].copy()
    flags[i % 71 == 70] |= F_TOB
    # on a 0.25 grid several orders share a level, so queue priority and per-level order counts matter
    price = deltas["price"].copy()
    valid = price != UNDEF_PRICE
    price[valid] = (price[valid] // 250_000_000) * 250_000_000
    return {"order_id": order_id, "side": deltas["side"], "price": price, "size": size,
            "action": action, "flags": flags}


def _book_top(bars: dict) -> dict[str, np.ndarray]:
    """A book's top as ``book.l2``/``book.l3`` emit it, made from bars, for the strategy ops.

    Bid and ask a tick or two around the close on a 0.01 grid, sizes from the volume (the ask's three bars
    late, so the imbalance swings), now and then an empty side (UNDEF_PRICE), a crossed book and a record
    inside a venue event (no F_LAST); a position walking by 0.001 units with the close, as fills would move it.
    """
    close, volume = bars["close"], bars["volume"]
    i = np.arange(len(close))
    ticks = np.round(np.nan_to_num(close) * 100).astype(np.int64)
    best_bid = (ticks - i % 3) * 10_000_000
    best_ask = (ticks + 1 + i % 2) * 10_000_000
    best_bid[i % 41 == 40] = UNDEF_PRICE
    best_ask[i % 43 == 42] = UNDEF_PRICE
    crossed = i % 37 == 36
    best_ask[crossed] = best_bid[crossed] - 10_000_000
    size = (np.nan_to_num(volume) % 1e6).astype(np.int64) * 1_000_000
    late = np.concatenate([size[:1].repeat(min(3, len(size))), size[:-3]])[: len(size)]
    moves = np.sign(np.diff(np.nan_to_num(close), prepend=np.nan_to_num(close[:1])))
    return {
        "best_bid": best_bid, "best_ask": best_ask, "bid_size": size, "ask_size": late,
        "position": (np.cumsum(moves) * 1_000_000).astype(np.int64),
        "flags": np.where(i % 5 == 4, 0, F_LAST).astype(np.int64),
    }


def _top_sizes(bars: dict) -> dict[str, np.ndarray]:
    """Top-of-book queue sizes from the volume (1e-9 units), their ratio cycling between 1/4 and 4."""
    lots = np.round(np.nan_to_num(bars["volume"]) * 1e3).astype(np.int64)
    i = np.arange(len(lots))
    return {"bid_size": lots * (1 + i % 4), "ask_size": lots * (1 + (i + 2) % 5)}


def _top_of_book(bars: dict) -> dict[str, np.ndarray]:
    """A side from the close's change, best bid/ask 1-3 cents around the close (1e-9 units), a side empty now and then."""
    close = np.nan_to_num(bars["close"])
    i = np.arange(len(close))
    bid = np.round((close - 0.01) * 1e9).astype(np.int64)
    ask = np.round((close + 0.01 * (1 + i % 3)) * 1e9).astype(np.int64)
    bid[i % 41 == 40] = UNDEF_PRICE
    return {"side": _sign_with_gaps(bars["close"]), "best_bid": bid, "best_ask": ask}


def _orders(bars: dict) -> dict[str, np.ndarray]:
    """Signed lots from the close's change (none every third bar) at the close's price."""
    close = np.nan_to_num(bars["close"])
    i = np.arange(len(close))
    qty = np.round(np.diff(close, prepend=close[:1]) * 100).astype(np.int64)
    qty[i % 3 == 0] = 0
    return {"order_qty": qty, "order_price": np.round(close * 1e9).astype(np.int64)}


def _risk_quotes(bars: dict) -> dict[str, np.ndarray]:
    """risk.pre_trade's inputs from bars: quotes a cent around the close on the 0.01 grid (now and then half
    a cent off the grid), sizes of 0.001–0.003 (some 0: cancels; some off the lot), the close as the reference
    (unknown now and then), a position that follows the close, and halts (1) and flattening (2) in stretches."""
    close = np.nan_to_num(bars["close"])
    i = np.arange(len(close))
    px = np.round(close * 100).astype(np.int64) * 10_000_000
    px[i % 13 == 12] += 5_000_000
    return {
        "bid_px": px - 10_000_000, "bid_qty": np.where(i % 5 == 4, 0, 1_000_000 * (1 + i % 3) + (i % 17 == 3)),
        "ask_px": px + 10_000_000, "ask_qty": np.where(i % 7 == 6, 0, 1_000_000 * (1 + i % 2)),
        "ref_px": np.where(i % 11 == 0, UNDEF_PRICE, px),
        "position": (np.round(10.0 * (close - np.concatenate([close[:1], close[:-1]]))) * 10_000_000).astype(np.int64),
        "halted": np.where((i // 40) % 3 == 2, 1 + i % 2, 0).astype(np.int64),
    }


def _breaker_events(bars: dict) -> dict[str, np.ndarray]:
    """risk.circuit_breaker's inputs from bars: equity following the close, positions, rejects every fourth
    event, a drift statistic, and every ninth event a control line (resume, halt, flatten, heartbeat, latency)."""
    close = np.nan_to_num(bars["close"])
    i = np.arange(len(close))
    control = i % 9 == 4
    first = close[0] if len(close) and close[0] != 0 else 1.0
    return {
        "equity": 10_000.0 * close / first,
        "position": np.round(close - np.concatenate([close[:1], close[:-1]])).astype(np.int64),
        "reject_code": np.where(i % 4 == 1, 5, 0).astype(np.int64),
        "drift": np.where(i % 3 == 0, np.nan, np.abs(np.diff(close, prepend=close[:1])) / np.maximum(close, 1.0)),
        "command": np.where(control, np.array([1, 2, 3, 4, 5])[(i // 9) % 5], 0).astype(np.int64),
        "seq": np.cumsum(control).astype(np.int64),
        "operator": control.astype(np.int64), "reason": 2 * control.astype(np.int64),
        "latency_ns": np.where(control, np.round(close).astype(np.int64), -1),
    }


def _reference_inputs(bars: dict) -> dict[str, np.ndarray]:
    """risk.reference_price's inputs: the book_deltas feed's prices and actions (trades every tenth row) and a
    book a cent around the close (empty now and then)."""
    deltas = _book_deltas(bars)
    close = np.nan_to_num(bars["close"])
    i = np.arange(len(close))
    px = np.round(close * 100).astype(np.int64) * 10_000_000
    return {"price": deltas["price"], "action": deltas["action"],
            "best_bid": np.where(i % 19 == 7, UNDEF_PRICE, px - 10_000_000), "best_ask": px + 10_000_000}


def _tick_venue_feed(bars: dict) -> dict[str, np.ndarray]:
    """A book-and-trades stream with quotes, made from bars: around each close a bid and an ask level, a trade
    that alternates aggressors (at, through or inside the quotes), now and then a level removed or the book
    cleared; the strategy quotes one tick around the close, pulling a side now and then."""
    close, volume = bars["close"], bars["volume"]
    i = np.arange(len(close))
    finite = np.isfinite(close)
    cents = np.where(finite, np.round(np.nan_to_num(close) * 100), 0).astype(np.int64)
    tick = 10_000_000  # 0.01 in 1e-9 units
    phase = i % 4
    side = np.select([phase == 0, phase == 1, phase == 2], [1, -1, np.where(i % 8 == 2, -1, 1)], 1)
    offset = np.select([phase == 0, phase == 1, phase == 2], [-1, 1, np.where(i % 8 == 2, -2, 2)], -1)
    price = (cents + offset) * tick
    price[~finite] = UNDEF_PRICE
    size = np.where(np.isfinite(volume), np.nan_to_num(volume) % 7 + 1, 1).astype(np.int64) * 1_000_000_000
    size[(phase == 3) & (i % 3 == 0)] = 0
    action = np.select([phase == 2], [ord("T")], ord("M")).astype(np.int64)
    action[i % 97 == 96] = ord("R")
    flags = np.where(phase != 0, F_LAST, 0).astype(np.int64)
    quoted = np.where(finite, cents, 0) * tick
    qty = np.where(i % 11 == 5, 0, 1_000_000_000).astype(np.int64)
    return {"side": side.astype(np.int64), "price": price, "size": size, "action": action, "flags": flags,
            "bid_px": np.where(finite, quoted - tick, UNDEF_PRICE), "bid_qty": qty,
            "ask_px": np.where(finite, quoted + tick, UNDEF_PRICE), "ask_qty": qty[::-1].copy()}


# Ops whose inputs are a whole event schema rather than bar-derived series: all their inputs from one feed.
OP_FEEDS = {
    "book.l2": _book_deltas,
    "book.l3": _mbo_orders,
    "book.l3_mbp": _mbo_orders,
    "signal.book_imbalance": _top_sizes,
    "risk.order_limits": _top_of_book,
    "order.encode": _orders,
    "risk.pre_trade": _risk_quotes,
    "risk.circuit_breaker": _breaker_events,
    "risk.reference_price": _reference_inputs,
    "backtest.tick_venue": _tick_venue_feed,
    "strategy.market_maker": _book_top,
    "strategy.imbalance_taker": _book_top,
}


def _fallback_feed(scalar: ScalarType, bars: dict) -> np.ndarray:
    if scalar is F64:
        return bars["close"]
    if scalar is I64:
        return np.round(bars["close"] * 100).astype(np.int64)
    if scalar is BOOL:
        return bars["close"] > bars["open"]
    raise AssertionError(f"no feed for scalar type {scalar}")


def op_inputs(op: type[StreamOp], bars: dict) -> list[np.ndarray]:
    """One array per step argument after the context, in ``flat_inputs()`` order, built from ``bars``.

    An op in ``OP_FEEDS`` takes all its inputs from its feed; otherwise a record input (a bar) takes the bar
    fields, a scalar input named like a bar field (high, low, close, volume) takes that field, and any other
    scalar input takes the feed of its name.
    """
    with np.errstate(all="ignore"):  # feeds over zeros and NaN holes divide by zero on purpose
        return _op_inputs(op, bars)


def _op_inputs(op: type[StreamOp], bars: dict) -> list[np.ndarray]:
    columns = []
    whole = OP_FEEDS[op.name](bars) if op.name in OP_FEEDS else {}
    for name, field, scalar in op.flat_inputs():
        if name in whole:
            column = whole[name]
        elif field is not None and field in bars:
            column = bars[field]
        elif name in INPUT_FEEDS:
            column = INPUT_FEEDS[name](bars)
        elif name in BAR_FIELDS and scalar is F64:
            column = bars[name]  # an op over bar fields as separate inputs (high, low, close)
        else:
            column = _fallback_feed(scalar, bars)
        columns.append(np.ascontiguousarray(column, dtype=scalar.dtype))
    return columns


def op_context(op: type[StreamOp], n: int, keys: np.ndarray | None = None, ts: np.ndarray | None = None) -> list:
    """Context arrays of ``op`` (key 0 unless given; timestamps one day apart unless given)."""
    ts = np.arange(n, dtype=np.int64) * 86_400_000_000_000 if ts is None else ts
    values = {
        "key": np.zeros(n, np.int64) if keys is None else keys,
        "ts_event": ts,
        "ts_recv": ts + 23_400_000_000_000,
    }
    return [values[name] for name in op.context]


def drive(op: type[StreamOp], params, context: list, inputs: list, target: str, n_keys: int = 1,
          instruments: list[str] | None = None) -> list:
    """Run the op's step over every event in a plain loop on ``target``; return one array per output port.

    ``c`` is built as the engine builds it: ``constants(params) + instrument_constants(params, instruments)``
    (instrument names default to ``I0``, ``I1``, …).
    """
    step = step_function(op.step, target)
    names = list(instruments) if instruments is not None else [f"I{k}" for k in range(n_keys)]
    c = tuple(op.constants(params)) + tuple(op.instrument_constants(params, names))
    s = op.init(c, n_keys)
    n = len(inputs[0]) if inputs else len(context[0])
    outputs = [np.empty(n, dtype=t.dtype) for t in op.outputs.values()]
    for i in range(n):
        returned = step(c, s, *(column[i] for column in context), *(column[i] for column in inputs))
        s = returned[0]
        for out, value in zip(outputs, returned[1:]):
            out[i] = value
    return outputs


def bits(array: np.ndarray) -> np.ndarray:
    """The array as integers, so equality means bit-identical (0.0 vs -0.0 and NaN payloads count)."""
    array = np.ascontiguousarray(array)
    if array.dtype == np.float64:
        return array.view(np.int64)
    return array


def assert_bit_identical(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.dtype == b.dtype, f"{what}: dtypes differ ({a.dtype} vs {b.dtype})"
    assert a.shape == b.shape, f"{what}: shapes differ ({a.shape} vs {b.shape})"
    differ = np.flatnonzero(bits(a) != bits(b))
    assert not len(differ), (
        f"{what}: {len(differ)} value(s) differ, first at index {differ[0]}: {a[differ[0]]!r} vs {b[differ[0]]!r}"
    )


def assert_frames_identical(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    """Same columns, dtypes and rows; float columns compared bit for bit."""
    assert a.columns == b.columns, f"{what}: columns differ: {a.columns} vs {b.columns}"
    assert a.schema == b.schema, f"{what}: schemas differ: {a.schema} vs {b.schema}"
    assert a.height == b.height, f"{what}: {a.height} rows vs {b.height}"
    for name in a.columns:
        if a[name].dtype.is_numeric():
            assert_bit_identical(a[name].to_numpy(), b[name].to_numpy(), f"{what}.{name}")
        else:
            assert a[name].to_list() == b[name].to_list(), f"{what}.{name} differs"


def assert_stats_identical(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys(), f"{what}: stats keys differ"
    for key in a:
        x, y = a[key], b[key]
        same = (x == y) or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        assert same, f"{what}[{key!r}]: {x!r} vs {y!r}"


def write_spec(folder: Path, name: str, nodes: dict, *, params: dict | None = None, defaults: dict | None = None,
               modules: list[str] | None = None) -> Path:
    """Write a strategy spec into ``folder`` and return its path."""
    document = {"tickloom": 1, "name": name, "kind": "strategy"}
    if params:
        document["params"] = params
    if defaults:
        document["defaults"] = defaults
    if modules:
        document["modules"] = modules
    document["nodes"] = nodes
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def sma_cross_copy(folder: Path, *, bars_path: Path | None = None, defaults: dict | None = None,
                   name: str = "sma_cross") -> Path:
    """The shipped sma_cross spec, written into ``folder`` with an absolute bars path (and other defaults)."""
    document = yaml.safe_load(SMA_CROSS.read_text())
    document["name"] = name
    document["nodes"]["bars"]["with"]["path"] = str(bars_path or SAMPLES / "AAPL.csv.gz")
    if defaults:
        document["defaults"] = {**document.get("defaults", {}), **defaults}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def multi_instrument_nodes(fraction: float = 0.25) -> dict:
    """Four instruments, SMA(5, 20) state crossover long/flat, each sized at ``fraction`` of equity.

    ``alt`` sizes the same side through target_weights (weight = side, whole lots of 10) as a sink, so a
    whole-spec run covers that op too without changing what the venue trades.
    """
    return {
        "bars": {
            "op": "source.bars_csv",
            "with": {"path": str(SAMPLES / "{instrument}.csv.gz"), "instruments": SAMPLE_INSTRUMENTS,
                     "timezone": "America/New_York"},
        },
        "fast": {"op": "indicator.sma", "in": "bars.close", "with": {"window": 5}},
        "slow": {"op": "indicator.ema", "in": "bars.close", "with": {"window": 20}},
        "cross": {"op": "signal.crossover", "in": ["fast", "slow"], "with": {"mode": "state", "short": False}},
        "target": {
            "op": "sizing.fraction_of_equity",
            "in": {"side": "cross", "price": "bars.close", "equity": "prev(sim.equity)"},
            "with": {"fraction": fraction},
        },
        "alt": {
            "op": "sizing.target_weights",
            "in": {"weight": "cross", "price": "bars.close", "equity": "prev(sim.equity)"},
            "with": {"lot_units": 10},
        },
        "sim": {
            "op": "backtest.bar_venue",
            "in": {"market": "bars", "target": "target"},
            "with": {"cash": 100_000, "commission": 0.001, "slippage_bps": 2},
        },
    }


# --- random series for property tests ------------------------------------------------------------------

_AAPL = read_bars("AAPL")
PERTURBATIONS = ("noise", "nan", "zero", "negative", "huge", "mixed", "mixed_nonzero")


def random_bars(seed: int, n: int, from_aapl: bool) -> dict[str, np.ndarray]:
    """A bar series: a random positive walk, or a window of real AAPL bars jittered a little."""
    rng = np.random.default_rng(seed)
    if from_aapl:
        start = int(rng.integers(0, len(_AAPL["close"]) - n))
        bars = {k: _AAPL[k][start : start + n] * rng.uniform(0.99, 1.01, n) for k in ("open", "high", "low", "close")}
        bars["volume"] = _AAPL["volume"][start : start + n].copy()
    else:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
        open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, 0.005, n))
        spread = np.abs(rng.normal(0.0, 0.01, n))
        bars = {
            "open": open_,
            "close": close,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "volume": rng.integers(1_000, 1_000_000, n).astype(np.float64),
        }
    return bars


def perturb_after(column: np.ndarray, t: int, how: str, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``column`` with everything after index ``t`` replaced; indices ≤ t untouched."""
    out = column.copy()
    tail = len(out) - t - 1
    if tail <= 0:
        return out
    if out.dtype != np.float64:
        out[t + 1 :] = rng.integers(-1_000, 1_000, tail).astype(out.dtype)
        return out
    replacement = {
        "noise": lambda: rng.normal(0.0, 50.0, tail) + 100.0,
        "nan": lambda: np.full(tail, np.nan),
        "zero": lambda: np.zeros(tail),
        "negative": lambda: -np.abs(rng.normal(100.0, 30.0, tail)),
        "huge": lambda: np.full(tail, 1e12),
        "mixed": lambda: rng.choice(np.array([np.nan, 0.0, -1.0, 1e9, 1e-9, 42.0]), tail),
        "mixed_nonzero": lambda: rng.choice(np.array([np.nan, -1.0, 1e9, 1e-9, 42.0]), tail),
    }[how]()
    out[t + 1 :] = replacement
    return out


STREAM_NODES_SMA_CROSS = ["fast", "slow", "cross", "target", "sim"]
STREAM_NODES_MULTI = ["fast", "slow", "cross", "target", "alt", "sim"]


def placed(nodes: list[str], target: str) -> list[str]:
    return [f"{n}={target}" for n in nodes]


def promoted_live_market_maker(folder: Path, stage: str = "paper") -> tuple[Path, Path]:
    """The Binance market maker on the shipped cut, with venue latencies short against a paced feed (so a
    session of a few seconds fills orders), written to ``folder`` and promoted to ``stage`` in a registry there.
    Returns (spec path, registry path)."""
    import yaml

    from pipelines.spec import load_spec
    from runtime.promotion import Registry

    document = yaml.safe_load((REPO / "specs" / "strategies" / "market_making_binance.yaml").read_text())
    document["nodes"]["md"]["with"]["path"] = str(REPO / "data" / "samples" / "binance" /
                                                   "spot_btcusdt_20240808.head2000.gz")
    document["nodes"]["venue"]["with"].update(entry_latency="100us", cancel_latency="100us",
                                              response_latency="100us")
    path, registry = folder / "mm_live.yaml", folder / "registry.duckdb"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    spec = load_spec(path)
    Registry(registry).record_promotion(spec=spec.name, spec_hash=spec.spec_hash, stage=stage, action="promote",
                                        passed=True, who="test", why="a live session test", gates=[],
                                        previous_hash=None, spec_path=str(path))
    return path, registry
