"""``wsreplay serve CAPTURE``: act as the recorded authentik until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from ..address import parse_listen
from ..exceptions import ConfigurationError
from ..playback.credentials import TOKEN_ENV, read_token_file
from ..playback.server import ReplayServer


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="serve a capture as the recorded authentik (ACKs, pushes, closes as recorded)",
        description=(
            "Listen on the recorded paths and answer each incoming frame with the reply the capture recorded "
            "after it (after the recorded latency), push TRIGGER_UPDATE / SESSION_END / notices at their "
            "recorded offsets from each connection's open. Runs until SIGINT/SIGTERM, then exits 0."
        ),
    )
    p.add_argument("capture", help="capture directory or segment file")
    p.add_argument("--listen", default="127.0.0.1:9000", metavar="HOST:PORT", help="default 127.0.0.1:9000")
    p.add_argument("--speed", default=None, help="divide recorded latencies and offsets by X (0.1 to 1000, or max)")
    p.add_argument(
        "--check-token",
        action="store_true",
        help=f"refuse outposts without the right bearer token (from --tokens or {TOKEN_ENV}) with HTTP 403",
    )
    p.add_argument("--tokens", metavar="FILE", help="outpost tokens, <pk>=<token> per line (or a JSON object)")
    p.add_argument("--endpoint", action="append", choices=["outpost", "client", "other"], help="only this endpoint")
    p.add_argument("--outpost", action="append", metavar="PK", help="only this recorded outpost (repeatable)")
    p.add_argument("--map", action="append", metavar="OLD=NEW", help="serve recorded outpost OLD as outpost NEW")
    p.add_argument("--out", metavar="DIR", help="write what the server saw and sent as a capture directory")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    p.set_defaults(run=run)


def _tokens(args: argparse.Namespace) -> str | dict[str, str] | None:
    if not args.check_token:
        return None
    if args.tokens:
        return read_token_file(args.tokens)
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigurationError(f"--check-token needs {TOKEN_ENV} or --tokens FILE")
    return token


async def _serve(server: ReplayServer, quiet: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {server.host}:{server.port}: {exc.strerror or exc}") from None
    if not quiet:
        paths = len({s.path for s in server.plan.scripts})
        print(
            f"serving {len(server.plan)} recorded connection(s) on {paths} path(s) at {server.url} (Ctrl-C to stop)",
            flush=True,
        )
    await server.serve_forever(stop)


def run(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen, default_port=9000)
    server = ReplayServer(
        args.capture,
        host=host,
        port=port,
        speed=args.speed,
        tokens=_tokens(args),
        endpoint=args.endpoint,
        outpost=args.outpost,
        mapping=args.map,
        out=args.out,
    )
    asyncio.run(_serve(server, args.quiet))
    if not args.quiet:
        print(f"stopped: {server.stats}", flush=True)
    if args.out and not args.quiet:
        print(f"observed traffic written to {args.out}", file=sys.stderr)
    return 0
