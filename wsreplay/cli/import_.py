"""``wsreplay import FILE --out CAPTURE``: a HAR, mitmproxy flow file or tshark export into a capture."""

from __future__ import annotations

import argparse
import sys

from ..interop import FORMATS, import_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "import",
        help="import a HAR (DevTools, Playwright, mitmproxy), a mitmproxy flow file or tshark JSON/EK output",
        description=(
            "Import the WebSocket connections of a HAR file, a mitmproxy flow file (mitmdump -w) or "
            "tshark -T json / -T ek output into a capture directory. The format is told from the content. "
            "Credentials (Authorization, cookies, tokens in query strings) are never copied."
        ),
    )
    p.add_argument("file", help="the file to import")
    p.add_argument("--out", required=True, help="capture directory to write (created if missing)")
    p.add_argument("--format", choices=FORMATS, help="skip format detection")
    p.add_argument("--capture-id", help="id of the imported capture (default: a new one)")
    p.add_argument(
        "--skip-bad", action="store_true", help="skip entries that cannot be read instead of stopping at the first"
    )
    p.add_argument("--server-port", type=int, help="tshark: authentik's TCP port, for streams without a handshake")
    p.add_argument("--path", help="tshark: request path for streams whose handshake was not captured")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = {}
    if args.server_port is not None:
        options["server_port"] = args.server_port
    if args.path is not None:
        options["path"] = args.path
    frames = import_file(
        args.file,
        args.out,
        format=args.format,
        capture_id=args.capture_id,
        on_error="skip" if args.skip_bad else "raise",
        **options,
    )
    info = frames.attrs.get("import", {})
    if not info.get("connections"):
        print(
            f"wsreplay import: {args.file} holds no WebSocket connection ({info.get('format')}); nothing written",
            file=sys.stderr,
        )
        for error in info.get("errors", []):
            print(f"skipped: {error}", file=sys.stderr)
        return 1
    print(
        f"imported {info.get('connections', 0)} connection(s), {info.get('messages', 0)} message(s) "
        f"({info.get('format')}) from {args.file} into {args.out}"
    )
    for error in info.get("errors", []):
        print(f"skipped: {error}")
    if info.get("dropped"):
        print(
            f"note: {info['dropped']} message(s) were dropped by the proxy (never delivered); "
            "they are kept as 'dropped' rows, which the analyses leave out"
        )
    if args.path is None:
        told = info.get("streams_from_frames") or {}
        if told:
            kinds = ", ".join(
                f"{n} {endpoint}" for endpoint, n in sorted(told.items(), key=lambda kv: kv[0] != "outpost")
            )
            print(
                f"note: {sum(told.values())} stream(s) had no captured handshake; told from their frames: {kinds}"
                + (" (outpost pk unknown: outpost_uuid is '(pk not captured)')" if told.get("outpost") else "")
            )
        if info.get("streams_unnamed"):
            print(
                f"note: {info['streams_unnamed']} stream(s) had no captured handshake and frames that tell no "
                "endpoint; pass --path /ws/outpost/<pk>/ (and --server-port) to name them"
            )
    return 0
