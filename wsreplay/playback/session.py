"""The decisions of one replayed connection, without I/O: what happened in, what to do next out.

A driver owns the socket and the clock; for each connection it keeps a
session, tells it what happened (a frame received, a frame sent, the
connection closed, the time) and asks it what to do: send a frame, wait (until
a time, or until some replies or the other side's close arrive), close with a
code. Both drivers work this way: the client (:mod:`~wsreplay.playback.client`)
with a :class:`ClientSession`, which plays the recorded peer, and the server
(:mod:`~wsreplay.playback.server`) with a
:class:`~wsreplay.playback.served.ServerSession`, which plays the recorded
authentik. This module holds the actions, what both sessions share, and the
client's session. Times are the driver's monotonic seconds; nothing here
reads a clock, opens a socket or starts a loop, so the tests feed literal
frames and times.

Examples
--------
>>> from wsreplay.playback.script import ConnectionScript, Send
>>> hello = Send(0, 1, 0, "text", '{"instruction": 1}', "HELLO", False, 0)
>>> script = ConnectionScript("c1", "outpost", "/ws/outpost/pk/", "", "pk", "pk", None, None,
...                           0, 101, (hello,), (), None, 0)
>>> session = ClientSession(script, t_open=100.0, speed=1.0, lockstep=False, reply_timeout=5.0)
>>> session.next_action(100.0) is hello
True
>>> session.sent_frame()
>>> session.next_action(100.0)  # nothing to wait for, and the capture ends there: close
Close(code=1000, reason='', at=0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..protocol import decode
from .schedule import scale
from .script import ConnectionScript, Send, is_reply

__all__ = [
    "Wait",
    "Reply",
    "Close",
    "ReplaySession",
    "ClientSession",
    "close_code",
]

#: Close code that means "no close frame: cut the TCP connection".
ABORT: Final = 1006


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait until *until* (monotonic seconds), or until something the session waits for happens.

    Attributes
    ----------
    until : float
        When to ask the session again at the latest.
    replies : int or None
        Wake as soon as the session has seen this many replies.
    closing : bool
        Wake as soon as the other side has closed the connection.
    """

    until: float
    replies: int | None = None
    closing: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """Send a frame at *at* (monotonic seconds)."""

    at: float
    opcode: str
    data: str | bytes


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection at *at*: with *code*, or without a close frame when it is 1006."""

    code: int
    reason: str = ""
    at: float = 0.0

    @property
    def abort(self) -> bool:
        """Cut the TCP connection instead of sending a close frame."""
        return self.code == ABORT


def close_code(code: int | None) -> int:
    """The close code a replay sends for a recorded one (1006 for none; codes one may not send become 1000).

    Examples
    --------
    >>> close_code(None), close_code(1001), close_code(1005), close_code(1015), close_code(4000)
    (1006, 1001, 1000, 1000, 4000)
    """
    if code is None or code == ABORT:
        return ABORT
    if code == 1005 or not (1000 <= code <= 4999) or code in (1004, 1015):
        return 1000
    return code


class ReplaySession:
    """What the client and server sessions share: the script, the time base, how the connection ended.

    Parameters
    ----------
    script : ConnectionScript
        The recorded connection played.
    t_open : float
        When the replayed connection opened (the driver's monotonic seconds).
    speed : float
        Recorded offsets are divided by it (``math.inf``: no waiting).
    """

    def __init__(self, script: ConnectionScript, *, t_open: float, speed: float) -> None:
        self.script = script
        self.t_open = t_open
        self.speed = speed
        #: The connection is closed (:meth:`connection_closed` was called).
        self.closed = False
        #: This side closed it (a :class:`Close` action was carried out).
        self.closing = False
        #: The code this side closed with.
        self.close_code: int | None = None

    def at(self, offset_ns: int) -> float:
        """The driver's time at which an event recorded *offset_ns* after the open replays."""
        return self.t_open + scale(offset_ns, self.speed)

    def closing_with(self, action: Close) -> None:
        """The driver is carrying out *action*."""
        self.closing = True
        self.close_code = action.code

    def connection_closed(self, code: int | None) -> tuple[str, int]:
        """The connection is closed (*code* as the WebSocket library saw it).

        Returns
        -------
        (direction, code)
            The ``close`` row to record: ``to_server`` when the client side
            closed, ``to_peer`` when the server side did.
        """
        self.closed = True
        seen = code if code is not None else ABORT
        closed_by_me = self.closing
        if closed_by_me and self.close_code is not None:
            seen = self.close_code
        return self._direction(closed_by_me), seen

    def _direction(self, closed_by_me: bool) -> str:
        raise NotImplementedError


#: ``(outcome, detail)`` of a replayed connection: ``ok``, ``dropped``, ``closed`` (and, from the
#: driver, ``refused`` or ``unreachable`` when it never opened).
Outcome = tuple[str, str]


class ClientSession(ReplaySession):
    """The recorded peer's side of a replayed connection (what :func:`wsreplay.replay` drives).

    The driver loops: ``action = session.next_action(now)``; a :class:`Send`
    (the script's own frame) is sent, then reported with :meth:`sent_frame`;
    a :class:`Wait` is waited; a :class:`Close` ends the connection; ``None``
    means there is nothing left to do. Frames received are reported with
    :meth:`receive`, the end of the connection with :meth:`connection_closed`.

    Parameters
    ----------
    script, t_open, speed
        As for :class:`ReplaySession`.
    lockstep : bool
        Before each frame, wait until the replies the capture saw before it
        have arrived (at most *reply_timeout*, then send it anyway and say so
        in :attr:`notes`).
    reply_timeout : float
        Seconds to wait for replies, and for a close the capture has the
        server make.
    names : dict, optional
        A cache of frame -> instruction name, which the sessions of one
        replay may share (outposts repeat the same few frames).
    """

    def __init__(
        self,
        script: ConnectionScript,
        *,
        t_open: float,
        speed: float,
        lockstep: bool,
        reply_timeout: float,
        names: dict[str | bytes, str | None] | None = None,
    ) -> None:
        super().__init__(script, t_open=t_open, speed=speed)
        self._names = {} if names is None else names
        self.lockstep = lockstep
        self.reply_timeout = reply_timeout
        self.timed = speed != math.inf
        #: Frames sent so far.
        self.sent = 0
        #: Replies (see :func:`~wsreplay.playback.script.is_reply`) received so far.
        self.replies = 0
        #: What went differently from the capture, one line each.
        self.notes: list[str] = []
        #: ``(outcome, detail)`` once known: ``dropped`` / ``closed`` by the target, or ``ok``.
        self.outcome: Outcome | None = None
        self._sends = script.sends
        self._gate: float | None = None  # deadline of the current lock-step or final wait
        self._gated = -1  # the frame whose lock-step wait is over
        self._phase = 0  # 0 sending, 1 waiting for the last replies, 2 waiting for the end, 3 done

    def scheduled(self, frame: Send) -> float:
        """Recorded offset of *frame*, scaled (seconds after the open; NaN at full speed)."""
        return scale(frame.offset_ns, self.speed) if self.timed else math.nan

    def receive(self, message: str | bytes) -> bool:
        """A frame arrived from the server; whether it is a reply (see :func:`~.script.is_reply`)."""
        endpoint = self.script.endpoint
        name = None
        if endpoint == "outpost" and self.sent:  # only an outpost's replies depend on what the frame says
            names = self._names
            name = names.get(message, "?")
            if name == "?":
                opcode = "text" if isinstance(message, str) else "binary"
                name = decode(message, endpoint=endpoint, opcode=opcode).get("instruction_name")
                if len(names) < 10_000:
                    names[message] = name
        if is_reply(endpoint, name, after_peer_frame=self.sent > 0):
            self.replies += 1
            return True
        return False

    def sent_frame(self) -> None:
        """The frame :meth:`next_action` returned was sent."""
        self.sent += 1

    def next_action(self, now: float) -> Send | Wait | Close | None:
        """What to do at *now*."""
        if self.closed:
            return None
        if self._phase == 0:
            index = self.sent
            if index < len(self._sends):
                return self._next_send(self._sends[index], now)
            self._phase = 1
            self._gate = now + self.reply_timeout
        if self._phase == 1:
            return self._after_sends(now)
        if self._phase == 2:
            return self._at_the_end(now)
        return None

    def _next_send(self, frame: Send, now: float) -> Send | Wait:
        if self.lockstep and self._gated < frame.index and self.replies < frame.replies_before:
            if self._gate is None:
                self._gate = now + self.reply_timeout
            if now < self._gate:
                return Wait(self._gate, replies=frame.replies_before)
            self.notes.append(
                f"connection {self.script.short_id}: lock-step waited {self.reply_timeout:g} s for reply "
                f"#{frame.replies_before} before frame #{frame.index + 1}, got {self.replies}; sent it anyway"
            )
        self._gated = frame.index
        self._gate = None
        if self.timed:
            due = self.at(frame.offset_ns)
            if due > now:
                return Wait(due)
        return frame

    def _after_sends(self, now: float) -> Wait | Close | None:
        expected = len(self.script.replies)
        assert self._gate is not None
        if self.replies < expected and now < self._gate:
            return Wait(self._gate, replies=expected)
        self._phase = 2
        rec = self.script.close
        if rec is not None and rec.by == "server":
            self._gate = self.at(rec.offset_ns) + self.reply_timeout
        else:
            self._gate = self.at(rec.offset_ns if rec is not None else self.script.end_offset_ns)
        return self._at_the_end(now)

    def _at_the_end(self, now: float) -> Wait | Close | None:
        assert self._gate is not None
        if now < self._gate:
            return Wait(self._gate, closing=True)
        self._phase = 3
        rec = self.script.close
        if rec is not None and rec.by == "server":
            self.notes.append(
                f"connection {self.script.short_id}: the capture has the server closing it "
                f"({rec.code or 1006}); it stayed open, the replay closed it"
            )
            return Close(1000)
        return Close(close_code(rec.code if rec is not None else 1000))

    def connection_closed(self, code: int | None) -> tuple[str, int]:
        """The connection is closed; when the target closed it, :attr:`outcome` says how that compares."""
        row = super().connection_closed(code)
        if not self.closing and self.outcome is None:
            self.outcome = self._server_close(code or ABORT)
        return row

    def finish(self) -> Outcome:
        """The outcome once the driver is done (``ok`` unless the target ended the connection)."""
        outcome = self.outcome
        if outcome is None:
            outcome = self.outcome = ("ok", "")
        return outcome

    def _server_close(self, code: int) -> Outcome:
        script, sent = self.script, self.sent
        rec = script.close
        provoked = rec is not None and rec.reply_to is not None and sent > rec.reply_to
        pushed = rec is not None and rec.reply_to is None and sent >= len(script.sends)
        if rec is not None and rec.by == "server" and (provoked or pushed):
            return ("closed", f"the target closed it with {code}, as recorded ({rec.code or 1006})")
        left = len(script.sends) - sent
        what = "dropped the connection (1006)" if code == ABORT else f"closed the connection with {code}"
        detail = f"the target {what} after {sent} of {len(script.sends)} frame(s)"
        if left <= 0:
            detail += " before the recorded end"
        return ("dropped" if code == ABORT else "closed", detail)

    def _direction(self, closed_by_me: bool) -> str:
        return "to_server" if closed_by_me else "to_peer"
