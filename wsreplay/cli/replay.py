"""``wsreplay replay CAPTURE --target URL``: stream a capture back to a server.

Exit status: 0 replayed (and, with ``--check``, answered as recorded); 1 the
check found differences; 2 a usage or capture error; 3 the target refused a
handshake the capture saw accepted, was unreachable, or went away mid-replay.
"""

from __future__ import annotations

import argparse
import sys

from ..playback.match import Matcher
from ..playback.run import replay

_EPILOG = """\
secrets: outposts authenticate with AUTHENTIK_TOKEN (or --tokens FILE of <pk>=<token> lines),
/ws/client/ with the AUTHENTIK_SESSION cookie; captures never hold them.
exit status: 0 ok, 1 --check found differences, 2 usage or capture error,
3 the target refused, was unreachable or went away mid-replay."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "replay",
        help="replay a capture against a server (timed or lock-step), optionally checking its answers",
        description=(
            "Open one WebSocket per recorded connection on the target (same path and query string), send the "
            "recorded outpost/browser frames at their recorded offsets (or in lock-step with the recorded "
            "replies), and record everything as a new capture."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", help="capture directory or segment file")
    p.add_argument("--target", required=True, metavar="URL", help="base URL of the server (http(s):// or ws(s)://)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--speed", default=None, help="divide recorded offsets by X (0.1 to 1000) or 'max' (default 1)")
    mode.add_argument(
        "--lockstep", action="store_true", help="send each frame once the replies recorded before it have arrived"
    )
    p.add_argument("--out", metavar="DIR", help="write the observed traffic as a capture directory")
    p.add_argument("--check", action="store_true", help="compare the answers with the capture; exit 1 on differences")
    sel = p.add_argument_group("selection")
    sel.add_argument("--endpoint", action="append", choices=["outpost", "client", "other"], help="only this endpoint")
    sel.add_argument("--outpost", action="append", metavar="PK", help="only this recorded outpost (repeatable)")
    sel.add_argument("--connection", action="append", metavar="ID", help="only this connection id or prefix")
    sel.add_argument("--start", help="only connections opened at or after this time (ISO 8601)")
    sel.add_argument("--end", help="only connections opened before this time (ISO 8601)")
    sel.add_argument("--map", action="append", metavar="OLD=NEW", help="replay recorded outpost OLD as outpost NEW")
    sel.add_argument("--tokens", metavar="FILE", help="outpost tokens, <pk>=<token> per line (or a JSON object)")
    chk = p.add_argument_group("check")
    chk.add_argument(
        "--match", choices=["names", "payload"], default="names", help="compare frame names (default) or payloads"
    )
    chk.add_argument("--ignore-field", action="append", default=[], metavar="PATH", help="JSON path to leave out")
    chk.add_argument("--server-events", action="store_true", help="also compare pushes and server-initiated closes")
    chk.add_argument("--diff-limit", type=int, default=10, metavar="N", help="mismatches shown (default 10)")
    tune = p.add_argument_group("tuning")
    tune.add_argument("--reply-timeout", type=float, default=5.0, metavar="S", help="wait for a reply (default 5)")
    tune.add_argument("--open-timeout", type=float, default=10.0, metavar="S", help="handshake timeout (default 10)")
    tune.add_argument("--max-connections", type=int, metavar="N", help="at most N connections open at once")
    tune.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    matcher = Matcher(compare=args.match, ignore_fields=tuple(args.ignore_field), server_events=args.server_events)
    result = replay(
        args.capture,
        args.target,
        speed=args.speed,
        lockstep=args.lockstep,
        endpoint=args.endpoint,
        outpost=args.outpost,
        connection=args.connection,
        start=args.start,
        end=args.end,
        mapping=args.map,
        tokens_file=args.tokens,
        out=args.out,
        check=matcher if args.check else False,
        reply_timeout=args.reply_timeout,
        open_timeout=args.open_timeout,
        max_connections=args.max_connections,
        progress=False if args.no_progress else None,
        freeze_gc=True,  # the process is the replay's own
    )
    for note in result.notes:
        print(f"wsreplay replay: note: {note}", file=sys.stderr)
    print(result.summary())
    for problem in result.problems:
        print(f"wsreplay replay: {problem}", file=sys.stderr)
    if result.check is not None:
        print(result.check.format(args.diff_limit))
    return result.exit_status()
