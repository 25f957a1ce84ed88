"""``wsreplay recover DIR``: seal the segments a crashed recorder left behind."""

from __future__ import annotations

import argparse

from ..store import recover


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("recover", help="seal in-progress segments left by a crash")
    p.add_argument("capture", help="capture directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = recover(args.capture)
    print(f"{args.capture}: {report}")
    return 0
