"""One TCP port for plain HTTP and WebSocket, as authentik serves both (a thin asyncio driver).

websockets' server only parses bodiless GET requests, so the listener reads
each request head itself: a WebSocket upgrade is handed, bytes untouched, to a
websockets :class:`~websockets.asyncio.server.ServerConnection` (handshake,
``process_request`` and frames are websockets' own); any other request is
parsed here (``Content-Length`` or chunked bodies, keep-alive, ``Expect:
100-continue``) and answered by an async HTTP handler, chunked responses
included.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import cast

from websockets.asyncio.server import Server, ServerConnection
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from .http_routes import HTTPRequest, HTTPResponse

__all__ = ["Listener", "MAX_HEAD", "MAX_BODY"]

#: Largest request head accepted (bytes).
MAX_HEAD = 64 * 1024
#: Largest request body accepted (bytes).
MAX_BODY = 16 * 1024 * 1024

WSHandler = Callable[[ServerConnection], Awaitable[None]]
ProcessRequest = Callable[[ServerConnection, Request], Response | None]
HTTPHandler = Callable[[HTTPRequest], Awaitable[HTTPResponse]]


def _header_lines(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError(f"malformed header line {line[:40]!r}")
        out.append((name, value.strip()))
    return out


def _is_upgrade(head: bytes) -> bool:
    try:
        headers = _header_lines(head)
    except ValueError:
        return False
    return any(k.lower() == "upgrade" and "websocket" in [t.strip().lower() for t in v.split(",")] for k, v in headers)


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
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEAD:
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
            return
        self.listener._sniffing.discard(self.transport)
        if _is_upgrade(bytes(self.buf[:end])):
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
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                try:
                    request, keep_alive = await self._read_request(head, reader, writer)
                except ValueError as exc:
                    await self._write(writer, HTTPResponse(400, str(exc).encode(), "text/plain"), False, False)
                    return
                try:
                    response = await self.http_handler(request)
                except Exception as exc:  # a bug in a route must not kill the listener
                    response = HTTPResponse(500, f"{type(exc).__name__}: {exc}".encode(), "text/plain")
                    keep_alive = False
                await self._write(writer, response, keep_alive, request.method.upper() == "HEAD")
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._http_transports.discard(transport)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[HTTPRequest, bool]:
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(f"malformed request line {request_line[:60]!r}")
        method, target, version = parts
        headers = _header_lines(head[:-4])
        names = {k.lower(): v for k, v in headers}
        connection = names.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if names.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if "chunked" in names.get("transfer-encoding", "").lower():
            body = await self._read_chunked(reader)
        elif "content-length" in names:
            try:
                length = int(names["content-length"])
            except ValueError:
                raise ValueError("Content-Length is not an integer") from None
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"body length must be in 0..{MAX_BODY}")
            body = await reader.readexactly(length)
        path, _, query = target.partition("?")
        return HTTPRequest(method, path, query, headers, body), keep_alive

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError("malformed chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise ValueError(f"body larger than {MAX_BODY} bytes")
            body += await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")

    async def _write(self, writer: asyncio.StreamWriter, response: HTTPResponse, keep_alive: bool, head: bool) -> None:
        try:
            reason = http.HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {formatdate(usegmt=True)}"]
        lines.append(f"Server: {self.server_header}")
        lines.append(f"Content-Type: {response.content_type}")
        chunked = response.chunks is not None
        lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(response.body)}")
        if not keep_alive:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if head:
            await writer.drain()
            return
        if response.chunks is None:
            writer.write(response.body)
            await writer.drain()
            return
        for i, chunk in enumerate(response.chunks):
            if i and response.chunk_delay:
                await asyncio.sleep(response.chunk_delay)
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
