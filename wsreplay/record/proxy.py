"""The recording proxy: one listening port for WebSocket relays and plain HTTP.

Each accepted connection starts with an HTTP request. A WebSocket upgrade is
forwarded to the same path and query upstream; the upstream's answer goes back
to the peer as is (a refusal keeps its status and body and is recorded as an
``error`` row), and after a ``101`` the connection is handed to a
:class:`~wsreplay.record.relay.Relay`. Any other request is passed through
(:mod:`wsreplay.record.http_pass`), on a connection that may be kept alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

import h11

from ..events import ConnectionLog
from .clock import WallClock
from .http11 import HeadError, PeerHTTP, header, is_upgrade, redact_query, redacted_head, split_target
from .http11 import simple_response as _simple
from .http_pass import (
    UPSTREAM_ERRORS,
    UpstreamHTTP,
    UpstreamSlot,
    bad_gateway,
    describe_error,
    forward_response,
    forwarded_headers,
    pass_through,
)
from .relay import TO_PEER, TO_SERVER, Relay
from .stats import RecorderStats
from .upstream import Upstream

__all__ = ["RecordingProxy", "DEFAULT_MAX_SIZE"]

logger = logging.getLogger("wsreplay.record")
_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

#: Default largest frame or message relayed (bytes).
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
_HANDSHAKE_TIMEOUT = 30.0
#: Seconds a connection may sit without sending a request (before the first one, or between keep-alive requests).
IDLE_TIMEOUT = 120.0


class RecordingProxy:
    """The listening side of the recorder.

    Parameters
    ----------
    upstream : Upstream
        Where to relay.
    put : callable
        Receives each capture row (a dict).
    capture_id : str
        Written on every row.
    clock : WallClock
        Timestamps of the rows.
    max_size : int
        Largest frame or message relayed, bytes.
    rewrite_host : bool
        Send the upstream's address as ``Host`` instead of the peer's (which goes to ``X-Forwarded-Host``).
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        put: Callable[[dict[str, Any]], None],
        capture_id: str,
        clock: WallClock | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        rewrite_host: bool = False,
    ) -> None:
        self.upstream = upstream
        self.put = put
        self.capture_id = capture_id
        self.clock = clock or WallClock()
        self.max_size = max_size
        self.rewrite_host = rewrite_host
        self.stats = RecorderStats()
        self._ctx: ssl.SSLContext | None = upstream.ssl_context()
        self._server: asyncio.Server | None = None
        self._relays: set[Relay] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._closing = False

    async def start(self, host: str, port: int) -> None:
        """Start listening on *host*:*port* (port 0: a free one)."""
        self._server = await asyncio.start_server(self._handle, host, port, limit=256 * 1024, backlog=4096)

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` actually listened on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the recorder is not listening")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        """Stop accepting, close every relayed connection with 1001, end pass-through connections."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        relays = list(self._relays)
        if relays:
            await asyncio.gather(*(r.shutdown() for r in relays), return_exceptions=True)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    # ----------------------------------------------------------------- private

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peername = writer.get_extra_info("peername")
        peer_ip = str(peername[0]) if peername else "unknown"
        peer_addr = f"{peername[0]}:{peername[1]}" if peername else None
        peer = PeerHTTP(reader)
        slot = UpstreamSlot()
        try:
            while not self._closing:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        if slot.conn is not None and not peer.buffered:
                            # idle keep-alive: end the peer's connection when the upstream ends its side
                            data = await slot.read_while_idle(reader, writer)
                            if data is None:
                                break
                            peer.feed(data)
                        request = await peer.next_request()
                except TimeoutError:
                    break
                except HeadError as exc:
                    self._refuse_request(peer, writer, str(exc), peer_addr)
                    break
                if request is None:
                    break
                if is_upgrade(request):
                    slot.drop()
                    streams = await self._handshake(request, peer, reader, writer, peer_ip, peer_addr)
                    del request, peer  # the handshake's h11 state is not kept while the relay runs
                    if streams is not None:
                        await self._relay(*streams)
                    break
                self.stats.http_requests += 1
                try:
                    keep = await pass_through(
                        request, peer, writer, peer_ip, self.upstream, self._ctx, slot, rewrite_host=self.rewrite_host
                    )
                except HeadError as exc:  # a bad body: the upstream connection was dropped before its end
                    self._refuse_request(peer, writer, str(exc), peer_addr)
                    break
                if not keep:
                    break
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            if not self._closing:
                raise
        finally:
            slot.drop()
            writer.close()
            self._handlers.discard(task)

    def _refuse_request(self, peer: PeerHTTP, writer: asyncio.StreamWriter, reason: str, peer_addr: str | None) -> None:
        """Answer an ambiguous or malformed request with 400 (then close) and record it with its raw head."""
        if peer.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            writer.write(_simple(400, "Bad Request", f"wsreplay recorder: refused ambiguous HTTP request: {reason}\n"))
        raw = peer.raw_head
        first = raw.split(b"\n", 1)[0].split(b" ")
        path, query = split_target(first[1]) if len(first) >= 3 else ("", "")
        log = ConnectionLog(self.capture_id, path, redact_query(query))
        row = log.error(
            self.clock.now_ns(), f"refused ambiguous HTTP request: {reason}", status=400, direction=TO_SERVER
        )
        row["payload_bytes"] = redacted_head(raw)
        row["size"] = len(raw)
        row["peer"] = peer_addr
        self.stats.errors += 1
        self.put(row)
        logger.info("refused an HTTP request from %s: %s", peer_addr, reason)

    async def _handshake(
        self,
        request: h11.Request,
        peer: PeerHTTP,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_ip: str,
        peer_addr: str | None,
    ) -> tuple[ConnectionLog, _Streams, _Streams, tuple[bytes, bytes]] | None:
        """Relay a WebSocket handshake; after a ``101``, what the relay needs: rows, both streams, early bytes."""
        path, query = split_target(request.target)
        log = ConnectionLog(self.capture_id, path, redact_query(query))
        agent = header(request, b"user-agent")
        user_agent = agent.decode("latin-1") if agent is not None else None
        try:
            async for _ in peer.body():  # an upgrade request's (empty) body
                pass
        except HeadError as exc:
            self._refuse_request(peer, writer, str(exc), peer_addr)
            return None
        try:
            up = UpstreamHTTP(*await self.upstream.connect(self._ctx))
        except UPSTREAM_ERRORS as exc:
            self._refused(log, 502, f"upstream unreachable: {describe_error(exc)}", user_agent, peer_addr)
            writer.write(bad_gateway("unreachable", exc))
            return None
        relayed = False
        try:
            headers = forwarded_headers(request, peer_ip, self.upstream, websocket=True, rewrite_host=self.rewrite_host)
            target = self.upstream.prefix.encode("latin-1") + request.target
            try:
                up.send(h11.Request(method=request.method, target=target, headers=headers))
                up.send(h11.EndOfMessage())
                async with asyncio.timeout(_HANDSHAKE_TIMEOUT):
                    response = await up.next_event()
                if isinstance(response, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("upstream closed the connection without a response")
            except UPSTREAM_ERRORS as exc:
                self._refused(log, 502, f"upstream failed the handshake: {describe_error(exc)}", user_agent, peer_addr)
                writer.write(bad_gateway("failed", exc))
                return None
            if not (isinstance(response, h11.InformationalResponse) and response.status_code == 101):
                status = getattr(response, "status_code", 502)
                phrase = bytes(getattr(response, "reason", b"")).decode("latin-1")
                reason = f"upstream refused the handshake: HTTP {status} {phrase}".rstrip()
                self._refused(log, status, reason, user_agent, peer_addr)
                with contextlib.suppress(*UPSTREAM_ERRORS):
                    async with asyncio.timeout(_HANDSHAKE_TIMEOUT):
                        await forward_response(response, up, peer, writer)
                return None
            writer.write(peer.send(response))
            self.put(log.open(self.clock.now_ns(), status=101, user_agent=user_agent, peer=peer_addr))
            relayed = True
            # bytes that came right behind either handshake are in h11's buffers: the relay gets them first
            return log, (reader, writer), (up.reader, up.writer), (peer.buffered, up.buffered)
        finally:
            if not relayed:
                up.writer.close()

    async def _relay(self, log: ConnectionLog, peer: _Streams, upstream: _Streams, early: tuple[bytes, bytes]) -> None:
        relay = Relay(log, put=self.put, clock=self.clock, stats=self.stats, max_size=self.max_size)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        self._relays.add(relay)
        try:
            await relay.run(peer, upstream, early=early)
        finally:
            self._relays.discard(relay)
            self.stats.connections_open -= 1
            upstream[1].close()

    def _refused(self, log: ConnectionLog, status: int, reason: str, user_agent: str | None, peer: str | None) -> None:
        row = log.error(self.clock.now_ns(), reason, status=status, direction=TO_PEER)
        row["user_agent"] = user_agent
        row["peer"] = peer
        self.stats.refused += 1
        self.stats.errors += 1
        self.put(row)
        logger.info("handshake for %s refused: %s", log.path, reason)
