"""Write the FIX sample logs of this folder from the real Binance captures in ``data/samples/binance``.

There is no real FIX market-data log we may ship, so the samples carry real prices, sizes and times in FIX:
each Binance capture is normalized by tickloom (``read_capture``, clock policy ``shift``), and its book
events and trades are written as the messages a FIX market-data feed would send for them:

- the REST depth snapshot → one MarketDataSnapshotFullRefresh (35=W) with every level;
- each depth diff → one MarketDataIncrementalRefresh (35=X) with one entry per level that changes:
  MDUpdateAction 0 (new) for a level the book did not have, 1 (change) for one it had, 2 (delete) for a size
  of 0 (a removal of a level the book does not hold — Binance sends those — is left out: a FIX feed would not
  send it, and it does not change the book);
- each trade → one 35=X with a trade entry (MDEntryType 2);
- a Logon first and a Heartbeat every 10 s of log time, as in a real session.

| file | source | FIX | log form |
|---|---|---|---|
| ``spot_btcusdt.fix44.log.gz`` | ``spot_btcusdt_20240808.head2000.gz``, every event | FIX.4.4 | QuickFIX file log: ``YYYYMMDD-HH:MM:SS.nnnnnnnnn : `` receive-time prefix, SOH, gzip |
| ``spot_ethusdt.fix50sp2.log.zst`` | ``spot_ethusdt_20240808.head2000.gz``, every event | FIXT.1.1 + ApplVerID 9 (FIX 5.0 SP2) | one message a line, no prefix (SendingTime is the receive time), SOH, zstd |
| ``cm_btcusd_perp.fix42.log`` | ``cm_btcusd_perp_20240808.head2000.gz``, the snapshot and the first 300 diffs | FIX.4.2 | QuickFIX/J file log: ``YYYYMMDD-HH:MM:SS.sss: `` prefix, ``|`` delimiter, plain text |

Times: FIX 4.4 and 4.2 carry the venue time as SendingTime (milliseconds) and trades' MDEntryDate/MDEntryTime;
the log prefix is the capture's receive time (ns in 4.4, truncated to ms in 4.2). FIX 5.0 SP2 carries the
receive time as SendingTime (ns) and the venue time as each entry's TransactTime, the Binance update id as
RptSeq, and trades' TradeID and AggressorSide.

Run from the repository root (deterministic: the same files every time)::

    /work/venv/bin/python data/samples/fix/make_samples.py
"""

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import zstandard

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from nodes.marketdata.binance import read_capture  # noqa: E402
from nodes.marketdata.fix.encode import (  # noqa: E402
    date_text,
    decimal_text,
    encode_message,
    time_only_text,
    utc_timestamp_text,
)
from nodes.marketdata.schemas import ACTION_CLEAR, F_LAST, F_SNAPSHOT  # noqa: E402

BINANCE = REPO / "data" / "samples" / "binance"
TARGET = "TICKLOOM"
HEARTBEAT_NS = 10 * 1_000_000_000
_MS = 1_000_000


@dataclass(frozen=True)
class SampleSpec:
    """One sample: which capture, how many diff events, which FIX version and log form."""

    name: str
    source: str
    version: str  # "4.4", "5.0SP2", "4.2"
    delimiter: str
    prefix: str | None  # "quickfix" (9 digits, " : "), "quickfixj" (3 digits, ": ") or None
    compression: str  # "gzip", "zstd", "none"
    max_diff_events: int | None = None

    @property
    def begin_string(self) -> str:
        return {"4.4": "FIX.4.4", "4.2": "FIX.4.2", "5.0SP2": "FIXT.1.1"}[self.version]


SAMPLES = [
    SampleSpec("spot_btcusdt.fix44.log.gz", "spot_btcusdt_20240808.head2000.gz", "4.4", "\x01", "quickfix", "gzip"),
    SampleSpec("spot_ethusdt.fix50sp2.log.zst", "spot_ethusdt_20240808.head2000.gz", "5.0SP2", "\x01", None, "zstd"),
    SampleSpec("cm_btcusd_perp.fix42.log", "cm_btcusd_perp_20240808.head2000.gz", "4.2", "|", "quickfixj", "none",
               max_diff_events=300),
]


def source_frames(spec: SampleSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The normalized Binance ``book_deltas`` and ``trades`` the sample is written from (the same cut)."""
    frames, _ = read_capture(BINANCE / spec.source, clock_policy="shift")
    book, trades = frames["book_deltas"], frames["trades"]
    ends = book.with_row_index("row").filter((pl.col("flags") & F_LAST) > 0)
    snapshots = ends.filter((pl.col("flags") & F_SNAPSHOT) > 0).height
    if spec.max_diff_events is not None and ends.height > snapshots + spec.max_diff_events:
        last_row = ends["row"][snapshots + spec.max_diff_events - 1]
        book = book.head(last_row + 1)
        trades = trades.filter(pl.col("ts_recv") <= book["ts_recv"][-1])
    return book, trades


def _events(book: pl.DataFrame, trades: pl.DataFrame) -> list[tuple]:
    """Book messages (runs of rows up to F_LAST) and trades, merged in receive order: (ts_recv, kind, order, data)."""
    events = []
    rows = book.to_dicts()
    start = 0
    for k, row in enumerate(rows):
        if row["flags"] & F_LAST:
            run = rows[start : k + 1]
            events.append((run[0]["ts_recv"], 0, len(events), run))
            start = k + 1
    for k, row in enumerate(trades.to_dicts()):
        events.append((row["ts_recv"], 1, k, row))
    return sorted(events, key=lambda e: e[:3])


class _Writer:
    """Numbered messages of one session, with the log's prefix and delimiter."""

    def __init__(self, spec: SampleSpec, sender: str):
        self.spec = spec
        self.sender = sender
        self.seq = 0
        self.lines: list[bytes] = []

    def send(self, msg_type: str, sending_ns: int, receive_ns: int, body: list[tuple], app: bool = True) -> None:
        spec = self.spec
        self.seq += 1
        header = [(35, msg_type)]
        if spec.version == "5.0SP2" and app:
            header.append((1128, "9"))
        digits = 9 if spec.version == "5.0SP2" else 3
        header += [(49, self.sender), (56, TARGET), (34, self.seq), (52, utc_timestamp_text(sending_ns, digits))]
        message = encode_message(spec.begin_string, header + body, spec.delimiter)
        if spec.prefix == "quickfix":
            message = f"{utc_timestamp_text(receive_ns, 9)} : ".encode() + message
        elif spec.prefix == "quickfixj":
            message = f"{utc_timestamp_text(receive_ns, 3)}: ".encode() + message
        self.lines.append(message)


def fix_log(spec: SampleSpec) -> bytes:
    """The sample log of ``spec``, uncompressed."""
    book, trades = source_frames(spec)
    venue = (book["venue"][0] if book.height else trades["venue"][0])
    symbol = (book["symbol"][0] if book.height else trades["symbol"][0])
    events = _events(book, trades)
    writer = _Writer(spec, venue)
    first_recv = events[0][0]
    logon = [(98, 0), (108, 30)] + ([(1137, "9")] if spec.version == "5.0SP2" else [])
    writer.send("A", first_recv, first_recv, logon, app=False)
    last_heartbeat = first_recv
    levels: dict[tuple[int, int], int] = {}
    for ts_recv, kind, _, data in events:
        while ts_recv - last_heartbeat >= HEARTBEAT_NS:
            last_heartbeat += HEARTBEAT_NS
            writer.send("0", last_heartbeat, last_heartbeat, [], app=False)
        if kind == 1:
            _trade(writer, data, symbol)
        elif data[0]["action"] == ACTION_CLEAR and data[0]["flags"] & F_SNAPSHOT:
            levels = {(r["side"], r["price"]): r["size"] for r in data[1:]}
            _snapshot(writer, data, symbol)
        else:
            _diff(writer, data, symbol, levels)
    return b"\n".join(writer.lines) + b"\n"


def _sending(spec: SampleSpec, ts_event: int, ts_recv: int) -> int:
    # 5.0 SP2: SendingTime stands for the receive time (the log has no prefix); else the venue time, whole ms
    return ts_recv if spec.version == "5.0SP2" else ts_event - ts_event % _MS


def _snapshot(writer: _Writer, rows: list[dict], symbol: str) -> None:
    spec = writer.spec
    entries = []
    for r in rows[1:]:
        entries += [(269, "0" if r["side"] == 1 else "1"), (270, decimal_text(r["price"])), (271, decimal_text(r["size"]))]
    ts_event, ts_recv = rows[0]["ts_event"], rows[0]["ts_recv"]
    body = [(262, "depth"), (55, symbol)]
    if spec.version == "5.0SP2":
        body.append((779, utc_timestamp_text(ts_event - ts_event % _MS, 3)))
    body += [(268, len(rows) - 1)] + entries
    writer.send("W", _sending(spec, ts_event, ts_recv), ts_recv, body)


def _diff(writer: _Writer, rows: list[dict], symbol: str, levels: dict) -> None:
    spec = writer.spec
    entries, count = [], 0
    for r in rows:
        key = (r["side"], r["price"])
        if r["size"] == 0:
            if key not in levels:
                continue
            del levels[key]
            action = "2"
        else:
            action = "1" if key in levels else "0"
            levels[key] = r["size"]
        count += 1
        entries += [(279, action), (269, "0" if r["side"] == 1 else "1"), (55, symbol), (270, decimal_text(r["price"]))]
        if action != "2":
            entries.append((271, decimal_text(r["size"])))
        entries += _entry_time(spec, r["ts_event"], book=True)
        if spec.version == "5.0SP2":
            entries.append((83, r["sequence"]))
    if count:
        ts_event, ts_recv = rows[0]["ts_event"], rows[0]["ts_recv"]
        writer.send("X", _sending(spec, ts_event, ts_recv), ts_recv, [(262, "depth"), (268, count)] + entries)


def _trade(writer: _Writer, row: dict, symbol: str) -> None:
    spec = writer.spec
    entry = [(279, "0"), (269, "2")]
    if spec.version != "5.0SP2":
        entry.append((278, row["trade_id"]))
    entry += [(55, symbol), (270, decimal_text(row["price"])), (271, decimal_text(row["size"]))]
    if spec.version == "5.0SP2":
        entry.append((1003, row["trade_id"]))
        entry += _entry_time(spec, row["ts_event"], book=False)
        entry.append((2446, "1" if row["side"] == 1 else "2"))
    else:
        entry += _entry_time(spec, row["ts_event"], book=False)
    writer.send("X", _sending(spec, row["ts_event"], row["ts_recv"]), row["ts_recv"],
                [(262, "trades"), (268, 1)] + entry)


def _entry_time(spec: SampleSpec, ts_event: int, book: bool) -> list[tuple]:
    whole_ms = ts_event - ts_event % _MS
    if spec.version == "5.0SP2":
        return [(60, utc_timestamp_text(whole_ms, 3))]
    if spec.version == "4.2" or not book:  # 4.4 books take SendingTime; trades and 4.2 say when
        return [(272, date_text(whole_ms)), (273, time_only_text(whole_ms % 86_400_000_000_000, 3))]
    return []


def write_sample(spec: SampleSpec, folder: Path = HERE) -> Path:
    """Write ``spec``'s log into ``folder`` (compressed as its name says) and return its path."""
    data = fix_log(spec)
    path = Path(folder) / spec.name
    if spec.compression == "gzip":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    elif spec.compression == "zstd":
        data = zstandard.ZstdCompressor(level=19).compress(data)
    path.write_bytes(data)
    return path


def main() -> None:
    for spec in SAMPLES:
        path = write_sample(spec)
        print(f"{path.relative_to(REPO)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
