"""Turn parsed tshark packets into capture rows: one connection per TCP stream with a WebSocket in it.

A stream's HTTP upgrade request gives the path, the query string (credential-like
parameters dropped), the User-Agent and which side is the server; the ``101``
answer opens the connection, any other status is a refused handshake (an
``error`` row). Without a captured handshake the direction comes from the
server port or from masking, and the endpoint from the frames
(:func:`endpoint_from_frames`) unless a path is given. A FIN or RST without a
close frame closes the connection with 1006.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from ..events import ConnectionLog, new_id
from ..protocol import decode
from ._common import Row, scrub_query
from .tshark_packets import Packet, WsFrame, as_int

__all__ = ["tshark_rows", "endpoint_from_frames", "UNKNOWN_PATH", "UNKNOWN_OUTPOST"]

#: Path given to a connection whose HTTP handshake is not in the capture, and whose frames do not
#: tell its endpoint (and no *path* was passed).
UNKNOWN_PATH = "(handshake not captured)"
#: ``outpost_uuid`` of an outpost connection told by its frames: the pk is only in the handshake's path.
UNKNOWN_OUTPOST = "(pk not captured)"


def tshark_rows(
    packets: list[Packet],
    *,
    capture_id: str | None = None,
    server_port: int | None = None,
    path: str | None = None,
    stats: dict[str, Any] | None = None,
) -> list[Row]:
    """Capture rows from parsed packets: one connection per TCP stream with a WebSocket in it."""
    stats = {} if stats is None else stats
    cid = capture_id or new_id()
    streams: dict[str, list[Packet]] = {}
    for packet in sorted(packets, key=lambda p: (p.ts, p.number)):
        key = packet.stream if packet.stream is not None else f"{packet.src}:{packet.sport}-{packet.dst}:{packet.dport}"
        streams.setdefault(key, []).append(packet)
    stats.update(
        packets=len(packets),
        connections=0,
        messages=0,
        streams_without_handshake=0,
        streams_from_frames={},
        streams_unnamed=0,
    )
    rows: list[Row] = []
    for stream in streams.values():
        stream_rows = _stream_rows(stream, cid, server_port, path, stats)
        if stream_rows:
            rows.extend(stream_rows)
            stats["connections"] += 1
            stats["messages"] += sum(1 for r in stream_rows if r["event"] == "message")
    return rows


def endpoint_from_frames(texts: Iterable[str | None]) -> Literal["outpost", "client"] | None:
    """Tell a connection's endpoint from its text frames, for a stream whose handshake was not captured.

    Outposts and authentik exchange ``{"instruction": <int>, "args": {...}}``
    both ways; authentik sends browsers notices keyed by ``message_type``. A
    connection is an outpost's if some frame decodes as an outpost instruction
    and none as a browser notice, a browser's in the opposite case, and
    unknown (``None``) when neither or both show.

    Examples
    --------
    >>> endpoint_from_frames(['{"instruction": 1, "args": {"uuid": "i1"}}', '{"instruction": 0, "args": {}}'])
    'outpost'
    >>> endpoint_from_frames(['{"message_type": "message", "level": "info", "message": "hi"}'])
    'client'
    >>> endpoint_from_frames(["hello"]) is None
    True
    """
    outpost = client = False
    for text in texts:
        if text is None:
            continue
        outpost = outpost or decode(text, endpoint="outpost", opcode="text")["parse_error"] is None
        client = client or decode(text, endpoint="client", opcode="text")["parse_error"] is None
    if outpost != client:
        return "outpost" if outpost else "client"
    return None


def _endpoint(host: str | None, port: int | None) -> str | None:
    if host is None or port is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _stream_rows(
    stream: list[Packet], capture_id: str, server_port: int | None, default_path: str | None, stats: dict[str, Any]
) -> list[Row]:
    request_packet = next(
        (p for p in stream if p.request and (p.request.get("upgrade") or "").lower() == "websocket"), None
    )
    has_frames = any(p.frames for p in stream)
    if request_packet is None and not has_frames:
        return []  # plain HTTP or TCP: not a WebSocket
    if request_packet is not None and request_packet.request is not None:
        uri = request_packet.request.get("uri") or "/"
        if "://" in uri:  # absolute-form, as sent to a forward proxy
            absolute = urlsplit(uri)
            uri = (absolute.path or "/") + (f"?{absolute.query}" if absolute.query else "")
        req_path, _, query = uri.partition("?")
        user_agent = request_packet.request.get("user_agent")
        server = (request_packet.dst, request_packet.dport)
        client = (request_packet.src, request_packet.sport)
    else:
        stats["streams_without_handshake"] += 1
        req_path, query, user_agent = default_path or UNKNOWN_PATH, "", None
        server = client = (None, None)
        if default_path is None:
            endpoint = endpoint_from_frames(f.text for p in stream for f in p.frames if f.opcode == 1 and f.fin)
            if endpoint is None:
                stats["streams_unnamed"] += 1
            else:
                req_path = f"/ws/outpost/{UNKNOWN_OUTPOST}/" if endpoint == "outpost" else "/ws/client/"
                told = stats["streams_from_frames"]
                told[endpoint] = told.get(endpoint, 0) + 1
    log = ConnectionLog(capture_id, req_path, scrub_query(query))

    def from_client(p: Packet, frame: WsFrame | None = None) -> bool:
        if server[1] is not None:
            return (p.src, p.sport) != server
        if server_port is not None:
            return p.sport != server_port
        if frame is not None and frame.masked is not None:
            return frame.masked
        return False

    after = request_packet.number if request_packet is not None else -1
    response = next(
        (p for p in stream if p.response and p.number > after and (server[1] is None or not from_client(p))), None
    )
    status = as_int(response.response.get("code")) if response and response.response else None
    rows: list[Row] = []
    if request_packet is not None and status != 101 and not (status is None and has_frames):
        if status is None:
            rows.append(log.error(request_packet.ts, "no response to the WebSocket handshake in the capture"))
        else:
            phrase = (response.response or {}).get("phrase") if response else None
            rows.append(
                log.error(
                    response.ts if response else request_packet.ts,
                    f"handshake refused: HTTP {status} {phrase or ''}".strip(),
                    status=status,
                )
            )
        return rows
    first_frame = next(p for p in stream if p.frames) if has_frames else None
    open_ts = response.ts if response is not None else (first_frame.ts if first_frame else stream[0].ts)
    peer = _endpoint(*client)
    if peer is None and first_frame is not None:
        f0 = first_frame.frames[0]
        peer = (
            _endpoint(first_frame.src, first_frame.sport)
            if from_client(first_frame, f0)
            else _endpoint(first_frame.dst, first_frame.dport)
        )
    rows.append(log.open(open_ts, status=status, user_agent=user_agent, peer=peer))

    partial: dict[bool, tuple[int, list[str | bytes]]] = {}
    for p in stream:
        if p.number <= (response.number if response else -1):
            continue
        for frame in p.frames:
            side = from_client(p, frame)
            direction = "to_server" if side else "to_peer"
            if frame.opcode in (1, 2):
                body: str | bytes = frame.text if frame.text is not None else (frame.data or b"")
                if frame.fin:
                    rows.append(_message(log, p.ts, direction, frame.opcode, [body]))
                else:
                    partial[side] = (frame.opcode, [body])
            elif frame.opcode == 0 and side in partial:
                opcode, parts = partial[side]
                parts.append(frame.text if frame.text is not None else (frame.data or b""))
                if frame.fin:
                    rows.append(_message(log, p.ts, direction, opcode, parts))
                    del partial[side]
            elif frame.opcode == 8 and not log.closed:
                rows.append(log.close(p.ts, direction, code=frame.close_code, reason=frame.close_reason))
        if (p.fin or p.rst) and not log.closed:
            side = from_client(p)
            rows.append(log.close(p.ts, "to_server" if side else "to_peer", code=1006, reason=None))
    return rows


def _message(log: ConnectionLog, ts: int, direction: str, opcode: int, parts: list[str | bytes]) -> Row:
    if all(isinstance(x, str) for x in parts):
        payload: str | bytes = "".join(x for x in parts if isinstance(x, str))
    else:
        payload = b"".join(x if isinstance(x, bytes) else x.encode("utf-8") for x in parts)
    return log.message(ts, direction, payload, opcode="text" if opcode == 1 else "binary")
