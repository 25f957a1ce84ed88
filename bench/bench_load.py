"""Reliability under load: 1,000 simulated outposts at a 1 s HELLO interval for 5 minutes through the recorder.

Three processes on 127.0.0.1: the simulated authentik (``MockAuthentik``),
``wsreplay record`` in front of it (default flush interval, status line every
5 s), and this process running the simulated fleet (``wsreplay.sim.run_fleet_async``,
one WebSocket per outpost). Reported:

* frames lost: every HELLO the fleet sent and every ACK it received (its
  ``Truth``) against the HELLO and ACK rows of the capture, per outpost;
  corrupt files (every segment read back after a clean stop);
* latency over time: HELLO→ACK round trips through the recorder, p50/p99 per
  time slice (from the fleet's truth);
* memory over time: the recorder's RSS, its pending rows and flush lag (from
  its status lines), per time slice;
* many connections: 10,000 outpost connections opened through one recorder
  (fd limits raised; root may raise the hard limit), each checked alive;
* the fault suite (``tests/faults``) rerun, its figures table included.

Rerun: ``.venv/bin/python -m bench.bench_load`` (``--minutes 5 --outposts 1000``
by default; ``--minutes 1 --outposts 200 --connections 2000 --no-suite`` for a quick
look; ``--no-write`` leaves BENCHMARKS.md alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
from websockets.asyncio.client import connect

from bench._report import write_section
from bench.bench_record import TOKEN, pk, start_mock
from wsreplay import load
from wsreplay.protocol import encode_hello, hello_args
from wsreplay.sim import OutpostSpec, Scenario, run_fleet_async

ROOT = Path(__file__).resolve().parents[1]
STATUS = re.compile(r"(\d+) open / (\d+) connections, (\d+) frames.*flush lag ([\d.]+) s, (\d+) pending")


def raise_fd_limits(want: int) -> int:
    """Soft (and, as root, hard) RLIMIT_NOFILE up to *want*; inherited by the subprocesses. Returns the soft limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pass
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_recorder(upstream_port: int, out: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsreplay", "record", "--upstream", f"http://127.0.0.1:{upstream_port}",
             "--listen", "127.0.0.1:0", "--out", str(out), "--status-interval", "5"],
            stdout=err, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"recorder did not start: {log.read_text()}")


class Sampler(threading.Thread):
    """Samples the recorder's RSS and CPU every *period* seconds."""

    def __init__(self, pid: int, period: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.period = period
        self.rows: list[dict[str, float]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(self.period):
            with self.proc.oneshot():
                cpu = self.proc.cpu_times()
                self.rows.append(
                    {
                        "t": time.monotonic() - self.t0,
                        "rss_mb": self.proc.memory_info().rss / 1e6,
                        "cpu_s": cpu.user + cpu.system,
                    }
                )


def corrupt_files(out: Path) -> int:
    bad = 0
    for f in out.iterdir():
        try:
            pq.read_table(f) if f.suffix == ".parquet" else load(f)
        except Exception:
            bad += 1
    return bad


async def steady(args: argparse.Namespace, rec_port: int) -> object:
    scenario = Scenario(
        outposts=[OutpostSpec(pk(i), TOKEN) for i in range(args.outposts)],
        duration=args.minutes * 60.0,
        interval=args.interval,
        ack_latency=0.0,
    )
    return await run_fleet_async(scenario, f"http://127.0.0.1:{rec_port}", open_timeout=120)


async def many(port: int, n: int) -> tuple[int, int, float]:
    """Open *n* idle outpost connections through the recorder; HELLO→ACK on every one; return (open, alive, s)."""
    sem = asyncio.Semaphore(200)
    t0 = time.monotonic()

    async def one(i: int):
        async with sem:
            return await connect(
                f"ws://127.0.0.1:{port}/ws/outpost/{pk(i % 1000)}/?instance_uuid=many{i}",
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
                ping_interval=None,
                open_timeout=300,
                compression=None,
            )

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    conns = [c for c in results if not isinstance(c, BaseException)]
    opened = time.monotonic() - t0

    async def alive(i: int, ws) -> bool:
        async with sem:
            try:
                await ws.send(encode_hello(hello_args(uuid=f"many{i}", version="2023.10.0", hostname=f"m{i}")))
                await asyncio.wait_for(ws.recv(), 60)
                return True
            except Exception:
                return False

    ok = sum(await asyncio.gather(*(alive(i, ws) for i, ws in enumerate(conns))))
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    return len(conns), ok, opened


def slices(truth, samples: list[dict[str, float]], status: list[dict[str, float]], width: float) -> pd.DataFrame:
    acks = truth.acks.copy()  # type: ignore[attr-defined]
    t0 = acks.sent_ts.min()
    acks["t"] = (acks.sent_ts - t0).dt.total_seconds()
    acks["slice"] = (acks.t // width).astype(int)
    lat = acks.groupby("slice").latency_s.agg(
        hellos="size", p50=lambda s: np.percentile(s, 50) * 1e3, p99=lambda s: np.percentile(s, 99) * 1e3,
        max=lambda s: s.max() * 1e3,
    )  # fmt: skip
    mem = pd.DataFrame(samples)
    st = pd.DataFrame(status)
    rows = []
    for sl, r in lat.iterrows():
        lo, hi = sl * width, (sl + 1) * width
        m = mem[(mem.t >= lo) & (mem.t < hi)] if len(mem) else mem
        s = st[(st.t >= lo) & (st.t < hi)] if len(st) else st
        rows.append(
            {
                "from_s": int(lo), "hellos": int(r.hellos), "p50_ms": r.p50, "p99_ms": r.p99, "max_ms": r["max"],
                "rss_mb": m.rss_mb.max() if len(m) else float("nan"),
                "pending_max": s.pending.max() if len(s) else float("nan"),
                "flush_lag_max_s": s.lag.max() if len(s) else float("nan"),
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def parse_status(log: Path, t0_wall: float) -> list[dict[str, float]]:
    out = []
    for line in log.read_text().splitlines():
        m = STATUS.search(line)
        if m:
            out.append({"open": int(m.group(1)), "frames": int(m.group(3)), "lag": float(m.group(4)),
                        "pending": int(m.group(5))})  # fmt: skip
    # status lines come every 5 s from the recorder's start
    for i, row in enumerate(out):
        row["t"] = (i + 1) * 5.0 - t0_wall
    return out


def run_suite(json_path: Path) -> tuple[int, float]:
    t0 = time.monotonic()
    env = {**os.environ, "WSREPLAY_FAULTS_FIGURES": str(json_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    print(proc.stdout[-3000:], proc.stderr[-2000:])
    return proc.returncode, time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the steady load (default 5)")
    parser.add_argument("--outposts", type=int, default=1000, help="simulated outposts (default 1000)")
    parser.add_argument("--interval", type=float, default=1.0, help="HELLO interval in seconds (default 1)")
    parser.add_argument("--connections", type=int, default=10_000, help="connections opened at once (default 10000)")
    parser.add_argument("--slice", type=float, default=30.0, help="seconds per row of the over-time table")
    parser.add_argument("--no-suite", action="store_true", help="do not rerun tests/faults")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    limit = raise_fd_limits(3 * args.connections + 2000)
    tmp = Path(tempfile.mkdtemp(prefix="wsreplay-bench-load-"))
    mock, mock_port = start_mock(1000)
    try:
        # ---- steady load
        out = tmp / "steady"
        t_start = time.monotonic()
        rec, rec_port = start_recorder(mock_port, out, tmp / "steady.log")
        sampler = Sampler(rec.pid)
        print(f"steady load: {args.outposts} outposts, {args.interval} s interval, {args.minutes} min ...", flush=True)
        t_fleet = sampler.t0 = time.monotonic()  # every "over time" figure counts from the fleet's start
        sampler.start()
        truth = asyncio.run(steady(args, rec_port))
        rec.terminate()
        rec.wait(120)
        sampler.stop.set()
        rec_cpu = sampler.rows[-1]["cpu_s"] if sampler.rows else float("nan")
        frames = load(out, columns=["outpost_uuid", "event", "direction", "instruction_name"])
        msgs = frames[frames.event == "message"]
        cap_hellos = msgs[(msgs.direction == "to_server") & (msgs.instruction_name == "HELLO")]
        cap_acks = msgs[(msgs.direction == "to_peer") & (msgs.instruction_name == "ACK")]
        sent = truth.hellos.groupby("outpost_uuid").size()  # type: ignore[attr-defined]
        got = truth.acks.groupby("outpost_uuid").size()  # type: ignore[attr-defined]
        rec_h = cap_hellos.groupby("outpost_uuid", observed=True).size().reindex(sent.index, fill_value=0)
        rec_a = cap_acks.groupby("outpost_uuid", observed=True).size().reindex(got.index, fill_value=0)
        lost_h = int((sent - rec_h).clip(lower=0).sum())
        lost_a = int((got - rec_a).clip(lower=0).sum())
        corrupt = corrupt_files(out)
        status = parse_status(tmp / "steady.log", t_fleet - t_start)
        table = slices(truth, sampler.rows, status, args.slice)
        lat = truth.acks.latency_s * 1e3  # type: ignore[attr-defined]
        print(table.to_string(), flush=True)
        # ---- many connections
        conn_res = None
        if args.connections:
            rec2, rec2_port = start_recorder(mock_port, tmp / "many", tmp / "many.log")
            base = psutil.Process(rec2.pid).memory_info().rss
            print(f"{args.connections} connections (fd soft limit {limit}) ...", flush=True)
            opened, ok, secs = asyncio.run(many(rec2_port, args.connections))
            peak = psutil.Process(rec2.pid).memory_info().rss
            rec2.terminate()
            rec2.wait(300)
            conn_res = (opened, ok, secs, (peak - base) / 1e6)
            print(conn_res, flush=True)
    finally:
        mock.kill()
    # ---- the fault suite
    suite = None
    if not args.no_suite:
        code, secs = run_suite(tmp / "faults.json")
        rows = json.loads((tmp / "faults.json").read_text()) if (tmp / "faults.json").exists() else []
        suite = (code, secs, rows)
    body = report(args, truth, len(cap_hellos), len(cap_acks), lost_h, lost_a, corrupt, lat, table, rec_cpu,
                  conn_res, suite, limit)  # fmt: skip
    print(body)
    if not args.no_write:
        write_section("Reliability", body)


def report(args, truth, cap_h, cap_a, lost_h, lost_a, corrupt, lat, table, rec_cpu, conn_res, suite, limit) -> str:
    n_h, n_a = len(truth.hellos), len(truth.acks)
    cmd = ".venv/bin/python -m bench.bench_load"
    if (args.minutes, args.outposts, args.interval) != (5.0, 1000, 1.0):
        cmd += f" --minutes {args.minutes:g} --outposts {args.outposts} --interval {args.interval:g}"
    if args.connections != 10_000:
        cmd += f" --connections {args.connections}"
    lines = [
        f"Rerun: `{cmd}` (about {args.minutes + 3:.0f} minutes). The fault suite alone: "
        "`.venv/bin/python -m pytest tests/faults -q` (part of `make test`; prints the same table).",
        "",
        f"### Steady load: {args.outposts:,} simulated outposts, HELLO every {args.interval:g} s, "
        f"{args.minutes:g} min through `wsreplay record`",
        "",
        "| figure | value |",
        "|---|---|",
        f"| HELLOs the fleet sent / recorded | {n_h:,} / {cap_h:,} |",
        f"| ACKs the fleet received / recorded | {n_a:,} / {cap_a:,} |",
        f"| **frames lost** (per outpost: sent or received but not in the capture) | **{lost_h + lost_a}** |",
        f"| **corrupt files** after a clean stop | **{corrupt}** |",
        f"| HELLO→ACK through the recorder, p50 / p99 / max | {np.percentile(lat, 50):.2f} / "
        f"{np.percentile(lat, 99):.2f} / {lat.max():.1f} ms |",
        f"| recorder CPU over the run | {rec_cpu:.0f} s ({rec_cpu / (args.minutes * 60) * 100:.0f} % of a core) |",
        "",
        f"Over time ({args.slice:g} s slices; RSS sampled every 5 s, pending rows and flush lag from the "
        "recorder's status line every 5 s):",
        "",
        "| from (s) | HELLOs | p50 ms | p99 ms | max ms | recorder RSS MB | pending rows (max) | flush lag (max, s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.from_s} | {r.hellos:,} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.1f} | {r.rss_mb:.0f} | "
            f"{r.pending_max:.0f} | {r.flush_lag_max_s:.1f} |"
        )
    if len(table) > 2:
        relay = table.rss_mb.iloc[:-1]  # the last slice also holds the stop (final seal)
        lo, hi, last = relay.min(), relay.max(), table.rss_mb.iloc[-1]
        lines += [
            "",
            f"Recorder RSS while relaying (every slice but the last): {lo:.0f} to {hi:.0f} MB "
            f"(memory bound held: {'yes' if hi < lo * 1.25 + 20 else 'NO'}); last slice {last:.0f} MB: it also "
            "covers sealing segments (a rotated 64 MiB segment, the final seal at stop), which reads a whole "
            "segment into memory for a moment.",
        ]
    if conn_res:
        opened, ok, secs, mb = conn_res
        lines += [
            "",
            f"### {args.connections:,} connections through one recorder",
            "",
            f"Opened **{opened:,}** of {args.connections:,} in {secs:.0f} s; **{ok:,}** answered a HELLO with "
            f"an ACK afterwards; recorder RSS +{mb:.0f} MB (fd soft limit {limit:,}).",
        ]
    if suite:
        code, secs, rows = suite
        lines += [
            "",
            f"### Fault suite (`tests/faults`, {'passed' if code == 0 else 'FAILED'} in {secs:.0f} s, suite scale)",
            "",
            "| scenario | figure | value | expected |",
            "|---|---|---|---|",
        ]
        for r in sorted(rows, key=lambda r: r["scenario"]):
            lines.append(f"| {r['scenario']} | {r['name']} | {r['value']} | {r['expect']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
