"""Probes of the recorder behind the hand-written readings in BENCHMARKS.md (section Recorder).

They print what they measure and write nothing to BENCHMARKS.md (``bench/bench_record.py`` does that):

* ``latency N ROUNDS [PATH ...]``: open-loop HELLO→ACK latency only (no throughput rounds), many samples,
  N connections on each path taking the same moments: ``nginx``, ``floor`` (a bare uvloop TCP
  pass-through in Python: no parsing, no recording) or the source tree of a recorder (a directory);
* ``metrics-memory``: peak RSS of ``wsreplay record`` with 1,000 connections after 6 s of closed-loop
  traffic, without and with ``--metrics``;
* ``seal-memory``: a 64 MiB stream segment of HELLO/ACK rows sealed by the child process: its time, peak
  RSS and CPU, and the writing process's peak RSS.

Run them alone (``flock /work/data/heavy.lock .venv/bin/python -m bench.record_probes latency 1000 8 nginx .
floor`` on a shared machine).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_record import (
    close_all,
    latency_round,
    open_conns,
    pct,
    raise_fd_limit,
    start_mock,
    start_nginx,
    start_recorder,
    throughput_round,
)


def _peak_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.terminate()
        try:
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


async def latency(n: int, rounds: int, paths: list[str]) -> None:
    hard = raise_fd_limit()
    mock, mport = start_mock(1000)
    procs: list[subprocess.Popen[str]] = [mock]
    ports = {"direct": mport}
    out = tempfile.mkdtemp(prefix="record-probes-")
    try:
        for name in paths:
            if name == "nginx":
                proc, port, why = start_nginx(mport, hard)
                if proc is None:
                    print(f"nginx skipped: {why}")
                    continue
            elif name == "floor":
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.record_probes", "floor", str(mport)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert proc.stdout is not None
                port = int(proc.stdout.readline())
            else:
                proc, port = start_recorder(mport, f"{out}/{len(procs)}", loop="uvloop", cwd=name)
            procs.append(proc)
            ports[name] = port
        conns = {k: await open_conns(p, n, tag=str(i)) for i, (k, p) in enumerate(ports.items())}
        samples: dict[str, list[float]] = {k: [] for k in ports}
        for _ in range(rounds):
            got = await latency_round(conns, max(n / 1000, 0.005), 3.0)
            for k, v in got.items():
                samples[k] += v
        direct = pct(samples["direct"], 50)
        for k, v in samples.items():
            print(
                f"N={n} {k[-24:]:24s} p50 {pct(v, 50):.3f} ms, "
                f"added {1e3 * (pct(v, 50) - direct):+5.0f} µs, {len(v)} samples"
            )
        await close_all([ws for c in conns.values() for ws in c])
    finally:
        _stop(procs[1:] + procs[:1])
        shutil.rmtree(out, ignore_errors=True)


async def metrics_memory() -> None:
    raise_fd_limit()
    mock, mport = start_mock(1000)
    try:
        for extra in ((), ("--metrics", "127.0.0.1:0")):
            out = tempfile.mkdtemp(prefix="record-probes-")
            proc, port = start_recorder(mport, out, extra=extra)
            conns = await open_conns(port, 1000)
            rate = await throughput_round(conns, 6.0)
            mapped = "libarrow" in Path(f"/proc/{proc.pid}/maps").read_text()
            print(
                f"wsreplay record {' '.join(extra) or '(no --metrics)'}: 1,000 connections, {rate:,.0f} round trips/s "
                f"for 6 s, peak RSS {_peak_mb(proc.pid):.0f} MB, pyarrow's libraries mapped: {mapped}",
                flush=True,
            )
            await close_all(conns)
            _stop([proc])
            shutil.rmtree(out, ignore_errors=True)
    finally:
        _stop([mock])


def seal_memory() -> None:
    from wsreplay.events import ConnectionLog
    from wsreplay.protocol import encode_ack, encode_hello, hello_args
    from wsreplay.record.batch import KindCache, entries_to_batch
    from wsreplay.store.writer import CaptureWriter

    out = tempfile.mkdtemp(prefix="record-probes-")
    try:
        w = CaptureWriter(out, capture_id="seal", autoflush=False, rotate_bytes=1 << 40, seal="process")
        logs = [ConnectionLog("seal", f"/ws/outpost/{i:08d}-0000-4000-8000-000000000000/") for i in range(1000)]
        hellos = [
            encode_hello(hello_args(uuid=f"{i:08d}-1111-4000-8000-000000000000", version="2025.4.1")).encode()
            for i in range(1000)
        ]
        ack = encode_ack().encode()
        kinds, cache, t, rows = KindCache(), {}, 1_700_000_000_000_000_000, 0
        while w.stats.bytes_written < 64 * 2**20:
            entries: list = []
            for log, hello in zip(logs, hellos, strict=True):
                entries.append((log, t, log.seq, "to_server", "text", hello, False))
                entries.append((log, t + 1000, log.seq + 1, "to_peer", "text", ack, False))
                log.seq += 2
                t += 10**6
            w.write_batch(entries_to_batch(entries, cache, kinds), len(entries))
            w.flush()
            rows += len(entries)
        size = w.stats.bytes_written
        t0 = time.perf_counter()
        w.close()
        took = time.perf_counter() - t0
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        sealed = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
        print(
            f"{rows:,} rows: stream {size / 2**20:.1f} MiB -> Parquet {sealed / 2**20:.1f} MiB; sealed in the child in "
            f"{took:.1f} s, its peak RSS {child.ru_maxrss / 1024:.0f} MB, "
            f"its CPU {child.ru_utime + child.ru_stime:.1f} s; "
            f"the writing process peaked at {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
            f"(pyarrow loaded in it: {'pyarrow' in sys.modules})"
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)


def floor(upstream_port: int) -> None:
    """The bare pass-through: every byte each way, nothing parsed, nothing recorded; prints its port."""
    import uvloop

    class Side(asyncio.Protocol):
        def __init__(self) -> None:
            self.other: Side | None = None
            self.transport: asyncio.Transport | None = None
            self.pending: list[bytes] = []

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            if self.other is not None and self.other.transport is not None:
                self.other.transport.write(data)
            else:
                self.pending.append(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.other is not None and self.other.transport is not None:
                self.other.transport.close()

    class Front(Side):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            asyncio.get_running_loop().create_task(self._connect())

        async def _connect(self) -> None:
            _, back = await asyncio.get_running_loop().create_connection(Side, "127.0.0.1", upstream_port)
            back.other, self.other = self, back
            assert back.transport is not None
            for data in self.pending:
                back.transport.write(data)
            self.pending = []

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Front, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

    uvloop.run(main())


def main(argv: list[str]) -> None:
    if argv[:1] == ["latency"] and len(argv) >= 4:
        asyncio.run(latency(int(argv[1]), int(argv[2]), argv[3:]))
    elif argv == ["metrics-memory"]:
        asyncio.run(metrics_memory())
    elif argv == ["seal-memory"]:
        seal_memory()
    elif argv[:1] == ["floor"] and len(argv) == 2:
        floor(int(argv[1]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
