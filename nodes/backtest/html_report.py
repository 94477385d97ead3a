"""Write a backtest's report as one self-contained HTML file, from a run folder or from frames.

Scope: one file a quant can mail or archive: inline CSS, every picture a base64 PNG inside the page, no script,
no font, no link to anything outside the file. Sections, in order: header (spec name, spec hash, run facts),
parameters, statistics, equity and drawdown, trades on the price chart (one chart per instrument, at most
``MAX_INSTRUMENTS``), monthly returns (a coloured table), trades (at most ``MAX_TRADE_ROWS`` rows, with a note
saying how many are left out and where they all are). Callers may add sections (walk-forward adds its folds).

``write_run_report(run_dir)`` renders a run folder as ``pipelines/run.py`` writes it (``spec.json``,
``stats.json``, ``equity.parquet``, ``trades.parquet`` and the venue's ``<node>.parquet`` for prices), without
running anything: ``tickloom report RUN_DIR`` and every ``tickloom run`` call it. Non-goals: interactive
charts, comparing runs.
"""

import base64
import datetime as dt
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from nodes.backtest.plots import (
    MONTHS,
    equity_drawdown_figure,
    monthly_returns,
    monthly_returns_figure,
    png_bytes,
    price_trades_figure,
)
from nodes.errors import DataQualityError

MAX_TRADE_ROWS = 200
MAX_INSTRUMENTS = 4
REPORT_FILE = "report.html"
MONTHLY_PNG = "monthly_returns.png"
_HIDDEN_STATS = ("spec_hash", "events")  # shown in the header, not as statistics

REPORT_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f4f4f4; } td.key, th.key { text-align: left; }
table.meta td { text-align: left; border: none; padding: 0.1em 0.8em 0.1em 0; }
.columns { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.note { color: #666; font-size: 0.9em; } img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 0.3em; }
"""


@dataclass
class ReportData:
    """What a report shows; ``header`` and ``params`` are shown in their order."""

    title: str
    header: dict[str, str]
    params: dict[str, Any]
    stats: dict[str, Any] | None
    equity: pl.DataFrame | None = None  # ts, equity
    trades: pl.DataFrame | None = None  # as nodes.backtest.trades returns them
    marks: pl.DataFrame | None = None  # ts, instrument, mark_price
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, HTML) added after the trades
    note: str = ""  # shown under the title


def render_html_report(data: ReportData) -> tuple[str, dict[str, bytes]]:
    """Render the report; return the HTML text and the PNGs drawn for it (file name → bytes).

    Example:
        >>> day = 86_400 * 10**9
        >>> data = ReportData("demo", {"spec hash": "abc"}, {"fast": 10}, {"Return [%]": 1.5},
        ...                   equity=pl.DataFrame({"ts": [0, day, 2 * day], "equity": [100.0, 99.0, 101.5]}))
        >>> text, pngs = render_html_report(data)
        >>> text.startswith("<!DOCTYPE html>"), sorted(pngs)
        (True, ['equity_drawdown.png', 'monthly_returns.png'])
    """
    pngs: dict[str, bytes] = {}
    body = [f"<header><h1>{escape_html(data.title)}</h1>"]
    if data.note:
        body.append(f"<p class='note'>{escape_html(data.note)}</p>")
    body.append("<table class='meta'>" + "".join(
        f"<tr><td><b>{escape_html(k)}</b></td><td>{escape_html(v)}</td></tr>" for k, v in data.header.items()) + "</table></header>")
    body.append(section_html("parameters", "Parameters", _key_value_table(data.params) if data.params
                         else "<p class='note'>The spec has no params.</p>"))
    if data.stats is None:
        body.append(section_html("statistics", "Statistics", "<p class='note'>This run has no backtest (no venue node), "
                             "so there are no statistics, equity or trades.</p>"))
    else:
        shown = {k: v for k, v in data.stats.items() if not k.endswith("_ns") and k not in _HIDDEN_STATS}
        body.append(section_html("statistics", "Statistics", _stats_tables(shown)))
    has_equity = data.equity is not None and data.equity.height > 0
    if has_equity:
        pngs["equity_drawdown.png"] = png_bytes(equity_drawdown_figure(data.equity))
        body.append(section_html("equity", "Equity and drawdown", image_html(pngs["equity_drawdown.png"], "equity and drawdown")))
    if data.marks is not None and data.marks.height:
        body.append(section_html("price", "Trades on the price chart", _price_charts(data, pngs)))
    if has_equity:
        table = monthly_returns(data.equity)
        pngs[MONTHLY_PNG] = png_bytes(monthly_returns_figure(table))
        body.append(section_html("monthly", "Monthly returns [%]", _monthly_table(table)))
    if data.trades is not None:
        body.append(section_html("trades", "Trades", _trades_table(data.trades)))
    for heading, content in data.sections:
        body.append(section_html(_anchor(heading), heading, content))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body.append(f"<footer><p class='note'>Rendered by tickloom at {stamp}.</p></footer>")
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape_html(data.title)}</title><style>{REPORT_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return page, pngs


def write_run_report(run_dir: str | Path, *, write_pngs: bool = True) -> list[Path]:
    """Render ``run_dir/report.html`` from the run folder's files (no re-run); return it, then the PNGs written.

    PNGs written beside it: ``monthly_returns.png`` and ``trades_<instrument>.png`` per charted instrument (the
    equity and drawdown PNG of a run is its ``report.png``).

    Raises:
        DataQualityError: ``run_dir`` is not a run folder (no ``spec.json``) or its files are unreadable.
    """
    data = load_run_report(run_dir)
    page, pngs = render_html_report(data)
    run_dir = Path(run_dir)
    report = run_dir / REPORT_FILE
    report.write_text(page, encoding="utf-8")
    written = [report]
    if write_pngs:
        for name, content in pngs.items():
            if name == "equity_drawdown.png":
                continue  # the run's report.png already is this picture
            (run_dir / name).write_bytes(content)
            written.append(run_dir / name)
    return written


def load_run_report(run_dir: str | Path) -> ReportData:
    """Read what a report shows from a run folder.

    Raises:
        DataQualityError: no ``spec.json`` in ``run_dir``, or a file in it cannot be read.
    """
    run_dir = Path(run_dir)
    spec_file = run_dir / "spec.json"
    if not spec_file.is_file():
        raise DataQualityError(f"{run_dir} is not a run folder: it has no spec.json (tickloom run writes one)")
    try:
        described = json.loads(spec_file.read_text())
        resolved = described["resolved"]
        stats_file = run_dir / "stats.json"
        stats = json.loads(stats_file.read_text()) if stats_file.is_file() else None
    except (json.JSONDecodeError, KeyError) as error:
        raise DataQualityError(f"{run_dir}: cannot read the run's JSON files ({error})") from None
    header = {"spec": resolved.get("name", "?"), "spec hash": described.get("spec_hash", "?"),
              "kind": resolved.get("kind", "?"), "run folder": run_dir.resolve().name}
    window = described.get("window")
    if window:
        header["window"] = _window_text(window)
    if stats is not None:
        header["period"] = f"{stats.get('Start')} → {stats.get('End')}"
        if stats.get("events") is not None:
            header["events"] = f"{stats['events']:,}"
    equity = _read(run_dir / "equity.parquet")
    trades = _read(run_dir / "trades.parquet")
    marks = _marks(run_dir, resolved)
    nodes = ", ".join(f"{n} ({node['op']})" for n, node in resolved.get("nodes", {}).items())
    sections = [("Spec", f"<p class='note'>Nodes: {escape_html(nodes)}. The resolved spec is in <code>spec.json</code>.</p>")]
    return ReportData(f"{header['spec']} — backtest report", header, resolved.get("params", {}), stats, equity,
                      trades, marks, sections)


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.is_file() else None


def _marks(run_dir: Path, resolved: dict) -> pl.DataFrame | None:
    """Prices from the first recorded node that carries the venue's marks (``instrument`` and ``mark_price``)."""
    for node_id in resolved.get("nodes", {}):
        path = run_dir / f"{node_id}.parquet"
        if path.is_file() and {"ts_recv", "instrument", "mark_price"} <= set(pl.read_parquet_schema(path)):
            return pl.read_parquet(path, columns=["ts_recv", "instrument", "mark_price"]).rename({"ts_recv": "ts"})
    return None


def _price_charts(data: ReportData, pngs: dict[str, bytes]) -> str:
    instruments = data.marks["instrument"].unique(maintain_order=True).to_list()
    trades = data.trades if data.trades is not None else pl.DataFrame()
    if trades.height:
        # the most traded instruments first: they are the ones a reader wants to see
        counts = dict(trades.group_by("instrument").len().iter_rows())
        instruments.sort(key=lambda i: -counts.get(i, 0))
    parts = []
    for instrument in instruments[:MAX_INSTRUMENTS]:
        name = f"trades_{_file_safe(instrument)}.png"
        pngs[name] = png_bytes(price_trades_figure(data.marks, trades, instrument))
        parts.append(image_html(pngs[name], f"{instrument} price and trades"))
    if len(instruments) > MAX_INSTRUMENTS:
        parts.append(f"<p class='note'>Showing {MAX_INSTRUMENTS} of {len(instruments)} instruments (the most traded); "
                     "every instrument's prices are in the venue's recorded parquet file.</p>")
    parts.append("<p class='note'>▲ long entry, ▼ short entry, ○ exit; the line joining them is green for a winner, "
                 "red for a loser.</p>")
    return "\n".join(parts)


def _stats_tables(stats: dict[str, Any]) -> str:
    items = list(stats.items())
    half = (len(items) + 1) // 2
    return "<div class='columns'>" + _key_value_table(dict(items[:half])) + _key_value_table(dict(items[half:])) + "</div>"


def _key_value_table(values: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td class='key'>{escape_html(k)}</td><td>{escape_html(format_value(v))}</td></tr>" for k, v in values.items())
    return f"<table>{rows}</table>"


def _monthly_table(table: pl.DataFrame) -> str:
    if table.is_empty():
        return "<p class='note'>No equity points.</p>"
    values = [v for m in MONTHS for v in table[m].to_list() if v is not None]
    scale = max((abs(v) for v in values), default=1.0) or 1.0
    head = "<tr><th>year</th>" + "".join(f"<th>{m}</th>" for m in MONTHS) + "<th>Year</th></tr>"
    rows = []
    for row in table.iter_rows(named=True):
        cells = [f"<td class='key'>{row['year']}</td>"]
        for key in (*MONTHS, "Year"):
            value = row[key]
            if value is None or not math.isfinite(value):
                cells.append("<td></td>")
                continue
            alpha = min(abs(value) / scale, 1.0) * 0.6 + 0.05
            colour = f"rgba(0,150,0,{alpha:.2f})" if value >= 0 else f"rgba(210,0,0,{alpha:.2f})"
            weight = ";font-weight:bold" if key == "Year" else ""
            cells.append(f"<td style='background:{colour}{weight}'>{value:.2f}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _trades_table(trades: pl.DataFrame) -> str:
    if trades.is_empty():
        return "<p class='note'>No trades.</p>"
    columns = [c for c in ("instrument", "size", "entry_ts", "exit_ts", "entry_price", "exit_price", "pnl",
                           "return_pct", "commission", "duration_ns") if c in trades.columns]
    shown = trades.head(MAX_TRADE_ROWS)
    labels = {"entry_ts": "entry (UTC)", "exit_ts": "exit (UTC)", "return_pct": "return [%]", "duration_ns": "duration"}
    head = "<tr>" + "".join(f"<th>{escape_html(labels.get(c, c))}</th>" for c in columns) + "</tr>"
    rows = []
    for row in shown.select(columns).iter_rows(named=True):
        cells = []
        for column in columns:
            value = row[column]
            if column in ("entry_ts", "exit_ts"):
                text = format_time(value)
            elif column == "duration_ns":
                text = _duration(value)
            else:
                text = format_value(value)
            cells.append(f"<td{' class=key' if column == 'instrument' else ''}>{escape_html(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if trades.height > MAX_TRADE_ROWS:
        note = (f"<p class='note'>Showing the first {MAX_TRADE_ROWS} of {trades.height:,} trades; all of them are in "
                "<code>trades.parquet</code>.</p>")
    return f"{note}<table>{head}{''.join(rows)}</table>"


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table of these cells, each escaped and formatted with ``format_value`` (text cells as they are)."""
    head = "<tr>" + "".join(f"<th>{escape_html(label)}</th>" for label in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{escape_html(v if isinstance(v, str) else format_value(v))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def section_html(anchor: str, heading: str, content: str) -> str:
    return f"<section id='{anchor}'><h2>{escape_html(heading)}</h2>\n{content}\n</section>"


def image_html(content: bytes, alt: str) -> str:
    return f"<img alt='{escape_html(alt)}' src='data:image/png;base64,{base64.b64encode(content).decode('ascii')}'>"


def _anchor(heading: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in heading.lower()).strip("-")


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _window_text(window: dict) -> str:
    parts = []
    if window.get("warmup_start_ns") is not None:
        parts.append(f"warm-up from {format_time(window['warmup_start_ns'])}")
    parts.append(f"from {format_time(window['start_ns'])}" if window.get("start_ns") is not None else "from the start")
    parts.append(f"to before {format_time(window['end_ns'])}" if window.get("end_ns") is not None else "to the end")
    return ", ".join(parts)


def format_value(value: Any) -> str:
    """A value as the report prints it: thousands separators, 4 decimals at most, ``--`` for NaN and None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def format_time(ts_ns: int | None) -> str:
    """Int ns since the epoch as ``YYYY-MM-DD HH:MM:SS`` UTC (fraction only when non-zero)."""
    if ts_ns is None:
        return "--"
    seconds, fraction = divmod(int(ts_ns), 10**9)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "")


def _duration(ns: int | None) -> str:
    if ns is None:
        return "--"
    days, rest = divmod(int(ns), 86_400 * 10**9)
    hours, rest = divmod(rest, 3_600 * 10**9)
    minutes = rest // (60 * 10**9)
    return f"{days}d {hours:02d}:{minutes:02d}" if hours or minutes else f"{days}d"


def escape_html(value: Any) -> str:
    return html.escape(str(value), quote=True)
