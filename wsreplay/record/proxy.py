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

from ..events import ConnectionLog
from .clock import WallClock
from .http11 import HeadError, RequestHead, copy_body, read_request, read_response, redact_query, response_body_kind
from .http11 import simple_response as _simple
from .http_pass import UPSTREAM_ERRORS, UpstreamSlot, bad_gateway, describe_error, forwarded_headers, pass_through
from .relay import TO_PEER, Relay
from .stats import RecorderStats
from .upstream import Upstream

__all__ = ["RecordingProxy", "DEFAULT_MAX_SIZE"]

logger = logging.getLogger("wsreplay.record")

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
    """

    def __init__(
        self,
        upstream: Upstream,
        *,
        put: Callable[[dict[str, Any]], None],
        capture_id: str,
        clock: WallClock | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> None:
        self.upstream = upstream
        self.put = put
        self.capture_id = capture_id
        self.clock = clock or WallClock()
        self.max_size = max_size
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
        peer = f"{peername[0]}:{peername[1]}" if peername else None
        slot = UpstreamSlot()
        try:
            while not self._closing:
                try:
                    head = await asyncio.wait_for(read_request(reader), IDLE_TIMEOUT)
                except TimeoutError:
                    break
                except HeadError as exc:
                    writer.write(_simple(400, "Bad Request", f"wsreplay recorder: {exc}\n"))
                    break
                if head is None:
                    break
                if head.is_upgrade:
                    slot.drop()
                    await self._websocket(head, reader, writer, peer_ip, peer)
                    break
                self.stats.http_requests += 1
                if not await pass_through(head, (reader, writer), peer_ip, self.upstream, self._ctx, slot):
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

    async def _websocket(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_ip: str,
        peer: str | None,
    ) -> None:
        log = ConnectionLog(self.capture_id, head.path, redact_query(head.query))
        user_agent = head.get("user-agent")
        try:
            ureader, uwriter = await self.upstream.connect(self._ctx)
        except UPSTREAM_ERRORS as exc:
            self._refused(log, 502, f"upstream unreachable: {describe_error(exc)}", user_agent, peer)
            writer.write(bad_gateway("unreachable", exc))
            return
        try:
            target = self.upstream.prefix + head.target
            uwriter.write(head.encode(forwarded_headers(head, peer_ip, self.upstream, websocket=True), target=target))
            try:
                response = await asyncio.wait_for(read_response(ureader), _HANDSHAKE_TIMEOUT)
            except UPSTREAM_ERRORS as exc:
                self._refused(log, 502, f"upstream failed the handshake: {describe_error(exc)}", user_agent, peer)
                writer.write(bad_gateway("failed", exc))
                return
            if response.status != 101:
                reason = f"upstream refused the handshake: HTTP {response.status} {response.reason}".rstrip()
                self._refused(log, response.status, reason, user_agent, peer)
                writer.write(response.raw)
                kind, length = response_body_kind(response, head.method)
                with contextlib.suppress(*UPSTREAM_ERRORS):
                    await asyncio.wait_for(copy_body(ureader, writer, kind, length), _HANDSHAKE_TIMEOUT)
                    await writer.drain()
                return
            writer.write(response.raw)
            self.put(log.open(self.clock.now_ns(), status=101, user_agent=user_agent, peer=peer))
            relay = Relay(log, put=self.put, clock=self.clock, stats=self.stats, max_size=self.max_size)
            self.stats.connections_open += 1
            self.stats.connections_total += 1
            self._relays.add(relay)
            try:
                await relay.run((reader, writer), (ureader, uwriter))
            finally:
                self._relays.discard(relay)
                self.stats.connections_open -= 1
        finally:
            uwriter.close()

    def _refused(self, log: ConnectionLog, status: int, reason: str, user_agent: str | None, peer: str | None) -> None:
        row = log.error(self.clock.now_ns(), reason, status=status, direction=TO_PEER)
        row["user_agent"] = user_agent
        row["peer"] = peer
        self.stats.refused += 1
        self.stats.errors += 1
        self.put(row)
        logger.info("handshake for %s refused: %s", log.path, reason)
