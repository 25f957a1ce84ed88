"""What a replayed connection saw, summarised from the replay's own capture rows, without I/O.

:class:`Observer` takes the capture rows of one replayed connection, one at a
time, and builds an :class:`ObservedConnection`: its handshake status, the
frames the server sent (named and classified as replies or pushes as in
:mod:`~wsreplay.playback.script`), and how it ended. :mod:`~wsreplay.playback.match`
compares that with the recorded script.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .script import CloseInfo, frame_label, is_reply

__all__ = ["ObservedFrame", "ObservedConnection", "Observer", "observe"]


@dataclass(frozen=True, slots=True)
class ObservedFrame:
    """A frame the server sent during a replay."""

    offset_ns: int
    opcode: str
    data: str | bytes
    label: str
    reply: bool


@dataclass
class ObservedConnection:
    """What one replayed connection saw.

    Attributes
    ----------
    conn_id : str
        The replay's connection id (in the replay's own capture).
    status : int or None
        Handshake status (101 accepted; ``None``: no HTTP answer at all).
    received : list of ObservedFrame
    sent : int
        Frames the replay sent.
    close : CloseInfo or None
        How it ended (``by="server"``: the target closed or dropped it).
    error : str or None
        Why it could not be carried out, if it could not.
    """

    conn_id: str
    status: int | None = None
    received: list[ObservedFrame] = field(default_factory=list)
    sent: int = 0
    close: CloseInfo | None = None
    error: str | None = None


class Observer:
    """Builds an :class:`ObservedConnection` from capture rows, one at a time (see :func:`observe`)."""

    __slots__ = ("_t_open", "obs")

    def __init__(self) -> None:
        self.obs: ObservedConnection | None = None
        self._t_open = 0

    def add(self, row: Mapping[str, Any]) -> None:
        """Take one capture row of the connection."""
        obs = self.obs
        if obs is None:
            obs = self.obs = ObservedConnection(conn_id=str(row["conn_id"]))
            self._t_open = int(row["ts"])
        event = row.get("event")
        offset = int(row["ts"]) - self._t_open
        endpoint = row.get("endpoint")
        if event == "message":
            if row.get("direction") == "to_server":
                obs.sent += 1
                return
            opcode = row.get("opcode") or "text"
            payload = row.get("payload")
            data: str | bytes = payload if payload is not None else (row.get("payload_bytes") or b"")
            name = row.get("instruction_name")
            label = frame_label(endpoint, opcode, name, row.get("message_type"), row.get("parse_error"))
            reply = is_reply(endpoint, name, after_peer_frame=obs.sent > 0)
            obs.received.append(ObservedFrame(offset, opcode, data, label, reply))
        elif event == "open":
            obs.status = row.get("status")
        elif event == "error":
            if row.get("status") is not None:
                obs.status = row.get("status")
            obs.error = obs.error or row.get("close_reason")
        elif event == "close" and obs.close is None:
            by = "peer" if row.get("direction") == "to_server" else "server"
            obs.close = CloseInfo(offset, row.get("close_code"), row.get("close_reason"), by)


def observe(rows: Iterable[Mapping[str, Any]]) -> ObservedConnection:
    """Summarise the capture rows of one replayed connection (as :class:`~wsreplay.events.ConnectionLog` builds them).

    Examples
    --------
    >>> from wsreplay.events import ConnectionLog
    >>> log = ConnectionLog("cap", "/ws/outpost/pk/", conn_id="r1")
    >>> rows = [log.open(0), log.message(5, "to_server", '{"instruction": 1}'),
    ...         log.message(8, "to_peer", '{"instruction": 0, "args": {}}')]
    >>> [f.label for f in observe(rows).received]
    ['ACK']
    """
    observer = Observer()
    for row in rows:
        observer.add(row)
    if observer.obs is None:
        raise ValueError("observe() needs at least one row")
    return observer.obs
