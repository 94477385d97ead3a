"""``tickloom feed-server``: serve a recorded Binance capture as a live websocket feed (see ``runtime.feed_server``).

    tickloom feed-server CAPTURE [--host 127.0.0.1] [--port 0] [--speed 1.0 | --max-rate MESSAGES_PER_S]
                         [--drop-after N [--drop-repeat] [--drop-mode close|abort]] [--loop] [--snapshot-wait S]

Prints ``listening on <host>:<port>`` (the bound port: ``--port 0`` picks a free one) and the URLs to use, then
plays the capture from the first subscription on, at its recorded pace divided by ``--speed`` (``inf``: as
fast as possible) or evenly at ``--max-rate`` messages a second. It exits a second after the end of the capture
(never with ``--loop``) or on Ctrl-C.
"""

import argparse
import math
import sys
import time
from pathlib import Path

_LINGER_S = 1.0


def add_command(commands) -> None:
    """Add ``feed-server`` to the ``tickloom`` subcommands."""
    feed = commands.add_parser(
        "feed-server", help="serve a recorded Binance capture as a live websocket feed with REST snapshots",
        description="Replays CAPTURE (<receive ts ns> <JSON> per line, gzip or text) to websocket clients in "
        "Binance's stream formats (/stream?streams=a/b combined, /ws/a/b bare, or SUBSCRIBE messages), paced by "
        "the recorded receive times, and answers REST depth snapshots (/api/v3/depth, /fapi/v1/depth, "
        "/dapi/v1/depth) with the book as of the replay point.",
    )
    feed.add_argument("capture", type=Path)
    feed.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    feed.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free port, printed)")
    pace = feed.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0,
                      help="replay speed: 1 real time, 10 ten times faster, inf as fast as possible (default 1)")
    pace.add_argument("--max-rate", type=float, metavar="MESSAGES_PER_S",
                      help="send evenly at this many messages a second instead of the recorded pace")
    feed.add_argument("--drop-after", type=int, metavar="N", help="close a connection after N messages sent to it")
    feed.add_argument("--drop-repeat", action="store_true",
                      help="with --drop-after: drop every connection after N messages (default: the first only)")
    feed.add_argument("--drop-mode", choices=("close", "abort"), default="close",
                      help="how to drop: a close frame (1001) or a TCP reset (default close)")
    feed.add_argument("--loop", action="store_true", help="replay the capture again at its end (ids shifted)")
    feed.add_argument("--restamp", action="store_true",
                      help="move venue times (E, T) so the first message is stamped now, like a live venue")
    feed.add_argument("--snapshot-wait", type=float, default=0.0, metavar="SECONDS",
                      help="wait at a symbol's first recorded snapshot until a client fetched it (default 0: don't)")
    feed.set_defaults(handler=_feed_server)


def _feed_server(args: argparse.Namespace) -> int:
    from runtime.feed_server import FeedServer

    try:
        server = FeedServer(args.capture, host=args.host, port=args.port, speed=args.speed, max_rate=args.max_rate,
                            restamp=args.restamp,
                            drop_after=args.drop_after, drop_repeat=args.drop_repeat, drop_mode=args.drop_mode,
                            loop=args.loop, snapshot_wait_s=args.snapshot_wait)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    server.start()
    capture = server.capture
    pace = (f"{args.max_rate:g} messages/s" if args.max_rate is not None else
            "as fast as possible" if math.isinf(args.speed) else f"{args.speed:g}x recorded pace")
    print(f"listening on {server.host}:{server.port}", flush=True)
    print(f"  {capture.path}: {capture.messages} messages of {', '.join(capture.symbols)} ({capture.venue_kind}), "
          f"{capture.duration_ns / 1e9:.1f} s recorded; {pace}; starts at the first subscription", flush=True)
    if capture.bad_lines:
        print(f"  {len(capture.bad_lines)} line(s) skipped, not Binance messages: lines {capture.bad_lines[:5]}",
              flush=True)
    print(f"  websocket {server.url}/stream?streams=<symbol>@depth@100ms/<symbol>@trade  "
          f"REST {server.rest_url}/api/v3/depth?symbol=<SYMBOL>", flush=True)
    try:
        while not server.wait_finished(0.2):
            pass
        time.sleep(_LINGER_S)  # a client reconnecting now learns the feed has ended (HTTP 410)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    stats = server.stats
    print(f"played {stats.messages_played} messages, sent {stats.messages_sent} over {stats.connections} "
          f"connection(s), {stats.drops} dropped, {stats.snapshots_served} snapshot(s) served", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``feed-server`` alone (what ``tickloom feed-server`` runs once wired into ``runtime.cli``)."""
    parser = argparse.ArgumentParser(prog="tickloom")
    add_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["feed-server", *(sys.argv[1:] if argv is None else argv)])
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
