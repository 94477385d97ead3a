"""``source.binance_ws``: Binance market data from a live websocket, normalized as ``source.binance_capture`` does.

The reader subscribes to the combined streams of its symbols (``<url>/stream?streams=btcusdt@depth@100ms/...``).
The socket is read, and its messages decoded, in the thread that polls the reader: ``poll()`` takes what the
socket has without waiting (the live runtime's event loop calls it, and sleeps on ``fileno()``), ``chunks
(max_rows)`` polls and waits in turn (blocking until at least one row or the end; ``max_wait_ms`` > 0 waits that
long after the first row to batch more). A message goes from the socket to its rows without changing threads.
A helper thread does what may block for long: connecting (and reconnecting) and fetching the REST snapshots; it
hands them over (calling ``on_arrival`` when set, so a sleeping loop wakes up).

Each socket read is stamped ``ts_recv = time.time_ns()`` and every complete message in it is written as a
capture line (``<ts_recv> <JSON>``) and handed, a message at a time, to the project's Binance normalizer
(``normalize.LineNormalization``): the same parser, exact decimals, dedup and update-id rules (``sequence``) as a
recorded capture, so the rows are those ``source.binance_capture`` gives for the same messages, and the ports are
the same (``nodes.marketdata.stream_ports``): a spec swaps one for the other. A message that continues a live
book (a depth diff with the next update ids) or a trade goes through the normalizer's steady path
(``LineNormalization.feed_steady``: one compiled call, a few µs); anything else (a snapshot, a gap, a repeat, a
clock going back, bookTicker) through the whole normalizer: the rows are the same either way. Whole,
unfragmented data frames in a read are cut out directly; anything else (control frames, fragments, a partial
frame) goes through the websocket protocol (websockets' Sans-I/O ``ClientProtocol``).

The book (schemas ``book_deltas`` and ``book_and_trades``) follows Binance's procedure: subscribe, buffer the
diffs, fetch a REST snapshot (``<rest_url>/api/v3/depth`` for spot, ``/fapi/v1/depth`` USD-M, ``/dapi/v1/depth``
COIN-M) once the first diff of a symbol has arrived, then apply the diffs that continue it. A snapshot's rows
are a clear (action R) and its levels, flagged ``F_SNAPSHOT``, at the time the snapshot arrived.

Disconnects: the reader reconnects with exponential backoff (``reconnect_backoff_ms`` doubling up to
``reconnect_backoff_max_ms``) and subscribes again. What was missed meanwhile shows in the update ids: the
first diff that does not continue the book is a gap (``reorder_max`` 0: at once, since a TCP stream cannot
reorder), which emits a clear row (R, ``F_MAYBE_BAD_BOOK``), buffers the diffs, fetches a fresh snapshot and
continues from it. Nothing is guessed: a reconnect that missed no diff needs no snapshot. Trades and quotes
missed while away are lost (Binance does not replay them); ``report`` counts every reconnect, gap and resync.

The reader ends when ``stop()`` is called, when the server refuses the stream for good (HTTP 410, as
``tickloom feed-server`` does at the end of its replay) or after ``max_reconnects`` attempts in a row that
could not connect; ``report.ended`` says which. An error (in decoding, or in the helper thread) is raised by
``poll`` and ``chunks`` after the rows before it.

Example::

    book: {op: source.binance_ws, with: {url: "ws://127.0.0.1:9000", rest_url: "http://127.0.0.1:9000",
                                         symbols: [BTCUSDT], schema: book_and_trades}}
"""

import queue
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidURI
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from nodes.contract import OpParams, SourceOp
from nodes.marketdata.binance.normalize import STEADY_DEPTH, STEADY_TRADE, normalize_lines
from nodes.marketdata.binance.report import BinanceQualityReport
from nodes.marketdata.binance.source import release_lines
from nodes.marketdata.schemas import ACTION_TRADE, F_LAST
from nodes.marketdata.stream_ports import OUTPUTS, PORTS, SCHEMA_PORTS

MARKETS = {  # market → (update-id rules, REST depth path)
    "spot": ("spot", "/api/v3/depth"),
    "usdm": ("futures", "/fapi/v1/depth"),
    "coinm": ("futures", "/dapi/v1/depth"),
}
_STREAMS_OF_SCHEMA = {
    "book_deltas": ("depth",), "trades": ("trade",), "quotes": ("bookTicker",), "book_and_trades": ("depth", "trade"),
}
_RECV_BYTES = 1 << 18
_NOTHING = object()  # a non-blocking read found nothing
_BYTES_PER_POLL = 1 << 20  # one poll reads at most about this much (a batch stays bounded when behind)
_STEADY_PORT_ROWS = 2 + len(PORTS)  # ts_event, ts_recv and the ports lead ``STEADY_COLUMNS``


class BinanceWsParams(OpParams):
    url: str = Field("wss://stream.binance.com:9443",
                     description="websocket base URL (ws:// or wss://); '/stream?streams=...' is appended")
    rest_url: str = Field("https://api.binance.com", description="REST base URL of the depth snapshots")
    market: Literal["spot", "usdm", "coinm"] = Field(
        "spot", description="spot, usdm (USD-M futures) or coinm (COIN-M): the update-id rules and the REST path")
    symbols: list[str] = Field(description="instruments to subscribe to, in this order (Binance symbols, e.g. BTCUSDT)")
    schema_: Literal["book_deltas", "trades", "quotes", "book_and_trades"] = Field(
        "book_deltas", alias="schema", description="which normalized events this source emits")
    streams: list[Literal["depth", "trade", "bookTicker"]] | None = Field(
        None, description="streams to subscribe to; default those of the schema (book_and_trades: depth and trade)")
    depth_update_ms: Literal[0, 100, 250, 500, 1000] | None = Field(
        100, description="depth stream update speed ('@depth@100ms'); null: the stream's default ('@depth')")
    snapshot_limit: int = Field(1000, ge=1, le=5000, description="levels per side asked of the REST snapshot")
    max_wait_ms: float = Field(
        0.0, ge=0.0, description="after the first row, wait up to this long for more to batch (0: yield what arrived)")
    reconnect_backoff_ms: float = Field(100.0, gt=0.0, description="wait before the first reconnect, doubled each time")
    reconnect_backoff_max_ms: float = Field(5000.0, gt=0.0, description="the longest wait between reconnects")
    max_reconnects: int = Field(
        10, ge=0, description="connection attempts in a row that may fail before the source ends")
    connect_timeout_s: float = Field(10.0, gt=0.0, description="timeout of a connection, a handshake and a snapshot")
    idle_timeout_s: float = Field(
        60.0, gt=0.0, description="a connection silent this long is taken as dead and reconnected")
    reorder_max: int = Field(
        0, ge=0, description="diffs held for reordering before a gap is declared (0: a hole is a gap at once)")
    buffer_max: int = Field(
        1000, ge=1, description="diffs buffered per symbol while waiting for a snapshot (oldest dropped, counted)")
    clock_policy: Literal["report", "reject"] = Field(
        "report", description="receive times are kept; 'reject' fails when the local clock runs behind the venue's")

    model_config = {**OpParams.model_config, "populate_by_name": True}

    @model_validator(mode="after")
    def _check(self):
        if not self.symbols or len({s.upper() for s in self.symbols}) != len(self.symbols):
            raise ValueError("'symbols' must be a non-empty list without duplicates")
        try:
            parse_uri(self.url)
        except InvalidURI as error:
            raise ValueError(f"url must be a ws:// or wss:// URL: {error}") from None
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url must be an http:// or https:// URL, not {self.rest_url!r}")
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_ms:
            raise ValueError("reconnect_backoff_max_ms must be >= reconnect_backoff_ms")
        return self

    def stream_names(self) -> list[str]:
        """The subscribed stream names: ``btcusdt@depth@100ms``, ``btcusdt@trade``, ..."""
        kinds = self.streams if self.streams is not None else _STREAMS_OF_SCHEMA[self.schema_]
        depth = "depth" if self.depth_update_ms is None else f"depth@{self.depth_update_ms}ms"
        return [f"{s.lower()}@{depth if k == 'depth' else k}" for s in self.symbols for k in kinds]

    def stream_url(self) -> str:
        return f"{self.url.rstrip('/')}/stream?streams={'/'.join(self.stream_names())}"


@dataclass
class LiveFeedReport:
    """What the live source did (updated by its thread while it runs; ``quality`` is complete once it ended)."""

    url: str
    connects: int = 0  # websocket handshakes that succeeded
    reconnects: int = 0  # of which after the first
    disconnects: int = 0  # connections lost (closed by the server, reset, silent past idle_timeout_s)
    failed_attempts: int = 0  # connection attempts that failed
    gaps: int = 0  # holes in the update ids (every symbol), each followed by a resync
    snapshots: int = 0  # REST snapshots applied
    resyncs: int = 0  # of which after a gap
    snapshot_failures: int = 0  # snapshot requests that failed (retried on the next message)
    messages: int = 0  # websocket messages received
    control_messages: int = 0  # of which answers to requests, not market data
    bytes_received: int = 0
    rows: int = 0  # rows emitted
    last_close: str | None = None  # the last close code and reason the server sent
    last_error: str | None = None  # the last connection or snapshot error
    queued_max: int = 0  # the most socket reads one poll took (the consumer fell behind when this grows)
    ended: str | None = None  # stopped, server_gone, max_reconnects or error
    quality: BinanceQualityReport | None = None  # the normalizer's (bad messages, clock, update ids); see ended
    reconnect_times_ns: list[int] = field(default_factory=list)  # when each reconnect happened (time.time_ns)


class BinanceWs(SourceOp):
    """Emit one normalized schema from Binance's live websocket streams (book_deltas, trades, quotes, book_and_trades).

    Same ports and rows as ``source.binance_capture``; see the module docstring for the session rules
    (snapshot, reconnect, gap and resync) and ``LiveFeedReport`` for what ``reader.report`` counts.

    Example::

        book: {op: source.binance_ws, with: {url: "ws://127.0.0.1:9000", rest_url: "http://127.0.0.1:9000",
                                             symbols: [BTCUSDT], schema: book_and_trades}}
    """

    name = "source.binance_ws"
    Params = BinanceWsParams
    outputs = OUTPUTS

    @classmethod
    def instruments(cls, params: BinanceWsParams, base_dir: Path | None = None) -> list[str]:
        return [s.upper() for s in params.symbols]

    @classmethod
    def open(cls, params: BinanceWsParams, base_dir: Path | None = None) -> "BinanceWsReader":
        return BinanceWsReader(params)


class FeedGone(Exception):
    """Raised when the server refuses the stream for good (HTTP 410 at the handshake)."""


class BinanceWsReader:
    """Chunks of one schema as they arrive; ``report`` is a ``LiveFeedReport``; ``stop()`` ends the stream.

    The socket is read and its messages decoded in the thread that calls ``poll`` (or iterates ``chunks``): a
    message goes from the socket to the rows without changing threads. A helper thread (started by the first
    call) connects, reconnects and fetches the REST snapshots, the calls that may block for long.
    """

    def __init__(self, params: BinanceWsParams):
        self.params = params
        self.instruments = [s.upper() for s in params.symbols]
        self.report = LiveFeedReport(url=params.stream_url())
        self._venue_kind, self._rest_path = MARKETS[params.market]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._decoder = normalize_lines(
            params.stream_url(), venue_kind=self._venue_kind, clock_policy=params.clock_policy,
            symbols=self.instruments, unlisted_symbols="drop", reorder_max=params.reorder_max,
            buffer_max=params.buffer_max, chunk_lines=4096, max_bad_fraction=1.0, threads=False,
        )
        self.report.quality = self._decoder.report  # updated as messages arrive; complete once the feed ended
        kinds = params.streams if params.streams is not None else _STREAMS_OF_SCHEMA[params.schema_]
        self._wants_book = "depth" in kinds and params.schema_ in ("book_deltas", "book_and_trades")
        self._book_ready = False
        self._gaps_seen = 0
        self._next_snapshot_ns: dict[str, int] = {}
        self._instrument_of = np.empty(0, np.int32)
        self._released_upto = 0
        wants = {"book_deltas": (True, False), "trades": (False, True), "quotes": (False, False),
                 "book_and_trades": (True, True)}[params.schema_]
        self._steady_wants = {STEADY_DEPTH: wants[0], STEADY_TRADE: wants[1]}
        # between the reading thread and the helper: the helper hands over connections and snapshots
        self._helper = threading.Condition()
        self._connection: _Connection | None = None  # the connection being read
        self._fresh: _Connection | None = None  # opened by the helper, not read yet
        self._wants_connection = True
        self._snapshots_wanted: dict[str, str] = {}  # symbol → its book state when asked
        self._snapshots: queue.SimpleQueue = queue.SimpleQueue()  # (symbol, state when asked, body or error)
        self._snapshots_pending = 0  # asked, not answered: the socket waits (the old order: see ``poll``)
        self._helper_done = False
        self._delivered = threading.Event()  # set with each hand-over (``chunks`` waits on it and the socket)
        self._ended = False
        self.on_arrival = None  # called by the helper when it hands something over (set by an event loop)

    # -- the consumer side -------------------------------------------------------------------------------------

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield the rows as they arrive, at most ``max_rows`` a chunk; end when the feed ends.

        Raises:
            Exception: whatever stopped the feed (a ``DataQualityError`` with ``clock_policy`` 'reject', a bug),
                after the rows before it.
        """
        max_wait_s = self.params.max_wait_ms / 1e3
        try:
            while True:
                chunk = self.poll()
                if chunk is None:
                    if self.ended:
                        break
                    if not self._ended:  # (ended with an error: the next poll raises it)
                        self.wait(0.05)
                    continue
                parts, rows = [chunk], len(chunk["ts_recv"])
                deadline = time.monotonic() + max_wait_s
                while rows < max_rows and not self._ended and time.monotonic() < deadline:
                    self.wait(deadline - time.monotonic())
                    more = self.poll()
                    if more is not None:
                        parts.append(more)
                        rows += len(more["ts_recv"])
                chunk = _joined(parts)
                for start in range(0, rows, max_rows):
                    yield {k: v[start : start + max_rows] for k, v in chunk.items()}
        finally:
            self.stop()

    def poll(self) -> dict[str, np.ndarray] | None:
        """Read and decode what the socket has, without waiting; None: nothing yet (``ended``: nothing ever).

        The first call starts the helper thread.

        Raises:
            Exception: whatever stopped the feed, after the rows before it (at the next call).
        """
        if self._ended:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return None
        self._start()
        out: list[dict[str, np.ndarray]] = []
        try:
            self._take_fresh()
            self._take_snapshots(out)
            # while a snapshot is on its way the socket waits, so the snapshot's rows come before those of the
            # messages sent after it (the order of a recording): the diffs could not be applied before it anyway
            awaiting = self._snapshots_pending and not self._helper_done
            if self._connection is not None and not awaiting:
                self._read(out)
            if self._wants_book:
                self._resync()
            if self._helper_done and self._connection is None and self._fresh is None and self._snapshots.empty():
                self._finish(out)
        except BaseException as error:  # the rows before it are handed over, the error at the next call
            self._error = error
            self.report.ended = "error"
            self.report.last_error = repr(error)
            self._finish(out, closing=False)
        return _joined(out) if out else None

    @property
    def ended(self) -> bool:
        """True once ``poll`` has returned the last rows (the feed ended and nothing is left to take)."""
        return self._ended and self._error is None

    def fileno(self) -> int | None:
        """The socket being read (an event loop waits on it), or None between connections."""
        connection = self._connection
        return None if connection is None or connection.closed else connection.sock.fileno()

    def wait(self, timeout_s: float) -> None:
        """Sleep until the socket has data, the helper hands something over, or ``timeout_s``."""
        if self._delivered.is_set():
            self._delivered.clear()
            return
        fd = self.fileno()
        if fd is None:
            self._delivered.wait(max(timeout_s, 0.0))
            self._delivered.clear()
            return
        try:
            select.select([fd], [], [], max(min(timeout_s, 0.01), 0.0))  # short: hand-overs are seen soon
        except (OSError, ValueError):
            pass  # closed meanwhile: the next poll finds out

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the stream: close the connection and wait for the helper thread."""
        self._stopping.set()
        for connection in (self._connection, self._fresh):
            if connection is not None:
                connection.shutdown()
        with self._helper:
            self._helper.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    close = stop

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._help, name="tickloom-binance-ws", daemon=True)
            self._thread.start()

    # -- reading (the consumer's thread) -------------------------------------------------------------------------

    def _take_fresh(self) -> None:
        if self._fresh is not None and self._connection is None:
            with self._helper:
                self._connection, self._fresh = self._fresh, None
            self._last_data_s = time.monotonic()

    def _read(self, out: list) -> None:
        """Read what the socket has (about ``_BYTES_PER_POLL`` at most), decode it into ``out``."""
        connection, report = self._connection, self.report
        reads = taken = 0
        while taken < _BYTES_PER_POLL:
            try:
                received = connection.receive_nowait()
            except OSError as error:  # reset, or closed by stop()
                report.last_error = f"receive: {error!r}"
                self._lost()
                return
            if received is None:
                self._lost()
                return
            if received is _NOTHING:
                break
            ts_ns, payloads, size = received
            reads += 1
            taken += size
            report.bytes_received += size
            if payloads:
                self._decode(ts_ns, payloads, out)
            if size < _RECV_BYTES:
                break  # the socket had less than a read's worth: come back at the next poll, not after an EAGAIN
        report.queued_max = max(report.queued_max, reads)
        if reads:
            self._last_data_s = time.monotonic()
        elif time.monotonic() - self._last_data_s > self.params.idle_timeout_s:
            report.last_error = f"receive: silent for {self.params.idle_timeout_s} s"
            self._lost()

    def _lost(self) -> None:
        """The connection ended: note why, close it, ask the helper for another one (unless stopping)."""
        connection, report = self._connection, self.report
        if connection.close_code is not None:
            report.last_close = f"{connection.close_code} {connection.close_reason}".strip()
        connection.shutdown()
        self._connection = None
        if not self._stopping.is_set():
            report.disconnects += 1
        with self._helper:
            self._wants_connection = True
            self._helper.notify_all()

    def _finish(self, out: list, closing: bool = True) -> None:
        """The feed is over: the rows the end releases (held diffs become gaps), the complete report."""
        self._ended = True
        self.stop()
        if closing:
            self._emit(self._decoder.close(), out)
        self.report.quality = self._decoder.report
        if self.report.ended is None:
            self.report.ended = "stopped"

    def _decode(self, ts_ns: int, payloads: list[bytes], out: list) -> None:
        """Decode one socket read's messages, each as a capture line stamped with the read's time, in order."""
        self.report.messages += len(payloads)
        stamp = b"%d " % ts_ns
        for payload in payloads:
            if payload.startswith(b'{"result"') or payload.startswith(b'{"error"'):
                self.report.control_messages += 1
                continue
            line = stamp + payload + b"\n"
            kind, rows = self._decoder.feed_steady(line)
            if kind:
                if rows and self._steady_wants[kind]:
                    self._add_rows(self._steady_chunk(kind, rows), out)
                continue
            self._emit(self._decoder.feed(line), out)

    def _take_snapshots(self, out: list) -> None:
        """Feed the snapshots the helper fetched, stamped with the time they are taken."""
        while not self._snapshots.empty():
            symbol, state, body = self._snapshots.get_nowait()
            self._snapshots_pending -= 1
            self._next_snapshot_ns.pop(symbol, None)
            if isinstance(body, BaseException):
                self.report.snapshot_failures += 1
                self.report.last_error = f"snapshot {symbol}: {body!r}"
                self._next_snapshot_ns[symbol] = time.time_ns() + int(self.params.reconnect_backoff_ms * 1e6)
                continue
            self._emit(self._decoder.feed(b"%d %s\n" % (time.time_ns(), body)), out)
            self.report.snapshots += 1
            self.report.resyncs += state == "invalid"
        if self._wants_book:
            states = self._decoder.book_states()
            self._book_ready = len(states) == len(self.instruments) and all(s == "live" for s in states.values())

    def _resync(self) -> None:
        """Ask the helper for the snapshot of every symbol without a valid book (first diff buffered, or a gap)."""
        decoder = self._decoder
        if self._book_ready and decoder.gaps == self._gaps_seen:
            return
        self.report.gaps = self._gaps_seen = decoder.gaps
        now_ns = time.time_ns()
        wanted = {}
        for symbol, state in decoder.book_states().items():
            if state in ("no_book", "invalid") and now_ns >= self._next_snapshot_ns.get(symbol, 0):
                wanted[symbol] = state
        with self._helper:
            fresh = {s: st for s, st in wanted.items() if s not in self._snapshots_wanted}
            if fresh:
                self._snapshots_wanted.update(fresh)
                self._snapshots_pending += len(fresh)
                for symbol in fresh:  # asked once; asked again after a failure's backoff or the next gap
                    self._next_snapshot_ns[symbol] = 1 << 62
                self._helper.notify_all()

    # -- the helper thread: connections and snapshots ----------------------------------------------------------

    def _help(self) -> None:
        p, report = self.params, self.report
        failures = 0
        backoff_s = p.reconnect_backoff_ms / 1e3
        try:
            _warm_up(self._venue_kind)
            while not self._stopping.is_set():
                with self._helper:
                    while not (self._stopping.is_set() or self._wants_connection or self._snapshots_wanted):
                        self._helper.wait()
                    wanted, self._snapshots_wanted = self._snapshots_wanted, {}
                    connect = self._wants_connection
                for symbol, state in wanted.items():
                    self._fetch(symbol, state)
                if not connect or self._stopping.is_set():
                    continue
                if report.connects and not failures:  # the connection was lost: wait before coming back
                    self._stopping.wait(backoff_s)
                    if self._stopping.is_set():
                        break
                try:
                    connection = _Connection(p.stream_url(), p.connect_timeout_s)
                except FeedGone:
                    report.ended = "server_gone"
                    break
                except OSError as error:
                    report.failed_attempts += 1
                    report.last_error = f"connect: {error!r}"
                    failures += 1
                    if failures > p.max_reconnects:
                        report.ended = "max_reconnects"
                        break
                    self._stopping.wait(backoff_s)
                    backoff_s = min(2 * backoff_s, p.reconnect_backoff_max_ms / 1e3)
                    continue
                failures = 0
                backoff_s = p.reconnect_backoff_ms / 1e3
                report.connects += 1
                if report.connects > 1:
                    report.reconnects += 1
                    report.reconnect_times_ns.append(time.time_ns())
                with self._helper:
                    self._fresh, self._wants_connection = connection, False
                if self._stopping.is_set():
                    connection.shutdown()
                self._hand_over()
        except BaseException as error:  # handed to the consumer
            self._error = error
            report.ended = "error"
            report.last_error = repr(error)
        finally:
            if report.ended is None and self._stopping.is_set():
                report.ended = "stopped"
            self._helper_done = True
            self._hand_over()

    def _fetch(self, symbol: str, state: str) -> None:
        try:
            body = self._fetch_snapshot(symbol)
        except (OSError, urllib.error.URLError) as error:
            body = error
        self._snapshots.put((symbol, state, body))
        self._hand_over()

    def _hand_over(self) -> None:
        self._delivered.set()
        if self.on_arrival is not None:
            self.on_arrival()

    def _steady_chunk(self, kind: int, rows: int) -> dict[str, np.ndarray]:
        """The port chunk of the rows ``feed_steady`` wrote (the chunk ``_emit`` makes of ``feed``'s rows)."""
        out = self._decoder.steady_out
        block = out[:_STEADY_PORT_ROWS, :rows].copy()
        code = int(out[_STEADY_PORT_ROWS, 0])  # one message: one symbol
        if code >= len(self._instrument_of):
            self._map_instruments()
        # the columns in ``_ports``' order (a recorder takes its schema from the first chunk)
        chunk = {"ts_event": block[0], "ts_recv": block[1],
                 "instrument": np.full(rows, self._instrument_of[code], np.int32)}
        chunk.update(zip(PORTS, block[2:]))
        if kind == STEADY_TRADE and self.params.schema_ == "book_and_trades":
            chunk["action"][:] = ACTION_TRADE
            chunk["flags"][:] = F_LAST
        elif kind == STEADY_DEPTH:
            # book rows become known at their own message's line (a later line releasing them goes through feed)
            self._released_upto = max(self._released_upto, int(out[_STEADY_PORT_ROWS + 1, 0]))
        return chunk

    def _fetch_snapshot(self, symbol: str) -> bytes:
        """The REST snapshot of ``symbol``, naming its symbol (a spot snapshot does not)."""
        p = self.params
        url = f"{p.rest_url.rstrip('/')}{self._rest_path}?symbol={symbol}&limit={p.snapshot_limit}"
        with urllib.request.urlopen(url, timeout=p.connect_timeout_s) as response:
            body = response.read().strip()
        if not body.startswith(b"{"):
            raise OSError(f"{url}: not a JSON object: {body[:80]!r}")
        if b'"symbol"' not in body:
            body = b'{"symbol":"%s",%s' % (symbol.encode(), body[1:].lstrip())
        return body.replace(b"\n", b" ")

    # -- rows into chunks --------------------------------------------------------------------------------------

    def _emit(self, rows: dict[str, dict | None], out: list) -> None:
        """Add the port chunk of the normalizer's rows (per schema) to ``out``."""
        schema = self.params.schema_
        if schema == "book_and_trades":
            chunk = self._merged(rows["book_deltas"], rows["trades"])
        else:
            cols = rows[schema]
            chunk = None if cols is None else self._ports(cols, schema)
        if chunk is not None and len(chunk["ts_recv"]):
            self._add_rows(chunk, out)

    def _add_rows(self, chunk: dict[str, np.ndarray], out: list) -> None:
        self.report.rows += len(chunk["ts_recv"])
        out.append(chunk)

    def _ports(self, cols: dict, schema: str) -> dict[str, np.ndarray]:
        n = len(cols["ts_recv"])
        codes = cols["symbol"]
        if len(codes) and int(codes.max()) >= len(self._instrument_of):
            self._map_instruments()
        chunk = {"ts_event": cols["ts_event"].astype(np.int64, copy=False),
                 "ts_recv": cols["ts_recv"].astype(np.int64, copy=False),
                 "instrument": self._instrument_of[codes]}
        filled = SCHEMA_PORTS[schema]
        for port in PORTS:
            if port in filled and port in cols and isinstance(cols[port], np.ndarray):
                chunk[port] = cols[port].astype(np.int64, copy=False)
            else:
                chunk[port] = np.zeros(n, np.int64)
        return chunk

    def _map_instruments(self) -> None:
        index = {name: k for k, name in enumerate(self.instruments)}
        self._instrument_of = np.array([index.get(name, -1) for name in self._decoder.symbols], np.int32)

    def _merged(self, book: dict | None, trades: dict | None) -> dict[str, np.ndarray] | None:
        """Book rows and trades as one ``book_and_trades`` chunk, as ``stream_ports.merge_book_and_trades`` orders
        them: by ``ts_recv``, then the line that made each row known, book rows first."""
        parts, keys = [], []
        if book is not None:
            known_at, self._released_upto = release_lines(book["line"], self._released_upto)
            parts.append(self._ports(book, "book_deltas"))
            keys.append(known_at)
        if trades is not None:
            part = self._ports(trades, "trades")
            part["action"] = np.full(len(part["ts_recv"]), ACTION_TRADE, np.int64)
            part["flags"] = np.full(len(part["ts_recv"]), F_LAST, np.int64)
            parts.append(part)
            keys.append(trades["line"])
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        chunk = {k: np.concatenate([parts[0][k], parts[1][k]]) for k in parts[0]}
        order_key = np.concatenate(keys)
        rows = np.lexsort((np.arange(len(order_key)), order_key, chunk["ts_recv"]))
        return {k: v[rows] for k, v in chunk.items()}


_WARM_UP_LINES = (
    b'1 {"stream":"x@depth","data":{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,'
    b'"b":[["1.5","2"]],"a":[["2.5","0"]]}}\n'
    b'1 {"stream":"x@trade","data":{"e":"trade","E":1,"T":1,"s":"X","t":1,"p":"1.5","q":"2","m":true}}\n'
    b'1 {"stream":"x@bookTicker","data":{"u":3,"s":"X","b":"1.5","B":"2","a":"2.5","A":"1"}}\n'
    b'1 {"lastUpdateId":5,"symbol":"X","bids":[["1.5","2"]],"asks":[["2.5","1"]]}\n'
)


def _warm_up(venue_kind: str) -> None:
    """Load the normalizer's compiled kernels (numba's disk cache) before the first message, not on it."""
    decoder = normalize_lines("warm-up", venue_kind=venue_kind, clock_policy="report", threads=False)
    decoder.feed(_WARM_UP_LINES)
    decoder.feed_steady(_WARM_UP_LINES.split(b"\n", 2)[1] + b"\n")


def _joined(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return chunks[0] if len(chunks) == 1 else {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class _Connection:
    """A websocket client driven in the caller's thread (websockets' Sans-I/O protocol).

    Connecting and the handshake block (up to ``connect_timeout_s``); then the socket is non-blocking and one
    ``receive_nowait`` is one socket read: every complete message in it, all stamped with the time the read
    returned. Pings are answered as they are read.

    Raises:
        FeedGone: the handshake was refused with HTTP 410.
        OSError: the connection or the handshake failed (``ConnectionError`` for a refused handshake).
    """

    def __init__(self, url: str, connect_timeout_s: float):
        uri = parse_uri(url)
        self._closed = False
        self._send_timeout_s = connect_timeout_s
        self._fragments: list[bytes] = []
        self._early: list = []
        self._early_ts_ns = 0
        sock = socket.create_connection((uri.host, uri.port), timeout=connect_timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=uri.host)
            self.sock = sock
            self.protocol = ClientProtocol(uri, max_size=None)
            self.protocol.send_request(self.protocol.connect())
            self._flush()
            self._handshake()
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)  # read by ``receive_nowait`` from then on

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code

    @property
    def close_reason(self) -> str:
        return self.protocol.close_reason or ""

    def _handshake(self) -> None:
        events: list = []
        while not events:
            data = self.sock.recv(_RECV_BYTES)
            self._early_ts_ns = time.time_ns()
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")
            self.protocol.receive_data(data)
            events = self.protocol.events_received()
        response = events[0]
        if self.protocol.handshake_exc is not None:
            if isinstance(response, Response) and response.status_code == 410:
                raise FeedGone(f"HTTP 410: {(response.body or b'').decode(errors='replace').strip()}")
            raise ConnectionError(f"websocket handshake refused: {self.protocol.handshake_exc}")
        self._early = events[1:]  # frames that came with the handshake response

    def receive_nowait(self):
        """``(ts_recv ns, messages, bytes read)`` of one socket read, ``_NOTHING`` when nothing is there to read,
        None once the connection has ended.

        Raises:
            OSError: the connection was reset (or closed by ``shutdown``).
        """
        if self._early:
            events, self._early = self._early, []
            return self._early_ts_ns, self._messages(events), 0
        if self._closed:
            raise ConnectionError("the connection was shut down")
        try:
            data = self.sock.recv(_RECV_BYTES)
        except (BlockingIOError, ssl.SSLWantReadError):
            return _NOTHING
        ts_ns = time.time_ns()
        if not data:
            self.protocol.receive_eof()
            return None
        payloads = self._whole_frames(data)
        if payloads is not None:
            return ts_ns, payloads, len(data)
        self.protocol.receive_data(data)
        self._flush()  # pongs, the answer to a close
        return ts_ns, self._messages(self.protocol.events_received()), len(data)

    def _whole_frames(self, data: bytes) -> list[bytes] | None:
        """The payloads of ``data`` when it is whole, unfragmented, unmasked text or binary frames and the
        protocol stands between frames (the steady state of a market stream); None: the protocol reads it.

        Nothing the protocol would do differently is skipped: it answers control frames, reassembles fragments
        and refuses protocol errors (all of which send such data its way), and it keeps no state between whole
        data frames.
        """
        protocol = self.protocol
        if (self._fragments or protocol.state is not State.OPEN or protocol.current_size is not None
                or protocol.extensions or protocol.reader.buffer):
            return None
        payloads, i, n = [], 0, len(data)
        while i < n:
            if n - i < 2 or (data[i] != 0x81 and data[i] != 0x82) or data[i + 1] & 0x80:
                return None
            length = data[i + 1]
            i += 2
            if length == 126:
                length = int.from_bytes(data[i:i + 2], "big")
                i += 2
            elif length == 127:
                length = int.from_bytes(data[i:i + 8], "big")
                i += 8
            if i + length > n:
                return None
            payloads.append(data[i:i + length])
            i += length
        return payloads

    def _messages(self, events: list) -> list[bytes]:
        out = []
        for frame in events:
            opcode = frame.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                if frame.fin and not self._fragments:
                    out.append(frame.data)
                    continue
                self._fragments.append(frame.data)
                if frame.fin:
                    out.append(b"".join(self._fragments))
                    self._fragments = []
        return out

    def _flush(self) -> None:
        pending = [data for data in self.protocol.data_to_send() if data]
        if not pending:
            return
        blocking = self.sock.gettimeout()
        self.sock.settimeout(self._send_timeout_s)  # a pong or a close frame: wait for room, never for long
        try:
            for data in pending:
                self.sock.sendall(data)
        finally:
            self.sock.settimeout(blocking)

    def shutdown(self) -> None:
        """Close the socket (from any thread: a blocked ``receive`` returns)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
