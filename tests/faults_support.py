"""Helpers of the fault suite (``tests/faults/``): recorder processes, load, RSS, raw sockets, secrets, figures."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from record_support import PK, SECRETS, bearer
from websockets.asyncio.client import connect

from wsreplay.protocol import encode_hello, hello_args

#: Where the suite's figures go when a summary step (bench/bench_load.py) asks for them.
FIGURES_ENV = "WSREPLAY_FAULTS_FIGURES"


# ------------------------------------------------------------------ figures


@dataclass
class Figure:
    scenario: str
    name: str
    value: Any
    expect: str = ""


@dataclass
class Figures:
    """Figures the scenarios report (printed as a table at session end, optionally saved as JSON)."""

    rows: list[Figure] = field(default_factory=list)

    def add(self, scenario: str, name: str, value: Any, expect: str = "") -> Any:
        self.rows.append(Figure(scenario, name, value, expect))
        print(f"[faults] {scenario}: {name} = {value}" + (f" (expected {expect})" if expect else ""))
        return value

    def table(self) -> str:
        lines = ["| scenario | figure | value | expected |", "|---|---|---|---|"]
        rows = sorted(self.rows, key=lambda f: f.scenario)  # stable: each scenario's figures in the order taken
        lines += [f"| {f.scenario} | {f.name} | {f.value} | {f.expect} |" for f in rows]
        return "\n".join(lines)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps([vars(f) for f in self.rows], indent=1, default=str))


FIGURES = Figures()


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"process exited with {proc.returncode}") from None
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class RecorderProcess:
    """A ``wsreplay record`` subprocess; its stderr goes to a file (grepped for secrets)."""

    proc: subprocess.Popen[bytes]
    port: int
    out: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


def start_recorder(
    upstream: str, out: Path, *extra: str, flush: float = 0.2, log: Path | None = None
) -> RecorderProcess:
    """``wsreplay record`` on a free loopback port; returns once it listens."""
    port = free_port()
    log = log or out.parent / f"{out.name}-recorder-{port}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("AUTHENTIK_TOKEN", "AUTHENTIK_SESSION")}
    cmd = [sys.executable, "-m", "wsreplay", "record", "--upstream", upstream, "--listen", f"127.0.0.1:{port}",
           "--out", str(out), "--flush-interval", str(flush), *extra]  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, env=env)
    rp = RecorderProcess(proc, port, out, log)
    try:
        wait_listening(port, proc)
    except AssertionError as exc:
        proc.kill()
        raise AssertionError(f"{exc}: {rp.stderr()}") from None
    return rp


def rss_kib(pid: int) -> int:
    """Resident set size of *pid* (KiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def raise_nofile(want: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards *want* (capped by the hard limit); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------ load


@dataclass
class Sent:
    hostname: str
    sent: float  # time.monotonic()
    acked: float | None = None


def hello(instance: str, hostname: str) -> str:
    return encode_hello(hello_args(uuid=instance, version="2023.10.0", hostname=hostname))


async def steady_outpost(
    url: str, n: int, interval: float, stop: asyncio.Event, log: list[Sent], *, pk: str = PK
) -> None:
    """One outpost sending a uniquely named HELLO every *interval* and waiting for its ACK, until *stop*."""
    instance = f"fault-{n}"
    k = 0
    with contextlib.suppress(Exception):
        async with connect(
            f"{url.replace('http', 'ws', 1)}/ws/outpost/{pk}/?instance_uuid={instance}",
            additional_headers=bearer(),
            open_timeout=10,
        ) as ws:
            while not stop.is_set():
                item = Sent(f"o{n}-{k}", time.monotonic())
                log.append(item)
                await ws.send(hello(instance, item.hostname))
                await ws.recv()
                item.acked = time.monotonic()
                k += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)


# ------------------------------------------------------------------ raw WebSocket upstreams and peers

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


def frame(payload: bytes, *, opcode: int = 1, mask: bool = False, fin: bool = True) -> bytes:
    """One WebSocket frame (the fault tests need partial and over-size frames the websockets library won't send)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_upstream(behaviour: Behaviour) -> AsyncIterator[str]:
    """A minimal WebSocket server that accepts any upgrade, then runs *behaviour*; yields its http:// URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = ""
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("sec-websocket-key:"):
                    key = line.split(":", 1)[1].strip()
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
            )
            await behaviour(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        # connections still held by a behaviour are closed with the loop


async def raw_handshake(
    port: int, path: str = f"/ws/outpost/{PK}/", token: str | None = None
) -> tuple[Any, Any, bytes]:
    """Open a TCP connection to 127.0.0.1:*port* and upgrade by hand; returns reader, writer, the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ------------------------------------------------------------------ secrets


def secret_hits(paths: Iterable[Path], secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Every (secret, file) pair whose bytes contain the secret; Parquet/Arrow files are also checked decoded."""
    hits: list[str] = []
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.is_file()]
        elif p.is_file():
            files.append(p)
    for f in files:
        data = f.read_bytes()
        text = ""
        if f.suffix in (".parquet", ".arrows"):
            with contextlib.suppress(Exception):
                from wsreplay import load

                text = load(f).astype(str).to_csv()
        for s in secrets:
            if s.encode() in data or s in text:
                hits.append(f"{s} in {f}")
    return hits


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file under *root* (to prove what a command wrote)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}
