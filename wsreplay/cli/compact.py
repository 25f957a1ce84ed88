"""``wsreplay compact CAPTURE [--out DIR] [--buckets N]``: rewrite sealed segments into outpost buckets."""

from __future__ import annotations

import argparse

from ..store import compact

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "compact",
        help="rewrite a capture's sealed segments into Parquet partitioned by outpost bucket (faster groups)",
    )
    p.add_argument("capture", help="capture directory")
    p.add_argument("--out", metavar="DIR", help="write the compacted capture here, leave CAPTURE as it is")
    p.add_argument(
        "--buckets", type=int, metavar="N", help="outpost buckets (default: from the fleet size, ~8 outposts each)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = compact(args.capture, out=args.out, buckets=args.buckets)
    print(f"{args.capture}: {report}")
    return 0
