"""``wsreplay info CAPTURE``: what is in a capture."""

from __future__ import annotations

import argparse

from ..store import load
from ..summary import summarize


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("info", help="counts, time span, outposts and parse errors of a capture")
    p.add_argument("capture", help="capture directory or segment file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(summarize(load(args.capture)))
    return 0
