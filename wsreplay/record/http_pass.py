"""Plain HTTP requests passed through to the upstream.

Outposts use the same base URL for their REST calls, so a recorder standing in
for authentik's address must relay them. A request is forwarded as h11 read it:
method, target, header names (case kept), values and order as sent, ``Host``
unchanged unless the recorder rewrites it, ``X-Forwarded-For/-Proto/-Host``
added, the body streamed and re-framed (so the upstream sees exactly the
boundaries the recorder saw). The response comes back the same way, streamed.

Upstream connections are kept alive per peer connection. While the peer is
idle, the recorder watches the upstream's side: when the upstream closes it
(uvicorn does after 5 s idle), the peer's connection is closed too, so a client
never writes its next request into a connection the upstream has left. A
request that met a reused upstream connection already closed, before any byte
of an answer, is retried once on a fresh connection when it has no body and an
idempotent method, otherwise the peer's connection is closed without an answer,
as the upstream closed it: never a 502 for a request the upstream never saw.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

import h11

from .http11 import MAX_HEAD, HeadError, PeerHTTP, header, simple_response, tokens
from .upstream import Upstream

__all__ = [
    "forwarded_headers",
    "UpstreamHTTP",
    "UpstreamSlot",
    "pass_through",
    "forward_response",
    "describe_error",
    "bad_gateway",
    "UPSTREAM_ERRORS",
]

#: What connecting to (or talking with) the upstream may raise.
UPSTREAM_ERRORS = (OSError, asyncio.TimeoutError, ssl.SSLError, h11.ProtocolError, asyncio.IncompleteReadError)
_READ = 65536
_IDEMPOTENT = {b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"}


def forwarded_headers(
    request: h11.Request, peer_ip: str, upstream: Upstream, *, websocket: bool, rewrite_host: bool = False
) -> list[tuple[bytes, bytes]]:
    """The request's header lines as they go upstream.

    ``Host`` is passed unchanged (authentik picks the tenant by it) unless
    *rewrite_host*, which sets the upstream's; the original always goes to
    ``X-Forwarded-Host`` (unless already there). The peer's address is appended
    to ``X-Forwarded-For``, ``X-Forwarded-Proto`` is added if missing. For
    WebSocket handshakes ``Sec-WebSocket-Extensions`` is dropped, so no
    compression is negotiated and every frame can be read as it passes.
    ``Expect: 100-continue`` is answered by the recorder itself. Everything
    else, credentials included, is passed unchanged.
    """
    out: list[tuple[bytes, bytes]] = []
    xff: bytes | None = None
    original_host: bytes | None = None
    have = set()
    authority = upstream.authority.encode("latin-1")
    for name, value in request.headers.raw_items():
        lower = name.lower()
        have.add(lower)
        if lower == b"host":
            original_host = value
            out.append((name, authority if rewrite_host else value))
        elif lower == b"x-forwarded-for":
            xff = value if xff is None else xff + b", " + value
        elif websocket and lower == b"sec-websocket-extensions":
            continue
        elif lower == b"expect" and value.lower() == b"100-continue":
            continue
        else:
            out.append((name, value))
    if original_host is None:  # HTTP/1.0 without Host: the upstream's
        out.insert(0, (b"Host", authority))
    ip = peer_ip.encode("latin-1")
    out.append((b"X-Forwarded-For", xff + b", " + ip if xff else ip))
    if b"x-forwarded-proto" not in have:
        out.append((b"X-Forwarded-Proto", b"http"))
    if original_host is not None and b"x-forwarded-host" not in have:
        out.append((b"X-Forwarded-Host", original_host))
    return out


class UpstreamHTTP:
    """One connection to the upstream, read and written by h11 (client side)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        #: exchanges completed on this connection (0: fresh)
        self.exchanges = 0
        #: bytes received in the current exchange
        self.received = 0

    @property
    def buffered(self) -> bytes:
        """Bytes received and not read yet (what follows a ``101``)."""
        return bytes(self.conn.trailing_data[0])

    def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.writer.write(data)

    async def read_more(self) -> None:
        data = await self.reader.read(_READ)
        self.received += len(data)
        self.conn.receive_data(data)

    async def next_event(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                await self.read_more()
                continue
            if event is h11.PAUSED:
                raise h11.RemoteProtocolError("upstream switched protocols out of turn")
            return cast(h11.Event, event)

    def next_cycle(self) -> bool:
        """After an exchange: whether this connection can carry the next one."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
            self.exchanges += 1
            self.received = 0
            return True
        return False


class UpstreamSlot:
    """The upstream connection a peer's keep-alive connection reuses between requests."""

    def __init__(self) -> None:
        self.conn: UpstreamHTTP | None = None

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.writer.close()
            self.conn = None

    async def read_while_idle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes | None:
        """The peer's next bytes; ``None`` if the upstream spoke or left first (the peer is then closed too).

        While the peer is idle between requests, one read waits on the upstream: when it completes
        (the upstream closed an idle keep-alive connection), the peer's connection is closed the same
        way, so the peer never sends its next request into a connection the upstream has left.
        """
        if self.conn is None:
            return await reader.read(_READ)
        watch = asyncio.ensure_future(self.conn.reader.read(_READ))
        watch.add_done_callback(lambda task: None if task.cancelled() else writer.close())
        try:
            data = await reader.read(_READ)
        finally:
            if not watch.done():
                watch.cancel()
            # a stream takes one reader at a time: the cancelled read must be over before the next one
            await asyncio.wait((watch,))
        if watch.cancelled():
            return data
        watch.exception()  # retrieved: an upstream reset while idle is an ordinary end
        self.drop()
        return None


async def pass_through(
    request: h11.Request,
    peer: PeerHTTP,
    writer: asyncio.StreamWriter,
    peer_ip: str,
    upstream: Upstream,
    ctx: ssl.SSLContext | None,
    slot: UpstreamSlot,
    *,
    rewrite_host: bool = False,
) -> bool:
    """Relay one request and its response; return whether the peer's connection stays open.

    A bad request body (a malformed chunk, a cut-short body) raises :class:`HeadError`
    after the upstream connection is dropped, so the upstream never gets the rest.
    """
    outgoing = h11.Request(
        method=request.method,
        target=upstream.prefix.encode("latin-1") + request.target,
        headers=forwarded_headers(request, peer_ip, upstream, websocket=False, rewrite_host=rewrite_host),
        _parsed=True,  # h11 read (and checked) every line of it; the recorder's own lines are plain
    )
    bodiless = header(request, b"content-length") in (None, b"0") and header(request, b"transfer-encoding") is None
    retryable = bodiless and request.method in _IDEMPOTENT
    body_end: h11.EndOfMessage | None = None
    while True:
        if slot.conn is None:
            try:
                slot.conn = UpstreamHTTP(*await upstream.connect(ctx))
            except UPSTREAM_ERRORS as exc:
                writer.write(bad_gateway("unreachable", exc))
                return False
        up = slot.conn
        try:
            up.send(outgoing)
            if body_end is None and peer.conn.they_are_waiting_for_100_continue:
                writer.write(peer.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
            if body_end is not None:  # a retry: the request had no body, its end was already read
                up.send(body_end)
            else:
                try:
                    async for event in peer.body():
                        up.send(event)
                        await up.writer.drain()
                        if isinstance(event, h11.EndOfMessage):
                            body_end = event
                except HeadError:
                    slot.drop()  # the upstream must not get the rest of an invalid body
                    raise
            first = await up.next_event()
            if isinstance(first, h11.ConnectionClosed):
                raise h11.RemoteProtocolError("upstream closed the connection without a response")
        except UPSTREAM_ERRORS as exc:
            slot.drop()
            if up.exchanges and not up.received:  # a reused connection the upstream had already left
                if retryable:
                    continue
                return False
            writer.write(bad_gateway("failed", exc))
            return False
        break
    if not await forward_response(first, up, peer, writer):
        slot.drop()
        return False
    if not up.next_cycle():
        slot.drop()
    return peer.keep_alive()


async def forward_response(first: h11.Event, up: UpstreamHTTP, peer: PeerHTTP, writer: asyncio.StreamWriter) -> bool:
    """Relay the upstream's response that starts with *first* (informational ones included) to the peer.

    Returns whether it was relayed whole; if not, the peer's connection is aborted (a 502
    before the first byte of a response, when the upstream failed before answering).
    """
    event = first
    answered = False
    try:
        while isinstance(event, h11.InformationalResponse):
            writer.write(peer.send(event))
            event = await up.next_event()
        if not isinstance(event, h11.Response):
            raise h11.RemoteProtocolError("upstream closed the connection without a response")
        headers = list(event.headers.raw_items())
        if not _upstream_keeps(event) and b"close" not in tokens(event, b"connection"):
            headers.append((b"Connection", b"close"))  # the peer's connection ends where the upstream's does
        response = h11.Response(status_code=event.status_code, headers=headers, reason=event.reason, _parsed=True)
        out = [peer.send(response)]
        answered = True
        size = 0
        while True:  # what h11 has buffered goes out in one write; wait for the network only when it has none
            body = up.conn.next_event()
            if body is h11.NEED_DATA:
                writer.write(b"".join(out))
                out, size = [], 0
                await writer.drain()
                await up.read_more()
            elif isinstance(body, h11.Data):
                out.append(peer.send(body))
                size += len(body.data)
                if size >= _READ:
                    writer.write(b"".join(out))
                    out, size = [], 0
                    await writer.drain()
            elif isinstance(body, h11.EndOfMessage):
                out.append(peer.send(body))
                writer.write(b"".join(out))
                await writer.drain()
                return True
            else:
                raise h11.RemoteProtocolError("upstream closed the connection in the middle of a response")
    except UPSTREAM_ERRORS as exc:
        if answered:
            writer.transport.abort()
        else:
            writer.write(bad_gateway("failed", exc))
        return False


def _upstream_keeps(response: h11.Response) -> bool:
    if b"close" in tokens(response, b"connection"):
        return False
    return response.http_version == b"1.1" or b"keep-alive" in tokens(response, b"connection")


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
