"""Strict HTTP parser: the recorder before and after it, side by side in one run.

Four processes on 127.0.0.1: the simulated authentik (``MockAuthentik``, ACK
latency 0), two ``wsreplay record`` in front of it (the code before the h11
parser, from a source tree given by ``--old``, and this tree's), and this load
generator. Rounds alternate between direct, old and new, so all three sample
the same machine load; figures are medians over the rounds.

* relay: N outposts (default 100) per side, closed loop (HELLO, wait for the
  ACK, next) for a few seconds: round trips per second;
* pass-through HTTP: K keep-alive connections (default 10), closed loop
  ``GET /api/v3/root/config/``: requests per second.

Make the old tree with ``mkdir /tmp/old14 && git archive 7d4d944 | tar -x -C /tmp/old14``.
Rerun: ``.venv/bin/python -m bench.bench_http --old /tmp/old14`` (``--quick``: a short run that
does not touch BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from websockets.asyncio.client import ClientConnection, connect

from bench._report import write_section
from bench.bench_record import TOKEN, pk, start_mock, throughput_round

ROOT = Path(__file__).resolve().parents[1]
RERUN = (
    "mkdir -p /tmp/old14 && git archive 7d4d944 | tar -x -C /tmp/old14 && "
    ".venv/bin/python -m bench.bench_http --old /tmp/old14"
)
REQUEST = b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\n\r\n"


def start_recorder(tree: Path, upstream_port: int, out: str) -> tuple[subprocess.Popen[str], int]:
    """``wsreplay record`` from the source *tree* (its own directory first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "record", "--upstream", f"http://127.0.0.1:{upstream_port}",
         "--listen", "127.0.0.1:0", "--out", out, "--status-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tree, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    port = int(line.split("listening on http://127.0.0.1:")[1].split(",")[0])
    return proc, port


async def open_conns(port: int, n: int, tag: str) -> list[ClientConnection]:
    async def one(i: int) -> ClientConnection:
        uri = f"ws://127.0.0.1:{port}/ws/outpost/{pk(i)}/?instance_uuid={tag}{i}&attempt=0"
        return await connect(
            uri, additional_headers={"Authorization": f"Bearer {TOKEN}"}, compression=None, ping_interval=None
        )

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def cpu_s(proc: subprocess.Popen[str] | None) -> float:
    """CPU seconds (user + system) a process has used so far; 0 for none."""
    if proc is None:
        return 0.0
    times = psutil.Process(proc.pid).cpu_times()
    return float(times.user + times.system)


async def http_round(port: int, conns: int, seconds: float) -> float:
    count = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds

    async def run() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while loop.time() < end:
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200 "):
                raise RuntimeError(head[:60])
            count += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(conns)))
    return count / (time.perf_counter() - t0)


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    mock, mock_port = start_mock(args.connections, cwd=ROOT)
    old, old_port = start_recorder(Path(args.old), mock_port, tempfile.mkdtemp(prefix="bench-http-old-"))
    new, new_port = start_recorder(ROOT, mock_port, tempfile.mkdtemp(prefix="bench-http-new-"))
    ports = {"direct": mock_port, "old": old_port, "new": new_port}
    procs = {"direct": None, "old": old, "new": new}
    relay: dict[str, list[float]] = {name: [] for name in ports}
    http: dict[str, list[float]] = {name: [] for name in ports}
    cpu = {name: [0.0, 0.0, 0.0, 0.0] for name in ("old", "new")}  # relay s, relay trips, http s, http requests
    try:
        conns = {name: await open_conns(port, args.connections, name) for name, port in ports.items()}
        for r in range(args.rounds):
            order = list(ports) if r % 2 == 0 else list(reversed(ports))
            for name in order:
                c0 = cpu_s(procs[name])
                relay[name].append(await throughput_round(conns[name], args.seconds))
                if name in cpu:
                    cpu[name][0] += cpu_s(procs[name]) - c0
                    cpu[name][1] += relay[name][-1] * args.seconds
            for name in order:
                c0 = cpu_s(procs[name])
                http[name].append(await http_round(ports[name], args.http_conns, args.seconds))
                if name in cpu:
                    cpu[name][2] += cpu_s(procs[name]) - c0
                    cpu[name][3] += http[name][-1] * args.seconds
            print(json.dumps({"round": r, "relay": {k: v[-1] for k, v in relay.items()},
                              "http": {k: v[-1] for k, v in http.items()}}), flush=True)  # fmt: skip
        for group in conns.values():
            await asyncio.gather(*(ws.close() for ws in group), return_exceptions=True)
    finally:
        for proc in (old, new, mock):
            proc.terminate()
            proc.communicate(timeout=60)
    result = {
        "relay": {name: statistics.median(v) for name, v in relay.items()},
        "http": {name: statistics.median(v) for name, v in http.items()},
    }
    for kind, rounds in (("relay", relay), ("http", http)):  # how much one round's ratio moves: the noise
        ratios = [n / o for n, o in zip(rounds["new"], rounds["old"])]
        result[kind] |= {"ratio_min": min(ratios), "ratio_max": max(ratios)}
    for name, (relay_s, trips, http_s, requests) in cpu.items():  # CPU per unit of work, µs
        result["relay"][f"cpu_{name}"] = relay_s / trips * 1e6
        result["http"][f"cpu_{name}"] = http_s / requests * 1e6
    return result


def _row(label: str, figures: dict[str, float]) -> str:
    ratio = figures["new"] / figures["old"]
    cells = " | ".join(f"{figures[k]:,.0f}" for k in ("direct", "old", "new"))
    spread = f"{figures['ratio_min']:.2f} to {figures['ratio_max']:.2f}"
    return f"| {label} | {cells} | **{ratio:.2f}** | {spread} |"


def _cpu_row(label: str, figures: dict[str, float]) -> str:
    old, new = figures["cpu_old"], figures["cpu_new"]
    return f"| {label} | {old:,.0f} µs | {new:,.0f} µs | **{new / old:.2f}** |"


def report(res: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    relay = _row(f"relay: HELLO→ACK round trips/s, {args.connections} outposts, closed loop", res["relay"])
    http = _row(f"pass-through HTTP: requests/s, {args.http_conns} keep-alive connections", res["http"])
    return f"""
Rerun: `{RERUN}`

The recorder before the strict parser (`7d4d944`, hand-written HTTP/1.1) and after it (h11 plus
the checks of `wsreplay/record/http11.py`), as two `wsreplay record` processes in front of one
`MockAuthentik` (ACK latency 0), driven by this load generator; rounds alternate direct / old / new
({args.rounds} rounds of {args.seconds:g} s each, medians). HTTP requests are
`GET /api/v3/root/config/` (a 295-byte JSON answer). Load average when the run ended:
{load[0]:.1f} (1 min) on {os.cpu_count()} cores: the machine is shared, compare the ratios.

| figure | direct | old recorder | new recorder | new / old (medians) | new / old, one round (min to max) |
|---|---|---|---|---|---|
{relay}
{http}

CPU the recorder's process spent per unit of work in the same rounds (less sensitive to the other
load on the machine than wall-clock rates):

| figure | old recorder | new recorder | new / old |
|---|---|---|---|
{_cpu_row("relay: CPU per HELLO→ACK round trip", res["relay"])}
{_cpu_row("pass-through HTTP: CPU per request", res["http"])}

The WebSocket relay does not parse HTTP after the handshake, so the strict parser only costs at
connection set-up. Pass-through HTTP pays for two h11 state machines per exchange (the peer's and
the upstream's: every request and response is read and written anew) in pure Python; the idle
watch on the upstream between keep-alive requests measured no visible difference.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", default="/tmp/old14", help="source tree of the recorder before the change")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--http-conns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s; BENCHMARKS.md untouched")
    args = parser.parse_args()
    if not (Path(args.old) / "wsreplay" / "record" / "http11.py").is_file():
        sys.exit(f"bench_http: --old {args.old} is not a wsreplay source tree (see the module docstring)")
    if args.quick:
        args.rounds, args.seconds = 2, 2.0
    res = asyncio.run(main_async(args))
    text = report(res, args)
    print(text)
    if not args.quick:
        write_section("Recorder: strict HTTP parser, before and after", text)


if __name__ == "__main__":
    main()
