"""``wsreplay probe``: synthetic monitoring as an extra outpost instance and/or a browser."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from ..record.prober import Probe, ProbeStats


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "probe",
        help="connect as an extra outpost instance / browser and record ACK latency and pushes",
        description=(
            "Connect to authentik as one more outpost instance (token from AUTHENTIK_TOKEN) and/or a browser "
            "session (cookie from AUTHENTIK_SESSION), send HELLO every interval, record every frame."
        ),
    )
    p.add_argument("--url", required=True, metavar="URL", help="authentik base URL, http(s):// or ws(s)://")
    p.add_argument("--out", required=True, metavar="DIR", help="capture directory")
    p.add_argument("--outpost", metavar="PK", help="outpost pk to connect as (token from AUTHENTIK_TOKEN)")
    p.add_argument("--client", action="store_true", help="hold a /ws/client/ session (cookie: AUTHENTIK_SESSION)")
    p.add_argument("--interval", type=float, default=10.0, metavar="S", help="seconds between HELLOs (default 10)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds (default: never)")
    p.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    p.add_argument("--ca-file", metavar="PEM", help="CA bundle to verify the server with")
    p.add_argument("--status-interval", type=float, default=60.0, metavar="S", help="status line period; 0: none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    probe = Probe(
        args.url,
        out=args.out,
        outpost=args.outpost,
        client=args.client,
        interval=args.interval,
        insecure=args.insecure,
        ca_file=args.ca_file,
    )
    stats = asyncio.run(_probe(probe, args))
    print(f"probe finished: {_line(stats)}; capture {args.out}")
    return 0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f} ms"


def _line(s: ProbeStats) -> str:
    pushes = ", ".join(f"{k} {v}" for k, v in sorted(s.pushes.items())) or "none"
    return (
        f"{s.connections} connections ({s.reconnects} reconnects, {s.refused} refused), {s.hellos} HELLO, "
        f"{s.acks} ACK, HELLO->ACK p50 {_ms(s.latency_quantile(0.5))} p99 {_ms(s.latency_quantile(0.99))}, "
        f"pushes: {pushes}"
    )


async def _probe(probe: Probe, args: argparse.Namespace) -> ProbeStats:
    loop = asyncio.get_running_loop()
    async with probe:
        task = asyncio.create_task(probe.run(duration=args.duration))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, probe.stop)
        print(f"wsreplay probe: probing {args.url}, capture {args.out}", file=sys.stderr, flush=True)
        while not task.done():
            period = args.status_interval if args.status_interval > 0 else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), period)
            if not task.done():
                print(f"wsreplay probe: {_line(probe.stats)}", file=sys.stderr, flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        return task.result()
