"""``wsreplay record``: a recording proxy in front of authentik, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys

from ..exceptions import ConfigurationError
from ..record.api import Recorder
from ..record.loop import LOOPS, default_loop, resolve_loop
from ..record.loop import run as run_on_loop
from ..record.process import tune_recorder_process
from ..record.proxy import DEFAULT_MAX_SIZE

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """``16MiB``, ``512k`` or a plain number of bytes."""
    raw = text.strip().lower()
    digits = raw.rstrip("kmgib")
    unit = raw[len(digits) :]
    if not digits.isdigit() or unit not in _UNITS or int(digits) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 16MiB, 512KiB, 1048576)")
    return int(digits) * _UNITS[unit]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "record",
        help="relay outposts and browsers to authentik and record every WebSocket frame",
        description=(
            "Listen for outposts (AUTHENTIK_HOST) and browsers, relay /ws/ connections to the upstream "
            "authentik and record every frame; plain HTTP is passed through. Runs until SIGINT/SIGTERM."
        ),
    )
    p.add_argument("--upstream", required=True, metavar="URL", help="authentik base URL, http(s):// or ws(s)://")
    p.add_argument("--listen", default="127.0.0.1:9000", metavar="HOST:PORT", help="default: 127.0.0.1:9000")
    p.add_argument("--out", required=True, metavar="DIR", help="capture directory")
    p.add_argument("--flush-interval", type=float, default=1.0, metavar="S", help="seconds (default 1)")
    p.add_argument("--insecure", action="store_true", help="do not verify the upstream's TLS certificate")
    p.add_argument("--ca-file", metavar="PEM", help="CA bundle to verify the upstream with")
    p.add_argument(
        "--max-size", type=parse_size, default=DEFAULT_MAX_SIZE, metavar="SIZE", help="largest frame (default 16MiB)"
    )
    p.add_argument(
        "--rewrite-host",
        action="store_true",
        help="send the upstream's address as Host (default: the peer's Host unchanged; always in X-Forwarded-Host)",
    )
    p.add_argument("--status-interval", type=float, default=10.0, metavar="S", help="status line period; 0: none")
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve live metrics for Prometheus at http://HOST:PORT/metrics and readiness at /-/ready "
        "(needs wsreplay[metrics])",
    )
    p.add_argument(
        "--metrics-retention",
        type=float,
        default=86_400.0,
        metavar="S",
        help="seconds an outpost stays in the outpost series after its last connection ended (default 86400)",
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default=default_loop(),
        help="event loop: uvloop when installed (auto, the default; $WSREPLAY_LOOP), or asyncio",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.flush_interval <= 0:
        raise ConfigurationError("--flush-interval must be > 0 seconds")
    tune_recorder_process()  # thread switching, Arrow's allocator and thread pool (record/process.py)
    args.loop = resolve_loop(args.loop)
    return run_on_loop(_record(args), loop=args.loop)


def _status(rec: Recorder) -> str:
    s = rec.stats
    sink = rec.sink
    return (
        f"wsreplay record: {s.connections_open} open / {s.connections_total} connections, "
        f"{s.frames} frames, {s.bytes / 1e6:.2f} MB, {s.refused} refused, {s.http_requests} http, "
        f"flush lag {sink.flush_lag:.1f} s, {sink.pending} pending"
        + (f", DISK ERRORS {sink.writer.stats.write_errors}" if sink.writer.stats.write_errors else "")
    )


async def _record(args: argparse.Namespace) -> int:
    rec = Recorder(
        args.upstream,
        out=args.out,
        listen=args.listen,
        flush_interval=args.flush_interval,
        insecure=args.insecure,
        ca_file=args.ca_file,
        max_size=args.max_size,
        rewrite_host=args.rewrite_host,
        metrics=args.metrics,
        metrics_retention=args.metrics_retention,
    )
    await rec.start()
    # Everything imported so far (websockets, h11, the codec, ...) lives as long as the process:
    # keep it out of the garbage collector's full passes, which would otherwise
    # stall the relay for tens of milliseconds every few seconds under load.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"wsreplay record: listening on {rec.url}, relaying to {args.upstream}, "
        f"capture {args.out} (id {rec.capture_id}), loop {args.loop}",
        file=sys.stderr,
        flush=True,
    )
    if rec.metrics_url is not None:
        print(f"wsreplay record: metrics at {rec.metrics_url}/metrics, readiness at {rec.metrics_url}/-/ready",
              file=sys.stderr, flush=True)  # fmt: skip
    await _check_upstream(rec)
    disk = asyncio.ensure_future(_watch_disk(rec, stop))
    try:
        while not stop.is_set():
            period = args.status_interval if args.status_interval > 0 else None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            if not stop.is_set():
                print(_status(rec), file=sys.stderr, flush=True)
    finally:
        disk.cancel()
        print("wsreplay record: stopping (closing connections with 1001, sealing segments)", file=sys.stderr)
        stats = rec.stats
        open_at_stop = stats.connections_open
        await rec.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    from ..store.listing import segment_files

    segs = segment_files(args.out) if stats.connections_total or stats.refused else None
    print(
        f"recorded {stats.connections_total} connections ({open_at_stop} closed at stop), {stats.frames} frames, "
        f"{stats.bytes} payload bytes, {stats.refused} refused handshakes, {stats.errors} error rows, "
        f"{stats.http_requests} HTTP requests passed through; capture {args.out}"
        + (f" ({len(segs.parquet)} sealed segments)" if segs else "")
    )
    return 0


async def _watch_disk(rec: Recorder, stop: asyncio.Event) -> None:
    """Say at once (not at the next status line) when the capture cannot be written, and when it can again."""
    stats = rec.sink.writer.stats
    seen, failing = stats.write_errors, False
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)
        if stats.write_errors > seen and not failing:
            failing = True
            print(
                f"wsreplay record: ERROR: cannot write the capture ({stats.last_error}); still relaying, "
                f"keeping {rec.sink.pending} events in memory until the disk takes them",
                file=sys.stderr,
                flush=True,
            )
        elif failing and stats.write_errors == seen and rec.sink.pending == 0:
            failing = False
            print("wsreplay record: writing the capture again (nothing lost)", file=sys.stderr, flush=True)
        seen = stats.write_errors


async def _check_upstream(rec: Recorder) -> None:
    try:
        _, writer = await rec.upstream.connect(rec.upstream.ssl_context())
    except Exception as exc:
        print(
            f"wsreplay record: warning: upstream {rec.upstream.url} is not reachable now ({type(exc).__name__}: "
            f"{exc}); peers get 502 until it is",
            file=sys.stderr,
            flush=True,
        )
        return
    writer.close()
