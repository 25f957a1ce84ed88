"""The mock's plain HTTP routes, on the same port as its WebSockets (raw sockets and urllib as clients)."""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.request
from typing import Any

from websockets.asyncio.client import connect

from wsreplay.protocol import ACK_FRAME, encode_hello, hello_args, outpost_path
from wsreplay.sim import MockAuthentik

PK = "1ee03a64-69e4-4f1e-9f06-35cc8e6de56a"
TOKEN = "outpost-token"


async def raw(port: int, request: bytes) -> bytes:
    """Send *request* bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


def test_get_json_routes_and_404() -> None:
    with MockAuthentik(outposts={PK: TOKEN}).start_in_thread() as ak:
        with urllib.request.urlopen(f"{ak.url}/api/v3/root/config/", timeout=10) as r:
            config = json.loads(r.read())
            assert r.headers["Content-Type"] == "application/json"
        with urllib.request.urlopen(f"{ak.url}/api/v3/outposts/instances/", timeout=10) as r:
            instances = json.loads(r.read())
        try:
            urllib.request.urlopen(f"{ak.url}/api/v3/nothing/", timeout=10)
        except urllib.error.HTTPError as exc:
            missing = (exc.code, json.loads(exc.read()))
        log = ak.log
    assert "capabilities" in config
    assert [o["pk"] for o in instances["results"]] == [PK]
    assert instances["pagination"]["count"] == 1
    assert missing == (404, {"detail": "Not found."})
    assert [(e["data"], e["path"], e["status"]) for e in log if e["event"] == "http"] == [
        ("GET", "/api/v3/root/config/", 200),
        ("GET", "/api/v3/outposts/instances/", 200),
        ("GET", "/api/v3/nothing/", 404),
    ]


def test_post_echo_returns_the_body_and_never_credentials() -> None:
    body = json.dumps({"name": "x", "n": [1, 2]}).encode()
    with MockAuthentik().start_in_thread() as ak:
        conn = http.client.HTTPConnection("127.0.0.1", ak.port, timeout=10)
        conn.request(
            "POST",
            "/api/v3/echo/?a=1",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer secret-token",
                "Cookie": "authentik_session=secret-session",
                "X-Custom": "kept",
            },
        )
        response = conn.getresponse()
        echoed = json.loads(response.read())
        # the same keep-alive connection serves a second request, with a chunked request body
        conn.putrequest("PUT", "/api/v3/echo/")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        second = json.loads(conn.getresponse().read())
        conn.close()
        log_text = json.dumps(ak.log)
    assert response.status == 200
    assert echoed["method"] == "POST" and echoed["query"] == "a=1"
    assert json.loads(echoed["body"]) == {"name": "x", "n": [1, 2]}
    assert echoed["headers"]["X-Custom"] == "kept"
    lowered = {k.lower() for k in echoed["headers"]}
    assert "authorization" not in lowered and "cookie" not in lowered
    assert "secret" not in json.dumps(echoed)
    assert (second["method"], second["body"]) == ("PUT", "hello world")
    assert "secret" not in log_text


def test_binary_bodies_are_echoed_as_base64() -> None:
    with MockAuthentik().start_in_thread() as ak:
        request = urllib.request.Request(f"{ak.url}/api/v3/echo/", data=b"\xff\x00\xfe", method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            echoed = json.loads(r.read())
    assert echoed["body"] is None and echoed["body_base64"] == "/wD+"


def test_stream_route_is_chunked() -> None:
    async def main() -> bytes:
        async with MockAuthentik() as ak:
            return await raw(ak.port, b"GET /api/v3/stream/?chunks=4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    data = asyncio.run(main())
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\n\r\n")
    lines = []
    rest = body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        lines.append(json.loads(rest[:size]))
        rest = rest[size + 2 :]
    assert lines == [{"chunk": i, "of": 4} for i in range(4)]


def test_urllib_reads_the_stream_whole() -> None:
    with MockAuthentik().start_in_thread() as ak:
        with urllib.request.urlopen(f"{ak.url}/api/v3/stream/?chunks=50", timeout=10) as r:
            rows = [json.loads(line) for line in r.read().splitlines()]
        try:
            urllib.request.urlopen(f"{ak.url}/api/v3/stream/?chunks=lots", timeout=10)
        except urllib.error.HTTPError as exc:
            bad = exc.code
    assert [row["chunk"] for row in rows] == list(range(50))
    assert bad == 400


def test_garbage_request_line_gets_400() -> None:
    async def main() -> bytes:
        async with MockAuthentik() as ak:
            return await raw(ak.port, b"NONSENSE\r\n\r\n")

    assert asyncio.run(main()).startswith(b"HTTP/1.1 400 ")


def test_http_and_websocket_share_the_port_and_health_follows_hellos() -> None:
    async def main() -> list[dict[str, Any]]:
        async with MockAuthentik(outposts={PK: TOKEN}) as ak:
            url = ak.ws_url + outpost_path(PK) + "?instance_uuid=i-1&attempt=1"
            async with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                await ws.send(encode_hello(hello_args(uuid="i-1", version="2023.8.0", hostname="old")))
                assert await ws.recv() == ACK_FRAME
                health_url = f"{ak.url}/api/v3/outposts/instances/{PK}/health/"
                return await asyncio.to_thread(
                    lambda: json.loads(urllib.request.urlopen(health_url, timeout=10).read())
                )

    (row,) = asyncio.run(main())
    assert row["uid"] == "i-1"
    assert (row["version"], row["version_should"], row["version_outdated"]) == ("2023.8.0", "2023.10.0", True)
    assert row["hostname"] == "old" and row["last_seen"].endswith("Z")


def test_stop_ends_connections_that_never_finished_their_request_head() -> None:
    async def main() -> bytes:
        ak = MockAuthentik()
        await ak.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", ak.port)
        writer.write(b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: x\r\n")  # head not finished
        await writer.drain()
        assert ak._listener is not None
        while not ak._listener._sniffing:  # wait until the mock has accepted the connection
            await asyncio.sleep(0.01)
        await ak.stop()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return data

    assert asyncio.run(main()) == b""  # closed by the server, nothing answered
