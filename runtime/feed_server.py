"""Play a recorded Binance capture as a live Binance feed: a websocket stream server plus the REST depth snapshot.

``tickloom feed-server CAPTURE`` (and ``FeedServer`` from Python) listens on one port for both:

- **websocket streams** in Binance's formats: ``/stream?streams=a/b`` sends combined-stream envelopes
  (``{"stream": "...", "data": {...}}``), ``/ws/a/b`` bare payloads; either path without streams, then
  ``{"method": "SUBSCRIBE", "params": [...], "id": 1}`` messages (``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS`` too),
  answered ``{"result": null, "id": 1}`` as Binance does. A subscription matches a recorded stream by symbol and
  kind (``btcusdt@depth`` and ``btcusdt@depth@100ms`` both get the recorded ``btcusdt@depth@100ms``); a
  recorded envelope is sent byte for byte.
- **REST depth snapshots**: ``GET /api/v3/depth?symbol=BTCUSDT&limit=1000`` (spot), ``/fapi/v1/depth``,
  ``/dapi/v1/depth`` (futures), all served alike. Before the replay has passed the capture's own snapshot line
  of that symbol the capture's snapshot is served (as recorded; that is what the recording client got). Later,
  the book **as of the replay point** is served: the capture's book rows (the project's Binance normalizer)
  applied to an L2 book (``book.l2``) up to the last line sent, with the ``lastUpdateId`` a client needs to
  continue from the next diff: spot, the ``u`` of the last diff applied (the next diff has ``U = u + 1``);
  futures, the ``U`` of the next diff (the rule is ``U <= lastUpdateId <= u``; the book holds every update
  before it). Where the capture's own book is invalid (after a gap, until its next snapshot) the next recorded
  snapshot is served. ``GET /status`` gives the replay's progress as JSON.

Time: one replay timeline for every client, like a venue's: it starts when the first client subscribes and
goes on whether or not anyone listens, so a client that is away misses what was played meanwhile (and finds
the gap by update ids). Messages leave at their recorded receive times divided by ``speed`` (``inf``: as fast
as possible) or, with ``max_rate``, evenly at that many messages a second. Pacing is within about a
millisecond (messages due within 0.5 ms of each other leave together). A slow client slows the replay for
everyone (its sends are awaited) rather than silently losing messages.

Tests and benchmarks:

- ``drop_after=N`` closes a connection after it was sent N messages: the first connection to get there only,
  or every connection with ``drop_repeat``; ``drop_mode`` ``close`` (a close frame, 1001) or ``abort`` (TCP
  reset, no close frame).
- ``snapshot_wait_s``: the replay waits (at most this long) at a symbol's first recorded snapshot until a client
  has asked for that symbol's snapshot, so a client that follows Binance's procedure (subscribe, buffer, fetch)
  gets the recorded snapshot whatever the machine's load: its rows then equal ``source.binance_capture``'s.
- ``loop``: play the capture again and again; each pass adds an offset to every update id, trade id and venue
  time (ids stay increasing, so a client sees a gap at the seam and resyncs).

At the end of the capture (without ``loop``) every connection is closed (1000, "end of replay") and websocket
handshakes are refused with HTTP 410: the feed is closed for good. Snapshots stay available.

Example::

    from runtime.feed_server import FeedServer
    with FeedServer("data/samples/binance/spot_btcusdt_20240808.head2000.gz", speed=10.0) as server:
        url = server.stream_url(["btcusdt@depth@100ms", "btcusdt@trade"])   # ws://127.0.0.1:<port>/stream?...
        rest = server.rest_url                                               # http://127.0.0.1:<port>
"""

import asyncio
import gzip
import math
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from nodes.errors import DataQualityError
from nodes.marketdata.binance.normalize import normalize_capture
from nodes.marketdata.binance.source import release_lines, symbol_from_file_name
from nodes.marketdata.book.l2 import BookL2
from nodes.marketdata.book.replay import book_levels, run_op
from nodes.marketdata.schemas import ACTION_CLEAR, F_SNAPSHOT, PRICE_SCALE

DEPTH_PATHS = ("/api/v3/depth", "/fapi/v1/depth", "/dapi/v1/depth")
MAX_SNAPSHOT_LIMIT = 5000
DEFAULT_SNAPSHOT_LIMIT = 100  # Binance's default
_BURST_S = 0.0005  # messages due within this of now leave together
_YIELD_EVERY = 64  # messages sent in a burst before the loop serves handshakes and snapshots
_ID_FIELDS = ("U", "u", "pu", "t", "lastUpdateId")
_TIME_FIELDS = ("E", "T")


# -- the capture --------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One capture line in replay order: a stream message to send, or a REST snapshot (a gate, never sent)."""

    line: int
    ts_recv: int
    key: str  # "<symbol lower>@<kind>": what subscriptions match
    symbol: str
    combined: bytes = b""  # the message as a combined-stream envelope
    data: bytes = b""  # the bare payload
    snapshot: dict | None = None  # parsed REST snapshot (entries that are snapshots)
    raw: bytes = b""  # the snapshot as recorded


@dataclass
class _Depth:
    """A symbol's depth diffs (for futures ``lastUpdateId``) and its book rows with the line releasing each."""

    lines: list[int] = field(default_factory=list)
    first_id: list[int] = field(default_factory=list)
    prev_id: list[int] = field(default_factory=list)
    event_ms: list[tuple[int | None, int | None]] = field(default_factory=list)
    rows: dict[str, np.ndarray] = field(default_factory=dict)


class ReplayCapture:
    """A capture read for replay: its messages in order, its snapshots, each symbol's book rows.

    Raises:
        FileNotFoundError: no such file.
        DataQualityError: no line of the file is a Binance message (the first bad lines are named).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such capture file")
        self.entries: list[_Entry] = []
        self.depth: dict[str, _Depth] = {}
        self.bad_lines: list[int] = []
        self._read()
        report = self._book_rows()
        self.venue_kind = report.venue_kind if report.venue_kind in ("spot", "futures") else "spot"
        self.symbols = sorted({e.symbol for e in self.entries if e.symbol})
        times = [e.ts_recv for e in self.entries]
        self.duration_ns = max(times) - min(times) if times else 0
        ids = [v for e in self.entries for v in _ids_of(e)]
        self.id_span = max(ids) + 1 if ids else 0

    @property
    def messages(self) -> int:
        return sum(1 for e in self.entries if e.snapshot is None)

    def _read(self) -> None:
        with open(self.path, "rb") as file:
            opener = gzip.open if file.read(2) == b"\x1f\x8b" else open
        depth_symbols: set[str] = set()
        with opener(self.path, "rb") as file:
            for number, text in enumerate(file, start=1):
                entry = _parse_line(number, text.strip(), depth_symbols, self.path)
                if entry is None:
                    self.bad_lines.append(number)
                    continue
                self.entries.append(entry)
                if entry.key.endswith("@depth") and entry.snapshot is None:
                    depth_symbols.add(entry.symbol)
                    self._note_diff(entry)
        if not self.entries:
            raise DataQualityError(f"{self.path}: no line is a Binance message (bad lines: {self.bad_lines[:5]})")

    def _note_diff(self, entry: _Entry) -> None:
        data = orjson.loads(entry.data)
        depth = self.depth.setdefault(entry.symbol, _Depth())
        depth.lines.append(entry.line)
        depth.first_id.append(int(data.get("U", -1)))
        depth.prev_id.append(int(data.get("pu", -1)))
        depth.event_ms.append((data.get("E"), data.get("T")))

    def _book_rows(self):
        """Normalize the capture (clock kept as recorded) and keep each symbol's book rows with release lines."""
        run = normalize_capture(self.path, clock_policy="report", max_bad_fraction=1.0, threads=False)
        parts: dict[str, list[dict]] = {}
        released_upto = 0
        for chunk in run:
            known_at, released_upto = release_lines(chunk.lines["book_deltas"], released_upto)
            frame = chunk.book_deltas
            if frame.height == 0:
                continue
            columns = {name: frame[name].fill_null(0).to_numpy().astype(np.int64) for name in
                       ("side", "price", "size", "action", "flags", "sequence")}
            columns["known_at"] = known_at
            symbols = frame["symbol"].to_numpy()
            for symbol in np.unique(symbols):
                mine = symbols == symbol
                parts.setdefault(str(symbol), []).append({k: v[mine] for k, v in columns.items()})
        for symbol, pieces in parts.items():
            depth = self.depth.setdefault(symbol, _Depth())
            depth.rows = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        return run.report


def _parse_line(number: int, text: bytes, depth_symbols: set[str], path: Path) -> _Entry | None:
    """One capture line as an entry; None when it is not a Binance message."""
    stamp, _, payload = text.partition(b" ")
    try:
        ts_recv = int(stamp)
        message = orjson.loads(payload)
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(message, dict):
        return None
    if "lastUpdateId" in message and "e" not in message and "data" not in message:
        symbol = message.get("symbol")
        if symbol is None:  # a spot REST snapshot names no symbol: the normalizer's rule
            named = symbol_from_file_name(str(path))
            symbol = next(iter(depth_symbols)) if len(depth_symbols) == 1 else named
        if symbol is None:
            return None
        return _Entry(number, ts_recv, f"{symbol.lower()}@snapshot", symbol, snapshot=message, raw=payload)
    if isinstance(message.get("data"), dict) and "stream" in message:
        data, stream = message["data"], str(message["stream"])
        combined, bare = payload, orjson.dumps(data)
    else:
        data, stream = message, None
        combined, bare = None, payload
    symbol = data.get("s")
    if not isinstance(symbol, str):
        return None
    if stream is None:
        stream = f"{symbol.lower()}@{_kind_of(data)}"
        combined = orjson.dumps({"stream": stream, "data": data})
    return _Entry(number, ts_recv, stream_key(stream), symbol, combined=combined, data=bare)


def _kind_of(data: dict) -> str:
    event = data.get("e")
    if event == "depthUpdate":
        return "depth"
    if event is None and "b" in data and "a" in data and "u" in data:
        return "bookTicker"
    return str(event)


def stream_key(stream: str) -> str:
    """What a stream name matches on: ``BTCUSDT@depth@100ms`` → ``btcusdt@depth`` (update speed dropped)."""
    symbol, _, kind = stream.partition("@")
    kind = kind.split("@", 1)[0]
    return f"{symbol.lower()}@{kind}"


def _ids_of(entry: _Entry) -> list[int]:
    if entry.snapshot is not None:
        return [int(entry.snapshot["lastUpdateId"])]
    if entry.key.endswith("@depth") or entry.key.endswith("@trade") or entry.key.endswith("@bookTicker"):
        data = orjson.loads(entry.data)
        return [int(data[k]) for k in _ID_FIELDS if isinstance(data.get(k), int)]
    return []


# -- the book as of the replay point -------------------------------------------------------------------------------


class _BookCursor:
    """One symbol's L2 book, advanced over the capture's book rows as the replay passes the lines releasing them."""

    def __init__(self, depth: _Depth, max_levels: int):
        self.depth = depth
        self.c = tuple(BookL2.constants(BookL2.Params(max_levels=max_levels)))
        self.state = BookL2.init(self.c, 1)
        self.position = 0
        self.valid = False
        self.book_id = -1

    @staticmethod
    def warm_up() -> None:
        """Compile (or load from the disk cache) the book kernel now, not inside the first snapshot request."""
        c = tuple(BookL2.constants(BookL2.Params(max_levels=1)))
        run_op(BookL2, c, [np.zeros(1, np.int64) for _ in BookL2.inputs], "numba")

    def advance(self, next_line: int) -> None:
        """Apply the rows released by lines before ``next_line``."""
        rows = self.depth.rows
        if not rows:
            return
        end = int(np.searchsorted(rows["known_at"], next_line, side="left"))
        if end <= self.position:
            return
        part = slice(self.position, end)
        columns = [np.ascontiguousarray(rows[name][part]) for name in BookL2.inputs]
        _, self.state = run_op(BookL2, self.c, columns, "numba", self.state)
        clears = np.flatnonzero(rows["action"][part] == ACTION_CLEAR)
        if len(clears):  # a snapshot's clear makes the book valid, a gap's clear invalid
            self.valid = bool(rows["flags"][part][clears[-1]] & F_SNAPSHOT)
        self.book_id = int(rows["sequence"][end - 1])
        self.position = end

    def levels(self, limit: int) -> tuple[list, list]:
        levels = book_levels("l2", self.state)
        return ([[_decimal(x["price"]), _decimal(x["size"])] for x in levels["bids"][:limit]],
                [[_decimal(x["price"]), _decimal(x["size"])] for x in levels["asks"][:limit]])


def _decimal(units: int) -> str:
    """1e-9 units as a decimal string without trailing zeros: ``61837630000000`` → ``61837.63``."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(int(units)), PRICE_SCALE)
    text = f"{fraction:09d}".rstrip("0")
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


# -- the server ------------------------------------------------------------------------------------------------------


@dataclass
class _Client:
    connection: ServerConnection
    combined: bool
    keys: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)
    sent: int = 0


@dataclass
class FeedServerStats:
    """What the server did so far (read from any thread; a copy from ``FeedServer.stats``)."""

    messages_played: int = 0  # capture messages the timeline passed (sent to whoever subscribed)
    messages_sent: int = 0  # frames sent, summed over connections
    connections: int = 0  # websocket connections accepted
    drops: int = 0  # connections closed by drop_after
    snapshots_served: int = 0
    snapshots_recorded: int = 0  # of which the capture's own snapshot
    passes: int = 0  # complete passes over the capture
    replay_line: int = 0  # the next capture line to play
    started: bool = False
    ended: bool = False


class FeedServer:
    """A websocket + REST server that replays a Binance capture (see the module docstring).

    Parameters:
        capture: the capture file (gzip or text, ``<receive ts ns> <JSON>`` per line).
        host, port: where to listen (port 0: a free port, read ``port`` after ``start``).
        speed: replay speed (1.0 real time, 10.0 ten times faster, ``math.inf`` as fast as possible).
        max_rate: instead of ``speed``, send evenly at this many messages a second.
        drop_after, drop_repeat, drop_mode: disconnect a connection after it was sent ``drop_after`` messages.
        loop: replay the capture again at its end (ids and times shifted each pass).
        snapshot_wait_s: wait at most this long at a symbol's first recorded snapshot for a client to fetch it.
        max_levels: capacity of the snapshot book per side (``book.l2``'s ``max_levels``).

    Raises:
        ValueError: a parameter out of range (named in the message).
        FileNotFoundError, DataQualityError: as ``ReplayCapture``.
    """

    def __init__(self, capture: str | Path, *, host: str = "127.0.0.1", port: int = 0, speed: float = 1.0,
                 max_rate: float | None = None, drop_after: int | None = None, drop_repeat: bool = False,
                 drop_mode: str = "close", loop: bool = False, snapshot_wait_s: float = 0.0,
                 max_levels: int = 65_536, restamp: bool = False):
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf: as fast as possible), got {speed}")
        if max_rate is not None and not max_rate > 0:
            raise ValueError(f"max_rate must be > 0 messages a second, got {max_rate}")
        if drop_after is not None and drop_after < 1:
            raise ValueError(f"drop_after must be >= 1 message, got {drop_after}")
        if drop_mode not in ("close", "abort"):
            raise ValueError(f"drop_mode must be 'close' or 'abort', not {drop_mode!r}")
        if snapshot_wait_s < 0:
            raise ValueError(f"snapshot_wait_s must be >= 0, got {snapshot_wait_s}")
        self.capture = capture if isinstance(capture, ReplayCapture) else ReplayCapture(capture)
        # restamp: each message's venue times (E, T) moved so E is the moment it is sent, as a live venue stamps
        # it; a paper venue downstream then keeps its exchange clock in step with the session's wall clock
        self.restamp = restamp
        self.host = host
        self._port_wanted = port
        self.speed = speed
        self.max_rate = max_rate
        self.drop_after = drop_after
        self.drop_repeat = drop_repeat
        self.drop_mode = drop_mode
        self.loop = loop
        self.snapshot_wait_s = snapshot_wait_s
        self.max_levels = max_levels
        self.port: int | None = None
        self._stats = FeedServerStats()
        self._clients: list[_Client] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._subscribed: asyncio.Event | None = None
        self._asked: dict[str, asyncio.Event] = {}
        self._dropped_once = False
        self._pass = 0
        self._cursors: dict[str, _BookCursor] = {}
        self._tasks: set[asyncio.Future] = set()

    # -- life cycle ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stream_url(self, streams: list[str]) -> str:
        """The combined-stream URL for ``streams`` (``["btcusdt@depth@100ms", "btcusdt@trade"]``)."""
        return f"{self.url}/stream?streams={'/'.join(streams)}"

    @property
    def stats(self) -> FeedServerStats:
        return FeedServerStats(**vars(self._stats))

    def start(self, timeout_s: float = 30.0) -> "FeedServer":
        """Listen in a background thread; return once ``port`` is bound.

        Raises:
            OSError: the port cannot be bound (re-raised from the server thread).
            TimeoutError: the server did not start within ``timeout_s``.
        """
        if self._thread is not None:
            raise RuntimeError("FeedServer.start() called twice")
        _BookCursor.warm_up()
        self._thread = threading.Thread(target=self._serve_in_thread, name="tickloom-feed-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"feed server did not start within {timeout_s} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Close every connection and stop listening; wait for the server thread to end.

        Raises:
            TimeoutError: the thread did not end within ``timeout_s``.
            Exception: what made the replay fail, if it did after ``start`` returned.
        """
        if self._thread is None:
            return
        if self._aloop is not None and self._stop is not None and not self._aloop.is_closed():
            try:
                self._aloop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"feed server thread still running after {timeout_s} s")
        if self._error is not None:
            raise self._error  # the replay failed after start() returned

    def wait_finished(self, timeout_s: float | None = None) -> bool:
        """Wait until the replay has played the whole capture (never, with ``loop``); True when it has."""
        return self._finished.wait(timeout_s)

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve_in_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # handed to start()
            self._error = error
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._aloop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._asked = {symbol: asyncio.Event() for symbol in self.capture.symbols}
        async with serve(self._handler, self.host, self._port_wanted, process_request=self._http,
                         compression=None, close_timeout=1, max_size=2**16) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            replay = asyncio.create_task(self._replay())
            stop = asyncio.create_task(self._stop.wait())
            waits = {replay, stop}
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if replay in done and replay.exception() is not None:
                stop.cancel()
                raise replay.exception()
            if replay in done:
                await stop  # the replay ended: snapshots are still served, handshakes refused (410)
            replay.cancel()
            stop.cancel()
            for client in list(self._clients):
                client.connection.transport.abort()

    # -- HTTP -----------------------------------------------------------------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path in DEPTH_PATHS:
            return self._depth(parse_qs(query))
        if path == "/status":
            return _json_response(HTTPStatus.OK, orjson.dumps(vars(self._stats)))
        if path.startswith("/stream") or path.startswith("/ws"):
            if self._stats.ended:
                return connection.respond(HTTPStatus.GONE, "the replay has ended\n")
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, f"no such path {path!r}\n")

    def _depth(self, query: dict[str, list[str]]) -> Response:
        symbol = (query.get("symbol") or [""])[0].upper()
        if symbol not in self.capture.symbols:
            return _error_response(HTTPStatus.BAD_REQUEST, -1121, f"Invalid symbol {symbol!r}: the capture has "
                                   f"{', '.join(self.capture.symbols)}.")
        try:
            limit = int((query.get("limit") or [str(DEFAULT_SNAPSHOT_LIMIT)])[0])
        except ValueError:
            limit = -1
        if not 1 <= limit <= MAX_SNAPSHOT_LIMIT:
            return _error_response(HTTPStatus.BAD_REQUEST, -1100, f"limit must be 1..{MAX_SNAPSHOT_LIMIT}.")
        body = self._snapshot(symbol, limit)
        if body is None:
            return _error_response(HTTPStatus.SERVICE_UNAVAILABLE, -1,
                                   f"no {symbol} book at this point of the replay, nor a recorded snapshot after it")
        if symbol in self._asked:
            self._asked[symbol].set()
        self._stats.snapshots_served += 1
        return _json_response(HTTPStatus.OK, body)

    def _snapshot(self, symbol: str, limit: int) -> bytes | None:
        """The symbol's book as of the replay point, else its next recorded snapshot (see the module docstring)."""
        next_line = self._stats.replay_line
        cursor = self._cursors.get(symbol)
        if cursor is None:
            cursor = self._cursors[symbol] = _BookCursor(self.capture.depth.get(symbol, _Depth()), self.max_levels)
        cursor.advance(next_line)
        id_shift = self._pass * self.capture.id_span
        ms_shift = self._pass * self._pass_ms()
        if cursor.valid:
            return self._book_snapshot(symbol, cursor, limit, id_shift, ms_shift)
        recorded = next((e for e in self.capture.entries if e.snapshot is not None and e.symbol == symbol
                         and e.line >= next_line), None)
        if recorded is None:
            return None
        self._stats.snapshots_recorded += 1
        if id_shift == 0 and len(recorded.snapshot["bids"]) <= limit and len(recorded.snapshot["asks"]) <= limit:
            return recorded.raw
        snapshot = recorded.snapshot
        message = dict(snapshot, bids=snapshot["bids"][:limit], asks=snapshot["asks"][:limit])
        return orjson.dumps(_shifted(message, id_shift, ms_shift))

    def _book_snapshot(self, symbol: str, cursor: _BookCursor, limit: int, id_shift: int, ms_shift: int) -> bytes:
        bids, asks = cursor.levels(limit)
        last_update_id = cursor.book_id
        message: dict = {"lastUpdateId": 0}
        if self.capture.venue_kind == "futures":
            depth = self.capture.depth[symbol]
            k = int(np.searchsorted(depth.lines, self._stats.replay_line, side="left"))
            if k < len(depth.lines) and depth.prev_id[k] == cursor.book_id:
                last_update_id = depth.first_id[k]  # U <= lastUpdateId <= u holds for the next diff
            event_ms, trade_ms = depth.event_ms[max(k - 1, 0)] if depth.lines else (None, None)
            recorded = next((e.snapshot for e in self.capture.entries if e.snapshot is not None and e.symbol == symbol),
                            {})
            message["E"] = event_ms
            message["T"] = trade_ms
            for name in ("symbol", "pair"):
                if name in recorded:
                    message[name] = recorded[name]
        message["lastUpdateId"] = last_update_id
        message["bids"], message["asks"] = bids, asks
        return orjson.dumps(_shifted(message, id_shift, ms_shift))

    def _pass_ms(self) -> int:
        return self.capture.duration_ns // 1_000_000 + 1

    # -- websocket ------------------------------------------------------------------------------------------------

    async def _handler(self, connection: ServerConnection) -> None:
        path, _, query = connection.request.path.partition("?")
        client = _Client(connection, combined=path.startswith("/stream"))
        streams = (parse_qs(query).get("streams") or [""])[0].split("/") if client.combined else path[4:].split("/")
        self._subscribe(client, [s for s in streams if s])
        self._clients.append(client)
        self._stats.connections += 1
        try:
            async for message in connection:
                await connection.send(self._method(client, message))
        except ConnectionClosed:
            pass
        finally:
            if client in self._clients:
                self._clients.remove(client)

    def _subscribe(self, client: _Client, streams: list[str]) -> None:
        for name in streams:
            if name not in client.names:
                client.names.append(name)
                client.keys.add(stream_key(name))
        if client.keys:
            self._subscribed.set()

    def _method(self, client: _Client, message: str | bytes) -> bytes:
        """Answer a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS request as Binance does."""
        try:
            request = orjson.loads(message)
            method, ident = request["method"], request.get("id")
            params = [str(p) for p in request.get("params", [])]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON: expected method, params and id"}})
        if method == "SUBSCRIBE":
            self._subscribe(client, params)
            return orjson.dumps({"result": None, "id": ident})
        if method == "UNSUBSCRIBE":
            client.names = [n for n in client.names if n not in params]
            client.keys = {stream_key(n) for n in client.names}
            return orjson.dumps({"result": None, "id": ident})
        if method == "LIST_SUBSCRIPTIONS":
            return orjson.dumps({"result": client.names, "id": ident})
        return orjson.dumps({"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": ident})

    # -- the replay ------------------------------------------------------------------------------------------------

    async def _replay(self) -> None:
        await self._subscribed.wait()
        self._stats.started = True
        loop = asyncio.get_running_loop()
        entries = self.capture.entries
        first_ts = entries[0].ts_recv
        start = loop.time()
        while True:
            id_shift = self._pass * self.capture.id_span
            ms_shift = self._pass * self._pass_ms()
            burst = 0
            sent_in_pass = 0
            for entry in entries:
                if entry.snapshot is not None:
                    start += await self._gate(entry.symbol)
                    self._stats.replay_line = entry.line + 1
                    continue
                if self.max_rate is not None:
                    due = start + sent_in_pass / self.max_rate
                elif math.isinf(self.speed):
                    due = start
                else:
                    due = start + (entry.ts_recv - first_ts) / 1e9 / self.speed
                wait = due - loop.time()
                if wait > _BURST_S:
                    await asyncio.sleep(wait)
                    burst = 0
                elif burst >= _YIELD_EVERY:
                    await asyncio.sleep(0)
                    burst = 0
                await self._play(entry, id_shift, ms_shift)
                self._stats.replay_line = entry.line + 1
                self._stats.messages_played += 1
                sent_in_pass += 1
                burst += 1
            self._stats.passes += 1
            if not self.loop:
                break
            self._pass += 1
            self._cursors = {}  # a new pass: the books start again from the capture's first snapshot
            self._stats.replay_line = 0
            gap_s = self.capture.duration_ns / 1e9 / max(len(entries) - 1, 1)
            start = loop.time() + (gap_s / self.speed if not math.isinf(self.speed) else 0.0)
            first_ts = entries[0].ts_recv
        self._stats.ended = True
        self._finished.set()
        for client in list(self._clients):
            self._clients.remove(client)
            self._background(client.connection.close(1000, "end of replay"))

    async def _gate(self, symbol: str) -> float:
        """Wait (at most ``snapshot_wait_s``) for a client to fetch ``symbol``'s first snapshot; the time waited."""
        asked = self._asked.get(symbol)
        if self.snapshot_wait_s <= 0 or asked is None or asked.is_set() or self._pass > 0:
            return 0.0
        began = time.monotonic()
        try:
            await asyncio.wait_for(asked.wait(), self.snapshot_wait_s)
        except TimeoutError:
            pass
        asked.set()  # only the first snapshot of a symbol waits
        return time.monotonic() - began

    async def _play(self, entry: _Entry, id_shift: int, ms_shift: int) -> None:
        targets = [c for c in self._clients if entry.key in c.keys]
        if not targets:
            return
        combined, data = entry.combined, entry.data
        if id_shift or ms_shift or self.restamp:
            envelope = orjson.loads(combined)
            if self.restamp and isinstance(envelope["data"].get("E"), int):
                ms_shift = time.time_ns() // 1_000_000 - envelope["data"]["E"]
            envelope["data"] = _shifted(envelope["data"], id_shift, ms_shift)
            combined, data = orjson.dumps(envelope), orjson.dumps(envelope["data"])
        for client in targets:
            try:
                await client.connection.send(combined if client.combined else data, text=True)
            except ConnectionClosed:
                if client in self._clients:
                    self._clients.remove(client)
                continue
            client.sent += 1
            self._stats.messages_sent += 1
            if self.drop_after is not None and client.sent >= self.drop_after and (
                    self.drop_repeat or not self._dropped_once):
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._dropped_once = True
        self._stats.drops += 1
        if client in self._clients:
            self._clients.remove(client)
        if self.drop_mode == "abort":
            client.connection.transport.abort()
        else:
            self._background(client.connection.close(1001, "drop-after"))

    def _background(self, coroutine) -> None:
        """Run ``coroutine`` as a task the server holds on to (asyncio keeps only weak references)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _shifted(message: dict, id_shift: int, ms_shift: int) -> dict:
    """The message with ``id_shift`` added to its update and trade ids and ``ms_shift`` to its venue times."""
    if not id_shift and not ms_shift:
        return message
    out = dict(message)
    for name in _ID_FIELDS:
        if isinstance(out.get(name), int):
            out[name] += id_shift
    for name in _TIME_FIELDS:
        if isinstance(out.get(name), int):
            out[name] += ms_shift
    return out


def _json_response(status: HTTPStatus, body: bytes) -> Response:
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                       ("Connection", "close")])
    return Response(status.value, status.phrase, headers, body)


def _error_response(status: HTTPStatus, code: int, message: str) -> Response:
    return _json_response(status, orjson.dumps({"code": code, "msg": message}))
