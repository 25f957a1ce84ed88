"""One WebSocket of the mock authentik: in-order ACKs, stalls, aborts, the health cache and the log (asyncio).

:class:`MockConnections` is the per-connection half of
:class:`~wsreplay.sim.MockAuthentik` (which adds the control API, the handshake
checks and the REST routes): each accepted socket becomes a :class:`Peer`; an
outpost's non-ACK frames are answered with the byte-exact ACK after the sampled
latency, in order, by one answering task per socket, held back while the mock is
stalled; malformed input drops the TCP connection without a close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..protocol import ACK_FRAME, Decoded, Instruction, classify_path, decode
from .http_routes import InstanceState
from .latency import LatencyModel
from .mock_auth import malformed

__all__ = ["LOG_KEYS", "MockConnections", "Peer"]

#: Keys of every :attr:`MockAuthentik.log` entry.
LOG_KEYS = (
    "ts",
    "event",
    "conn",
    "endpoint",
    "outpost",
    "instance_uuid",
    "path",
    "instruction",
    "data",
    "status",
    "code",
    "latency_s",
    "detail",
)

_ACK = int(Instruction.ACK)


@dataclass
class Peer:
    """One open WebSocket."""

    id: int
    endpoint: Literal["outpost", "client"]
    outpost: str | None
    ws: ServerConnection
    path: str
    instance_uuid: str | None
    pending: asyncio.Queue[tuple[float, float, Decoded]] = field(default_factory=asyncio.Queue)
    queued: int = 0  # frames handed to the answering task and not yet answered
    frames: int = 0  # non-ACK frames received (for ack_fault)


class MockConnections:
    """Serves the open WebSockets of a mock authentik (the state below is set up by the subclass)."""

    keep_log: bool
    log: list[dict[str, Any]]
    ack_fault: Literal["drop", "dup"] | None
    _latency: LatencyModel
    _peers: dict[int, Peer]
    _next_id: int
    _t0: float
    _stalled_until: float
    _drop_until: float
    _stall_changed: asyncio.Event | None
    _states: dict[tuple[str, str], InstanceState]

    async def _send(
        self,
        peer: Peer,
        text: str,
        instruction: int | None,
        message_type: str | None = None,
        latency: float | None = None,
    ) -> bool:
        try:
            await peer.ws.send(text)
        except ConnectionClosed:
            return False
        self._log("send", peer, instruction=instruction, data=text, latency_s=latency, detail=message_type)
        return True

    def _refresh_state(self, peer: Peer, decoded: Decoded) -> None:
        assert peer.outpost is not None
        uid = decoded.get("instance_uuid") or peer.instance_uuid or f"channel-{peer.id}"
        state = self._states.get((peer.outpost, uid))
        if state is None:
            state = self._states[(peer.outpost, uid)] = InstanceState(uid=uid, last_seen=0.0)
        state.last_seen = time.time()
        state.hostname = decoded.get("hostname") or ""
        if decoded.get("instruction") == Instruction.HELLO:
            state.version = decoded.get("version")
            state.build_hash = decoded.get("build_hash") or ""

    # ------------------------------------------------------------------ log

    def _log(self, event: str, peer: Peer | None = None, **values: Any) -> None:
        if not self.keep_log:
            return
        entry: dict[str, Any] = dict.fromkeys(LOG_KEYS)
        entry["ts"] = time.time_ns()
        entry["event"] = event
        if peer is not None:
            entry.update(
                conn=peer.id,
                endpoint=peer.endpoint,
                outpost=peer.outpost,
                instance_uuid=peer.instance_uuid,
                path=peer.path,
            )
        entry.update(values)
        self.log.append(entry)

    # ------------------------------------------------------------------ handshake
    # ------------------------------------------------------------------ connections

    async def _ws_handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        endpoint, pk = classify_path(path)
        query = parse_qs(urlsplit(path).query)
        self._next_id += 1
        peer = Peer(
            id=self._next_id,
            endpoint="outpost" if endpoint == "outpost" else "client",
            outpost=pk,
            ws=ws,
            path=path,
            instance_uuid=next(iter(query.get("instance_uuid", [])), None),
        )
        self._peers[peer.id] = peer
        self._log("open", peer, status=101)
        try:
            if peer.endpoint == "outpost":
                await self._serve_outpost(peer)
            else:
                await self._serve_client(peer)
        finally:
            self._peers.pop(peer.id, None)
            rcvd, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
            code = rcvd.code if rcvd is not None else 1006
            by = "peer" if ws.protocol.close_rcvd_then_sent else ("server" if sent is not None else "network")
            self._log("close", peer, code=code, detail=f"closed by {by}")

    def _abort(self, peer: Peer, why: str) -> None:
        self._log("abort", peer, code=1006, detail=why)
        peer.ws.transport.abort()

    async def _serve_outpost(self, peer: Peer) -> None:
        answerer = asyncio.create_task(self._answer(peer))
        try:
            async for message in peer.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self._log("recv", peer, data=message.hex(), detail="binary frame")
                    self._abort(peer, "binary frame: authentik expects JSON text")
                    return
                decoded = decode(message, endpoint="outpost")
                if decoded.get("instance_uuid"):
                    peer.instance_uuid = decoded.get("instance_uuid")
                self._log("recv", peer, instruction=decoded.get("instruction"), data=message)
                why = malformed(decoded)
                if why is not None:
                    self._abort(peer, why)
                    return
                if decoded.get("instruction") == Instruction.ACK:
                    continue
                if now < self._drop_until:
                    self._log("drop", peer, instruction=decoded.get("instruction"), detail="stalled (drop)")
                    continue
                peer.frames += 1
                fault = self.ack_fault if peer.frames % 3 == 2 else None
                if fault == "drop":
                    self._refresh_state(peer, decoded)
                    self._log("drop", peer, instruction=decoded.get("instruction"), detail="ack_fault=drop")
                    continue
                delay = self._latency.sample(now - self._t0)
                if fault == "dup":
                    peer.queued += 1
                    peer.pending.put_nowait((now, now + delay, decoded))
                    delay += 0.001
                elif delay <= 0 and peer.queued == 0 and now >= self._stalled_until:
                    # nothing waits before this frame: answer inline (same order, one task switch less)
                    self._refresh_state(peer, decoded)
                    await self._send(peer, ACK_FRAME, _ACK, latency=time.monotonic() - now)
                    continue
                peer.queued += 1
                peer.pending.put_nowait((now, now + delay, decoded))
        except ConnectionClosed:
            pass
        finally:
            answerer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await answerer

    async def _answer(self, peer: Peer) -> None:
        """ACK the frames of one connection in order, each at its due time (and after any stall)."""
        while True:
            received, due, decoded = await peer.pending.get()
            await self._wait_until(due)
            self._refresh_state(peer, decoded)
            sent = await self._send(peer, ACK_FRAME, _ACK, latency=time.monotonic() - received)
            peer.queued -= 1
            if not sent:
                return

    async def _wait_until(self, due: float) -> None:
        while True:
            target = max(due, self._stalled_until)
            remaining = target - time.monotonic()
            if remaining <= 0:
                return
            changed = self._stall_changed
            assert changed is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _serve_client(self, peer: Peer) -> None:
        """Browsers send nothing authentik acts on; JSON is ignored, anything else drops the socket."""
        try:
            async for message in peer.ws:
                if isinstance(message, bytes):
                    self._log("recv", peer, data=message.hex(), detail="binary frame")
                    self._abort(peer, "binary frame: authentik expects JSON text")
                    return
                self._log("recv", peer, data=message)
                error = decode(message, endpoint="other").get("parse_error")
                if error is not None:
                    self._abort(peer, error)
                    return
        except ConnectionClosed:
            pass
