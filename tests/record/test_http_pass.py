"""Plain HTTP through the recorder in front of uvicorn (as authentik runs), with peers nobody here wrote.

Every case runs direct and through the recorder in the same test: what the client sees must be
the same. Clients: aiohttp, curl, raw sockets; for the WebSocket upgrade, Node's ``ws``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from passthrough_support import PATTERN, uvicorn_upstream

from wsreplay.record import Recorder

NODE_WS = Path(__file__).resolve().parents[1] / "peers" / "node_modules" / "ws"
KEEP_ALIVE = 1.0  # uvicorn's idle keep-alive timeout in these tests (its default is 5 s)


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed (make peers)")


async def _aiohttp_twice(base: str, pause: float, headers: dict[str, str] | None = None) -> list[int]:
    statuses = []
    connector = aiohttp.TCPConnector(keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(2):
            async with session.get(f"{base}/status/204", headers=headers) as resp:
                statuses.append(resp.status)
            await asyncio.sleep(pause)
    return statuses


def test_keep_alive_after_the_upstream_idle_timeout_aiohttp(tmp_path):
    async def main():
        async with uvicorn_upstream(keep_alive=KEEP_ALIVE) as port:
            direct = await _aiohttp_twice(f"http://127.0.0.1:{port}", KEEP_ALIVE + 0.6)
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                via = await _aiohttp_twice(rec.url, KEEP_ALIVE + 0.6)
                return direct, via, rec.frames()

    direct, via, frames = asyncio.run(main())
    assert direct == [204, 204]
    assert via == direct
    assert not (frames.event == "error").any()


def test_keep_alive_after_the_upstream_idle_timeout_curl(tmp_path):
    _need("curl")

    async def curl(base: str) -> list[str]:
        # two transfers on one connection, 2 s apart (curl's --rate): the upstream closed it in between
        proc = await asyncio.create_subprocess_exec(
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\n", "--rate", "30/m",
            f"{base}/status/204", f"{base}/status/204",
            stdout=subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate()
        return out.decode().split()

    async def main():
        async with uvicorn_upstream(keep_alive=KEEP_ALIVE) as port:
            direct = await curl(f"http://127.0.0.1:{port}")
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await curl(rec.url)

    direct, via = asyncio.run(main())
    assert direct == ["204", "204"]
    assert via == direct


def test_the_client_connection_ends_when_the_upstream_ends_its_side(tmp_path):
    async def idle_end(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        async with asyncio.timeout(KEEP_ALIVE + 5):
            rest = await reader.read()  # b"": the connection was closed while idle
        writer.close()
        return head.split(b"\r\n")[0] + b" | " + rest

    async def main():
        async with uvicorn_upstream(keep_alive=KEEP_ALIVE) as port:
            direct = await idle_end(port)
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await idle_end(rec.address[1])

    direct, via = asyncio.run(main())
    assert direct == b"HTTP/1.1 204 No Content | "
    assert via == direct


def test_sequential_keep_alive_requests_on_one_connection(tmp_path):
    async def run(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        statuses = []
        for _ in range(20):  # request, whole answer, next request: the recorder is idle in between each time
            writer.write(b"GET /status/204 HTTP/1.1\r\nHost: a\r\n\r\n")
            statuses.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        writer.close()
        return statuses

    async def main():
        async with uvicorn_upstream() as port:
            direct = await run(port)
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await run(rec.address[1])

    direct, via = asyncio.run(main())
    assert direct == [b"HTTP/1.1 204 No Content"] * 20
    assert via == direct


async def _echo(base: str, **kwargs) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/echo", **kwargs) as resp:
            data = await resp.json()
    return {k: v for k, v in data["headers"]}


def test_host_is_forwarded_unchanged_and_x_forwarded_added_aiohttp(tmp_path):
    async def main():
        async with uvicorn_upstream() as port:
            direct = await _echo(f"http://127.0.0.1:{port}", headers={"Host": "brand.example"})
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "a", flush_interval=0.2) as rec:
                via = await _echo(rec.url, headers={"Host": "brand.example"})
            async with Recorder(
                f"http://127.0.0.1:{port}", out=tmp_path / "b", flush_interval=0.2, rewrite_host=True
            ) as rec:
                rewritten = await _echo(rec.url, headers={"Host": "brand.example"})
            return port, direct, via, rewritten

    port, direct, via, rewritten = asyncio.run(main())
    assert direct["host"] == "brand.example"
    assert via["host"] == direct["host"]
    assert via["x-forwarded-host"] == "brand.example"
    assert via["x-forwarded-for"] == "127.0.0.1" and via["x-forwarded-proto"] == "http"
    assert rewritten["host"] == f"127.0.0.1:{port}" and rewritten["x-forwarded-host"] == "brand.example"


def test_host_is_forwarded_unchanged_curl(tmp_path):
    _need("curl")

    async def curl(base: str) -> dict:
        proc = await asyncio.create_subprocess_exec(
            "curl", "-s", "-H", "Host: brand.example", f"{base}/echo", stdout=subprocess.PIPE
        )  # fmt: skip
        out, _ = await proc.communicate()
        return {k: v for k, v in json.loads(out)["headers"]}

    async def main():
        async with uvicorn_upstream() as port:
            direct = await curl(f"http://127.0.0.1:{port}")
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await curl(rec.url)

    direct, via = asyncio.run(main())
    assert via["host"] == direct["host"] == "brand.example"


NODE_CLIENT = """
const WebSocket = require(process.argv[1]);
const ws = new WebSocket(process.argv[2], { headers: { Host: "brand.example" } });
ws.on("message", (data) => { console.log(data.toString()); ws.close(1000); });
ws.on("close", (code) => { console.log(JSON.stringify({ code })); });
ws.on("error", (err) => { console.log(JSON.stringify({ error: String(err) })); });
"""


def test_websocket_upgrade_keeps_host_node_ws(tmp_path):
    _need("node")
    if not NODE_WS.is_dir():
        pytest.skip("Node's ws is not installed (make peers)")

    async def node(url: str) -> list[dict]:
        proc = await asyncio.create_subprocess_exec(
            "node", "-e", NODE_CLIENT, str(NODE_WS), url, stdout=subprocess.PIPE
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        return [json.loads(line) for line in out.decode().splitlines()]

    async def main():
        async with uvicorn_upstream() as port:
            direct = await node(f"ws://127.0.0.1:{port}/ws/client/")
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await node(f"{rec.ws_url}/ws/client/"), rec.frames()

    direct, via, frames = asyncio.run(main())
    assert direct == [{"host": "brand.example"}, {"code": 1000}]
    assert via == direct
    assert list(frames[frames.event == "close"].close_code) == [1000]


async def _raw(port: int, raw: bytes, *, until: bytes | None = None, expect_100: bool = False) -> bytes:
    """Send *raw*, read until *until* appears (or the server closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = b""
    if expect_100:
        head, _, body = raw.partition(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        out = await reader.readuntil(b"\r\n\r\n")  # the 100 Continue, before any body is sent
        writer.write(body)
    else:
        writer.write(raw)
    async with asyncio.timeout(10):
        while until is None or until not in out or out.count(b"HTTP/1.1 ") < 2 + expect_100:
            data = await reader.read(65536)
            if not data:
                break
            out += data
            if until is not None and out.count(until) >= 1 and out.endswith(b"}"):
                break
    writer.close()
    return out


def _statuses(raw: bytes) -> list[bytes]:
    return [m.group(0).rstrip(b"\r") for m in re.finditer(rb"HTTP/1\.1 \d{3} [^\r]*\r", raw)]


def test_keep_alive_pipelining_head_http10_and_expect_behave_as_direct(tmp_path):
    pipelined = b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\nHEAD /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /status/204 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"  # noqa: E501
    http10 = b"GET /echo HTTP/1.0\r\n\r\n"
    expect = (
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    )

    async def run(port: int) -> list[bytes]:
        return [
            await _raw(port, pipelined),
            await _raw(port, http10),
            await _raw(port, expect, expect_100=True),
        ]

    async def main():
        async with uvicorn_upstream() as port:
            direct = await run(port)
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await run(rec.address[1]), rec.stats.http_requests

    direct, via, count = asyncio.run(main())
    assert _statuses(direct[0]) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content"]
    assert _statuses(via[0]) == _statuses(direct[0])
    assert via[0].count(b'"path": "/echo"') == direct[0].count(b'"path": "/echo"') == 1  # HEAD has no body
    assert _statuses(via[1]) == _statuses(direct[1]) and b'"path": "/echo"' in via[1]
    assert _statuses(direct[2]) == [b"HTTP/1.1 100 Continue", b"HTTP/1.1 200 OK"]
    assert _statuses(via[2]) == _statuses(direct[2]) and b'"body_len": 5' in via[2]
    assert count == 5


def test_large_streamed_bodies_both_ways(tmp_path):
    size = 24 * 1024 * 1024

    async def body():
        for _ in range(size // len(PATTERN)):
            yield PATTERN

    async def run(base: str) -> tuple[dict, int, int]:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/echo", data=body()) as resp:  # chunked upload
                echo = await resp.json()
            async with session.get(f"{base}/big?{size}") as resp:
                total = checksum = 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    total += len(chunk)
                    checksum = (checksum + sum(chunk)) % 65521
        return {"len": echo["body_len"], "sum": echo["body_sum"]}, total, checksum

    async def main():
        async with uvicorn_upstream() as port:
            direct = await run(f"http://127.0.0.1:{port}")
            async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
                return direct, await run(rec.url)

    direct, via = asyncio.run(main())
    assert direct[0]["len"] == size and direct[1] == size
    assert via == direct


class _OneShotUpstream:
    """Answers the first request of each connection (keep-alive, by its headers), then closes it silently."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        self.requests.append(head.split(b"\r\n", 1)[0] + b" " + body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()


def test_a_request_that_never_reached_the_upstream_is_retried_or_the_connection_closed(tmp_path):
    """Pipelined behind a request the upstream answers and then leaves: never a 502."""
    first = b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
    get = first + b"GET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    post = first + b"POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"

    async def main():
        upstream = _OneShotUpstream()
        server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with Recorder(f"http://127.0.0.1:{port}", out=tmp_path / "cap", flush_interval=0.2) as rec:
            answers = [await _raw(rec.address[1], get), await _raw(rec.address[1], post)]
        server.close()
        return answers, upstream.requests

    (get_answer, post_answer), seen = asyncio.run(main())
    assert _statuses(get_answer) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]  # GET /two retried on a fresh connection
    assert _statuses(post_answer) == [b"HTTP/1.1 200 OK"]  # a POST is not replayed: its connection is just closed
    assert seen.count(b"GET /two HTTP/1.1 ") == 1 and not any(r.startswith(b"POST") for r in seen)
