"""Recorder benchmark: HELLO→ACK direct, through nginx and through the recorder, side by side in one run.

Processes on 127.0.0.1: the simulated authentik (``MockAuthentik``, ACK
latency 0); in front of it nginx (Debian ``nginx-light``, one worker, the
standard WebSocket proxy configuration, started here with its own prefix and
stopped by PID; left out with a message where it is not installed) and
``wsreplay record`` twice (recording on, default flush interval; on uvloop and
on asyncio's own loop); and this load generator. For 1, 100 and 1,000
concurrent outposts the generator holds N connections on every path at the
same time:

* latency: each outpost sends HELLO on a fixed schedule (open loop, about
  ``--rate`` HELLO/s in total), each time on the next path, and times the
  round trip to its ACK; p50/p99 per path and the difference to direct
  (added latency);
* throughput: each outpost sends HELLO, waits for the ACK, sends the next
  (closed loop) for a few seconds, one path after the other; round trips per
  second, and the ratios to direct and to nginx;
* CPU per round trip of each proxy process (nginx: master and worker), and of
  the mock on the direct path, from the throughput rounds (psutil);
* peak RSS (VmHWM) of each proxy once its 1,000 connections are open.

Then idle connections: RSS of the recorder process before and after opening
K idle outpost connections through it (memory per idle connection), and the
largest number of idle connections held at once (10,000 asked; every one is
checked alive at the end with a HELLO→ACK on a sample and a count of open sockets).

With ``--old DIR`` (a source tree of an earlier recorder, e.g. from ``git
archive``), that recorder runs as one more path (on uvloop) in the same rounds:
before and after a change, measured side by side.

Rerun: ``.venv/bin/python -m bench.bench_record`` (``--quick`` for a smaller run
that does not touch BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def start_mock(n_pks: int, cwd: Path | None = None) -> tuple[subprocess.Popen[str], int]:
    """The simulated authentik in a process of its own (run from *cwd*), for *n_pks* outposts; and its port."""
    proc = subprocess.Popen(
        [sys.executable, "-c", MOCK_RUNNER, TOKEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=cwd
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps([pk(i) for i in range(n_pks)]) + "\n")
    proc.stdin.flush()
    return proc, int(proc.stdout.readline())


def start_recorder(
    upstream_port: int, out: str, loop: str = "auto", cwd: str | None = None, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[str], int]:
    """``wsreplay record`` (with *extra* options) in front of *upstream_port*; of the source tree *cwd* when given."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsreplay", "record", "--upstream", f"http://127.0.0.1:{upstream_port}",
         "--listen", "127.0.0.1:0", "--out", out, "--status-interval", "0", "--loop", loop, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "wsreplay record: listening on http://127.0.0.1:PORT, ..."
    port = int(line.split("listening on http://127.0.0.1:")[1].split(",")[0])
    return proc, port


NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections {conns}; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nginx(upstream_port: int, nofile: int) -> tuple[subprocess.Popen[str] | None, int, str]:
    """nginx (one worker) in front of the mock, with its own prefix; (process, port, version) or (None, 0, why)."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if binary is None:
        return None, 0, "nginx is not installed (`make peers` installs Debian's nginx-light)"
    prefix = tempfile.mkdtemp(prefix="bench-nginx-")
    port = free_port()
    conf = Path(prefix) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, upstream=upstream_port, nofile=nofile,
                                      conns=max(1024, nofile - 100)))  # fmt: skip
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    proc = subprocess.Popen([binary, "-p", prefix, "-c", str(conf), "-e", f"{prefix}/error.log"], text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, port, version
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    return None, 0, f"nginx did not start: {(Path(prefix) / 'error.log').read_text()[-300:]}"


def cpu_tree_s(proc: psutil.Process) -> float:
    """CPU seconds of *proc* and its children (nginx's master and worker)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def rss_split_mb(proc: psutil.Process) -> tuple[float, float]:
    """(file-backed, anonymous) resident MB of *proc* now: shared libraries' pages, and the heap and stacks."""
    status = Path(f"/proc/{proc.pid}/status").read_text()
    return tuple(int(status.split(f"{key}:")[1].split()[0]) * 1024 / 1e6 for key in ("RssFile", "RssAnon"))  # type: ignore[return-value]


def _vmhwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def peak_rss_mb(proc: psutil.Process, *, tree: bool) -> float:
    """Peak resident set size (VmHWM), MB: of *proc* alone, or the largest in its tree (nginx: master or worker)."""
    return max(_vmhwm_mb(p.pid) for p in [proc, *(proc.children(recursive=True) if tree else [])])


def child_peak_mb(proc: psutil.Process) -> float | None:
    """The largest peak RSS among *proc*'s children alive now (a recorder's sealing child), MB; None if none."""
    peaks = []
    for p in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError):
            peaks.append(_vmhwm_mb(p.pid))
    return max(peaks) if peaks else None


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
    conns: dict[str, list[ClientConnection]], interval: float, duration: float
) -> dict[str, list[float]]:
    """Open loop; each outpost sends each HELLO on the next path in turn."""
    names = list(conns)
    out: dict[str, list[float]] = {name: [] for name in names}
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def run(i: int) -> None:
        frame = hello(i)
        t = start + random.random() * interval
        k = i
        while t < start + duration:
            await asyncio.sleep(max(0.0, t - loop.time()))
            name = names[k % len(names)]
            ws = conns[name][i]
            t0 = time.perf_counter()
            await ws.send(frame)
            await ws.recv()
            out[name].append(time.perf_counter() - t0)
            t += interval
            k += 1

    await asyncio.gather(*(run(i) for i in range(len(conns[names[0]]))))
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


async def compare(
    ports: dict[str, int], procs: dict[str, psutil.Process], n: int, *, rate: float, rounds: int, seconds: float
) -> dict[str, Any]:
    """One N: latency and throughput on every path; CPU per round trip and peak RSS of each proxy."""
    conns = {name: await open_conns(port, n, tag=name[:2]) for name, port in ports.items()}
    interval = max(n / rate, 0.005)
    lat: dict[str, list[float]] = {name: [] for name in ports}
    thr: dict[str, list[float]] = {name: [] for name in ports}
    cpu = {name: 0.0 for name in ports}
    trips = {name: 0.0 for name in ports}
    for _ in range(rounds):
        got = await latency_round(conns, interval, seconds)
        for name in lat:
            lat[name] += got[name]
    names = list(ports)
    for k in range(rounds):
        for name in names[k % len(names) :] + names[: k % len(names)]:  # each round starts on the next path
            c0 = cpu_tree_s(procs[name])
            rt_per_s = await throughput_round(conns[name], seconds)
            thr[name].append(rt_per_s)
            cpu[name] += cpu_tree_s(procs[name]) - c0
            trips[name] += rt_per_s * seconds
    # the recorder's own process; a sealing child that happens to be running is reported beside it
    peak = {name: peak_rss_mb(procs[name], tree=not name.startswith("record")) for name in ports if name != "direct"}
    sealing = {name: child_peak_mb(procs[name]) for name in ports if name.startswith("record")}
    split = {name: rss_split_mb(procs[name]) for name in ports if name.startswith("record")}
    await close_all([ws for cs in conns.values() for ws in cs])
    return {
        "n": n,
        "samples": min(len(v) for v in lat.values()),
        "p50": {name: pct(v, 50) for name, v in lat.items()},
        "p99": {name: pct(v, 99) for name, v in lat.items()},
        "thr": {name: float(np.median(v)) for name, v in thr.items()},
        "cpu_us": {name: cpu[name] / trips[name] * 1e6 for name in ports},
        "peak_rss_mb": peak,
        "sealing_child_mb": sealing,
        "rss_split_mb": split,
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


IMPORTS = {
    "`import wsreplay`": "import wsreplay",
    "what `wsreplay record` imports": "from wsreplay.cli import build_parser\nbuild_parser('record')",
    # the floor of any relay in Python, and what the short-lived sealing child loads (not the recorder)
    "relaying only (asyncio, ssl, uvloop, h11, `websockets.frames`)": (
        "import asyncio, ssl, uvloop, h11, websockets.frames"
    ),
    "the sealing child (`python -m wsreplay.store.sealer`: pyarrow, Parquet, numpy)": (
        "import wsreplay.store.segments"
    ),
}


def import_cost(code: str) -> dict[str, Any]:
    """Import time (``-X importtime``, cumulative, of the wsreplay modules *code* imports; best of 3) and peak RSS."""
    report = "import sys; print(sorted(m for m in ('pandas', 'matplotlib', 'pyarrow', 'numpy') if m in sys.modules))"
    report += "; print(open("
    report += "'/proc/self/status').read().split('VmHWM:')[1].split()[0])"
    times, rss, heavy = [], [], ""
    for _ in range(3):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"{code}\n{report}"], capture_output=True,
                              text=True, check=True)  # fmt: skip
        top = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
        times.append(sum(int(cols[1]) for cols in top[1:] if cols[2].startswith(" wsreplay")) / 1e6)
        heavy, peak = done.stdout.splitlines()[-2:]
        rss.append(int(peak) * 1024 / 1e6)
    return {"s": min(times), "rss_mb": min(rss), "heavy": heavy}


PATHS = {"direct": "direct", "nginx": "nginx", "record": "`wsreplay record` (uvloop)",
         "record-asyncio": "`wsreplay record` (asyncio loop)",
         "record-old": "`wsreplay record` before (uvloop)"}  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    hard = raise_fd_limit()
    mock, mock_port = start_mock(1000)
    out = tempfile.mkdtemp(prefix="bench-record-")
    out_asyncio = tempfile.mkdtemp(prefix="bench-record-asyncio-")
    rec, rec_port = start_recorder(mock_port, out, "uvloop")
    rec_a, rec_a_port = start_recorder(mock_port, out_asyncio, "asyncio")
    nginx, nginx_port, nginx_info = start_nginx(mock_port, hard)
    if nginx is None:
        print(f"bench_record: nginx path skipped: {nginx_info}", file=sys.stderr, flush=True)
    ports = {"direct": mock_port, "nginx": nginx_port, "record": rec_port, "record-asyncio": rec_a_port}
    pids = {"direct": mock.pid, "nginx": nginx.pid if nginx else 0, "record": rec.pid, "record-asyncio": rec_a.pid}
    recorders = [rec, rec_a]
    if args.old:
        rec_o, ports["record-old"] = start_recorder(mock_port, tempfile.mkdtemp(prefix="bench-record-old-"), "uvloop",
                                                    cwd=args.old)  # fmt: skip
        pids["record-old"] = rec_o.pid
        recorders.append(rec_o)
    if nginx is None:
        del ports["nginx"], pids["nginx"]
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    try:
        results = []
        for n in args.outposts:
            results.append(await compare(ports, procs, n, rate=args.rate, rounds=args.rounds, seconds=args.seconds))
            print(json.dumps(results[-1]), flush=True)
        hold = min(args.idle, (hard - 200) // 2)  # the recorder holds two sockets per connection
        idle_res = await idle(rec, rec_port, min(args.idle_mem, hold), hold)
        print(json.dumps(idle_res), flush=True)
    finally:
        if nginx is not None:
            nginx.terminate()  # by PID: SIGTERM, nginx's fast shutdown
            nginx.wait(timeout=30)
        for r in recorders:
            r.terminate()
            r.communicate(timeout=120)
        mock.terminate()
        mock.wait(timeout=30)
    capture_mb = sum(p.stat().st_size for p in Path(out).iterdir()) / 1e6
    print(f"capture: {capture_mb:.1f} MB in {out}", flush=True)
    imports = {name: import_cost(code) for name, code in IMPORTS.items()}
    return {"results": results, "idle": idle_res, "hard": hard, "nginx": nginx_info, "has_nginx": nginx is not None,
            "imports": imports}  # fmt: skip


def report(run: dict[str, Any], args: argparse.Namespace) -> str:
    results, idle_res, hard = run["results"], run["idle"], run["hard"]
    names = [name for name in PATHS if name in results[0]["thr"]]
    proxies = [name for name in names if name != "direct"]
    load1, load5, _ = os.getloadavg()
    nginx_line = (
        f"nginx {run['nginx']} (Debian `nginx-light`), one worker, `proxy_http_version 1.1` and the Upgrade/"
        "Connection headers, access log off;"
        if run["has_nginx"]
        else f"**nginx path skipped**: {run['nginx']}."
    )
    rerun = "`.venv/bin/python -m bench.bench_record` (after `make peers`, which installs nginx-light)"
    if args.old:
        rerun = (f"`mkdir -p {args.old} && git archive {args.old_label} | tar -x -C {args.old} && "
                 f".venv/bin/python -m bench.bench_record --old {args.old} --old-label {args.old_label}` "
                 "(after `make peers`, which installs nginx-light)")  # fmt: skip
    lines = [
        f"Rerun: {rerun}",
        "",
        f"Load average when the run ended: {load1:.1f} (1 min), {load5:.1f} (5 min) on 2 cores: other work was "
        "running, so absolute times are noisy and tail latencies (p99) include scheduler waits of every process; "
        "compare the paths, which were measured side by side.",
        "",
        "Processes on 127.0.0.1 sharing the machine's 2 cores: `MockAuthentik` (ACK latency 0); in front of it",
        nginx_line,
        "and `wsreplay record` twice (recording every frame, flush interval 1 s; once on uvloop, the default when",
        "the `fast` extra is installed, once with `--loop asyncio`)"
        + (f", and the recorder before this change (`{args.old_label}`, uvloop) as one more path" if args.old else "")
        + "; and the load generator (websockets clients).",
        "For each N, N outposts hold a connection on every path at the same time. Latency: open loop, about "
        f"{args.rate:.0f} HELLO/s in total (N=1: every 5 ms) for {args.rounds}x{args.seconds:.0f} s, each outpost",
        "sending each HELLO on the next path in turn, so all paths sample the same moments of machine load.",
        f"Throughput: closed loop (HELLO, wait for ACK, next), {args.rounds}x{args.seconds:.0f} s per path, the paths "
        "taking turns (each round starting on the next one), median.",
        "",
        "| outposts | path | HELLO→ACK p50 | added p50 vs direct | p99 | round trips/s | vs direct "
        "| vs nginx | CPU / round trip |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in names:
            vs_nginx = f"{r['thr'][name] / r['thr']['nginx']:.2f}" if "nginx" in r["thr"] else "n/a"
            cpu_who = "mock" if name == "direct" else "proxy"
            added = "" if name == "direct" else f"{(r['p50'][name] - r['p50']['direct']) * 1e3:+.0f} µs"
            lines.append(
                f"| {r['n']:,.0f} | {PATHS[name]} | {r['p50'][name]:.2f} ms | {added} | {r['p99'][name]:.2f} ms "
                f"| {r['thr'][name]:,.0f} | {r['thr'][name] / r['thr']['direct']:.2f} | **{vs_nginx}** "
                f"| {r['cpu_us'][name]:.0f} µs ({cpu_who}) |"
            )
    last = results[-1]
    lines += [
        "",
        f"Peak RSS (VmHWM, since start) of each proxy with its {last['n']:,.0f} connections open: "
        + ", ".join(f"{PATHS[name]} **{last['peak_rss_mb'][name]:.0f} MB**" for name in proxies)
        + (" (nginx: its worker; " if run["has_nginx"] else " (")
        + "a recorder: its own process).",
    ]
    caught = {k: v for k, v in last.get("sealing_child_mb", {}).items() if v is not None}
    lines += [
        "",
        "A recorder seals each full stream segment (64 MiB) in a short-lived child process that loads pyarrow "
        "(about a second per segment; its peak alone: `.venv/bin/python -m bench.record_probes seal-memory`). "
        + (
            "Sealing children running when the peaks above were read: "
            + ", ".join(f"{PATHS[k]} **{v:.0f} MB**" for k, v in caught.items())
            + "."
            if caught
            else "None was running when the peaks above were read."
        ),
    ]
    if "record" in last["peak_rss_mb"] and last["n"] >= 1000:
        peak = last["peak_rss_mb"]["record"]
        lines += [
            "",
            f"Memory target of issue #17 (at most 100 MB peak RSS at 1,000 connections): **{peak:.0f} MB**, "
            + ("met." if peak <= 100 else f"missed by {peak - 100:.0f} MB.")
            + f" Per connection: {idle_res['per_conn'] / 1024:.1f} KiB (idle, below); the rest is the process "
            f"before any connection ({idle_res['rss_before'] / 1e6:.0f} MB RSS after this run's traffic): pages of "
            "shared libraries mapped from files (Python's, OpenSSL's, uvloop's) and the heap, split below.",
            "",
            f"| resident memory with {last['n']:,.0f} connections open (after the throughput rounds) | file-backed "
            "(shared libraries) | anonymous (heap, stacks, Python objects) |",
            "|---|---|---|",
        ]
        for name, (file_mb, anon_mb) in last["rss_split_mb"].items():
            lines.append(f"| {PATHS[name]} | {file_mb:.0f} MB | {anon_mb:.0f} MB |")
    lines += [
        "",
        "| imports (fresh process) | time (`-X importtime`, cumulative, best of 3) | peak RSS | of pandas, matplotlib, "
        "pyarrow, numpy: loaded |",
        "|---|---|---|---|",
    ]
    for name, cost in run["imports"].items():
        took = f"{cost['s'] * 1e3:.0f} ms" if cost["s"] else "(no wsreplay module)"
        lines.append(f"| {name} | {took} | {cost['rss_mb']:.0f} MB | {cost['heavy']} |")
    lines.append(
        "\nBefore the lazy imports (#15, #17), `import wsreplay` took 1,481 ms (`-X importtime`), peaked at 173 MB and "
        "loaded pandas and matplotlib (measured once by hand on this machine before the change)."
    )
    if "nginx" in last["thr"]:
        lines += [
            "",
            "Targets of issue #17 (same run): recorder throughput at least 0.8x nginx's, added p50 at most "
            "nginx's + 100 µs.",
            "",
            "| outposts | recorder / nginx throughput | recorder added p50 minus nginx's | met |",
            "|---|---|---|---|",
        ]
        for r in results:
            ratio = r["thr"]["record"] / r["thr"]["nginx"]
            extra = (r["p50"]["record"] - r["p50"]["nginx"]) * 1e3
            met = "yes" if ratio >= 0.8 and extra <= 100 else "no"
            lines.append(f"| {r['n']:,.0f} | {ratio:.2f} | {extra:+.0f} µs | {met} |")
    lines += [
        "",
        "| idle connections (uvloop recorder) | value |",
        "|---|---|",
        f"| recorder memory per idle connection (RSS delta over {idle_res['mem_n']:,.0f} connections) "
        f"| **{idle_res['per_conn'] / 1024:.1f} KiB** |",
        f"| recorder RSS before / with them | {idle_res['rss_before'] / 1e6:.0f} MB "
        f"/ {idle_res['rss_held'] / 1e6:.0f} MB |",
        f"| idle connections held through one recorder (asked {idle_res['asked']:,.0f}) | **{idle_res['held']:,.0f}** "
        f"(opened in {idle_res['open_s']:.0f} s) |",
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
    parser.add_argument("--old", default=None, help="source tree of an earlier recorder, run as one more path")
    parser.add_argument("--old-label", default="main", help="what --old is (a commit), for the text")
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
            [1, 100, 1000], 4, 3.0, 1000.0, 10_000, 2000,
        )  # fmt: skip
    run = asyncio.run(main_async(args))
    text = report(run, args)
    print(text)
    if not args.quick:
        write_section("Recorder", text)


if __name__ == "__main__":
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    main()
