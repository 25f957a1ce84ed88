"""Relaying one accepted WebSocket connection, byte for byte, and recording it.

After the upstream's ``101``, both sockets are switched from asyncio streams to
a small :class:`asyncio.Protocol` each: bytes received on one side are written
to the other straight from ``data_received`` (no task wake-up per frame),
unchanged, masking included. A :class:`~wsreplay.record.frames.FrameParser`
watches a copy and turns whole messages and close frames into capture rows.
Frames are timestamped before they are forwarded and queued in the same
callback (so whatever a side has received is in the capture, and no other
code runs in between), and rows only go to an in-memory queue: the relay path
does no disk I/O. A read that is exactly one whole message (an outpost's
HELLO, authentik's ACK: nearly every read) takes a short path: in C
(``_speedups.Tap``, the socket's ``data_received`` itself, so the event loop
runs no Python code for it) when that module was compiled, else in Python
(``_Side._receive``, with :meth:`FrameParser.whole_message`'s check); both
queue the same entry and write the same bytes. Flow control is end to end: when one side's send
buffer fills, the other side stops being read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ..events import ConnectionLog
from .clock import WallClock
from .frames import FrameEvent, FrameParser, close_frame, whole_frame
from .stats import RecorderStats

try:
    from ._speedups import Tap
except ImportError:  # not compiled: _Side._receive does the same in Python
    Tap = None  # type: ignore[assignment,misc]

__all__ = ["Relay", "TO_SERVER", "TO_PEER"]

TO_SERVER, TO_PEER = "to_server", "to_peer"
_CLOSE_WAIT = 1.0
_OTHER = {TO_SERVER: TO_PEER, TO_PEER: TO_SERVER}


async def _drain(reader: asyncio.StreamReader) -> bytes:
    """What *reader* has buffered (its transport no longer feeds it); returns without waiting."""
    if reader.exception() is not None:
        return b""
    reader.feed_eof()
    return await reader.read()


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; *direction* is where the bytes it receives go.

    ``data_received`` is an attribute, not a method: a C :class:`~wsreplay.record._speedups.Tap` when that
    module was compiled (the event loop then runs no Python code for a read that is one whole message),
    else :meth:`_receive`, which does the same in Python.
    """

    __slots__ = ("data_received", "direction", "dst", "log", "now_ns", "parser", "put", "relay", "stats")

    def __init__(self, relay: Relay, direction: str) -> None:
        self.relay = relay
        self.direction = direction
        self.parser = relay._parsers[direction]
        self.dst = relay._dst[direction]
        self.log = relay.log
        self.put = relay._put
        self.now_ns = relay._clock.now_ns
        self.stats = relay._stats
        # an instance attribute in place of asyncio.Protocol's method (a slot: no Python frame for the C Tap)
        self.data_received = self._receive if Tap is None else _tap(self)  # type: ignore[method-assign]

    def _receive(self, data: bytes) -> None:
        relay = self.relay
        if not relay.stopping and not relay._ended:
            # The common case: one read is one whole message (an outpost's HELLO, authentik's ACK).
            # Timed, relayed, then queued (as Relay._record_message does) in the same call, so the entry is
            # built while the next hop already has the bytes; nothing else runs in between.
            parser = self.parser
            message = whole_frame(data, parser.max_size) if parser.clean else None  # parser.whole_message(data)
            if message is not None:
                ts = self.now_ns()
                dst = self.dst
                if not dst.is_closing():
                    dst.write(data)
                log = self.log
                self.put((log, ts, log.seq, self.direction, *message))
                log.seq += 1
                stats = self.stats
                stats.frames += 1
                stats.bytes += len(message[1])
                return
        relay._on_data(self.direction, data)

    def eof_received(self) -> bool:
        self.relay._on_end(self.direction, None)
        return True  # a half-close: this socket still carries the other direction

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay._on_end(self.direction, exc, lost=True)

    def pause_writing(self) -> None:
        # this socket's send buffer is full: stop reading what feeds it
        self.relay._source(_OTHER[self.direction]).pause_reading()

    def resume_writing(self) -> None:
        source = self.relay._source(_OTHER[self.direction])
        if not source.is_closing():
            source.resume_reading()


def _tap(side: _Side) -> Any:
    """*side*'s ``data_received`` in C; the clock is read in C too when it is a :class:`WallClock`."""
    clock = side.relay._clock
    wall = type(clock) is WallClock
    return Tap(
        side.relay,
        side.parser,
        side.log,
        side.put,
        side.direction,
        side.stats,
        side.dst,
        None if wall else side.now_ns,
        clock.anchors if wall else (0, 0),
    )


class Relay:
    """One relayed WebSocket connection (peer ⇄ recorder ⇄ upstream).

    Parameters
    ----------
    log : ConnectionLog
        Row builder of this connection (its ``open`` row is already written).
    put : callable
        Where rows and message entries go (``RowSink.put``; entries as in :mod:`~wsreplay.record.batch`).
    clock : WallClock
        Timestamps of the rows.
    stats : RecorderStats
        Shared counters.
    max_size : int
        Largest frame or message relayed; a bigger one closes the connection with 1009.
    """

    __slots__ = (
        "_clock",
        "_close_seen",
        "_close_waiter",
        "_done",
        "_dst",
        "_ended",
        "_lost",
        "_oversize",
        "_parsers",
        "_put",
        "_stats",
        "log",
        "max_size",
        "stopping",
    )

    def __init__(
        self,
        log: ConnectionLog,
        *,
        put: Callable[[Any], None],
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
        # _dst[d]: the transport bytes of direction d are written to
        self._dst: dict[str, asyncio.Transport] = {}
        self._parsers = {TO_SERVER: FrameParser(max_size=max_size), TO_PEER: FrameParser(max_size=max_size)}
        # Per-connection state is kept small (a recorder holds thousands of these): lists of at most two
        # directions (an empty set is four times an empty list), and futures made only when something
        # waits (an asyncio.Event carries a deque of waiters).
        self._close_seen: list[str] = []  # directions whose close frame went by
        self._close_waiter: asyncio.Future[None] | None = None  # shutdown() waiting for TO_SERVER's close
        self._ended: list[str] = []
        self._lost: list[str] = []
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # both sockets closed
        self._oversize = 0

    async def run(
        self,
        peer: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        *,
        early: tuple[bytes, bytes] = (b"", b""),
    ) -> None:
        """Take over both connections (from the handshake's streams) and relay until both are closed.

        *early*: bytes of each side (peer, upstream) that its HTTP parser read past the handshake;
        they come before what the stream itself still buffers.
        """
        peer_t: Any = peer[1].transport
        up_t: Any = upstream[1].transport
        self._dst = {TO_SERVER: up_t, TO_PEER: peer_t}
        sides = ((peer, peer_t, TO_SERVER, early[0]), (upstream, up_t, TO_PEER, early[1]))
        for (reader, _), transport, direction, first in sides:
            at_eof = reader.at_eof()
            transport.set_protocol(_Side(self, direction))
            leftover = first + await _drain(reader)  # bytes that arrived right behind the handshake
            if leftover:
                self._on_data(direction, leftover)
            if at_eof or transport.is_closing():
                self._on_end(direction, None)
            with contextlib.suppress(RuntimeError):  # the stream protocol may have paused it
                transport.resume_reading()
        try:
            await asyncio.shield(self._done)
        finally:
            for t in self._dst.values():
                t.close()

    async def shutdown(self, code: int = 1001, reason: str = "wsreplay recorder shutting down") -> None:
        """Close both sides with *code* (the recorder is stopping), then wait briefly for the replies."""
        if self._done.done() or self.stopping:
            await asyncio.shield(self._done)
            return
        self.stopping = True
        self._inject_close(code, reason, reason)
        if not self.log.closed:
            self._write(self.log.close(self._clock.now_ns(), TO_PEER, code=code, reason=reason))
        if TO_SERVER not in self._close_seen:
            self._close_waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._close_waiter), _CLOSE_WAIT)
        for t in self._dst.values():
            t.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), _CLOSE_WAIT)
        for t in self._dst.values():
            t.abort()
        await asyncio.shield(self._done)

    # ----------------------------------------------------------------- private

    def _source(self, direction: str) -> asyncio.Transport:
        """The transport bytes of *direction* are read from."""
        return self._dst[_OTHER[direction]]

    def _write(self, row: dict[str, Any]) -> None:
        if row["event"] == "error":
            self._stats.errors += 1
        self._put((self.log, row))  # its instance_uuid is filled in after the messages before it are decoded

    def _inject_close(self, code: int, to_peer_reason: str, to_server_reason: str) -> None:
        """Send close frames both ways, where the byte streams are between frames."""
        peer_t, up_t = self._dst[TO_PEER], self._dst[TO_SERVER]
        if self._parsers[TO_PEER].at_boundary and not peer_t.is_closing():
            peer_t.write(close_frame(code, to_peer_reason, mask=False))
        if self._parsers[TO_SERVER].at_boundary and not up_t.is_closing():
            up_t.write(close_frame(code, to_server_reason, mask=True))

    def _on_data(self, direction: str, data: bytes) -> None:
        """Bytes received in *direction* (the general path: any piece of the byte stream)."""
        if direction in self._ended:
            return
        parser = self._parsers[direction]
        forward, events = parser.feed(data)
        if events:  # recorded before relayed: whatever a side has received is in the capture
            self._record(self._clock.now_ns(), direction, events)
        if parser.refused:
            self._refuse(direction)
            return
        if self.stopping:
            if direction in self._close_seen:
                self._source(direction).close()
            return
        if forward:
            dst = self._dst[direction]
            if not dst.is_closing():
                dst.write(forward)

    def _record(self, ts: int, direction: str, events: list[FrameEvent]) -> None:
        log = self.log
        for ev in events:
            kind = ev.kind
            if kind == "message":
                self._record_message(ts, direction, ev.opcode, ev.data, ev.compressed)
            elif kind == "close":
                if direction not in self._close_seen:
                    self._close_seen.append(direction)
                waiter = self._close_waiter
                if direction == TO_SERVER and waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if not log.closed:
                    self._put((log, log.close(ts, direction, code=ev.code, reason=ev.reason)))
            elif kind == "bad_frame":
                self._write(log.error(ts, f"malformed frame: {ev.reason}", direction=direction))
            elif kind == "oversize":
                self._oversize = ev.size

    def _record_message(self, ts: int, direction: str, opcode: str | None, data: bytes, compressed: bool) -> None:
        # decoded later, a batch at a time, on the flush thread (record/batch.py)
        log = self.log
        self._put((log, ts, log.seq, direction, opcode, data, compressed))
        log.seq += 1
        stats = self._stats
        stats.frames += 1
        stats.bytes += len(data)

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
        for t in self._dst.values():
            t.close()

    def _on_end(self, direction: str, exc: Exception | None, *, lost: bool = False) -> None:
        """The *direction* source reached EOF, broke, or was closed: end the other side the same way."""
        if lost:
            if _OTHER[direction] not in self._lost:  # the socket that reads `direction` is the other's destination
                self._lost.append(_OTHER[direction])
        if direction not in self._ended:
            self._ended.append(direction)
            log = self.log
            if not log.closed and not self.stopping:
                ts = self._clock.now_ns()
                who = "peer" if direction == TO_SERVER else "upstream"
                how = f"connection broke ({type(exc).__name__})" if exc else "closed the connection"
                reason = f"{who} {how} without a close frame"
                self._write(log.close(ts, direction, code=1006, reason=reason))
                self._write(log.error(ts, reason, direction=direction))
            dst = self._dst[direction]
            if exc is not None:
                dst.abort()
            elif not lost and dst.can_write_eof() and not dst.is_closing():
                dst.write_eof()  # relayed as a half-close: the other direction goes on
            else:
                dst.close()
            if len(self._ended) == 2:
                for transport in self._dst.values():
                    transport.close()
        if len(self._lost) == 2 and not self._done.done():
            self._done.set_result(None)
