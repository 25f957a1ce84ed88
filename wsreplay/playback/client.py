"""The asyncio client driver of a replay: one WebSocket per recorded connection, doing what its session says.

:class:`ClientRun` opens one connection per script, to the same path and
query string on the target, at its recorded offset (divided by *speed*); on
each, a :class:`~wsreplay.playback.session.ClientSession` decides when to send
each recorded peer frame (timed, or once the replies the capture saw before it
have arrived in lock-step mode), how long to wait for the last replies, and
how to end the connection; this module only carries that out and records
everything it sees as capture rows. :func:`wsreplay.replay` (in
:mod:`~wsreplay.playback.run`) builds the plan, runs this and assembles the
result.
"""

from __future__ import annotations

import asyncio
import errno
from time import monotonic_ns
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from .. import __version__
from ..events import ConnectionLog, DecodeCache
from ..store import CaptureWriter
from ._clock import Clock, Timer
from .credentials import Credentials
from .recording import ConnectionRecording, recordings_table
from .schedule import scale
from .script import ConnectionScript, ReplayPlan, Send
from .session import ClientSession, Close, Outcome, Wait

__all__ = ["ClientRun"]

_UA = f"wsreplay/{__version__}"


class ClientRun:
    """One replay run against a target (one per call of :func:`wsreplay.replay_async`)."""

    def __init__(
        self,
        plan: ReplayPlan,
        base: str,
        credentials: Credentials,
        *,
        speed: float,
        lockstep: bool,
        reply_timeout: float,
        open_timeout: float,
        writer: CaptureWriter | None,
        capture_id: str,
        max_connections: int | None,
        stop_on_unreachable: bool,
    ) -> None:
        self.plan = plan
        self.base = base
        self.credentials = credentials
        self.speed = speed
        self.lockstep = lockstep
        self.reply_timeout = reply_timeout
        self.open_timeout = open_timeout
        self.writer = writer
        self.capture_id = capture_id
        self.stop_on_unreachable = stop_on_unreachable
        self.clock = Clock()
        self.timer = Timer()
        self.limit = asyncio.Semaphore(max_connections) if max_connections else None
        #: recorded conn_id -> what its replayed connection saw (written to *writer* as each one ends)
        self.recordings: dict[str, ConnectionRecording] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.timing: list[tuple[str, int, float, float]] = []
        self.notes: list[str] = []
        self.aborted: str | None = None
        self.progress: Any = None
        self.peer = urlsplit(base).netloc
        # the environment's proxy settings, read once (websockets reads them on every connect)
        self.proxy: str | None = get_proxy(parse_uri(base + "/"))
        self.cache: DecodeCache = {}
        #: frame -> instruction name, shared by the sessions (which ask it of every outpost frame)
        self.names: dict[str | bytes, str | None] = {}

    # ------------------------------------------------------------------ run

    async def run(self) -> None:
        t0 = self.clock.now()
        tasks: set[asyncio.Task[None]] = set()
        try:
            for script in self.plan.scripts:
                if self.aborted:
                    break
                await self.timer.sleep_until(t0 + scale(script.open_offset_ns, self.speed))
                if self.limit is not None:
                    await self.limit.acquire()
                if self.aborted:
                    if self.limit is not None:
                        self.limit.release()
                    break
                task = asyncio.create_task(self._connection(script))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await self.timer.aclose()

    async def _connection(self, script: ConnectionScript) -> None:
        try:
            await self._connection_inner(script)
        finally:
            if self.limit is not None:
                self.limit.release()
            rec = self.recordings.get(script.conn_id)
            if self.writer is not None and rec is not None:
                self.writer.write_table(recordings_table([rec]).sort_by([("seq", "ascending")]))

    async def _connection_inner(self, script: ConnectionScript) -> None:
        log = ConnectionLog(self.capture_id, script.path, script.query, cache=self.cache)
        rec = self.recordings[script.conn_id] = ConnectionRecording(log)
        url = self.base + script.target
        headers = []
        if not (script.status is not None and 400 <= script.status < 500):
            # a handshake the capture saw refused for its credentials is replayed without any
            headers = self.credentials.headers(script.endpoint, script.outpost_uuid, script.recorded_outpost)
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                user_agent_header=script.user_agent or _UA,
                compression=None,
                proxy=self.proxy,
                open_timeout=self.open_timeout,
                ping_interval=None,
                max_size=None,
                close_timeout=self.reply_timeout,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            rec.add(log.error(self.clock.ns(), f"handshake refused: HTTP {status}", status=status))
            self.outcomes[script.conn_id] = ("refused", f"the target refused the handshake with HTTP {status}")
            return
        except Exception as exc:  # refused TCP, timeout, a broken handshake: all 'could not connect'
            reason = _describe_connect_error(exc)
            rec.add(log.error(self.clock.ns(), f"could not connect: {reason}"))
            self.outcomes[script.conn_id] = ("unreachable", f"could not connect to {self.peer}: {reason}")
            if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
                self.aborted = "too many open files: raise `ulimit -n` or limit max_connections"
            elif self.stop_on_unreachable and isinstance(exc, (OSError, TimeoutError, InvalidURI)):
                self.aborted = f"target {self.base} is unreachable ({reason})"
            return
        rec.add(log.open(self.clock.ns(), status=101, user_agent=script.user_agent or _UA, peer=self.peer))
        conn = _Conn(self, script, rec, ws)
        await conn.run()


def _describe_connect_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out during the opening handshake"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class _Conn:
    """One open replayed connection: carries out what its :class:`~.session.ClientSession` decides."""

    def __init__(
        self, run: ClientRun, script: ConnectionScript, rec: ConnectionRecording, ws: ClientConnection
    ) -> None:
        self.r = run
        self.script = script
        self.rec = rec
        self.ws = ws
        self.session = ClientSession(
            script,
            t_open=run.clock.now(),
            speed=run.speed,
            lockstep=run.lockstep,
            reply_timeout=run.reply_timeout,
            names=run.names,
        )
        self.reply_event = asyncio.Event()

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.r.notes.extend(self.session.notes)
            await self._release()

    async def _release(self) -> None:
        """Wait for the TCP connection to be gone (or cut it): nothing outlives the replay."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), self.r.reply_timeout)
        except TimeoutError:
            self._abort()
        except asyncio.CancelledError:
            self._abort()
            raise

    def _abort(self) -> None:
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    async def _run(self) -> None:
        recv = asyncio.create_task(self._receive())
        drive = asyncio.create_task(self._drive(recv))
        done, _ = await asyncio.wait({recv, drive}, return_when=asyncio.FIRST_COMPLETED)
        if drive not in done:  # the target ended the connection first
            drive.cancel()
            try:
                await drive
            except asyncio.CancelledError:
                pass
        else:
            drive.result()
        await recv
        self.r.outcomes[self.script.conn_id] = self.session.finish()

    async def _receive(self) -> None:
        ws, rec, session, ns = self.ws, self.rec, self.session, self.r.clock.ns
        try:
            async for message in ws:
                rec.message(ns(), "to_peer", message)
                if session.receive(message):
                    self.reply_event.set()
        except ConnectionClosed:
            pass
        finally:
            direction, code = session.connection_closed(ws.close_code)
            rec.add(rec.log.close(ns(), direction, code=code, reason=ws.close_reason or None))
            self.reply_event.set()

    async def _drive(self, recv: asyncio.Task[None]) -> None:
        r, ws, session = self.r, self.ws, self.session
        timing, conn_id, record = r.timing, self.script.conn_id, self.rec.message
        wall0 = r.clock.wall0_minus_mono0  # capture ts = wall0 + monotonic ns
        now, t_open = r.clock.now, session.t_open
        while (action := session.next_action(now())) is not None:
            if type(action) is Send:
                mono = monotonic_ns()
                try:
                    await ws.send(action.data, text=action.opcode == "text")
                except (ConnectionClosed, OSError):
                    return
                session.sent_frame()
                timing.append((conn_id, action.index, session.scheduled(action), mono / 1e9 - t_open))
                record(wall0 + mono, "to_server", action.data, action.opcode)
                if r.progress is not None:
                    r.progress.update(1)
            elif type(action) is Wait:
                await self._wait(action, recv)
            else:
                assert isinstance(action, Close)
                await self._close(action)
                return

    async def _wait(self, action: Wait, recv: asyncio.Task[None]) -> None:
        remaining = action.until - self.r.clock.now()
        if remaining <= 0:
            return
        if action.replies is not None:
            # no await between the session's check and this one: no reply can slip in unseen
            self.reply_event.clear()
            try:
                await asyncio.wait_for(self.reply_event.wait(), remaining)
            except TimeoutError:
                pass
        elif action.closing:
            if not recv.done():
                await asyncio.wait({recv}, timeout=remaining)
        else:
            await self.r.timer.sleep_until(action.until)

    async def _close(self, action: Close) -> None:
        self.session.closing_with(action)
        if action.abort:
            self._abort()
            return
        try:
            await self.ws.close(action.code)
        except Exception:  # pragma: no cover - a broken socket while closing
            self._abort()
