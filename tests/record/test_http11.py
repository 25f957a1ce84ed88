"""HTTP heads, body framing, forwarded headers and query redaction."""

from __future__ import annotations

import asyncio

import pytest

from wsreplay.exceptions import RelayHTTPError
from wsreplay.record.http11 import (
    copy_body,
    read_request,
    read_response,
    redact_query,
    request_body_kind,
    response_body_kind,
)
from wsreplay.record.http_pass import forwarded_headers
from wsreplay.record.upstream import Upstream


def _reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        return None


def test_request_head_keeps_header_case_and_order():
    async def main():
        raw = b"GET /ws/outpost/pk/?instance_uuid=i HTTP/1.1\r\nHost: a\r\n"
        raw += b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        raw += b"X-Custom: 1\r\n\r\n"
        return await read_request(_reader(raw))

    head = asyncio.run(main())
    assert head is not None
    assert head.path == "/ws/outpost/pk/" and head.query == "instance_uuid=i" and head.is_upgrade
    assert [k for k, _ in head.headers] == ["Host", "Upgrade", "Connection", "X-Custom"]


def test_garbage_request_is_refused():
    async def main():
        return await read_request(_reader(b"NONSENSE\r\n\r\n"))

    with pytest.raises(RelayHTTPError):
        asyncio.run(main())


def test_chunked_body_is_copied_with_its_framing():
    body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"

    async def main():
        sink = _Sink()
        await copy_body(_reader(body + b"NEXT"), sink, "chunked", 0)  # type: ignore[arg-type]
        return sink.data

    assert asyncio.run(main()) == body


def test_body_kinds():
    async def main():
        post = await read_request(_reader(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"))
        resp = await read_response(_reader(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
        bare = await read_response(_reader(b"HTTP/1.0 200 OK\r\n\r\n"))
        return post, resp, bare

    post, resp, bare = asyncio.run(main())
    assert request_body_kind(post) == ("length", 3)
    assert response_body_kind(resp, "GET") == ("chunked", 0)
    assert response_body_kind(resp, "HEAD") == ("none", 0)
    assert response_body_kind(bare, "GET") == ("eof", 0)


def test_forwarded_headers_set_host_and_x_forwarded_keep_credentials():
    async def main():
        raw = (
            b"GET /ws/client/ HTTP/1.1\r\nHost: rec:9000\r\nCookie: authentik_session=s\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
        )
        return await read_request(_reader(raw))

    head = asyncio.run(main())
    assert head is not None
    headers = dict(forwarded_headers(head, "127.0.0.1", Upstream("https://auth.example"), websocket=True))
    assert headers["Host"] == "auth.example"
    assert headers["Cookie"] == "authentik_session=s"
    assert headers["X-Forwarded-For"] == "10.0.0.1, 127.0.0.1"
    assert headers["X-Forwarded-Host"] == "rec:9000"
    assert "Sec-WebSocket-Extensions" not in headers


def test_redact_query_hides_credential_like_parameters_only():
    assert redact_query("instance_uuid=a&attempt=2") == "instance_uuid=a&attempt=2"
    assert redact_query("token=abc&x=1&api_key=k") == "token=REDACTED&x=1&api_key=REDACTED"
    assert redact_query("") == ""
