"""Write a stress test's report as one self-contained HTML file (inline CSS, pictures as base64 PNGs, no script).

Sections: header (spec, hash, scenario file), the comparison (per run the main statistics, then per scenario
the change from the base run), the equity curves of every run on one chart, what each scenario did (its steps
as written), and per Monte Carlo its quantiles, a few probabilities and its figure. Each run's own report is
in its folder (``base/report.html``, ``<scenario>/report.html``).
"""

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from nodes.backtest.html_report import REPORT_CSS, escape_html, image_html, section_html, format_value, html_table

_EXTRA_CSS = "td.worse { color: #b00; } td.better { color: #070; }"
# for these statistics a lower value is better: their deltas are coloured the other way
LOWER_IS_BETTER = ("Volatility (Ann.) [%]", "Commissions [$]", "fees", "max_drawdown", "max_drawdown_pct", "rejected")
# counts and shares that are neither better nor worse when they change: their deltas are not coloured
NEUTRAL = ("# Trades", "Exposure Time [%]", "fills", "maker_fills", "taker_fills", "orders_sent", "time_in_market",
           "volume", "notional")


@dataclass
class MonteCarloSection:
    """One Monte Carlo as the report shows it."""

    heading: str
    note: str
    quantiles: pl.DataFrame
    summary: dict[str, Any]
    png: bytes


@dataclass
class StressReport:
    """What the report shows; ``table`` has one row per run (``scenario``, the stats, ``Δ <stat>`` columns)."""

    title: str
    header: dict[str, str]
    table: pl.DataFrame
    main_stats: list[str]
    equity_png: bytes | None
    scenarios: dict[str, list[str]]  # scenario → its steps as written
    monte_carlo: list[MonteCarloSection] = field(default_factory=list)


def render_stress_report(report: StressReport) -> str:
    """The report as HTML text."""
    body = [f"<header><h1>{escape_html(report.title)}</h1><table class='meta'>"
            + "".join(f"<tr><td><b>{escape_html(k)}</b></td><td>{escape_html(v)}</td></tr>" for k, v in report.header.items())
            + "</table></header>"]
    body.append(section_html("comparison", "Base run and scenarios", _comparison(report)))
    if report.equity_png is not None:
        body.append(section_html("equity", "Equity and drawdown of every run", image_html(report.equity_png, "equity curves")))
    body.append(section_html("scenarios", "Scenarios", _scenarios(report.scenarios)))
    for mc in report.monte_carlo:
        content = (f"<p class='note'>{escape_html(mc.note)}</p>" + _quantile_table(mc.quantiles)
                   + html_table(list(mc.summary), [list(mc.summary.values())]) + image_html(mc.png, mc.heading))
        body.append(section_html("mc-" + mc.heading.lower().replace(" ", "-"), mc.heading, content))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body.append(f"<footer><p class='note'>Rendered by tickloom at {stamp}.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape_html(report.title)}</title><style>{REPORT_CSS}{_EXTRA_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _comparison(report: StressReport) -> str:
    stats = [s for s in report.main_stats if s in report.table.columns]
    head = "<tr><th class='key'>run</th>" + "".join(f"<th>{escape_html(s)}</th>" for s in stats) + "</tr>"
    rows = []
    for row in report.table.iter_rows(named=True):
        cells = [f"<td class='key'><b>{escape_html(row['scenario'])}</b></td>"]
        for stat in stats:
            text = format_value(row[stat])
            delta = row.get(f"Δ {stat}")
            shown = format_value(delta) if delta is not None else "--"
            # a change too small to show (rounds to 0) is no change
            if row["scenario"] != "base" and delta is not None and math.isfinite(delta) and shown.lstrip("-") != "0":
                better = (delta < 0) if stat in LOWER_IS_BETTER else (delta > 0)
                colour = "" if stat in NEUTRAL else f" class='{'better' if better else 'worse'}'"
                cells.append(f"<td{colour}>{escape_html(text)} ({'+' if delta > 0 else ''}{escape_html(shown)})</td>")
            else:
                cells.append(f"<td>{escape_html(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ("<p class='note'>In brackets: the change from the base run, green when better, red when worse "
            "(counts and shares of time uncoloured). "
            "Every statistic of every run is in <code>stress.parquet</code> and <code>stress.json</code>.</p>")
    return note + f"<table>{head}{''.join(rows)}</table>"


def _scenarios(scenarios: dict[str, list[str]]) -> str:
    if not scenarios:
        return "<p class='note'>No scenario was run.</p>"
    items = "".join(
        f"<tr><td class='key'><b>{escape_html(name)}</b></td><td class='key'>"
        + "<br>".join(f"<code>{escape_html(step)}</code>" for step in steps) + "</td></tr>"
        for name, steps in scenarios.items())
    return f"<table>{items}</table>"


def _quantile_table(table: pl.DataFrame) -> str:
    return html_table(table.columns, [[_quantile_cell(v) for v in row] for row in table.iter_rows()])


def _quantile_cell(value: Any) -> Any:
    return "never" if isinstance(value, float) and math.isinf(value) and value > 0 else value


def step_text(raw: dict[str, Any]) -> str:
    """A step as one line of flow-style YAML-like text (``price_shock at=2013-04-15 bps=-800``)."""
    rest = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in raw.items() if k != "transform")
    return f"{raw.get('transform', '?')} {rest}".strip()
