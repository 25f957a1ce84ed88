"""``wsreplay report CAPTURE [-o FILE.html]``: the self-contained HTML fleet health report."""

from __future__ import annotations

import argparse
import sys

from ..reporting import default_output, report

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="write a self-contained HTML fleet health report of a capture")
    p.add_argument("capture", help="capture directory or segment file")
    p.add_argument("-o", "--output", metavar="FILE.html", help="where to write it (default: <capture>.html beside it)")
    p.add_argument("--title", help="page title (default: the capture's name)")
    p.add_argument("--top", type=int, default=25, help="outposts drawn one per row in the uptime timeline")
    p.add_argument("--max-rows", type=int, default=300, help="rows shown in each table")
    p.add_argument("--policy", choices=("observed", "authentik"), default="observed", help="outage policy")
    p.add_argument("--factor", type=float, default=1.5, help="state timeout as a multiple of the HELLO interval")
    p.add_argument("--start", help="only from this time (ISO 8601)")
    p.add_argument("--end", help="only until this time (ISO 8601)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = args.output or default_output(args.capture)
    rep = report(
        args.capture,
        title=args.title,
        top=args.top,
        max_rows=args.max_rows,
        policy=args.policy,
        factor=args.factor,
        start=args.start,
        end=args.end,
        progress=sys.stderr.isatty(),
    )
    path = rep.save(out)
    print(f"{path}  ({rep.outposts:,} outposts, {rep.outages:,} outages, {len(rep.html) / 1e6:.1f} MB)")
    return 0
