"""Synthetic monitoring: connect to authentik as one more outpost instance and/or a browser.

A probe reroutes nothing. With an outpost pk it connects to
``/ws/outpost/<pk>/`` like an outpost process would (Bearer token,
``instance_uuid`` and ``attempt`` in the query), sends HELLO every *interval*
and records every frame: its HELLOs, the ACKs (so
:func:`wsreplay.ack_latency` works on the capture) and the pushes the
outpost's group receives (TRIGGER_UPDATE, SESSION_END, PROVIDER_SPECIFIC).
With ``client=True`` it holds a ``/ws/client/`` session and records notices.
Lost connections are retried with backoff (1 s doubling, capped), and every
attempt, refusal and close is in the capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .. import __version__
from .._background import run_in_thread
from ..events import ConnectionLog
from ..exceptions import ConfigurationError
from ..protocol import encode_hello, hello_args, outpost_path
from ..store import CaptureWriter, load
from .clock import WallClock
from .sink import RowSink
from .upstream import Upstream

__all__ = ["Probe", "ProbeStats", "probe", "probe_async", "PROBE_USER_AGENT"]

logger = logging.getLogger("wsreplay.probe")

#: User-Agent the probe sends (and records on its ``open`` rows).
PROBE_USER_AGENT = f"wsreplay-probe/{__version__}"
_MAX_SIZE = 16 * 1024 * 1024


@dataclass
class ProbeStats:
    """What a probe has seen so far.

    Attributes
    ----------
    connections : int
        Successful handshakes (the first one and every reconnect).
    by_endpoint : dict
        The same, per endpoint probed (``outpost``, ``client``).
    refused : int
        Handshakes refused or failed (each is an ``error`` row).
    hellos, acks : int
        HELLOs sent and ACKs received.
    pushes : dict
        Frames other than ACK received, by instruction name or ``message_type``.
    latencies_s : list of float
        HELLO→ACK round trips, seconds, in order.
    """

    connections: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    hellos: int = 0
    acks: int = 0
    pushes: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def reconnects(self) -> int:
        """Connections after the first one of each endpoint probed."""
        return sum(max(n - 1, 0) for n in self.by_endpoint.values())

    def latency_quantile(self, q: float) -> float | None:
        """A quantile of the HELLO→ACK latency in seconds (``None`` before the first ACK)."""
        if not self.latencies_s:
            return None
        return float(pd.Series(self.latencies_s).quantile(q))


class Probe:
    """Synthetic outpost instance and/or browser session (async).

    Parameters
    ----------
    url : str
        Base URL of authentik (``http(s)://`` or ``ws(s)://``).
    out : path
        Capture directory.
    outpost : str, optional
        Outpost pk to connect as; needs *token*.
    client : bool
        Also hold a ``/ws/client/`` connection.
    interval : float
        Seconds between HELLOs (authentik's outposts use 10).
    token : str, optional
        The outpost's API token; defaults to ``$AUTHENTIK_TOKEN``.
    session : str, optional
        ``authentik_session`` cookie value; defaults to ``$AUTHENTIK_SESSION``.
    insecure, ca_file
        TLS settings for an https/wss URL (verification is on by default).
    backoff : (float, float)
        First and largest reconnect delay, seconds.

    Examples
    --------
    >>> async def main():  # doctest: +SKIP
    ...     async with wsreplay.Probe("https://authentik.example", out="probe", outpost=PK) as p:
    ...         await p.run(duration=60)
    ...     print(p.stats.latency_quantile(0.5))
    """

    def __init__(
        self,
        url: str,
        *,
        out: str | os.PathLike[str],
        outpost: str | None = None,
        client: bool = False,
        interval: float = 10.0,
        token: str | None = None,
        session: str | None = None,
        insecure: bool = False,
        ca_file: str | None = None,
        flush_interval: float = 1.0,
        capture_id: str | None = None,
        backoff: tuple[float, float] = (1.0, 60.0),
        hostname: str | None = None,
    ) -> None:
        if outpost is None and not client:
            raise ConfigurationError("nothing to probe: give an outpost pk (--outpost PK) and/or --client")
        if interval <= 0:
            raise ConfigurationError("interval must be > 0 seconds")
        self.target = Upstream(str(url), insecure=insecure, ca_file=ca_file)
        self.outpost = outpost
        self.client = client
        self.interval = interval
        self.token = token if token is not None else os.environ.get("AUTHENTIK_TOKEN")
        if outpost is not None and not self.token:
            raise ConfigurationError("probing an outpost needs its API token: set AUTHENTIK_TOKEN in the environment")
        self.session = session if session is not None else os.environ.get("AUTHENTIK_SESSION")
        self.out = Path(out)
        self.flush_interval = flush_interval
        self.backoff = backoff
        self.hostname = hostname or socket.gethostname()
        self.instance_uuid = str(uuid.uuid4())
        self.stats = ProbeStats()
        self.clock = WallClock()
        self._capture_id = capture_id
        self._sink: RowSink | None = None
        self._stopping: asyncio.Event | None = None
        self._on_event: Callable[[str, dict[str, Any]], None] | None = None

    @property
    def ws_base(self) -> str:
        """``ws(s)://host[:port][/prefix]`` of the target."""
        scheme = "wss" if self.target.tls else "ws"
        return f"{scheme}://{self.target.authority}{self.target.prefix}"

    async def __aenter__(self) -> Probe:
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> None:
        if self._sink is None:
            writer = CaptureWriter(
                self.out, capture_id=self._capture_id, flush_interval=self.flush_interval, autoflush=False
            )
            self._sink = RowSink(writer, flush_interval=self.flush_interval)

    async def close(self) -> None:
        """Seal the capture (after :meth:`run` returned)."""
        if self._sink is not None:
            await asyncio.to_thread(self._sink.close)
            self._sink = None

    def stop(self) -> None:
        """Ask :meth:`run` to close its connections (code 1000) and return (call on the probe's loop)."""
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, duration: float | None = None) -> ProbeStats:
        """Probe for *duration* seconds (``None``: until :meth:`stop`); return the stats."""
        self._open()
        self._stopping = asyncio.Event()
        tasks = []
        if self.outpost is not None:
            tasks.append(asyncio.create_task(self._session(outpost_path(self.outpost), outpost=True)))
        if self.client:
            tasks.append(asyncio.create_task(self._session("/ws/client/", outpost=False)))
        try:
            if duration is None:
                await self._stopping.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), duration)
        finally:
            self._stopping.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats

    # ----------------------------------------------------------------- private

    def _put(self, row: dict[str, Any]) -> None:
        assert self._sink is not None
        self._sink.put(row)

    async def _session(self, path: str, *, outpost: bool) -> None:
        assert self._stopping is not None
        attempt = 0
        delay = self.backoff[0]
        capture_id = self._capture_id_now()
        while not self._stopping.is_set():
            query = f"instance_uuid={self.instance_uuid}&attempt={attempt}" if outpost else ""
            log = ConnectionLog(capture_id, path, query)
            headers: dict[str, str] = {}
            if outpost:
                headers["Authorization"] = f"Bearer {self.token}"
            elif self.session:
                headers["Cookie"] = f"authentik_session={self.session}"
            uri = self.ws_base + path + (f"?{query}" if query else "")
            connected = False
            try:
                async with connect(
                    uri,
                    additional_headers=headers,
                    user_agent_header=PROBE_USER_AGENT,
                    compression=None,
                    ssl=self.target.ssl_context(),
                    open_timeout=10,
                    max_size=_MAX_SIZE,
                    close_timeout=2,
                ) as ws:
                    connected = True
                    self.stats.connections += 1
                    endpoint = "outpost" if outpost else "client"
                    self.stats.by_endpoint[endpoint] = self.stats.by_endpoint.get(endpoint, 0) + 1
                    delay = self.backoff[0]
                    self._put(log.open(self.clock.now_ns(), status=101, user_agent=PROBE_USER_AGENT))
                    await self._converse(ws, log, outpost=outpost)
            except InvalidStatus as exc:
                status = exc.response.status_code
                self._refused(log, status, f"handshake refused: HTTP {status} {exc.response.reason_phrase}".rstrip())
            except (TimeoutError, OSError, InvalidHandshake) as exc:
                if not connected:
                    self._refused(log, None, f"cannot connect: {type(exc).__name__}: {exc}"[:200])
            attempt += 1
            if self._stopping.is_set():
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.backoff[1])

    def _capture_id_now(self) -> str:
        assert self._sink is not None
        return self._sink.writer.capture_id

    def _refused(self, log: ConnectionLog, status: int | None, reason: str) -> None:
        self.stats.refused += 1
        row = log.error(self.clock.now_ns(), reason, status=status, direction="to_peer")
        row["user_agent"] = PROBE_USER_AGENT
        self._put(row)
        logger.info("%s: %s", log.path, reason)

    async def _converse(self, ws: ClientConnection, log: ConnectionLog, *, outpost: bool) -> None:
        assert self._stopping is not None
        sent_at: list[int] = []
        hello_task = asyncio.create_task(self._hellos(ws, log, sent_at)) if outpost else None
        stop_task = asyncio.create_task(self._stopping.wait())
        recv_task = asyncio.create_task(self._receive(ws, log, sent_at))
        try:
            await asyncio.wait({recv_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (hello_task, stop_task):
                if task is not None:
                    task.cancel()
            if self._stopping.is_set() and not recv_task.done():
                if not log.closed:
                    self._put(log.close(self.clock.now_ns(), "to_server", code=1000, reason="probe stopped"))
                await ws.close(1000, "probe stopped")
            await asyncio.gather(recv_task, return_exceptions=True)
            if hello_task is not None:
                await asyncio.gather(hello_task, return_exceptions=True)
        if not log.closed:
            self._record_close(ws, log)

    def _record_close(self, ws: ClientConnection, log: ConnectionLog) -> None:
        ts = self.clock.now_ns()
        proto = ws.protocol
        rcvd, sent = proto.close_rcvd, proto.close_sent
        if rcvd is not None and (sent is None or proto.close_rcvd_then_sent):
            self._put(log.close(ts, "to_peer", code=rcvd.code, reason=rcvd.reason))
        elif sent is not None:
            self._put(log.close(ts, "to_server", code=sent.code, reason=sent.reason))
        else:
            reason = "server closed the connection without a close frame"
            self._put(log.close(ts, "to_peer", code=1006, reason=reason))
            self._put(log.error(ts, reason, direction="to_peer"))

    async def _hellos(self, ws: ClientConnection, log: ConnectionLog, sent_at: list[int]) -> None:
        args = hello_args(uuid=self.instance_uuid, version=f"wsreplay-probe-{__version__}", hostname=self.hostname)
        frame = encode_hello(args)
        with contextlib.suppress(ConnectionClosed):
            while True:
                ts = self.clock.now_ns()
                await ws.send(frame)
                sent_at.append(ts)
                self.stats.hellos += 1
                self._put(log.message(ts, "to_server", frame))
                await asyncio.sleep(self.interval)

    async def _receive(self, ws: ClientConnection, log: ConnectionLog, sent_at: list[int]) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                ts = self.clock.now_ns()
                row = log.message(ts, "to_peer", message)
                self._put(row)
                name = row.get("instruction_name") or row.get("message_type") or "unparsed"
                if name == "ACK":
                    self.stats.acks += 1
                    if sent_at:
                        self.stats.latencies_s.append((ts - sent_at.pop(0)) / 1e9)
                else:
                    self.stats.pushes[name] = self.stats.pushes.get(name, 0) + 1


async def probe_async(
    url: str,
    *,
    out: str | os.PathLike[str],
    duration: float,
    outpost: str | None = None,
    client: bool = False,
    interval: float = 10.0,
    token: str | None = None,
    session: str | None = None,
    insecure: bool = False,
    ca_file: str | None = None,
) -> pd.DataFrame:
    """Probe for *duration* seconds and return the captured frames (async; see :func:`probe`)."""
    p = Probe(
        url,
        out=out,
        outpost=outpost,
        client=client,
        interval=interval,
        token=token,
        session=session,
        insecure=insecure,
        ca_file=ca_file,
    )
    async with p:
        await p.run(duration=duration)
    return await asyncio.to_thread(load, p.out)


def probe(
    url: str,
    *,
    out: str | os.PathLike[str],
    duration: float,
    outpost: str | None = None,
    client: bool = False,
    interval: float = 10.0,
    token: str | None = None,
    session: str | None = None,
    insecure: bool = False,
    ca_file: str | None = None,
) -> pd.DataFrame:
    """Probe for *duration* seconds and return the captured frames (blocking twin of :class:`Probe`).

    Runs on its own event loop in a thread, so it also works inside a Jupyter
    kernel. Parameters are those of :class:`Probe`.

    Examples
    --------
    >>> frames = wsreplay.probe("https://authentik.example", out="probe", outpost=PK, duration=60)  # doctest: +SKIP
    >>> wsreplay.ack_latency(frames).latency_s.describe()  # doctest: +SKIP
    """
    coro = probe_async(
        url,
        out=out,
        duration=duration,
        outpost=outpost,
        client=client,
        interval=interval,
        token=token,
        session=session,
        insecure=insecure,
        ca_file=ca_file,
    )
    return run_in_thread(coro, name="wsreplay-probe")
