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
before the upgrade, as authentik does. :func:`serve` is the blocking twin: it
runs the server on its own thread and returns a handle.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .._background import ServiceThread
from ..events import ConnectionLog, DecodeCache, new_id
from ..exceptions import ConfigurationError
from ..protocol import decode
from ..schema import rows_to_table, table_to_frames
from ..store import CaptureWriter, load
from ._clock import Clock, Timer
from .schedule import ConnectionScript, Expected, ReplayPlan, build_plan, frame_label, parse_speed, scale

__all__ = ["ReplayServer", "ServerStats", "ServeHandle", "serve", "parse_listen"]


def parse_listen(value: str, default_port: int = 0) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (or ``:PORT``, ``PORT``, ``HOST``); the host defaults to 127.0.0.1.

    Examples
    --------
    >>> parse_listen("127.0.0.1:9000"), parse_listen(":0"), parse_listen("[::1]:80")
    (('127.0.0.1', 9000), ('127.0.0.1', 0), ('::1', 80))
    """
    text = value.strip()
    if text.isdigit():
        host, port_s = "", text
    elif text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest.lstrip(":")
    else:
        host, sep, port_s = text.rpartition(":")
        if not sep:
            host, port_s = text, ""
    try:
        port = int(port_s) if port_s else default_port
    except ValueError:
        raise ConfigurationError(f"--listen {value!r}: the port must be a number (HOST:PORT)") from None
    if not 0 <= port <= 65535:
        raise ConfigurationError(f"--listen {value!r}: port {port} is out of range")
    return host or "127.0.0.1", port


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


@dataclass(frozen=True)
class _Answer:
    replies: tuple[tuple[float, str, str | bytes], ...]  # (delay_s, opcode, data)
    drop: bool


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
        if isinstance(capture, ReplayPlan):
            self.plan = capture
        else:
            frames = capture if isinstance(capture, pd.DataFrame) else load(capture)
            self.plan = build_plan(
                frames, endpoint=endpoint, outpost=outpost, connection=connection, start=start, end=end, mapping=mapping
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
        self._analogy = self._answers_by_kind()
        self._server: Server | None = None
        self._writer: CaptureWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._clock = Clock()
        self._timer = Timer()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cache: DecodeCache = {}

    # ------------------------------------------------------------- scripts

    def _answer(self, script: ConnectionScript, index: int) -> _Answer:
        replies = tuple((scale(e.latency_ns or 0, self.speed), e.opcode, e.data) for e in script.replies_to(index))
        drop = script.close is not None and script.close.reply_to == index
        return _Answer(replies, drop)

    def _answers_by_kind(self) -> dict[tuple[str, str], _Answer]:
        table: dict[tuple[str, str], _Answer] = {}
        for script in self.plan.scripts:
            for send in script.sends:
                key = (script.endpoint, send.label)
                answer = self._answer(script, send.index)
                known = table.get(key)
                if known is None or (not known.replies and not known.drop and (answer.replies or answer.drop)):
                    table[key] = answer
        return table

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
        """Run the server on its own loop in a daemon thread (the blocking twin)."""
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
        t_open = self._clock.now()
        outbox: asyncio.Queue[tuple[float, str, str | bytes | None]] = asyncio.Queue()
        conn = _Served(self, ws, script, log, t_open, outbox)
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
            if log is not None:
                code = ws.close_code if ws.close_code is not None else 1006
                direction = "to_peer" if conn.closed_by_server else "to_server"
                self._log(log.close(self._clock.ns(), direction, code=code, reason=ws.close_reason or None))


class _Served:
    """One connection served from a recorded script."""

    def __init__(
        self,
        server: ReplayServer,
        ws: ServerConnection,
        script: ConnectionScript,
        log: ConnectionLog | None,
        t_open: float,
        outbox: asyncio.Queue[tuple[float, str, str | bytes | None]],
    ) -> None:
        self.s = server
        self.ws = ws
        self.script = script
        self.log = log
        self.t_open = t_open
        self.outbox = outbox
        self.received = 0
        self.closed_by_server = False

    async def _send(self, opcode: str, data: str | bytes) -> None:
        await self.ws.send(data, text=opcode == "text")
        self.s.stats.frames_out += 1
        if self.log is not None:
            self.s._log(self.log.message(self.s._clock.ns(), "to_peer", data, opcode=opcode))

    def _drop(self) -> None:
        self.closed_by_server = True
        self.s.stats.dropped += 1
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def receive(self) -> None:
        script, s = self.script, self.s
        try:
            async for message in self.ws:
                now = s._clock.now()
                s.stats.frames_in += 1
                opcode = "text" if isinstance(message, str) else "binary"
                if self.log is not None:
                    s._log(self.log.message(s._clock.ns(), "to_server", message))
                decoded = decode(message, endpoint=script.endpoint, opcode=opcode)
                label = frame_label(
                    script.endpoint,
                    opcode,
                    decoded.get("instruction_name"),
                    decoded.get("message_type"),
                    decoded.get("parse_error"),
                )
                index = self.received
                self.received += 1
                if index < len(script.sends) and script.sends[index].label == label:
                    answer = s._answer(script, index)
                else:
                    found = s._analogy.get((script.endpoint, label))
                    if found is None:
                        s.stats.unanswered += 1
                        continue
                    s.stats.by_analogy += 1
                    answer = found
                for delay, reply_opcode, data in answer.replies:
                    self.outbox.put_nowait((now + delay, reply_opcode, data))
                if answer.drop:
                    self.outbox.put_nowait((now, "drop", None))
        except ConnectionClosed:
            pass

    async def reply(self) -> None:
        while True:
            due, opcode, data = await self.outbox.get()
            await self.s._timer.sleep_until(due)
            if opcode == "drop":
                self._drop()
                return
            assert data is not None
            await self._send(opcode, data)

    async def push(self) -> None:
        script, s = self.script, self.s
        pushes: list[Expected] = list(script.pushes)
        for e in pushes:
            await s._timer.sleep_until(self.t_open + scale(e.offset_ns, s.speed))
            await self._send(e.opcode, e.data)
            s.stats.pushes += 1
        rec = script.close
        if rec is None or rec.by != "server" or rec.reply_to is not None or s.speed == math.inf:
            return
        await s._timer.sleep_until(self.t_open + scale(rec.offset_ns, s.speed))
        if rec.abrupt:
            self._drop()
            return
        self.closed_by_server = True
        code = rec.code if rec.code is not None and 1000 <= rec.code <= 4999 and rec.code != 1015 else 1000
        await self.ws.close(code, rec.reason or "")


class ServeHandle:
    """A :class:`ReplayServer` running on its own thread (from :func:`serve`).

    Attributes
    ----------
    server : ReplayServer
    url, ws_url, port
        As on the server.
    """

    def __init__(self, server: ReplayServer) -> None:
        self.server = server
        self._service = ServiceThread(server.start, server.stop, name="the replay server")

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def stats(self) -> ServerStats:
        return self.server.stats

    def frames(self) -> pd.DataFrame:
        """What the server saw so far (needs ``record=True``)."""
        return self.server.frames()

    def stop(self) -> None:
        """Stop serving (connections closed, capture sealed) and join the thread."""
        self._service.stop(timeout=None)

    def __enter__(self) -> ServeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(capture: str | os.PathLike[str] | pd.DataFrame | ReplayPlan, **kwargs: Any) -> ServeHandle:
    """Serve a capture on a thread of its own and return at once (blocking twin of :class:`ReplayServer`).

    Takes the same arguments as :class:`ReplayServer`; call ``.stop()`` on the
    handle (or use it as a context manager) to stop.

    Examples
    --------
    >>> with wsreplay.serve("capture/", port=0) as handle:  # doctest: +SKIP
    ...     print(handle.url)
    """
    return ReplayServer(capture, **kwargs).start_in_thread()
