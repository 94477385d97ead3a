"""``source.binance_ws``: Binance market data from a live websocket, normalized as ``source.binance_capture`` does.

The reader subscribes to the combined streams of its symbols (``<url>/stream?streams=btcusdt@depth@100ms/...``)
and runs the websocket client in a background thread. Each socket read is stamped ``ts_recv = time.time_ns()``
and every complete message in it is written as a capture line (``<ts_recv> <JSON>``) and handed, a read at a
time, to the project's Binance normalizer (``normalize.LineNormalization``): the same parser, exact decimals,
dedup and update-id rules (``sequence``) as a recorded capture, so the rows are those ``source.binance_capture``
gives for the same messages, and the ports are the same (``nodes.marketdata.stream_ports``): a spec swaps one
for the other. ``chunks(max_rows)`` yields what has arrived (blocking until at least one row or the end),
sorted by ``ts_recv``; ``max_wait_ms`` > 0 waits that long after the first row to batch more.

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
could not connect; ``report.ended`` says which. An error in the thread is raised by ``chunks``.

Example::

    book: {op: source.binance_ws, with: {url: "ws://127.0.0.1:9000", rest_url: "http://127.0.0.1:9000",
                                         symbols: [BTCUSDT], schema: book_and_trades}}
"""

import queue
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
from websockets.uri import parse_uri

from nodes.contract import OpParams, SourceOp
from nodes.marketdata.binance.normalize import normalize_lines
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
_END = object()


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
    queued_max: int = 0  # the most chunks waiting for the consumer at once (it fell behind when this grows)
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

    The websocket thread starts at the first ``chunks`` call.
    """

    def __init__(self, params: BinanceWsParams):
        self.params = params
        self.instruments = [s.upper() for s in params.symbols]
        self.report = LiveFeedReport(url=params.stream_url())
        self._venue_kind, self._rest_path = MARKETS[params.market]
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: _Connection | None = None
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

    # -- the consumer side -------------------------------------------------------------------------------------

    def chunks(self, max_rows: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield the rows as they arrive, at most ``max_rows`` a chunk; end when the feed ends.

        Raises:
            Exception: whatever stopped the websocket thread (a ``DataQualityError`` with ``clock_policy``
                'reject', a bug), after the rows before it.
        """
        self._start()
        max_wait_s = self.params.max_wait_ms / 1e3
        ended = False
        try:
            while not ended:
                item = self._queue.get()
                if item is _END:
                    break
                batch, rows = [item], len(item["ts_recv"])
                deadline = time.monotonic() + max_wait_s
                while rows < max_rows:
                    try:
                        left = deadline - time.monotonic()
                        item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _END:
                        ended = True
                        break
                    batch.append(item)
                    rows += len(item["ts_recv"])
                chunk = batch[0] if len(batch) == 1 else {k: np.concatenate([b[k] for b in batch]) for k in batch[0]}
                for start in range(0, rows, max_rows):
                    yield {k: v[start : start + max_rows] for k, v in chunk.items()}
        finally:
            self.stop()
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the stream: close the connection and wait for the thread (rows already queued are dropped)."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.shutdown()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    close = stop

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tickloom-binance-ws", daemon=True)
            self._thread.start()

    # -- the websocket thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        p, report = self.params, self.report
        failures = 0
        backoff_s = p.reconnect_backoff_ms / 1e3
        try:
            _warm_up(self._venue_kind)
            while not self._stopping.is_set():
                try:
                    self._connection = _Connection(p.stream_url(), p.connect_timeout_s, p.idle_timeout_s)
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
                self._pump(self._connection)
                if self._stopping.is_set():
                    break
                report.disconnects += 1
                self._stopping.wait(backoff_s)
            if report.ended is None:
                report.ended = "stopped"
            self._emit(self._decoder.close())
        except BaseException as error:  # handed to the consumer
            self._error = error
            report.ended = "error"
            report.last_error = repr(error)
        finally:
            if self._connection is not None:
                self._connection.shutdown()
            report.quality = self._decoder.report
            self._queue.put(_END)

    def _pump(self, connection: "_Connection") -> None:
        """Read, decode and queue until the connection ends."""
        report = self.report
        while not self._stopping.is_set():
            try:
                received = connection.receive()
            except OSError as error:  # reset, or silent past idle_timeout_s
                report.last_error = f"receive: {error!r}"
                break
            if received is None:
                break
            ts_ns, payloads, size = received
            report.bytes_received += size
            if payloads:
                self._decode(ts_ns, payloads)
        if connection.close_code is not None:
            report.last_close = f"{connection.close_code} {connection.close_reason}".strip()
        connection.shutdown()

    def _decode(self, ts_ns: int, payloads: list[bytes]) -> None:
        self.report.messages += len(payloads)
        lines = []
        stamp = b"%d " % ts_ns
        for payload in payloads:
            if payload.startswith(b'{"result"') or payload.startswith(b'{"error"'):
                self.report.control_messages += 1
                continue
            lines.append(stamp)
            lines.append(payload)
            lines.append(b"\n")
        if lines:
            self._emit(self._decoder.feed(b"".join(lines)))
        if self._wants_book:
            self._resync()

    def _resync(self) -> None:
        """Fetch a snapshot for every symbol without a valid book (first diff buffered, or after a gap)."""
        decoder = self._decoder
        if self._book_ready and decoder.gaps == self._gaps_seen:
            return
        self.report.gaps = self._gaps_seen = decoder.gaps
        states = decoder.book_states()
        now_ns = time.time_ns()
        for symbol, state in states.items():
            if state not in ("no_book", "invalid") or now_ns < self._next_snapshot_ns.get(symbol, 0):
                continue
            try:
                body = self._fetch_snapshot(symbol)
            except (OSError, urllib.error.URLError) as error:
                self.report.snapshot_failures += 1
                self.report.last_error = f"snapshot {symbol}: {error!r}"
                self._next_snapshot_ns[symbol] = now_ns + int(self.params.reconnect_backoff_ms * 1e6)
                continue
            self._emit(decoder.feed(b"%d %s\n" % (time.time_ns(), body)))
            self.report.snapshots += 1
            self.report.resyncs += state == "invalid"
        states = decoder.book_states()
        self._book_ready = len(states) == len(self.instruments) and all(s == "live" for s in states.values())

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

    def _emit(self, rows: dict[str, dict | None]) -> None:
        schema = self.params.schema_
        if schema == "book_and_trades":
            chunk = self._merged(rows["book_deltas"], rows["trades"])
        else:
            cols = rows[schema]
            chunk = None if cols is None else self._ports(cols, schema)
        if chunk is not None and len(chunk["ts_recv"]):
            self.report.rows += len(chunk["ts_recv"])
            self._queue.put(chunk)
            self.report.queued_max = max(self.report.queued_max, self._queue.qsize())

    def _ports(self, cols: dict, schema: str) -> dict[str, np.ndarray]:
        n = len(cols["ts_recv"])
        codes = cols["symbol"]
        if len(codes) and int(codes.max()) >= len(self._instrument_of):
            index = {name: k for k, name in enumerate(self.instruments)}
            self._instrument_of = np.array([index.get(name, -1) for name in self._decoder.symbols], np.int32)
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
    normalize_lines("warm-up", venue_kind=venue_kind, clock_policy="report", threads=False).feed(_WARM_UP_LINES)


class _Connection:
    """A websocket client on a blocking socket, driven in the caller's thread (websockets' Sans-I/O protocol).

    One ``receive`` is one socket read: every complete message in it, all stamped with the time the read
    returned. Pings are answered as they are read.

    Raises:
        FeedGone: the handshake was refused with HTTP 410.
        OSError: the connection or the handshake failed (``ConnectionError`` for a refused handshake).
    """

    def __init__(self, url: str, connect_timeout_s: float, idle_timeout_s: float):
        uri = parse_uri(url)
        self._closed = False
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
        sock.settimeout(idle_timeout_s)

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

    def receive(self) -> tuple[int, list[bytes], int] | None:
        """``(ts_recv ns, messages, bytes read)`` of one socket read; None once the connection has ended."""
        if self._early:
            events, self._early = self._early, []
            return self._early_ts_ns, self._messages(events), 0
        data = self.sock.recv(_RECV_BYTES)
        ts_ns = time.time_ns()
        if not data:
            self.protocol.receive_eof()
            return None
        self.protocol.receive_data(data)
        self._flush()  # pongs, the answer to a close
        return ts_ns, self._messages(self.protocol.events_received()), len(data)

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
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

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
