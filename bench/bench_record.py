"""Recorder benchmark: HELLO→ACK through the recorder vs direct, side by side in one run.

Three processes on 127.0.0.1: the simulated authentik (``MockAuthentik``, ACK
latency 0), ``wsreplay record`` in front of it (recording on, default flush
interval), and this load generator. For 1, 100 and 1,000 concurrent outposts
the generator holds N connections direct to the mock and N through the
recorder at the same time, and alternates between them round by round:

* latency: each outpost sends HELLO on a fixed schedule (open loop, about
  ``--rate`` HELLO/s in total) and times the round trip to its ACK; p50/p99
  direct and through the recorder, and the difference (added latency);
* throughput: each outpost sends HELLO, waits for the ACK, sends the next
  (closed loop) for a few seconds; round trips per second, and the ratio.

Then idle connections: RSS of the recorder process before and after opening
K idle outpost connections through it (memory per idle connection), and the
largest number of idle connections held at once (10,000 asked; every one is
checked alive at the end with a HELLO→ACK on a sample and a count of open sockets).

Rerun: ``.venv/bin/python -m bench.bench_record`` (``--quick`` for a smaller run
that does not touch BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench._report import write_section
from wsreplay.protocol import encode_hello, hello_args

TOKEN = "bench-token-not-a-secret"
MOCK_RUNNER = """
import asyncio, json, sys
from wsreplay.sim import MockAuthentik
pks = json.loads(sys.stdin.readline())
async def main():
    ak = MockAuthentik(host="127.0.0.1", port=0, outposts={pk: sys.argv[1] for pk in pks}, ack_latency=0.0)
    async with ak:
        print(ak.port, flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def raise_fd_limit() -> int:
    """Raise the soft fd limit to the hard one (inherited by the subprocesses); return it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pk(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def start_mock(n_pks: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", MOCK_RUNNER, TOKEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([pk(i) for i in range(n_pks)]) + "\n")
    proc.stdin.flush()
    return proc, int(proc.stdout.readline())


def start_recorder(upstream_port: int, out: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "record", "--upstream", f"http://127.0.0.1:{upstream_port}",
         "--listen", "127.0.0.1:0", "--out", out, "--status-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "wsreplay record: listening on http://127.0.0.1:PORT, ..."
    port = int(line.split("listening on http://127.0.0.1:")[1].split(",")[0])
    return proc, port


async def open_conns(port: int, n: int, *, first: int = 0, tag: str = "") -> list[ClientConnection]:
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> ClientConnection:
        async with sem:
            uri = f"ws://127.0.0.1:{port}/ws/outpost/{pk(i % 1000)}/?instance_uuid={tag}{i}&attempt=0"
            return await connect(
                uri,
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
                compression=None,
                ping_interval=None,
                open_timeout=120,
                max_queue=None,
            )

    return list(await asyncio.gather(*(one(first + i) for i in range(n))))


def hello(i: int) -> str:
    return encode_hello(hello_args(uuid=f"bench-{i}", version="2023.10.0", hostname=f"bench-{i}"))


async def latency_round(
    direct: list[ClientConnection], via: list[ClientConnection], interval: float, duration: float
) -> dict[str, list[float]]:
    """Open loop; each outpost alternates its HELLOs between its direct and its recorded connection."""
    out: dict[str, list[float]] = {"direct": [], "via": []}
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def run(i: int, d: ClientConnection, v: ClientConnection) -> None:
        frame = hello(i)
        t = start + random.random() * interval
        k = i
        while t < start + duration:
            await asyncio.sleep(max(0.0, t - loop.time()))
            name, ws = ("direct", d) if k % 2 == 0 else ("via", v)
            t0 = time.perf_counter()
            await ws.send(frame)
            await ws.recv()
            out[name].append(time.perf_counter() - t0)
            t += interval
            k += 1

    await asyncio.gather(*(run(i, d, v) for i, (d, v) in enumerate(zip(direct, via))))
    return out


async def throughput_round(conns: list[ClientConnection], duration: float) -> float:
    count = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + duration

    async def run(i: int, ws: ClientConnection) -> None:
        nonlocal count
        frame = hello(i)
        while loop.time() < end:
            await ws.send(frame)
            await ws.recv()
            count += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(run(i, ws) for i, ws in enumerate(conns)))
    return count / (time.perf_counter() - t0)


async def close_all(conns: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) * 1e3


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


async def compare(
    mock_port: int, rec_port: int, n: int, *, rate: float, rounds: int, seconds: float, procs: tuple[int, int]
) -> dict[str, float]:
    mock_p, rec_p = psutil.Process(procs[0]), psutil.Process(procs[1])
    direct = await open_conns(mock_port, n, tag="d")
    via = await open_conns(rec_port, n, tag="r")
    interval = max(n / rate, 0.005)
    lat: dict[str, list[float]] = {"direct": [], "via": []}
    thr: dict[str, list[float]] = {"direct": [], "via": []}
    cpu = {"mock": 0.0, "rec": 0.0, "trips": 0.0}
    for _ in range(rounds):
        got = await latency_round(direct, via, interval, seconds)
        for name in lat:
            lat[name] += got[name]
    for _ in range(rounds):
        for name, conns in (("direct", direct), ("via", via)):
            m0, r0 = cpu_s(mock_p), cpu_s(rec_p)
            rt_per_s = await throughput_round(conns, seconds)
            thr[name].append(rt_per_s)
            if name == "via":  # CPU seconds each process spent per round trip it carried
                cpu["mock"] += cpu_s(mock_p) - m0
                cpu["rec"] += cpu_s(rec_p) - r0
                cpu["trips"] += rt_per_s * seconds
    await close_all(direct + via)
    return {
        "n": n,
        "samples": min(len(lat["direct"]), len(lat["via"])),
        "rate": n / interval,
        "p50_direct": pct(lat["direct"], 50),
        "p50_via": pct(lat["via"], 50),
        "p99_direct": pct(lat["direct"], 99),
        "p99_via": pct(lat["via"], 99),
        "thr_direct": float(np.median(thr["direct"])),
        "thr_via": float(np.median(thr["via"])),
        "cpu_mock_us": cpu["mock"] / cpu["trips"] * 1e6,
        "cpu_rec_us": cpu["rec"] / cpu["trips"] * 1e6,
    }


async def idle(rec: subprocess.Popen[str], rec_port: int, mem_n: int, hold_n: int) -> dict[str, float]:
    proc = psutil.Process(rec.pid)
    await asyncio.sleep(2.0)
    before = proc.memory_info().rss
    t0 = time.perf_counter()
    conns = await open_conns(rec_port, hold_n, tag="h")
    opened_s = time.perf_counter() - t0
    await asyncio.sleep(5.0)  # held idle
    per_conn = (proc.memory_info().rss - before) / hold_n
    sample = random.sample(conns, 100)
    for i, ws in enumerate(sample):
        await ws.send(hello(i))
        await ws.recv()
    alive = sum(1 for ws in conns if ws.state.name == "OPEN")
    rss_held = proc.memory_info().rss
    await close_all(conns)
    return {"per_conn": per_conn, "mem_n": hold_n, "held": alive, "asked": hold_n, "open_s": opened_s,
            "rss_held": rss_held, "rss_before": before}  # fmt: skip


async def main_async(args: argparse.Namespace) -> tuple[list[dict[str, float]], dict[str, float], int]:
    hard = raise_fd_limit()
    mock, mock_port = start_mock(1000)
    out = tempfile.mkdtemp(prefix="bench-record-")
    rec, rec_port = start_recorder(mock_port, out)
    try:
        results = []
        for n in args.outposts:
            results.append(
                await compare(
                    mock_port,
                    rec_port,
                    n,
                    rate=args.rate,
                    rounds=args.rounds,
                    seconds=args.seconds,
                    procs=(mock.pid, rec.pid),
                )
            )
            print(json.dumps(results[-1]), flush=True)
        hold = min(args.idle, (hard - 200) // 2)  # the recorder holds two sockets per connection
        idle_res = await idle(rec, rec_port, min(args.idle_mem, hold), hold)
        print(json.dumps(idle_res), flush=True)
    finally:
        rec.terminate()
        rec.communicate(timeout=120)
        mock.terminate()
        mock.wait(timeout=30)
    capture_mb = sum(p.stat().st_size for p in Path(out).iterdir()) / 1e6
    print(f"capture: {capture_mb:.1f} MB in {out}", flush=True)
    return results, idle_res, hard


def report(results: list[dict[str, float]], idle_res: dict[str, float], hard: int, args: argparse.Namespace) -> str:
    load1, load5, _ = os.getloadavg()
    lines = [
        "Rerun: `.venv/bin/python -m bench.bench_record`",
        "",
        f"Load average when the run ended: {load1:.1f} (1 min), {load5:.1f} (5 min) on 2 cores: other work was "
        "running, so tail latencies (p99) include scheduler waits of every process, direct and recorded alike.",
        "",
        "Three processes on 127.0.0.1 sharing the machine's 2 cores: `MockAuthentik` (ACK latency 0),",
        "`wsreplay record` in front of it (recording on, flush interval 1 s) and the load generator",
        "(websockets clients). For each N, N outposts connect direct and N through the recorder at the same",
        "time. Latency: open loop, about "
        f"{args.rate:.0f} HELLO/s in total (N=1: every 5 ms) for {args.rounds}x{args.seconds:.0f} s, each outpost "
        "alternating its HELLOs between its direct and its recorded connection, so both sides sample the",
        "same moments of machine load.",
        f"Throughput: closed loop (HELLO, wait for ACK, next), {args.rounds}x{args.seconds:.0f} s per side, median.",
        "",
        "| outposts | HELLO→ACK p50 direct / via recorder | added p50 | p99 direct / via recorder | added p99 "
        "| round trips/s direct / via | throughput ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']:,.0f} | {r['p50_direct']:.2f} / {r['p50_via']:.2f} ms "
            f"| **{r['p50_via'] - r['p50_direct']:+.2f} ms** "
            f"| {r['p99_direct']:.2f} / {r['p99_via']:.2f} ms | **{r['p99_via'] - r['p99_direct']:+.2f} ms** "
            f"| {r['thr_direct']:,.0f} / {r['thr_via']:,.0f} | **{r['thr_via'] / r['thr_direct']:.2f}** |"
        )
    lines += [
        "",
        "CPU per HELLO→ACK round trip carried through the recorder, same throughput rounds (less sensitive to",
        "other load than wall-clock figures): the recorder's process next to the simulated authentik's.",
        "",
        "| outposts | recorder CPU / round trip | MockAuthentik CPU / round trip | ratio |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['n']:,.0f} | {r['cpu_rec_us']:.0f} µs | {r['cpu_mock_us']:.0f} µs "
            f"| **{r['cpu_rec_us'] / r['cpu_mock_us']:.2f}** |"
        )
    lines += [
        "",
        "| idle connections | value |",
        "|---|---|",
        f"| recorder memory per idle connection (RSS delta over {idle_res['mem_n']:,.0f} connections) "
        f"| **{idle_res['per_conn'] / 1024:.1f} KiB** |",
        f"| idle connections held through one recorder (asked {idle_res['asked']:,.0f}) | **{idle_res['held']:,.0f}** "
        f"(opened in {idle_res['open_s']:.0f} s, recorder RSS {idle_res['rss_held'] / 1e6:.0f} MB) |",
        "",
        f"The hard open-files limit here is {hard:,} per process and cannot be raised without "
        "CAP_SYS_RESOURCE; the recorder needs two sockets per relayed connection (peer + upstream), so one",
        f"recorder process can hold at most about {(hard - 200) // 2:,} connections on this machine. "
        "10,000 needs a hard limit above ~20,100 (`ulimit -Hn`, or `LimitNOFILE=` in a systemd unit).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run; does not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.outposts, args.rounds, args.seconds, args.rate, args.idle, args.idle_mem = (
            [1, 100],
            1,
            2.0,
            500.0,
            1000,
            500,
        )
    else:
        args.outposts, args.rounds, args.seconds, args.rate, args.idle, args.idle_mem = (
            [1, 100, 1000], 2, 5.0, 1000.0, 10_000, 2000,
        )  # fmt: skip
    results, idle_res, hard = asyncio.run(main_async(args))
    text = report(results, idle_res, hard, args)
    print(text)
    if not args.quick:
        write_section("Recorder", text)


if __name__ == "__main__":
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    main()
