"""A mock authentik: both WebSocket endpoints and a few REST routes, on 127.0.0.1 (asyncio driver).

Faithful to what a real authentik 2023.10 does on the wire (see
``authentik-protocol.md`` and the real-traffic fixture):

* ``/ws/outpost/<pk>/`` needs ``Authorization: Bearer <token>``; any refusal
  (bad, missing or non-Bearer token, unknown outpost, unknown ``/ws/`` path) is
  an HTTP 403 with an empty body, before the upgrade;
* every non-ACK frame is answered with the byte-exact ACK
  ``{"instruction": 0, "args": {}}`` after the configured latency, in order; a
  client's ACK gets no reply; malformed input (not JSON, no ``instruction``, a
  non-integer instruction, a binary frame) drops the TCP connection without a
  close frame, so the peer sees 1006;
* pushes reach every open socket of an outpost, including sockets that never
  sent HELLO; ``/ws/client/`` gets notices, ``session.authenticated`` and
  ``notification.new``;
* each non-ACK frame refreshes the instance's cached state for 15 s, which is
  what the health route lists.

Every frame is encoded by :mod:`wsreplay.protocol` and parsed by its
:func:`~wsreplay.protocol.decode`. What the mock saw and sent is kept in
:attr:`MockAuthentik.log` (never tokens or cookies).

This module is the control API (start, stop, stall, restart, pushes, health);
the handshake checks live in :mod:`~wsreplay.sim.mock_auth` and the serving of
each WebSocket in :mod:`~wsreplay.sim.mock_conn`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..exceptions import ConfigurationError
from ..protocol import (
    HELLO_INTERVAL_S,
    STATE_TIMEOUT_FACTOR,
    decode,
    encode_notice,
    encode_notification_new,
    encode_provider_specific,
    encode_session_authenticated,
    encode_session_end,
    encode_trigger_update,
)
from .http_routes import SECRET_HEADERS, HTTPRequest, HTTPResponse, InstanceState, route
from .latency import LatencyModel
from .listener import Listener
from .mock_auth import SESSION_COOKIE, refusal
from .mock_conn import LOG_KEYS, MockConnections, Peer

if TYPE_CHECKING:
    from .mock_thread import MockHandle

__all__ = ["MockAuthentik", "SESSION_COOKIE", "LOG_KEYS"]

_FORBIDDEN = Response(403, "Forbidden", Headers([("Content-Length", "0")]), b"")


class MockAuthentik(MockConnections):
    """A mock authentik server (real sockets, 127.0.0.1 by default).

    Parameters
    ----------
    host : str
        Address to bind.
    port : int
        Port to bind; 0 picks a free one (see :attr:`port` after start).
    outposts : mapping, optional
        Outpost pk -> API token, checked as ``Authorization: Bearer <token>``.
    sessions : collection of str, optional
        ``None``: ``/ws/client/`` accepts anyone (as authentik 2023.10 did);
        otherwise the ``authentik_session`` cookie must be one of these values.
    ack_latency : float or LatencyModel
        Delay before each ACK (seconds, or a model with a distribution and spikes).
        Settable while running.
    admin_tokens : iterable of str
        Tokens accepted for every outpost (authentik also admits an admin's API token).
    version, build_hash : str
        The server's version (``version_should`` of the health route).
    state_timeout : float
        Seconds an instance stays in the health list after its last non-ACK frame
        (authentik: 1.5 x 10 s).
    keep_log : bool
        Keep :attr:`log` (turn off for very long runs).
    server_header : str
        ``Server`` header of the responses (authentik runs under uvicorn).

    Examples
    --------
    >>> async def main():
    ...     async with MockAuthentik(outposts={"pk": "token"}) as ak:
    ...         return ak.url.startswith("http://127.0.0.1:")
    >>> import asyncio; asyncio.run(main())
    True
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        outposts: Mapping[str, str] | None = None,
        sessions: Collection[str] | None = None,
        ack_latency: float | LatencyModel = 0.0,
        *,
        admin_tokens: Iterable[str] = (),
        version: str = "2023.10.0",
        build_hash: str = "",
        state_timeout: float = HELLO_INTERVAL_S * STATE_TIMEOUT_FACTOR,
        keep_log: bool = True,
        server_header: str = "uvicorn",
    ) -> None:
        self.host = host
        self._port = int(port)
        self.outposts: dict[str, str] = dict(outposts or {})
        for pk, token in self.outposts.items():
            if not isinstance(pk, str) or not isinstance(token, str) or not token:
                raise ConfigurationError(f"outposts must map pk -> non-empty token string, got {pk!r}")
        self.sessions: frozenset[str] | None = None if sessions is None else frozenset(sessions)
        self._latency = LatencyModel.coerce(ack_latency)
        self.admin_tokens = frozenset(admin_tokens)
        self.version = version
        self.build_hash = build_hash
        if state_timeout <= 0:
            raise ConfigurationError("state_timeout must be > 0 seconds")
        self.state_timeout = float(state_timeout)
        self.keep_log = keep_log
        #: What the mock saw and sent, in order: dicts with the keys of :data:`LOG_KEYS`.
        self.log: list[dict[str, Any]] = []
        self._server_header = server_header
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: dict[int, Peer] = {}
        self._next_id = 0
        self._t0 = 0.0
        self._stalled_until = 0.0
        self._drop_until = 0.0
        self._stall_changed: asyncio.Event | None = None
        self._states: dict[tuple[str, str], InstanceState] = {}
        #: A misbehaving authentik, for tests: ``"drop"`` sends no ACK for every third frame of each
        #: connection (the 2nd, 5th, ...), ``"dup"`` sends two (the second 1 ms later); ``None``: correct.
        self.ack_fault: Literal["drop", "dup"] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._listener is None or self._listener.port is None:
            raise ConfigurationError("the mock is not started: use `async with MockAuthentik(...)` or await start()")
        return self._listener.port

    @property
    def url(self) -> str:
        """``http://host:port`` (what outposts are configured with)."""
        return f"http://{self._netloc()}"

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return f"ws://{self._netloc()}"

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.url if self.running else "not started"
        return f"<MockAuthentik {where}, {len(self.outposts)} outposts, {len(self._peers)} connections>"

    @property
    def ack_latency(self) -> LatencyModel:
        """The ACK latency model (assign seconds or a :class:`LatencyModel`)."""
        return self._latency

    @ack_latency.setter
    def ack_latency(self, value: float | LatencyModel) -> None:
        self._latency = LatencyModel.coerce(value)

    @property
    def stalled(self) -> bool:
        """Whether ACKs are held back right now (see :meth:`stall`)."""
        return time.monotonic() < self._stalled_until

    @property
    def running(self) -> bool:
        """Whether the mock is started (and not stopped)."""
        return self._listener is not None

    @property
    def connections(self) -> int:
        """Number of open WebSockets (both endpoints)."""
        return len(self._peers)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> MockAuthentik:
        """Bind and start serving; returns ``self``."""
        if self._listener is not None:
            raise ConfigurationError("this MockAuthentik is already started")
        self._loop = asyncio.get_running_loop()
        self._stall_changed = asyncio.Event()
        self._t0 = time.monotonic()
        listener = Listener(
            ws_handler=self._ws_handler,
            process_request=self._process_request,
            http_handler=self._http_handler,
            server_header=self._server_header,
        )
        try:
            await listener.listen(self.host, self._port)
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {self.host}:{self._port}: {exc.strerror or exc}") from None
        self._listener = listener
        self._port = self.port  # a restart rebinds the same port
        self._log("start", detail=self.url)
        return self

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop serving."""
        listener = self._listener
        if listener is None:
            return
        await listener.stop_listening()
        await self._close_all(1001)
        await listener.aclose()
        self._listener = None
        self._log("stop")

    async def __aenter__(self) -> MockAuthentik:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self, *, timeout: float = 10.0) -> MockHandle:
        """Run this mock on its own event loop in a background thread (blocking twin).

        Works in scripts and inside a running loop (Jupyter). Returns a
        :class:`~wsreplay.sim.MockHandle` with blocking ``push_*``/``restart``
        methods and ``stop()``; also a context manager.
        """
        from .mock_thread import MockHandle

        return MockHandle.start(self, timeout=timeout)

    # ------------------------------------------------------------------ control

    def stall(self, seconds: float, *, drop: bool = False) -> None:
        """Stop answering for *seconds*; sockets stay open. ``stall(0)`` ends a stall.

        Frames received meanwhile are answered when the stall ends, in order (a hung
        server catching up), or never with ``drop=True``. Safe to call from any thread.
        """
        if seconds < 0:
            raise ConfigurationError("stall seconds must be >= 0")
        now = time.monotonic()
        self._stalled_until = now + seconds
        self._drop_until = now + seconds if drop else 0.0
        self._log("stall", latency_s=float(seconds), detail="drop" if drop else "hold")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._poke)

    def _poke(self) -> None:
        if self._stall_changed is not None:
            self._stall_changed.set()
            self._stall_changed = asyncio.Event()

    async def restart(self, downtime: float = 0.0) -> int:
        """Restart: close every WebSocket with 1012 and refuse connections for *downtime* seconds.

        The instance health cache survives (authentik keeps it in Redis).
        Returns the number of WebSockets closed.
        """
        listener = self._listener
        if listener is None:
            raise ConfigurationError("the mock is not started")
        if downtime < 0:
            raise ConfigurationError("downtime must be >= 0 seconds")
        self._log("restart", latency_s=float(downtime), detail="begin")
        if downtime > 0:
            await listener.stop_listening()
        n = await self._close_all(1012)
        await listener.close_http()
        if downtime > 0:
            await asyncio.sleep(downtime)
            if self._listener is listener:
                await listener.listen(self.host, self._port)
        self._log("restart", code=1012, detail=f"done ({n} closed)")
        return n

    async def _close_all(self, code: int) -> int:
        peers = list(self._peers.values())
        await asyncio.gather(*(p.ws.close(code, "") for p in peers), return_exceptions=True)
        return len(peers)

    # ------------------------------------------------------------------ pushes

    async def push_trigger_update(self, pk: str) -> int:
        """TRIGGER_UPDATE to every connection of outpost *pk*; returns how many were reached."""
        return await self._push(self._outpost_peers(pk), encode_trigger_update())

    async def push_session_end(self, session_id: str) -> int:
        """SESSION_END to every outpost connection (authentik sends it to all outposts)."""
        return await self._push(self._outpost_peers(None), encode_session_end(session_id))

    async def push_provider_specific(self, pk: str | None, args: Mapping[str, Any]) -> int:
        """PROVIDER_SPECIFIC with *args* to outpost *pk*'s connections (``None``: every outpost)."""
        return await self._push(self._outpost_peers(pk), encode_provider_specific(dict(args)))

    async def push_notice(self, message: str, level: str = "info", *, tags: str | None = None) -> int:
        """A ``message`` notice to every ``/ws/client/`` connection."""
        return await self._push(self._client_peers(), encode_notice(message, level=level, tags=tags))

    async def push_session_authenticated(self) -> int:
        """``session.authenticated`` to every ``/ws/client/`` connection."""
        return await self._push(self._client_peers(), encode_session_authenticated())

    async def push_notification(self, notification_id: str, data: Mapping[str, Any]) -> int:
        """``notification.new`` to every ``/ws/client/`` connection."""
        return await self._push(self._client_peers(), encode_notification_new(notification_id, dict(data)))

    def _outpost_peers(self, pk: str | None) -> list[Peer]:
        if pk is not None and pk not in self.outposts:
            raise ConfigurationError(f"unknown outpost {pk!r}: the mock serves {sorted(self.outposts)}")
        return [p for p in self._peers.values() if p.endpoint == "outpost" and (pk is None or p.outpost == pk)]

    def _client_peers(self) -> list[Peer]:
        return [p for p in self._peers.values() if p.endpoint == "client"]

    async def _push(self, peers: list[Peer], text: str) -> int:
        d = decode(text, endpoint=peers[0].endpoint) if peers else {}
        instruction, message_type = d.get("instruction"), d.get("message_type")
        sent = await asyncio.gather(*(self._send(p, text, instruction, message_type) for p in peers))
        return sum(sent)

    # ------------------------------------------------------------------ health and handshake

    def health(self, pk: str) -> list[InstanceState]:
        """Instances of outpost *pk* whose cached state has not expired, as authentik lists them."""
        cutoff = time.time() - self.state_timeout
        rows = [s for (opk, _), s in self._states.items() if opk == pk and s.last_seen > cutoff]
        return sorted(rows, key=lambda s: s.uid)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        endpoint, pk, reason = refusal(
            request.path,
            request.headers.get("Authorization"),
            request.headers.get("Cookie"),
            outposts=self.outposts,
            admin_tokens=self.admin_tokens,
            sessions=self.sessions,
        )
        if reason is None:
            return None
        self._log("reject", endpoint=endpoint, outpost=pk, path=request.path, status=403, detail=reason)
        return _FORBIDDEN

    # ------------------------------------------------------------------ HTTP

    async def _http_handler(self, request: HTTPRequest) -> HTTPResponse:
        response = route(request, outposts=list(self.outposts), health=self.health, version=self.version)
        secret = sorted({k.lower() for k, _ in request.headers} & SECRET_HEADERS)
        self._log(
            "http",
            endpoint="http",
            path=request.path + (f"?{request.query}" if request.query else ""),
            status=response.status,
            data=request.method,
            detail=f"{len(request.body)} body bytes"
            + (f"; credentials withheld: {', '.join(secret)}" if secret else ""),
        )
        return response
