"""Plain HTTP requests passed through to the upstream unchanged.

Outposts use the same base URL for their REST calls, so a recorder standing in
for authentik's address must relay them: method, target, headers and body go
upstream as sent (only ``Host`` is set to the upstream's and ``X-Forwarded-*``
added); status, headers and body come back as the upstream sent them,
streamed (chunked bodies keep their chunks).
"""

from __future__ import annotations

import asyncio
import ssl

from .http11 import (
    HeadError,
    RequestHead,
    copy_body,
    read_response,
    request_body_kind,
    response_body_kind,
    simple_response,
)
from .upstream import Upstream

__all__ = ["forwarded_headers", "UpstreamSlot", "pass_through", "describe_error", "bad_gateway", "UPSTREAM_ERRORS"]

#: What connecting to (or talking with) the upstream may raise.
UPSTREAM_ERRORS = (OSError, asyncio.TimeoutError, ssl.SSLError, HeadError, asyncio.IncompleteReadError)


def forwarded_headers(head: RequestHead, peer_ip: str, upstream: Upstream, *, websocket: bool) -> list[tuple[str, str]]:
    """The request's header lines as they go upstream.

    ``Host`` becomes the upstream's (the original goes to ``X-Forwarded-Host``),
    the peer's address is appended to ``X-Forwarded-For``, ``X-Forwarded-Proto``
    is added if missing. For WebSocket handshakes ``Sec-WebSocket-Extensions``
    is dropped, so no compression is negotiated and every frame can be read as
    it passes. Everything else, credentials included, is passed unchanged.
    """
    out: list[tuple[str, str]] = []
    xff: str | None = None
    original_host: str | None = None
    have = set()
    for name, value in head.headers:
        lower = name.lower()
        have.add(lower)
        if lower == "host":
            original_host = value
            out.append((name, upstream.authority))
        elif lower == "x-forwarded-for":
            xff = value if xff is None else f"{xff}, {value}"
        elif websocket and lower == "sec-websocket-extensions":
            continue
        elif lower == "expect" and value.lower() == "100-continue":
            continue  # answered by the recorder itself
        else:
            out.append((name, value))
    if original_host is None:
        out.insert(0, ("Host", upstream.authority))
    out.append(("X-Forwarded-For", f"{xff}, {peer_ip}" if xff else peer_ip))
    if "x-forwarded-proto" not in have:
        out.append(("X-Forwarded-Proto", "http"))
    if original_host is not None and "x-forwarded-host" not in have:
        out.append(("X-Forwarded-Host", original_host))
    return out


class UpstreamSlot:
    """The upstream connection a peer's keep-alive connection reuses between requests."""

    def __init__(self) -> None:
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def drop(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def pass_through(
    head: RequestHead,
    peer: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    peer_ip: str,
    upstream: Upstream,
    ctx: ssl.SSLContext | None,
    slot: UpstreamSlot,
) -> bool:
    """Relay one request and its response; return whether the peer's connection stays open."""
    reader, writer = peer
    try:
        kind, length = request_body_kind(head)
    except HeadError:
        writer.write(simple_response(400, "Bad Request", "wsreplay recorder: bad Content-Length\n"))
        return False
    if slot.conn is None or slot.conn[1].is_closing():
        try:
            slot.conn = await upstream.connect(ctx)
        except UPSTREAM_ERRORS as exc:
            writer.write(bad_gateway("unreachable", exc))
            return False
    ureader, uwriter = slot.conn
    target = upstream.prefix + head.target
    answered = False
    try:
        uwriter.write(head.encode(forwarded_headers(head, peer_ip, upstream, websocket=False), target=target))
        if (head.get("expect") or "").lower() == "100-continue" and kind != "none":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await copy_body(reader, uwriter, kind, length)
        response = await read_response(ureader)
        while 100 <= response.status < 200:
            writer.write(response.raw)
            response = await read_response(ureader)
        body_kind, body_length = response_body_kind(response, head.method)
        answered = True
        writer.write(response.raw)
        await copy_body(ureader, writer, body_kind, body_length)
        await writer.drain()
    except UPSTREAM_ERRORS as exc:
        slot.drop()
        if not answered:
            writer.write(bad_gateway("failed", exc))
        return False
    upstream_keeps = response.version == "HTTP/1.1" and "close" not in response.tokens("connection")
    if not upstream_keeps or body_kind == "eof":
        slot.drop()
    return head.version == "HTTP/1.1" and "close" not in head.tokens("connection") and body_kind != "eof"


def bad_gateway(what: str, exc: BaseException) -> bytes:
    """The 502 a peer gets when the upstream is *what* (``unreachable``, ``failed``)."""
    return simple_response(502, "Bad Gateway", f"wsreplay recorder: upstream {what} ({describe_error(exc)})\n")


def describe_error(exc: BaseException) -> str:
    """One short phrase saying why talking to the upstream failed (never a header or a secret)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}; use --ca-file or --insecure"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
