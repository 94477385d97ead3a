"""Market impact models for the bar venue: what the market charges for the size of an order.

Each model is a ``step_helper`` in its own file (``fixed_bps``, ``volume_share``, ``square_root``,
``almgren_chriss``); ``estimates`` keeps the causal per-instrument volatility and volume they need. This
module holds the params model users write under ``impact:`` (and ``impact_by_instrument:``), turns it into
numbers for the step (``impact_constants``), and dispatches by model code (``fillable_qty``,
``impact_price``). Formulas and sources are in each model's module docstring.

A model moves the fill price against the order on top of the venue's slippage::

    fill_price = p × (1 ± slippage_bps/1e4) + move        (p: the bar's open, or its close with fill: close)

``move`` is signed like the order (a buy pays more, a sell receives less), except Almgren–Chriss's permanent
offset, which carries the sign of the account's earlier flow. ``model: none`` (the default) leaves the
venue's arithmetic exactly as it was.
"""

import difflib
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from nodes.backtest.impact import almgren_chriss, fixed_bps, square_root, volume_share
from nodes.backtest.impact.almgren_chriss import almgren_chriss_move
from nodes.backtest.impact.fixed_bps import fixed_bps_move
from nodes.backtest.impact.square_root import square_root_move
from nodes.backtest.impact.volume_share import volume_share_fillable, volume_share_move
from nodes.contract import OpParams, step_helper

NONE, FIXED_BPS, VOLUME_SHARE, SQUARE_ROOT, ALMGREN_CHRISS = range(5)
MODEL_CODES = {
    "none": NONE,
    "fixed_bps": FIXED_BPS,
    "volume_share": VOLUME_SHARE,
    "square_root": SQUARE_ROOT,
    "almgren_chriss": ALMGREN_CHRISS,
}
# Each model's params and defaults (None: required), from the model's own module.
MODEL_PARAMS: dict[str, dict[str, float | None]] = {
    "none": {},
    "fixed_bps": fixed_bps.DEFAULTS,
    "volume_share": volume_share.DEFAULTS,
    "square_root": square_root.DEFAULTS,
    "almgren_chriss": almgren_chriss.DEFAULTS,
}
# Columns of an instrument's row of model numbers (``impact_constants``).
(R_FRACTION, R_COEF, R_MAX_PARTICIPATION, R_Y, R_SIGMA_DECAY, R_ADV_DECAY, R_ETA, R_GAMMA,
 R_PERMANENT_DECAY) = range(9)
N_ROW = 9


class ImpactParams(OpParams):
    """One instrument's impact model as written under ``impact:``: ``model`` and that model's params only.

    Example (YAML, under the venue's ``with:``)::

        impact: {model: square_root, y: 0.8, sigma_halflife_bars: 20, adv_halflife_bars: 20}
        impact_by_instrument: {KO: {model: fixed_bps, bps: 3}}
    """

    model: Literal["none", "fixed_bps", "volume_share", "square_root", "almgren_chriss"] = Field(
        "none", description="impact model: none (default, no impact), fixed_bps, volume_share, square_root, "
        "almgren_chriss (formulas in docs/contracts.md section 4)"
    )
    bps: float | None = Field(None, ge=0, lt=10_000, description="fixed_bps: move against the order, in basis "
                              "points of the reference price, on top of slippage_bps (required)")
    coef: float | None = Field(None, ge=0, description="volume_share: move as a fraction of price per unit of "
                               "participation (fill / bar volume); impact_bps = coef × participation × 1e4 "
                               "(default 0.1)")
    max_participation: float | None = Field(None, gt=0, le=1, description="volume_share: most of a bar's volume "
                                            "one fill may take; the rest stays pending to the next bar "
                                            "(default 0.025)")
    y: float | None = Field(None, ge=0, description="square_root: the Y of Y × σ × √(qty / ADV), order one in "
                            "the literature (default 1.0)")
    sigma_halflife_bars: float | None = Field(None, gt=0, description="square_root: half-life of the "
                                              "exponentially weighted σ of log close-to-close returns, in "
                                              "bars of the instrument (default 20)")
    adv_halflife_bars: float | None = Field(None, gt=0, description="square_root, almgren_chriss: half-life "
                                            "of the exponentially weighted average bar volume, in bars "
                                            "(default 20)")
    eta: float | None = Field(None, ge=0, description="almgren_chriss: temporary impact, a fraction of price "
                              "per unit of the fill's share of its bar's volume (required)")
    gamma: float | None = Field(None, ge=0, description="almgren_chriss: permanent impact, a fraction of price "
                                "per unit of the fill's share of ADV; shifts later fills (required)")
    permanent_halflife_bars: float | None = Field(None, ge=0, description="almgren_chriss: half-life of the "
                                                  "permanent offset in bars of the instrument; 0: it never "
                                                  "decays (default 0)")

    @model_validator(mode="before")
    @classmethod
    def _params_of_the_model(cls, data):
        """Refuse keys that are not the model's params, require the model's required ones, fill in its defaults.

        All problems are reported at once, in the model's terms (``y`` is not a param of ``fixed_bps``).
        """
        if not isinstance(data, dict) or data.get("model", "none") not in MODEL_PARAMS:
            return data  # not a mapping, or an unknown model: the field checks say so
        model = data.get("model", "none")
        params = MODEL_PARAMS[model]
        takes = ", ".join(params) or "no params"
        problems = []
        for key in data:
            if key == "model" or key in params:
                continue
            close = difflib.get_close_matches(str(key), list(params), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            kind = "not a param of" if key in cls.model_fields else "unknown key for"
            problems.append(f"{key}: {kind} impact model {model!r}{hint}")
        missing = [k for k, default in params.items() if default is None and k not in data]
        if missing:
            problems.append(f"impact model {model!r} needs {', '.join(missing)}")
        if problems:
            raise ValueError(f"{'; '.join(problems)} (it takes: {takes})")
        return {**{k: v for k, v in params.items() if v is not None}, **data}

    def __str__(self) -> str:
        """The model and its params as written in YAML (``tickloom ops`` shows defaults this way)."""
        shown = ", ".join(f"{k}: {v}" for k, v in self.model_dump().items() if v is not None)
        return "{" + shown + "}"


def impact_constants(params: ImpactParams) -> tuple[int, np.ndarray]:
    """Return ``(model code, row of N_ROW float64 numbers)`` for the step; decays are precomputed here so
    cpu and numba use the very same constants."""
    row = np.zeros(N_ROW)
    row[R_PERMANENT_DECAY] = 1.0
    values = {
        R_FRACTION: None if params.bps is None else params.bps / 1e4,
        R_COEF: params.coef,
        R_MAX_PARTICIPATION: params.max_participation,
        R_Y: params.y,
        R_SIGMA_DECAY: _decay(params.sigma_halflife_bars),
        R_ADV_DECAY: _decay(params.adv_halflife_bars),
        R_ETA: params.eta,
        R_GAMMA: params.gamma,
        R_PERMANENT_DECAY: _decay(params.permanent_halflife_bars or None),
    }
    for column, value in values.items():
        if value is not None:
            row[column] = value
    return MODEL_CODES[params.model], row


def _decay(halflife_bars: float | None) -> float | None:
    """The per-bar factor of an exponential weighting with that half-life: ``0.5 ** (1 / halflife_bars)``."""
    return None if halflife_bars is None else 0.5 ** (1.0 / halflife_bars)


def instrument_impact(impact: ImpactParams, by_instrument: dict[str, ImpactParams],
                      instruments: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return per-instrument ``(model codes int64[n], rows float64[n, N_ROW])``: ``by_instrument``'s model where
    it names the instrument, else ``impact``.

    Raises
    ------
    ValueError: ``by_instrument`` names an instrument that is not in ``instruments`` (the message lists them).
    """
    unknown = [name for name in by_instrument if name not in instruments]
    if unknown:
        hints = "".join(
            f"; did you mean {close[0]!r} for {name!r}?"
            for name in unknown
            if (close := difflib.get_close_matches(name, instruments, n=1, cutoff=0.6))
        )
        raise ValueError(
            f"impact_by_instrument names {', '.join(repr(n) for n in unknown)}, not an instrument of this spec "
            f"(its instruments: {', '.join(instruments) or 'none'}){hints}"
        )
    models = np.zeros(len(instruments), np.int64)
    rows = np.zeros((len(instruments), N_ROW))
    for k, name in enumerate(instruments):
        models[k], rows[k] = impact_constants(by_instrument.get(name, impact))
    return models, rows


@step_helper
def uses_estimates(model):
    """Whether the model needs σ or ADV (the venue then keeps them for the instrument)."""
    return model == SQUARE_ROOT or model == ALMGREN_CHRISS


@step_helper(_nrt=False)
def fillable_qty(model, impact, key, qty, bar_volume):
    """Return the part of an order of ``qty`` that fills in a bar of ``bar_volume``.

    ``none`` and ``fixed_bps``: all of it (as without impact). ``volume_share``: up to its participation cap.
    ``square_root`` and ``almgren_chriss``: all of it on a bar that traded, nothing on a bar without volume
    (0, negative or NaN), where their formulas have no meaning.
    """
    if model == VOLUME_SHARE:
        return volume_share_fillable(qty, bar_volume, impact[key, R_MAX_PARTICIPATION])
    if (model == SQUARE_ROOT or model == ALMGREN_CHRISS) and not bar_volume > 0.0:
        return 0.0
    return qty


@step_helper(_nrt=False)
def impact_price(model, impact, key, qty, price, bar_volume, sigma, adv, offset):
    """Return ``(move, offset after the fill)`` for a fill of ``qty`` at reference ``price``.

    ``move`` is added to the slipped price; ``sigma`` (per bar), ``adv`` (> 0) and ``offset`` (the
    instrument's Almgren–Chriss permanent offset) are read only by the models that use them.
    """
    if model == FIXED_BPS:
        return fixed_bps_move(impact[key, R_FRACTION], qty, price), offset
    if model == VOLUME_SHARE:
        return volume_share_move(impact[key, R_COEF], qty, price, bar_volume), offset
    if model == SQUARE_ROOT:
        return square_root_move(impact[key, R_Y], qty, price, sigma, adv), offset
    if model == ALMGREN_CHRISS:
        return almgren_chriss_move(impact[key, R_ETA], impact[key, R_GAMMA], qty, price, bar_volume, adv, offset)
    return 0.0, offset
