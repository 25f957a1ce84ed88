"""The replay script of a capture: what each recorded connection sent, received, and how it ended.

:class:`ReplayPlan` holds one :class:`ConnectionScript` per recorded
connection: what the peer (outpost or browser) sent (:class:`Send`), what the
server answered or pushed (:class:`Expected`), and how the connection ended
(:class:`CloseInfo`), with offsets in nanoseconds from the connection's open.
:mod:`~wsreplay.playback.schedule` builds them from a capture.

Replies and pushes
------------------
A server frame is a *reply* when the server sent it because the peer spoke: on
``/ws/outpost/`` the ACK (matched first-in first-out to the non-ACK frames it
answers), on other paths any frame that follows a peer frame. Everything else
(TRIGGER_UPDATE, SESSION_END, PROVIDER_SPECIFIC, ``/ws/client/`` notices) is a
*push* that only the server's own state causes. A replay can expect replies;
pushes it can only compare when the target is made to cause them too
(:func:`is_reply`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ABRUPT_CODES",
    "Send",
    "Expected",
    "CloseInfo",
    "ConnectionScript",
    "ReplayPlan",
    "frame_label",
    "is_reply",
]

#: Close codes of a connection that broke without a close frame.
ABRUPT_CODES: Final = frozenset({1006, 1005})


def is_reply(endpoint: str | None, instruction_name: str | None, *, after_peer_frame: bool) -> bool:
    """Whether a server frame answers the peer (see the module docstring).

    Examples
    --------
    >>> is_reply("outpost", "ACK", after_peer_frame=True)
    True
    >>> is_reply("outpost", "TRIGGER_UPDATE", after_peer_frame=True)
    False
    >>> is_reply("client", None, after_peer_frame=True)
    False
    """
    if not after_peer_frame:
        return False
    if endpoint == "outpost":
        return instruction_name == "ACK"
    if endpoint == "client":
        return False
    return True


def frame_label(
    endpoint: str | None,
    opcode: str | None,
    instruction_name: str | None,
    message_type: str | None,
    parse_error: str | None,
) -> str:
    """A short name for a frame, as the default matcher compares them.

    ``HELLO``, ``ACK`` ... for outpost frames, the ``message_type`` for client
    frames, ``<binary>``, ``<malformed>`` (not decodable), ``<text>`` for
    other paths.

    Examples
    --------
    >>> frame_label("outpost", "text", "HELLO", None, None)
    'HELLO'
    >>> frame_label("outpost", "text", None, None, "not JSON: ...")
    '<malformed>'
    """
    if opcode == "binary":
        return "<binary>"
    if endpoint == "outpost" and instruction_name:
        return str(instruction_name)
    if endpoint == "client" and message_type:
        return str(message_type)
    if endpoint in ("outpost", "client") or parse_error:
        return "<malformed>"
    return "<text>"


# Send and Expected are not frozen: a plan holds one per recorded frame, and building frozen
# dataclasses costs four times as much. Nothing changes them once built.
@dataclass(slots=True)
class Send:
    """A frame the peer sent (``to_server``) that the replay sends again.

    Attributes
    ----------
    index : int
        Its number among the connection's peer frames (0-based).
    seq : int
        Its ``seq`` in the capture.
    offset_ns : int
        Recorded time after the connection's open.
    opcode : str
        ``text`` or ``binary``.
    data : str or bytes
        What to send: ``str`` for text, ``bytes`` for binary frames and for
        text that was not valid UTF-8 (sent as a text frame all the same).
    label : str
        :func:`frame_label` of the frame.
    malformed : bool
        The capture has a ``parse_error`` for it.
    replies_before : int
        Replies the peer had received before sending it (lock-step waits for them).
    """

    index: int
    seq: int
    offset_ns: int
    opcode: str
    data: str | bytes
    label: str
    malformed: bool
    replies_before: int


@dataclass(slots=True)
class Expected:
    """A frame the server sent (``to_peer``).

    Attributes
    ----------
    seq, offset_ns, opcode, data, label
        As for :class:`Send`.
    reply : bool
        A reply (see the module docstring), not a push.
    answers : int or None
        For replies, the :attr:`Send.index` it answers.
    latency_ns : int or None
        For replies, its time minus the time of the frame it answers.
    """

    seq: int
    offset_ns: int
    opcode: str
    data: str | bytes
    label: str
    reply: bool
    answers: int | None = None
    latency_ns: int | None = None


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a recorded connection ended.

    Attributes
    ----------
    offset_ns : int
        When, after the open.
    code : int or None
        Close code (1006 or ``None``: no close frame, the socket just broke).
    reason : str or None
        Close reason (or the recorder's description of an error).
    by : str
        ``"peer"`` or ``"server"``.
    reply_to : int or None
        The server dropped the connection right after this peer frame
        (:attr:`Send.index`) that it could not parse: a reply, to be expected.
    """

    offset_ns: int
    code: int | None
    reason: str | None
    by: str
    reply_to: int | None = None

    @property
    def abrupt(self) -> bool:
        """No close frame: the connection broke (1006)."""
        return self.code is None or self.code in ABRUPT_CODES


@dataclass(frozen=True)
class ConnectionScript:
    """One recorded connection, ready to be replayed (as a client or a server).

    Attributes
    ----------
    conn_id : str
        The recorded connection's id.
    endpoint : str
        ``outpost``, ``client`` or ``other``.
    path, query : str
        What the replay requests (the outpost pk already mapped).
    outpost_uuid, recorded_outpost : str or None
        The (mapped) pk the replay uses, and the one recorded.
    instance_uuid : str or None
        The recorded instance uuid.
    user_agent : str or None
        The recorded User-Agent.
    open_offset_ns : int
        Recorded open, after the plan's first open.
    status : int or None
        Recorded handshake status (101 accepted, 403 refused, ...; ``None`` unknown).
    sends, received : tuple
        :class:`Send` and :class:`Expected` frames, in recorded order.
    close : CloseInfo or None
        ``None``: the capture ends while the connection was open (or was cut).
    end_offset_ns : int
        Offset of the connection's last recorded event.
    notes : tuple of str
        What was odd about it in the capture (cut, no open row, ...).
    """

    conn_id: str
    endpoint: str
    path: str
    query: str
    outpost_uuid: str | None
    recorded_outpost: str | None
    instance_uuid: str | None
    user_agent: str | None
    open_offset_ns: int
    status: int | None
    sends: tuple[Send, ...] = field(repr=False)
    received: tuple[Expected, ...] = field(repr=False)
    close: CloseInfo | None
    end_offset_ns: int
    notes: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """The recorded handshake was refused (an HTTP status other than 101)."""
        return self.status is not None and self.status != 101

    @property
    def replies(self) -> tuple[Expected, ...]:
        """The server frames that answered the peer."""
        return tuple(e for e in self.received if e.reply)

    @property
    def pushes(self) -> tuple[Expected, ...]:
        """The server frames the server sent on its own."""
        return tuple(e for e in self.received if not e.reply)

    def replies_to(self, index: int) -> tuple[Expected, ...]:
        """Replies that answered peer frame *index*, in order."""
        return tuple(e for e in self.received if e.reply and e.answers == index)

    @property
    def target(self) -> str:
        """Path and query string, as requested."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def short_id(self) -> str:
        """The first 8 characters of :attr:`conn_id`."""
        return self.conn_id[:8]


@dataclass(frozen=True)
class ReplayPlan:
    """The scripts of a replay, sorted by recorded open.

    Attributes
    ----------
    scripts : tuple of ConnectionScript
    start_ns : int
        Recorded time (epoch ns) of the first selected connection's open.
    mapping : dict
        Outpost pk mapping applied (recorded -> target).
    notes : tuple of str
        Warnings about the capture (one line each).
    """

    scripts: tuple[ConnectionScript, ...]
    start_ns: int
    mapping: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.scripts)

    def __repr__(self) -> str:
        # short: a plan holds one object per recorded frame (asyncio's own reprs include results)
        return f"<ReplayPlan: {len(self.scripts)} connection(s), {self.sends} frame(s) to send>"

    @property
    def sends(self) -> int:
        """Number of peer frames to send."""
        return sum(len(s.sends) for s in self.scripts)

    @property
    def duration_s(self) -> float:
        """Recorded time from the first open to the last event, seconds."""
        if not self.scripts:
            return 0.0
        return max(s.open_offset_ns + s.end_offset_ns for s in self.scripts) / 1e9

    @property
    def outposts(self) -> list[str]:
        """Target outpost pks, sorted."""
        return sorted({s.outpost_uuid for s in self.scripts if s.outpost_uuid})

    def script(self, conn_id: str) -> ConnectionScript:
        """The script of a recorded connection (a unique prefix of its id is enough)."""
        found = [s for s in self.scripts if s.conn_id.startswith(conn_id)]
        if len(found) != 1:
            raise KeyError(conn_id)
        return found[0]
