"""One TCP port for plain HTTP and WebSocket, as authentik serves both (a thin asyncio driver).

websockets' server only parses bodiless GET requests, so the listener reads
each connection's first request head itself, with the recorder's strict parser
(h11 plus :func:`~wsreplay.record.http11.check_head`): a WebSocket upgrade is
handed, bytes untouched, to a websockets
:class:`~websockets.asyncio.server.ServerConnection` (handshake,
``process_request`` and frames are websockets' own); any other request is read
by h11 (``Content-Length`` or chunked bodies, keep-alive, pipelining, ``Expect:
100-continue``) and answered by an async HTTP handler, chunked responses
included. An ambiguous request (duplicate ``Content-Length``, ``Content-Length``
with ``Transfer-Encoding``, bare LF, ...) gets 400 and a close, as the recorder
answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import cast

import h11
from websockets.asyncio.server import Server, ServerConnection
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from ..record.http11 import MAX_HEAD, HeadError, PeerHTTP, check_head, head_end, is_upgrade, split_target
from .http_routes import HTTPRequest, HTTPResponse

__all__ = ["Listener", "MAX_HEAD", "MAX_BODY"]

#: Largest request body accepted (bytes).
MAX_BODY = 16 * 1024 * 1024

WSHandler = Callable[[ServerConnection], Awaitable[None]]
ProcessRequest = Callable[[ServerConnection, Request], Response | None]
HTTPHandler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


def _first_request(head: bytes) -> h11.Request:
    """A connection's first request head, read strictly (raises :class:`HeadError`)."""
    check_head(head)
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise HeadError(str(exc)) from None
    if not isinstance(event, h11.Request):  # pragma: no cover - a complete head is a request or an error
        raise HeadError("no request line")
    return event


def _bad_request(reason: str) -> bytes:
    body = f"{reason}\n".encode()
    head = f"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


class _Sniffer(asyncio.Protocol):
    """Reads a connection's first request head, then hands the transport over."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.listener._sniffing.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.listener._sniffing.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        end = head_end(bytes(self.buf))
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
            return
        self.listener._sniffing.discard(self.transport)
        try:
            request = _first_request(bytes(self.buf[:end]))
        except HeadError as exc:
            self.transport.write(_bad_request(str(exc)))
            self.transport.close()
            return
        if is_upgrade(request):
            self.listener._to_websocket(self.transport, bytes(self.buf))
        else:
            self.listener._to_http(self.transport, bytes(self.buf))

    def eof_received(self) -> bool | None:
        return None


class Listener:
    """Serve WebSocket upgrades with websockets and other requests with *http_handler*, on one port.

    Parameters
    ----------
    ws_handler : callable
        ``await ws_handler(connection)`` for every accepted WebSocket.
    process_request : callable
        websockets' ``process_request(connection, request)``: a
        :class:`~websockets.http11.Response` refuses the upgrade.
    http_handler : callable
        ``await http_handler(HTTPRequest) -> HTTPResponse`` for plain requests.
    server_header : str
        ``Server`` header of every response.
    max_size : int
        Largest WebSocket message accepted.
    close_timeout : float
        Seconds to wait for a peer's close frame.
    """

    def __init__(
        self,
        *,
        ws_handler: WSHandler,
        process_request: ProcessRequest,
        http_handler: HTTPHandler,
        server_header: str = "uvicorn",
        max_size: int = 16 * 1024 * 1024,
        close_timeout: float = 2.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.ws_handler = ws_handler
        self.process_request = process_request
        self.http_handler = http_handler
        self.server_header = server_header
        self.max_size = max_size
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout
        self._server: asyncio.Server | None = None
        self._ws: Server | None = None
        self._http_tasks: set[asyncio.Task[None]] = set()
        self._http_transports: set[asyncio.Transport] = set()
        self._sniffing: set[asyncio.Transport] = set()  # accepted, request head not complete yet
        self.port: int | None = None

    # ------------------------------------------------------------------ listening

    async def listen(self, host: str, port: int) -> int:
        """Start accepting on *host*:*port* (0: any free port); return the port."""
        loop = asyncio.get_running_loop()
        if self._ws is None:
            self._ws = Server(self._never, self._protocol_handler)
        self._server = await loop.create_server(lambda: _Sniffer(self), host, port, reuse_address=True)
        self._ws.server = self._server  # websockets asks it is_serving() before accepting an upgrade
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @staticmethod
    async def _never() -> asyncio.Server:  # pragma: no cover - the listener creates the socket itself
        raise RuntimeError("the listener owns the socket")

    async def stop_listening(self) -> None:
        """Stop accepting new connections (open ones stay)."""
        if self._server is not None:
            self._server.close()
            # wait_closed() would also wait for open connections: only the socket must go
            await asyncio.sleep(0)

    @property
    def listening(self) -> bool:
        """Whether new connections are accepted."""
        return self._server is not None and self._server.is_serving()

    async def close_http(self) -> None:
        """End every plain HTTP connection (in flight, idle keep-alive, or still sending its head)."""
        for transport in list(self._http_transports | self._sniffing):
            transport.abort()
        for task in list(self._http_tasks):
            task.cancel()
        if self._http_tasks:
            await asyncio.wait(list(self._http_tasks), timeout=self.close_timeout)

    async def aclose(self) -> None:
        """Stop listening and end plain HTTP connections (WebSockets are the caller's)."""
        await self.stop_listening()
        await self.close_http()
        if self._ws is not None and self._ws.handler_tasks:
            await asyncio.wait(list(self._ws.handler_tasks), timeout=self.close_timeout + 1.0)

    # ------------------------------------------------------------------ WebSocket side

    def _to_websocket(self, transport: asyncio.Transport, data: bytes) -> None:
        assert self._ws is not None
        protocol = ServerProtocol(extensions=enable_server_permessage_deflate(None), max_size=self.max_size)
        connection = ServerConnection(
            protocol,
            self._ws,
            ping_interval=None,  # authentik sends no pings
            ping_timeout=None,
            close_timeout=self.close_timeout,
        )
        transport.set_protocol(connection)
        connection.connection_made(transport)  # schedules _protocol_handler
        connection.data_received(data)

    async def _protocol_handler(self, connection: ServerConnection) -> None:
        assert self._ws is not None
        try:
            async with asyncio.timeout(self.open_timeout):
                await connection.handshake(self.process_request, None, self.server_header)
            if connection.protocol.state is not OPEN:
                if not connection.transport.is_closing():
                    connection.transport.close()
                return
            self._ws.all_connections.add(connection)
            try:
                async with connection:
                    await self.ws_handler(connection)
            finally:
                self._ws.all_connections.discard(connection)
        except Exception:
            connection.transport.abort()
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._ws.handler_tasks.discard(task)

    # ------------------------------------------------------------------ HTTP side

    def _to_http(self, transport: asyncio.Transport, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEAD)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(data)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        self._http_transports.add(transport)
        task = loop.create_task(self._serve_http(reader, writer))
        self._http_tasks.add(task)
        task.add_done_callback(self._http_tasks.discard)

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        peer = PeerHTTP(reader)
        try:
            while True:
                try:
                    request = await self._read_request(peer, writer)
                except HeadError as exc:
                    if peer.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        writer.write(_bad_request(str(exc)))
                        await writer.drain()
                    return
                if request is None:
                    return
                keep_alive = True
                try:
                    response = await self.http_handler(request)
                except Exception as exc:  # a bug in a route must not kill the listener
                    response = HTTPResponse(500, f"{type(exc).__name__}: {exc}".encode(), "text/plain")
                    keep_alive = False
                await self._write(peer, writer, response, keep_alive, request.method.upper() == "HEAD")
                if not peer.keep_alive():
                    return
        except (ConnectionError, h11.LocalProtocolError):
            return
        finally:
            self._http_transports.discard(transport)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(self, peer: PeerHTTP, writer: asyncio.StreamWriter) -> HTTPRequest | None:
        event = await peer.next_request()
        if event is None:
            return None
        if peer.conn.they_are_waiting_for_100_continue:
            writer.write(peer.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        body = bytearray()
        async for part in peer.body():
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    raise HeadError(f"body larger than {MAX_BODY} bytes")
        path, query = split_target(event.target)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()]
        return HTTPRequest(event.method.decode("latin-1"), path, query, headers, bytes(body))

    async def _write(
        self, peer: PeerHTTP, writer: asyncio.StreamWriter, response: HTTPResponse, keep_alive: bool, head: bool
    ) -> None:
        try:
            reason = http.HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        chunked = response.chunks is not None
        headers = [
            ("Date", formatdate(usegmt=True)),
            ("Server", self.server_header),
            ("Content-Type", response.content_type),
            ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(response.body))),
        ]
        if not keep_alive:
            headers.append(("Connection", "close"))
        writer.write(peer.send(h11.Response(status_code=response.status, headers=headers, reason=reason)))
        if head:  # the framing headers of the GET answer, no body
            pass
        elif response.chunks is None:
            if response.body:
                writer.write(peer.send(h11.Data(data=response.body)))
        else:
            for i, chunk in enumerate(response.chunks):
                if i and response.chunk_delay:
                    await asyncio.sleep(response.chunk_delay)
                if chunk:
                    writer.write(peer.send(h11.Data(data=chunk)))
                    await writer.drain()
        writer.write(peer.send(h11.EndOfMessage()))
        await writer.drain()
