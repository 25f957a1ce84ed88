"""The simulated authentik's listener reads plain HTTP with the recorder's strict parser (h11 plus its checks)."""

from __future__ import annotations

import asyncio
import re

import pytest

from wsreplay.sim import MockAuthentik


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    writer.write_eof()
    async with asyncio.timeout(10):
        data = await reader.read()
    writer.close()
    return data


AMBIGUOUS = {
    "duplicate Content-Length": (
        b"POST /api/v3/echo/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello"
    ),
    "Content-Length with chunked": (
        b"POST /api/v3/echo/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "chunked, gzip": b"POST /api/v3/echo/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "bare LF": b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
    "obs-fold": b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
    "chunk size -3": (
        b"POST /api/v3/echo/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("name", list(AMBIGUOUS))
def test_ambiguous_requests_get_400_and_a_close(name):
    async def main():
        async with MockAuthentik(host="127.0.0.1", port=0) as ak:
            return await _raw(ak.port, AMBIGUOUS[name])

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.count(b"HTTP/1.1 ") == 1


def test_keep_alive_pipelining_head_expect_and_http10():
    pipelined = (
        b"GET /api/v3/root/config/ HTTP/1.1\r\nHost: a\r\n\r\n"
        b"HEAD /api/v3/root/config/ HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /api/v3/echo/ HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
        b"GET /api/v3/root/config/ HTTP/1.0\r\n\r\n"
    )

    async def main():
        async with MockAuthentik(host="127.0.0.1", port=0) as ak:
            return await _raw(ak.port, pipelined)

    answer = asyncio.run(main())
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert statuses == [b"200", b"200", b"100", b"200", b"200"]
    assert answer.count(b"capabilities") == 2  # the HEAD answer has no body
    assert answer.endswith(b"}") and b"Connection: close" in answer.rsplit(b"HTTP/1.1 ", 1)[1]  # HTTP/1.0: closed
