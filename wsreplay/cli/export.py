"""``wsreplay export CAPTURE --har FILE``: a capture as a HAR that DevTools and Playwright open."""

from __future__ import annotations

import argparse

from ..interop import export_har


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export",
        help="export a capture as a HAR file (Chrome DevTools, Playwright)",
        description=(
            "Write a capture's WebSocket connections as a HAR 1.2 file with _webSocketMessages per "
            "connection, which Chrome DevTools (Network > Import HAR) and Playwright open."
        ),
    )
    p.add_argument("capture", help="capture directory or segment file")
    p.add_argument("--har", required=True, metavar="FILE", help="the .har file to write")
    p.add_argument(
        "--base-url", default="ws://authentik", help="scheme and host for the URLs (default: ws://authentik)"
    )
    p.add_argument("--start", help="only events at or after this time (ISO 8601)")
    p.add_argument("--end", help="only events before this time (ISO 8601)")
    p.add_argument("--endpoint", choices=["outpost", "client", "other"], help="only this endpoint")
    p.add_argument("--outpost", help="only this outpost pk")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = export_har(
        args.capture,
        args.har,
        base_url=args.base_url,
        start=args.start,
        end=args.end,
        endpoint=args.endpoint,
        outpost=args.outpost,
    )
    print(f"wrote {path}")
    return 0
