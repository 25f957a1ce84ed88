"""Serving a capture as the recorded authentik: the thin asyncio driver.

:class:`ReplayServer` listens (127.0.0.1 by default) on the recorded paths.
Each incoming connection takes the next recorded connection of its path (one
with the same ``instance_uuid`` query parameter first); then

* every frame the peer sends is answered with the replies the capture
  recorded after the matching recorded frame, after the recorded latency
  (divided by *speed*); a frame the script does not have (the peer says
  something else, or runs longer than the capture) is answered like the
  first recorded frame of the same kind, anywhere in the capture;
* a malformed frame that authentik answered by dropping the connection is
  answered the same way (no close frame: the peer sees 1006);
* the server's own frames (TRIGGER_UPDATE, SESSION_END, notices) are pushed at
  their recorded offsets from the connection's open, and a recorded server
  close (a 1012 restart) happens at its offset too.

Paths the capture does not have, and (with a token check) a missing or wrong
``Authorization: Bearer`` token, are refused with HTTP 403 and an empty body
before the upgrade, as authentik does. What to answer and when is decided by a
:class:`~wsreplay.playback.session.ServerSession` per connection; this module
only does the I/O. :func:`~wsreplay.playback.handle.serve` is the blocking twin.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import pandas as pd
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..events import ConnectionLog, DecodeCache, new_id
from ..exceptions import ConfigurationError
from ..schema import rows_to_table, table_to_frames
from ..store import CaptureWriter
from ._clock import Clock, Timer
from .plan import plan_of
from .schedule import parse_speed
from .script import ConnectionScript, ReplayPlan
from .served import ServerSession, answers_by_kind
from .session import Close, Reply

if TYPE_CHECKING:
    from .handle import ServeHandle

__all__ = ["ReplayServer", "ServerStats"]


@dataclass
class ServerStats:
    """Counters of a :class:`ReplayServer`."""

    connections: int = 0
    refused: int = 0
    frames_in: int = 0
    frames_out: int = 0
    by_analogy: int = 0
    unanswered: int = 0
    pushes: int = 0
    dropped: int = 0
    paths: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        return (
            f"{self.connections} connection(s) served, {self.refused} refused; {self.frames_in} frame(s) in, "
            f"{self.frames_out} out ({self.pushes} pushed, {self.by_analogy} answered by analogy, "
            f"{self.unanswered} without a recorded answer)"
        )


class ReplayServer:
    """Serve a capture as the recorded server.

    Parameters
    ----------
    capture : path, DataFrame or ReplayPlan
        What to serve.
    host, port : str, int
        Where to listen (``port=0``: a free port; see :attr:`port`).
    speed : float or "max"
        Divide recorded latencies and push offsets by this.
    tokens : str or dict, optional
        Check ``Authorization: Bearer`` on outpost connections: one token for
        every outpost, or outpost pk -> token. ``None`` checks nothing.
    endpoint, outpost, connection, start, end, mapping
        Filters and pk mapping, as for :func:`wsreplay.replay`.
    out : path, optional
        Write what the server saw and sent as a capture directory.
    record : bool
        Keep what it saw in memory (see :meth:`frames`).

    Examples
    --------
    Inside a coroutine (skipped as a doctest: it listens on a port until stopped):

    >>> async with ReplayServer("capture/") as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(
        self,
        capture: str | os.PathLike[str] | pd.DataFrame | ReplayPlan,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | str | None = 1.0,
        tokens: str | Mapping[str, str] | None = None,
        endpoint: str | Sequence[str] | None = None,
        outpost: str | Sequence[str] | None = None,
        connection: str | Sequence[str] | None = None,
        start: Any = None,
        end: Any = None,
        mapping: Mapping[str, str] | Iterable[str] | None = None,
        out: str | os.PathLike[str] | None = None,
        record: bool = False,
    ) -> None:
        self.plan = plan_of(
            capture, endpoint=endpoint, outpost=outpost, connection=connection, start=start, end=end, mapping=mapping
        )
        self.host = host
        self._port = port
        self.speed = parse_speed(speed)
        self.tokens = tokens
        self.out = Path(out) if out is not None else None
        self.record = record
        self.stats = ServerStats()
        self.capture_id = new_id()
        self._scripts: dict[str, list[ConnectionScript]] = {}
        for s in self.plan.scripts:
            if not s.refused:
                self._scripts.setdefault(s.path, []).append(s)
        if not self._scripts:
            raise ConfigurationError("the capture has no accepted connection to serve")
        self._next: dict[str, int] = dict.fromkeys(self._scripts, 0)
        self._by_kind = answers_by_kind(self.plan, self.speed)
        self._server: Server | None = None
        self._writer: CaptureWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._clock = Clock()
        self._timer = Timer()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cache: DecodeCache = {}

    # ------------------------------------------------------------- scripts

    def _pick(self, path: str, query: str) -> ConnectionScript | None:
        scripts = self._scripts.get(path)
        if not scripts:
            return None
        instance = next(iter(parse_qs(query).get("instance_uuid") or []), None)
        start = self._next[path]
        if instance:
            for k in range(start, len(scripts)):
                if scripts[k].instance_uuid == instance:
                    scripts.insert(start, scripts.pop(k))
                    break
        script = scripts[start % len(scripts)]
        self._next[path] = (start + 1) % len(scripts)
        return script

    # ------------------------------------------------------------- server

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._server is None:
            return self._port
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``: the base URL to give outposts as authentik's address."""
        return "http" + self.ws_url[2:]

    async def start(self) -> ReplayServer:
        """Start listening."""
        if self.out is not None:
            self._writer = CaptureWriter(self.out, capture_id=self.capture_id)
        self._server = await ws_serve(
            self._handler,
            self.host,
            self._port,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=None,
            server_header="wsreplay",
        )
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening; seal the capture written to *out*."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await self._timer.aclose()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        """Serve until *stop* is set (or forever), then :meth:`stop`."""
        if self._server is None:
            await self.start()
        try:
            await (stop.wait() if stop is not None else asyncio.Future())
        finally:
            await self.stop()

    async def __aenter__(self) -> ReplayServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def frames(self) -> pd.DataFrame:
        """What the server saw and sent so far (needs ``record=True``), as a capture."""
        rows = list(self._rows)
        frames = table_to_frames(rows_to_table(rows))
        return frames.sort_values(["ts", "seq"], kind="stable").reset_index(drop=True) if len(frames) else frames

    def start_in_thread(self) -> ServeHandle:
        """Run the server on its own loop in a daemon thread (what :func:`~wsreplay.serve` does)."""
        from .handle import ServeHandle

        return ServeHandle(self)

    # ------------------------------------------------------------- handshake

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, _query = request.path.partition("?")
        refuse = path not in self._scripts
        if not refuse and self.tokens is not None and path.startswith("/ws/outpost/"):
            pk = path.split("/")[3]
            expected = self.tokens if isinstance(self.tokens, str) else self.tokens.get(pk)
            given = request.headers.get("Authorization", "")
            refuse = expected is None or given != f"Bearer {expected}"
        if refuse:
            self.stats.refused += 1
            response = connection.respond(HTTPStatus.FORBIDDEN, "")
            return response
        return None

    # ------------------------------------------------------------- connection

    def _log(self, row: dict[str, Any]) -> None:
        if self.record:
            self._rows.append(row)
        if self._writer is not None:
            self._writer.write(row)

    async def _handler(self, ws: ServerConnection) -> None:
        path, _, query = ws.request.path.partition("?") if ws.request else ("", "", "")
        script = self._pick(path, query)
        if script is None:  # pragma: no cover - refused in _process_request
            return
        self.stats.connections += 1
        self.stats.paths[path] += 1
        logging = self.record or self._writer is not None
        log = ConnectionLog(self.capture_id, path, query, cache=self._cache) if logging else None
        ua = ws.request.headers.get("User-Agent") if ws.request else None
        peer = ws.remote_address
        if log is not None:
            where = f"{peer[0]}:{peer[1]}" if peer else None
            self._log(log.open(self._clock.ns(), status=101, user_agent=ua, peer=where))
        session = ServerSession(script, t_open=self._clock.now(), speed=self.speed, by_kind=self._by_kind)
        conn = _Served(self, ws, session, log)
        tasks = {asyncio.create_task(conn.push()), asyncio.create_task(conn.reply())}
        self._tasks.update(tasks)
        try:
            await conn.receive()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                try:
                    await task
                except (asyncio.CancelledError, ConnectionClosed):
                    pass
                self._tasks.discard(task)
            direction, code = session.connection_closed(ws.close_code)
            if log is not None:
                self._log(log.close(self._clock.ns(), direction, code=code, reason=ws.close_reason or None))


class _Served:
    """One served connection: carries out what its :class:`~.session.ServerSession` decides."""

    def __init__(
        self, server: ReplayServer, ws: ServerConnection, session: ServerSession, log: ConnectionLog | None
    ) -> None:
        self.s = server
        self.ws = ws
        self.session = session
        self.log = log
        self.outbox: asyncio.Queue[Reply | Close] = asyncio.Queue()

    async def _do(self, action: Reply | Close) -> None:
        await self.s._timer.sleep_until(action.at)
        if isinstance(action, Reply):
            await self.ws.send(action.data, text=action.opcode == "text")
            self.s.stats.frames_out += 1
            if self.log is not None:
                self.s._log(self.log.message(self.s._clock.ns(), "to_peer", action.data, opcode=action.opcode))
            return
        self.session.closing_with(action)
        if action.abort:
            self.s.stats.dropped += 1
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
        else:
            await self.ws.close(action.code, action.reason)

    async def receive(self) -> None:
        s, session = self.s, self.session
        try:
            async for message in self.ws:
                now = s._clock.now()
                s.stats.frames_in += 1
                if self.log is not None:
                    s._log(self.log.message(s._clock.ns(), "to_server", message))
                how, actions = session.receive(now, message)
                if how == "none":
                    s.stats.unanswered += 1
                elif how == "analogy":
                    s.stats.by_analogy += 1
                for action in actions:
                    self.outbox.put_nowait(action)
        except ConnectionClosed:
            pass

    async def reply(self) -> None:
        while True:
            action = await self.outbox.get()
            await self._do(action)
            if isinstance(action, Close):
                return

    async def push(self) -> None:
        for action in self.session.schedule():
            await self._do(action)
            if isinstance(action, Reply):
                self.s.stats.pushes += 1
