"""Building capture rows for one connection, without I/O.

:class:`ConnectionLog` is what every driver (recorder, probe, replayer,
simulator, importers) uses to turn what happened on a WebSocket connection into
capture rows: it numbers events, decodes frames, and carries the instance uuid
onto every row once it is known. Timestamps are passed in (nanoseconds since
the epoch, UTC); nothing here reads a clock.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from .protocol import Decoded, classify_path, decode

__all__ = ["ConnectionLog", "DecodeCache", "message_fields", "new_id", "instance_from_query"]

Row = dict[str, Any]

#: ``(endpoint, payload) -> decoded columns``, shared by the logs of one driver.
DecodeCache = dict[tuple[str, str], Decoded]

#: Payloads longer than this are decoded every time (they rarely repeat).
_MAX_CACHED_PAYLOAD = 4096
_MAX_CACHE_ENTRIES = 50_000


def new_id() -> str:
    """A new random id (hex uuid4) for a capture or a connection."""
    return uuid.uuid4().hex


def instance_from_query(query: str | None) -> str | None:
    """The ``instance_uuid`` query parameter of a handshake, if any."""
    if not query:
        return None
    values = parse_qs(query, keep_blank_values=False).get("instance_uuid")
    return values[0] if values else None


def _decode_text(text: str, endpoint: str, cache: DecodeCache | None) -> Decoded:
    if cache is None or len(text) > _MAX_CACHED_PAYLOAD:
        return decode(text, endpoint=endpoint, opcode="text")
    key = (endpoint, text)
    decoded = cache.get(key)
    if decoded is None:
        decoded = decode(text, endpoint=endpoint, opcode="text")
        if len(cache) < _MAX_CACHE_ENTRIES:
            cache[key] = decoded
    return decoded


def message_fields(
    data: str | bytes, *, endpoint: str, opcode: str | None = None, cache: DecodeCache | None = None
) -> Row:
    """The columns of a ``message`` row that depend only on the frame and the endpoint.

    ``opcode``, ``size``, ``payload`` or ``payload_bytes``, and the decoded
    columns (:func:`~wsreplay.protocol.decode`; ``instance_uuid`` is the one the
    frame carries, if any). :meth:`ConnectionLog.message` adds the rest.

    Examples
    --------
    >>> message_fields('{"instruction": 0, "args": {}}', endpoint="outpost")["instruction_name"]
    'ACK'
    """
    opcode = opcode or ("text" if isinstance(data, str) else "binary")
    raw: bytes | None = None
    text: str | None = None
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
            text = data
        except UnicodeEncodeError:
            raw = data.encode("utf-8", "surrogatepass")
    else:
        raw = bytes(data)
        if opcode == "text":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
    fields: Row = {"opcode": opcode, "size": len(raw)}
    if opcode == "text" and text is not None:
        fields["payload"] = text
        decoded = _decode_text(text, endpoint, cache)
    else:
        fields["payload_bytes"] = raw
        decoded = decode(raw, endpoint=endpoint, opcode=opcode)
    fields.update(decoded)
    return fields


class ConnectionLog:
    """Capture rows of one WebSocket connection.

    Parameters
    ----------
    capture_id : str
        Id of the recording run.
    path : str
        Request path; the query string may be attached (``/ws/outpost/<pk>/?a=b``)
        or given as *query*.
    query : str, optional
        The handshake's query string without ``?``.
    conn_id : str, optional
        Defaults to a new random id.
    cache : dict, optional
        A decode cache shared by the logs of one driver: traffic repeats the same few
        payloads (an instance's HELLO, authentik's ACK), so each distinct text frame is
        decoded once. Rows are the same with or without it.

    Examples
    --------
    >>> log = ConnectionLog("cap", "/ws/outpost/pk/?instance_uuid=i1")
    >>> log.open(0, status=101)["instance_uuid"]
    'i1'
    >>> log.message(1, "to_peer", '{"instruction": 0, "args": {}}')["instruction_name"]
    'ACK'
    """

    def __init__(
        self,
        capture_id: str,
        path: str,
        query: str | None = None,
        *,
        conn_id: str | None = None,
        cache: DecodeCache | None = None,
    ):
        if "?" in path:
            path, _, inline_query = path.partition("?")
            query = query if query is not None else inline_query
        self.capture_id = capture_id
        self.conn_id = conn_id or new_id()
        self.path = path
        self.query = query or ""
        self.endpoint, self.outpost_uuid = classify_path(path)
        self.instance_uuid = instance_from_query(query)
        self.seq = 0
        self.closed = False
        self.cache = cache
        #: The connection's columns as :mod:`wsreplay.record.batch` encodes them (kept by it, once).
        self.encoded: list[Any] | None = None

    def _row(self, ts: int, event: str, **fields: Any) -> Row:
        row: Row = {
            "ts": ts,
            "capture_id": self.capture_id,
            "conn_id": self.conn_id,
            "seq": self.seq,
            "endpoint": self.endpoint,
            "path": self.path,
            "query": self.query,
            "outpost_uuid": self.outpost_uuid,
            "instance_uuid": self.instance_uuid,
            "event": event,
        }
        row.update(fields)
        self.seq += 1
        return row

    def open(
        self,
        ts: int,
        *,
        status: int | None = 101,
        user_agent: str | None = None,
        peer: str | None = None,
    ) -> Row:
        """The ``open`` row (``seq`` 0): the handshake was accepted with *status*."""
        return self._row(ts, "open", status=status, user_agent=user_agent, peer=peer)

    def message(self, ts: int, direction: str, data: str | bytes, *, opcode: str | None = None) -> Row:
        """A ``message`` row.

        *data* is ``str`` for a text frame and ``bytes`` for a binary one, unless
        *opcode* says otherwise (``opcode="text"`` with bytes: raw text whose
        UTF-8 is checked). Text that is not valid UTF-8 keeps its raw bytes in
        ``payload_bytes`` and says so in ``parse_error``.
        """
        fields = message_fields(data, endpoint=self.endpoint, opcode=opcode, cache=self.cache)
        found = fields.get("instance_uuid")
        if found and self.instance_uuid is None:
            self.instance_uuid = found
        fields["instance_uuid"] = self.instance_uuid
        return self._row(ts, "message", direction=direction, **fields)

    def close(self, ts: int, direction: str, *, code: int | None, reason: str | None = None) -> Row:
        """The ``close`` row; *direction* is the side that closed (``to_server``: the peer).

        ``code`` 1006 (or ``None``) records a connection that broke without a close frame.
        """
        self.closed = True
        return self._row(ts, "close", direction=direction, close_code=code, close_reason=reason or None)

    def error(self, ts: int, reason: str, *, status: int | None = None, direction: str | None = None) -> Row:
        """An ``error`` row: a refused handshake (``status``) or a broken connection."""
        return self._row(ts, "error", status=status, direction=direction, close_reason=reason, parse_error=None)
