"""Relaying one accepted WebSocket connection, byte for byte, and recording it.

After the upstream's ``101``, the bytes of each direction are forwarded as they
arrive, unchanged (masking included); a :class:`~wsreplay.record.frames.FrameParser`
watches a copy and turns whole messages and close frames into capture rows.
Frames are recorded just before they are forwarded, and rows only go to an in-memory queue,
so the relay path does no disk I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ..events import ConnectionLog
from .clock import WallClock
from .frames import FrameEvent, FrameParser, close_frame
from .stats import RecorderStats

__all__ = ["Relay", "TO_SERVER", "TO_PEER"]

TO_SERVER, TO_PEER = "to_server", "to_peer"
_READ_SIZE = 256 * 1024
_HIGH_WATER = 1024 * 1024
_CLOSE_WAIT = 1.0


class Relay:
    """One relayed WebSocket connection (peer ⇄ recorder ⇄ upstream).

    Parameters
    ----------
    log : ConnectionLog
        Row builder of this connection (its ``open`` row is already written).
    put : callable
        Where rows go (``RowSink.put``).
    clock : WallClock
        Timestamps of the rows.
    stats : RecorderStats
        Shared counters.
    max_size : int
        Largest frame or message relayed; a bigger one closes the connection with 1009.
    """

    def __init__(
        self,
        log: ConnectionLog,
        *,
        put: Callable[[dict[str, Any]], None],
        clock: WallClock,
        stats: RecorderStats,
        max_size: int,
    ) -> None:
        self.log = log
        self._put = put
        self._clock = clock
        self._stats = stats
        self.max_size = max_size
        self.stopping = False
        self._writers: dict[str, asyncio.StreamWriter] = {}
        self._parsers = {TO_SERVER: FrameParser(max_size=max_size), TO_PEER: FrameParser(max_size=max_size)}
        self._close_seen = {TO_SERVER: asyncio.Event(), TO_PEER: asyncio.Event()}
        self._done = asyncio.Event()
        self._oversize = 0

    async def run(
        self,
        peer: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        """Relay until both sides are closed."""
        self._writers = {TO_SERVER: upstream[1], TO_PEER: peer[1]}
        try:
            await asyncio.gather(
                self._pump(peer[0], TO_SERVER),
                self._pump(upstream[0], TO_PEER),
            )
        finally:
            for w in self._writers.values():
                w.close()
            self._done.set()

    async def shutdown(self, code: int = 1001, reason: str = "wsreplay recorder shutting down") -> None:
        """Close both sides with *code* (the recorder is stopping), then wait briefly for the replies."""
        if self._done.is_set() or self.stopping:
            await self._done.wait()
            return
        self.stopping = True
        self._inject_close(code, reason, reason)
        if not self.log.closed:
            self._write(self.log.close(self._clock.now_ns(), TO_PEER, code=code, reason=reason))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._close_seen[TO_SERVER].wait(), _CLOSE_WAIT)
        for w in self._writers.values():
            w.close()
        await self._done.wait()

    # ----------------------------------------------------------------- private

    def _write(self, row: dict[str, Any]) -> None:
        if row["event"] == "error":
            self._stats.errors += 1
        self._put(row)

    def _inject_close(self, code: int, to_peer_reason: str, to_server_reason: str) -> None:
        """Send close frames both ways, where the byte streams are between frames."""
        if self._parsers[TO_PEER].at_boundary and not self._writers[TO_PEER].is_closing():
            self._writers[TO_PEER].write(close_frame(code, to_peer_reason, mask=False))
        if self._parsers[TO_SERVER].at_boundary and not self._writers[TO_SERVER].is_closing():
            self._writers[TO_SERVER].write(close_frame(code, to_server_reason, mask=True))

    async def _pump(self, reader: asyncio.StreamReader, direction: str) -> None:
        parser = self._parsers[direction]
        dst = self._writers[direction]
        broken: str | None = None
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                ts = self._clock.now_ns()
                forward, events = parser.feed(data)
                if events:  # recorded before relayed: whatever a side has received is in the capture
                    self._record(ts, direction, events)
                if forward and not self.stopping:
                    dst.write(forward)
                if parser.refused:
                    self._refuse(direction)
                    return
                if self.stopping and self._close_seen[direction].is_set():
                    break
                if dst.transport.get_write_buffer_size() > _HIGH_WATER:
                    await dst.drain()
        except (ConnectionError, OSError) as exc:
            broken = f"{type(exc).__name__}"
        self._ended(direction, dst, broken)

    def _record(self, ts: int, direction: str, events: list[FrameEvent]) -> None:
        log = self.log
        for ev in events:
            kind = ev.kind
            if kind == "message":
                row = log.message(ts, direction, ev.data, opcode=ev.opcode)
                if ev.compressed:
                    row["parse_error"] = "compressed frame (RSV1): payload kept as received, not inflated"
                self._put(row)
                self._stats.frames += 1
                self._stats.bytes += ev.size
            elif kind == "close":
                self._close_seen[direction].set()
                if not log.closed:
                    self._put(log.close(ts, direction, code=ev.code, reason=ev.reason))
            elif kind == "bad_frame":
                self._write(log.error(ts, f"malformed frame: {ev.reason}", direction=direction))
            elif kind == "oversize":
                self._oversize = ev.size

    def _refuse(self, direction: str) -> None:
        """An over-size frame arrived in *direction*: nothing of it was relayed; close both sides with 1009."""
        ts = self._clock.now_ns()
        reason = f"message too big for the recorder (limit {self.max_size} bytes)"
        row = self.log.error(ts, f"over-size frame of {self._oversize} bytes refused: {reason}", direction=direction)
        row["size"] = self._oversize
        self._write(row)
        self.stopping = True
        self._inject_close(1009, reason, reason)
        if not self.log.closed:
            self._write(self.log.close(ts, direction, code=1009, reason=reason))
        for w in self._writers.values():
            w.close()

    def _ended(self, direction: str, dst: asyncio.StreamWriter, broken: str | None) -> None:
        """The *direction* source reached EOF (or broke): end the other side the same way."""
        log = self.log
        if not log.closed and not self.stopping:
            ts = self._clock.now_ns()
            who = "peer" if direction == TO_SERVER else "upstream"
            how = f"connection broke ({broken})" if broken else "closed the connection"
            reason = f"{who} {how} without a close frame"
            self._write(log.close(ts, direction, code=1006, reason=reason))
            self._write(log.error(ts, reason, direction=direction))
        if broken:
            dst.transport.abort()
        else:
            dst.close()
