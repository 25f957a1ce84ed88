"""The strict request reader (h11 plus the checks it leaves out), forwarded headers and redaction."""

from __future__ import annotations

import asyncio

import h11
import pytest

from wsreplay.exceptions import RelayHTTPError
from wsreplay.record.http11 import PeerHTTP, check_head, is_upgrade, redact_query, redacted_head
from wsreplay.record.http_pass import forwarded_headers
from wsreplay.record.upstream import Upstream


def _peer(data: bytes) -> PeerHTTP:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return PeerHTTP(r)


async def _request_and_body(data: bytes) -> tuple[h11.Request | None, list[object]]:
    peer = _peer(data)
    request = await peer.next_request()
    events = [e async for e in peer.body()] if request is not None else []
    return request, events


def test_request_head_keeps_header_case_and_order():
    raw = b"GET /ws/outpost/pk/?instance_uuid=i HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
    raw += b"Connection: Upgrade\r\nX-Custom: 1\r\n\r\n"
    request, _ = asyncio.run(_request_and_body(raw))
    assert request is not None and is_upgrade(request)
    assert [k for k, _ in request.headers.raw_items()] == [b"Host", b"Upgrade", b"Connection", b"X-Custom"]


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF"),
        (b"GET / HTTP/1.1\nHost: a\n\n", "bare LF"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", "folding"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", "before the colon"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\x00\r\n\r\n", "NUL"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n", "CR"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "duplicate"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n", "one decimal"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "together"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "single chunked"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "single"),
    ],
)
def test_ambiguous_heads_are_refused_with_a_reason(head, why):
    with pytest.raises(RelayHTTPError, match=why):
        check_head(head[: head.index(b"\n\r\n") + 3] if b"\n\r\n" in head else head)
    with pytest.raises(RelayHTTPError):
        asyncio.run(_request_and_body(head))


@pytest.mark.parametrize("size", [b"-3", b"0x3", b"3 3", b"+3"])
def test_invalid_chunk_sizes_are_refused(size):
    raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nabc\r\n0\r\n\r\n"
    with pytest.raises(RelayHTTPError, match="chunk"):
        asyncio.run(_request_and_body(raw))


def test_chunked_body_events_and_pipelined_next_request():
    raw = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\n"
    raw += b"0\r\nTrailer: x\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"

    async def main():
        peer = _peer(raw)
        first = await peer.next_request()
        body = [e async for e in peer.body()]
        peer.send(h11.Response(status_code=204, headers=[]))
        peer.send(h11.EndOfMessage())
        assert peer.keep_alive()
        second = await peer.next_request()
        return first, body, second, None

    first, body, second, _ = asyncio.run(main())
    assert first.target == b"/a" and second.target == b"/b"
    assert b"".join(bytes(e.data) for e in body if isinstance(e, h11.Data)) == b"Wikipedia"
    assert list(body[-1].headers) == [(b"trailer", b"x")]


def test_a_clean_end_between_requests_is_none_and_a_cut_head_is_an_error():
    assert asyncio.run(_request_and_body(b""))[0] is None
    with pytest.raises(RelayHTTPError, match="middle of a head"):
        asyncio.run(_request_and_body(b"GET / HTTP/1.1\r\nHost"))


def _request(raw: bytes) -> h11.Request:
    request, _ = asyncio.run(_request_and_body(raw))
    assert request is not None
    return request


def test_forwarded_headers_keep_host_add_x_forwarded_and_keep_credentials():
    request = _request(
        b"GET /ws/client/ HTTP/1.1\r\nHost: brand.example\r\nCookie: authentik_session=s\r\n"
        b"Sec-WebSocket-Extensions: permessage-deflate\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    )
    upstream = Upstream("https://auth.example")
    headers = dict(forwarded_headers(request, "127.0.0.1", upstream, websocket=True))
    assert headers[b"Host"] == b"brand.example"
    assert headers[b"Cookie"] == b"authentik_session=s"
    assert headers[b"X-Forwarded-For"] == b"10.0.0.1, 127.0.0.1"
    assert headers[b"X-Forwarded-Host"] == b"brand.example"
    assert headers[b"X-Forwarded-Proto"] == b"http"
    assert b"Sec-WebSocket-Extensions" not in headers
    rewritten = dict(forwarded_headers(request, "127.0.0.1", upstream, websocket=True, rewrite_host=True))
    assert rewritten[b"Host"] == b"auth.example" and rewritten[b"X-Forwarded-Host"] == b"brand.example"


def test_http10_without_host_gets_the_upstreams():
    request = _request(b"GET / HTTP/1.0\r\n\r\n")
    headers = forwarded_headers(request, "127.0.0.1", Upstream("http://127.0.0.1:8000"), websocket=False)
    assert headers[0] == (b"Host", b"127.0.0.1:8000")
    assert (b"X-Forwarded-Host", b"127.0.0.1:8000") not in headers


def test_redacted_head_hides_credentials():
    raw = b"GET /api/?token=abc&x=1 HTTP/1.1\r\nAuthorization: Bearer SECRET\r\nCookie: s=SECRET\r\nX: 1\r\n\r\n"
    out = redacted_head(raw)
    assert b"SECRET" not in out and b"abc" not in out
    assert b"x=1" in out and b"X: 1\r\n" in out


def test_redact_query_hides_credential_like_parameters_only():
    assert redact_query("instance_uuid=a&attempt=2") == "instance_uuid=a&attempt=2"
    assert redact_query("token=abc&x=1&api_key=k") == "token=REDACTED&x=1&api_key=REDACTED"
    assert redact_query("") == ""
