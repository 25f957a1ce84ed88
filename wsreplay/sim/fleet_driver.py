"""The real-time fleet driver: one asyncio task per outpost replica and per browser, over real sockets.

Each task carries out the commands of the shared program
(:func:`wsreplay.sim.timeline.replica_program`, :func:`~wsreplay.sim.timeline.browser_program`)
against a real server: it connects to ``/ws/outpost/<pk>/?instance_uuid=<uuid>&attempt=<n>``
with ``Authorization: Bearer <token>`` and the Go outposts' User-Agent, sends
the HELLO frames at the scheduled times (the same :func:`~wsreplay.sim.timeline.hello_schedule`
the virtual clock uses), reads ACKs, and plays the scripted faults: a network
drop aborts the socket without a close frame, a hang stops the HELLOs with the
socket open, a restart closes with 1000 and comes back with a new instance uuid,
a crash aborts the socket (TCP reset) and comes back with a new instance uuid,
an interval change stretches or shrinks the HELLO cadence, a slow network
delays each frame. Dropped and doubled ACKs are the mock's
(``MockAuthentik(ack_faults=...)``, set by :func:`wsreplay.sim.run_fleet` from the scenario);
a clock step of the recording host cannot be played in real time and is
ignored. Server faults (``server_restart``,
``latency_spike``) and notices are carried out by the
:class:`~wsreplay.sim.MockAuthentik` passed as ``mock``.

With a capture writer the driver also writes, through
:class:`wsreplay.events.ConnectionLog`, the rows of what it saw on its own
sockets (``open`` with status/User-Agent/query/peer, HELLOs sent, ACKs and
pushes received, ``close``/``error``), on its own clock. The API that starts
a run is :mod:`wsreplay.sim.fleet`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import numpy as np
import pandas as pd
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ..events import ConnectionLog
from ..protocol import Instruction, decode, outpost_path
from ..store import CaptureWriter
from .plan import BrowserPlan, Plan, ReplicaPlan
from .timeline import Begin, Connect, Connected, End, Held, Hold, Program, Sleep, hello_schedule
from .truth import TruthBuilder

__all__ = ["FleetDriver"]


class _Clock:
    """Seconds since the start of the run (monotonic), and their wall-clock nanoseconds."""

    def __init__(self) -> None:
        self.m0 = time.monotonic()
        self.wall0 = time.time_ns()

    def now(self) -> float:
        return time.monotonic() - self.m0

    def ns(self, s: float) -> int:
        return self.wall0 + round(s * 1e9)

    async def until(self, s: float) -> float:
        delay = s - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
        return self.now()


class _Conn:
    """An open connection of one task, with its capture log."""

    def __init__(self, ws: ClientConnection, log: ConnectionLog, rec: dict[str, Any]) -> None:
        self.ws = ws
        self.log = log
        self.rec = rec


class FleetDriver:
    """The tasks of one run: each plays a program's commands over its own socket and feeds the truth."""

    def __init__(
        self,
        plan: Plan,
        base: str,
        *,
        mock: Any,
        capture: CaptureWriter | None,
        session: str | None,
        open_timeout: float,
    ) -> None:
        self.plan = plan
        self.sc = plan.scenario
        self.base = base
        self.mock = mock
        self.capture = capture
        self.capture_id = capture.capture_id if capture is not None else plan.capture_id
        self.session = session
        self.open_timeout = open_timeout
        self.clock = _Clock()
        self.truth = TruthBuilder(
            plan.lives, duration=self.sc.duration, start=pd.Timestamp(self.clock.wall0, unit="ns", tz="UTC")
        )
        self.tokens = self.sc.tokens

    # ------------------------------------------------------------ capture rows

    def _row(self, row: dict[str, Any]) -> None:
        if self.capture is not None:
            self.capture.write(row)

    # ------------------------------------------------------------ the programs

    async def run_program(self, program: Program, rp: ReplicaPlan | None) -> None:
        conn: _Conn | None = None
        value: Any = None
        while True:
            try:
                cmd = program.send(value)
            except StopIteration:
                return
            if isinstance(cmd, Sleep):
                value = await self.clock.until(cmd.until)
            elif isinstance(cmd, Begin):
                value = self.clock.now()
                self.truth.begin(cmd.life, value)
            elif isinstance(cmd, End):
                value = self.clock.now()
                self.truth.end(cmd.life, value)
            elif isinstance(cmd, Connect):
                conn, value = await self._connect(cmd)
            elif isinstance(cmd, Hold):
                assert conn is not None
                if cmd.life is not None:
                    assert rp is not None
                    value = await self._hold_outpost(cmd, conn, rp)
                else:
                    value = await self._hold_browser(cmd, conn)
                conn = None
            else:  # pragma: no cover - the programs yield nothing else
                raise TypeError(f"unknown command {cmd!r}")

    async def _connect(self, cmd: Connect) -> tuple[_Conn | None, Connected]:
        life, bp = cmd.life, cmd.browser
        browser = bp.index if bp is not None else None
        if cmd.blocked:
            now = self.clock.now()
            self.truth.connection(life=life, attempt=cmd.attempt, at=now, ok=False, browser=browser)
            return None, Connected(False, now)
        headers: dict[str, str] = {}
        if life is not None:
            path, query = outpost_path(life.pk), life.query(cmd.attempt)
            headers["Authorization"] = f"Bearer {self.tokens[life.pk]}"
            user_agent: str | None = life.user_agent
        else:
            assert bp is not None
            path, query, user_agent = "/ws/client/", "", bp.user_agent
            if self.session is not None:
                headers["Cookie"] = f"authentik_session={self.session}"
        uri = f"{self.base}{path}" + (f"?{query}" if query else "")
        log = ConnectionLog(self.capture_id, path, query)
        started = self.clock.now()
        try:
            ws = await connect(
                uri,
                additional_headers=headers,
                user_agent_header=user_agent,
                compression=None,
                ping_interval=None,
                open_timeout=self.open_timeout,
                close_timeout=self.open_timeout,
                max_size=2**20,
            )
        except InvalidStatus as exc:
            now = self.clock.now()
            status = exc.response.status_code
            self.truth.connection(life=life, attempt=cmd.attempt, at=started, ok=False, status=status, browser=browser)
            self._row(log.error(self.clock.ns(now), f"handshake refused with HTTP {status}", status=status))
            return None, Connected(False, now, status)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            now = self.clock.now()
            self.truth.connection(life=life, attempt=cmd.attempt, at=started, ok=False, browser=browser)
            reason = f"connection failed: {type(exc).__name__}: {exc}"[:200]
            self._row(log.error(self.clock.ns(now), reason))
            return None, Connected(False, now)
        now = self.clock.now()
        local = ws.local_address
        peer = f"{local[0]}:{local[1]}" if isinstance(local, tuple) and len(local) >= 2 else None
        self._row(log.open(self.clock.ns(now), status=101, user_agent=user_agent, peer=peer))
        rec = self.truth.connection(life=life, attempt=cmd.attempt, at=now, ok=True, browser=browser)
        return _Conn(ws, log, rec), Connected(True, now)

    async def _hold_outpost(self, cmd: Hold, conn: _Conn, rp: ReplicaPlan) -> Held:
        life = cmd.life
        assert life is not None
        ws, log = conn.ws, conn.log
        sends = hello_schedule(cmd.opened, cmd.until, cmd.gaps, cmd.hangs, cmd.cadence)
        pending: deque[float] = deque()
        sent: list[float] = []
        arrived: list[float] = []
        acked: list[tuple[float, float]] = []
        hello = life.hello

        async def deliver(k: int, delay: float) -> None:
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await ws.send(hello)
            except ConnectionClosed:
                return
            now = self.clock.now()
            arrived[k] = now
            pending.append(sent[k])
            self._row(log.message(self.clock.ns(now), "to_server", hello))

        deliveries: set[asyncio.Future[None]] = set()

        async def writer() -> None:
            for s in sends:
                await self.clock.until(float(s))
                now = self.clock.now()
                sent.append(now)
                arrived.append(np.nan)
                task = asyncio.ensure_future(deliver(len(sent) - 1, rp.delay_at(now)))
                deliveries.add(task)
                task.add_done_callback(deliveries.discard)

        async def reader() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for msg in ws:
                    now = self.clock.now()
                    self._row(log.message(self.clock.ns(now), "to_peer", msg))
                    decoded = decode(msg, endpoint="outpost", opcode="text" if isinstance(msg, str) else "binary")
                    if decoded.get("instruction") == Instruction.ACK and pending:
                        # an ACK answers the latest HELLO (the fleet never pipelines: the next one
                        # goes out an interval later); older ones still waiting were never
                        # answered (a misbehaving server), a second ACK answers nothing
                        hello_sent = pending[-1]
                        pending.clear()
                        acked.append((hello_sent, now + rp.delay_at(now)))

        write_task = asyncio.ensure_future(writer())
        read_task = asyncio.ensure_future(reader())
        end_wait = asyncio.ensure_future(self.clock.until(cmd.until))
        try:
            await asyncio.wait({read_task, end_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            write_task.cancel()
            end_wait.cancel()
        if read_task.done():
            now = self.clock.now()
            code = ws.close_code if ws.close_code is not None else 1006
            self._row(log.close(self.clock.ns(now), "to_peer", code=code, reason=ws.close_reason))
            cause = "server_restart" if code == 1012 else "server_close"
            self.truth.down(life, now, cause)
            conn.rec.update(close_code=code, closed_by="server", closed=now)
            held = Held(now, True, code)
        elif cmd.abort:
            now = self.clock.now()
            ws.transport.abort()  # the network drops, or the process is killed: no close frame
            self._row(log.close(self.clock.ns(now), "to_server", code=1006))
            if not cmd.crash:  # a killed process exits: no outage of the instance
                self.truth.down(life, now, "disconnect")
            conn.rec.update(close_code=1006, closed_by="peer", closed=now)
            held = Held(now, False, 1006)
        else:
            now = self.clock.now()
            with contextlib.suppress(ConnectionClosed):
                await ws.close(1000)
            self._row(log.close(self.clock.ns(now), "to_server", code=1000))
            conn.rec.update(close_code=1000, closed_by="peer", closed=now)
            held = Held(now, False, 1000)
        read_task.cancel()
        for task in deliveries:
            task.cancel()
        await asyncio.gather(write_task, read_task, *deliveries, return_exceptions=True)
        for h in cmd.hangs:
            if cmd.opened <= h.start < held.at:
                self.truth.down(life, h.start, "silent")
        self.truth.hellos(life, np.asarray(sent), np.asarray(arrived))
        if acked:
            a = np.asarray(acked)
            self.truth.acks(life, a[:, 0], a[:, 1])
        return held

    async def _hold_browser(self, cmd: Hold, conn: _Conn) -> Held:
        bp: BrowserPlan | None = cmd.browser
        assert bp is not None
        ws, log = conn.ws, conn.log

        async def reader() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for msg in ws:
                    now = self.clock.now()
                    row = log.message(self.clock.ns(now), "to_peer", msg)
                    self._row(row)
                    if row.get("message_type") == "message":
                        self.truth.notice(bp.index, now, row.get("level"), row.get("message"))

        read_task = asyncio.ensure_future(reader())
        end_wait = asyncio.ensure_future(self.clock.until(cmd.until))
        await asyncio.wait({read_task, end_wait}, return_when=asyncio.FIRST_COMPLETED)
        end_wait.cancel()
        now = self.clock.now()
        if read_task.done():
            code = ws.close_code if ws.close_code is not None else 1006
            self._row(log.close(self.clock.ns(now), "to_peer", code=code, reason=ws.close_reason))
            conn.rec.update(close_code=code, closed_by="server", closed=now)
            return Held(now, True, code)
        with contextlib.suppress(ConnectionClosed):
            await ws.close(1001)  # the tab is closed: "going away"
        read_task.cancel()
        await asyncio.gather(read_task, return_exceptions=True)
        self._row(log.close(self.clock.ns(now), "to_server", code=1001))
        conn.rec.update(close_code=1001, closed_by="peer", closed=now)
        return Held(now, False, 1001)

    # ------------------------------------------------------------ the server's script

    async def server_script(self) -> None:
        """Server restarts, latency spikes and notices, through the mock."""
        events: list[tuple[float, str, Any]] = []
        for f in self.sc.faults:
            if f.kind == "server_restart":
                events.append((f.at, "restart", f))
        for w in self.plan.spikes:
            events.append((w.start, "spike_on", w))
            events.append((w.end, "spike_off", w))
        for w in self.plan.ack_faults:
            events.append((w.start, "ack_fault_on", w))
            events.append((w.end, "ack_fault_off", w))
        for n in self.sc.notices:
            events.append((n.at, "notice", n))
        events.sort(key=lambda e: e[0])
        running = set()
        for at, what, obj in events:
            await self.clock.until(at)
            if what == "restart":
                running.add(asyncio.ensure_future(_call(self.mock.restart, downtime=obj.duration)))
            elif what == "notice":
                await _call(self.mock.push_notice, obj.message, level=obj.level)
            elif what in ("ack_fault_on", "ack_fault_off"):
                # a plain attribute of the mock (through a thread handle: of the mock it runs)
                target = getattr(self.mock, "mock", self.mock)
                target.ack_fault = None if what == "ack_fault_off" else obj.cause.removeprefix("ack_")
            elif what == "spike_on":
                self.mock.ack_latency = self.sc.ack_latency + obj.delay
            else:
                self.mock.ack_latency = self.sc.ack_latency
        if running:
            await asyncio.gather(*running)


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Await a coroutine method of a mock on this loop, or run a blocking one (a thread handle's) in a thread."""
    if asyncio.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)
