"""The served authentik's decisions, without I/O: :class:`ServerSession` and the answers it gives.

Each frame a peer sends is answered with the replies the capture recorded
after the matching recorded frame, after the recorded latency; a frame the
script does not have is answered like the first recorded frame of its kind
(:func:`answers_by_kind`); the server's own frames and a recorded server close
are scheduled at their recorded offsets (:meth:`ServerSession.schedule`).
:class:`~wsreplay.playback.server.ReplayServer` carries that out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..protocol import decode
from .schedule import scale
from .script import ConnectionScript, ReplayPlan, frame_label
from .session import ABORT, Close, ReplaySession, Reply, close_code

__all__ = ["Answer", "ServerSession", "answer_to", "answers_by_kind"]


@dataclass(frozen=True, slots=True)
class Answer:
    """How the recorded server answered one peer frame.

    Attributes
    ----------
    replies : tuple of (delay_s, opcode, data)
        Its replies, *delay_s* after the frame (already divided by the speed).
    drop : bool
        It dropped the connection without a close frame right after.
    """

    replies: tuple[tuple[float, str, str | bytes], ...]
    drop: bool


def answer_to(script: ConnectionScript, index: int, speed: float) -> Answer:
    """How the capture answered peer frame *index* of *script*."""
    replies = tuple((scale(e.latency_ns or 0, speed), e.opcode, e.data) for e in script.replies_to(index))
    drop = script.close is not None and script.close.reply_to == index
    return Answer(replies, drop)


def answers_by_kind(plan: ReplayPlan, speed: float) -> dict[tuple[str, str], Answer]:
    """``(endpoint, frame label) -> Answer``: the first recorded answer to each kind of peer frame.

    An answer with replies (or a drop) wins over a silent one. The server
    answers this way the frames its script does not have.
    """
    table: dict[tuple[str, str], Answer] = {}
    for script in plan.scripts:
        for send in script.sends:
            key = (script.endpoint, send.label)
            answer = answer_to(script, send.index, speed)
            known = table.get(key)
            if known is None or (not known.replies and not known.drop and (answer.replies or answer.drop)):
                table[key] = answer
    return table


#: How :meth:`ServerSession.receive` answered a frame: from the script, by analogy, or not at all.
How = Literal["script", "analogy", "none"]


class ServerSession(ReplaySession):
    """The recorded server's side of a connection (what :class:`~wsreplay.playback.ReplayServer` drives).

    :meth:`receive` turns each frame from the peer into the frames to send back
    (and when); :meth:`schedule` lists what the server does on its own (its
    pushes, and a recorded close).

    Parameters
    ----------
    script, t_open, speed
        As for :class:`ReplaySession`.
    by_kind : mapping
        From :func:`answers_by_kind`: answers to frames the script does not have.
    """

    def __init__(
        self,
        script: ConnectionScript,
        *,
        t_open: float,
        speed: float,
        by_kind: Mapping[tuple[str, str], Answer],
    ) -> None:
        super().__init__(script, t_open=t_open, speed=speed)
        self.by_kind = by_kind
        #: Frames received so far.
        self.received = 0

    def receive(self, now: float, message: str | bytes) -> tuple[How, list[Reply | Close]]:
        """A frame from the peer at *now*: how it is answered, and the actions that answer it.

        The frame is answered as the capture answered the frame of the same
        position, when that one is of the same kind (``script``); otherwise
        like the first recorded frame of its kind (``analogy``); ``none`` when
        the capture has no frame of its kind.
        """
        script = self.script
        opcode = "text" if isinstance(message, str) else "binary"
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
        how: How
        if index < len(script.sends) and script.sends[index].label == label:
            answer, how = answer_to(script, index, self.speed), "script"
        else:
            found = self.by_kind.get((script.endpoint, label))
            if found is None:
                return "none", []
            answer, how = found, "analogy"
        actions: list[Reply | Close] = [Reply(now + delay, op, data) for delay, op, data in answer.replies]
        if answer.drop:
            actions.append(Close(ABORT, at=now))
        return how, actions

    def schedule(self) -> list[Reply | Close]:
        """The server's own actions, in order: pushes at their recorded offsets, then a recorded close.

        At full speed the recorded close is left out (it would end the
        connection before the peer said anything).
        """
        actions: list[Reply | Close] = [Reply(self.at(e.offset_ns), e.opcode, e.data) for e in self.script.pushes]
        rec = self.script.close
        if rec is None or rec.by != "server" or rec.reply_to is not None or self.speed == math.inf:
            return actions
        at = self.at(rec.offset_ns)
        code = close_code(rec.code)
        actions.append(Close(code, "" if code == ABORT else rec.reason or "", at))
        return actions

    def _direction(self, closed_by_me: bool) -> str:
        return "to_peer" if closed_by_me else "to_server"
