"""Import WebSocket traffic from tshark's ``-T json`` or ``-T ek`` output.

Make the input from a packet capture with the HTTP and WebSocket dissectors
(``-d tcp.port==9000,http`` if authentik listens on a port tshark does not
take for HTTP)::

    tshark -r outposts.pcapng -d tcp.port==9000,http -Y 'http || websocket' -T json > outposts.json
    tshark -r outposts.pcapng -d tcp.port==9000,http -Y 'http || websocket || tcp.flags.fin==1' -T ek > outposts.ndjson

Each TCP stream (``tcp.stream``) is one connection. Its HTTP upgrade request
gives the path, the query string (credential-like parameters dropped) and the
User-Agent, and tells which side is the server; the ``101`` answer opens the
connection, any other status is a refused handshake (an ``error`` row).
Frames come from the ``websocket`` layer: ``websocket.opcode``, text from
``websocket.payload.text`` (tshark decompresses permessage-deflate), binary
from the ``data.data`` hex that follows, close codes from
``websocket.payload.close.status_code``; times are ``frame.time_epoch``.
Without a captured handshake (``-Y websocket`` leaves the HTTP upgrade
out), the direction comes from the server port (*server_port*) or, failing
that, from masking: clients mask their frames; and the endpoint from the
frames themselves (:func:`endpoint_from_frames`: outpost instructions or
browser notices), unless *path* names it. An outpost told this way has
``outpost_uuid`` :data:`UNKNOWN_OUTPOST` (the pk is only in the path); a
stream whose frames tell nothing keeps the path :data:`UNKNOWN_PATH`
(endpoint ``other``).
A FIN or RST without a close frame closes the connection with 1006.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import pandas as pd

from ..events import ConnectionLog, new_id
from ..exceptions import ImportFormatError
from ..protocol import decode
from ..timeutil import iso_to_ns
from ._common import (
    PathLike,
    Row,
    finish,
    iter_json_array,
    json_error,
    new_capture_id,
    read_bytes,
    refuse_deep_nesting,
    scrub_query,
    seconds_to_ns,
)

__all__ = ["import_tshark", "tshark_rows", "endpoint_from_frames", "UNKNOWN_PATH", "UNKNOWN_OUTPOST"]

OnError = Literal["raise", "skip"]
#: Path given to a connection whose HTTP handshake is not in the capture, and whose frames do not
#: tell its endpoint (and no *path* was passed).
UNKNOWN_PATH = "(handshake not captured)"
#: ``outpost_uuid`` of an outpost connection told by its frames: the pk is only in the handshake's path.
UNKNOWN_OUTPOST = "(pk not captured)"


class _Many(list[Any]):
    """Values of a key repeated in one JSON object (tshark -T json repeats layer names)."""


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            current = out[key]
            if isinstance(current, _Many):
                current.append(value)
            else:
                out[key] = _Many([current, value])
        else:
            out[key] = value
    return out


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return list(value)
    return [value]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _find(obj: Any, key: str) -> Any:
    """The first value of *key* anywhere inside a -T json layer (fields nest under tree nodes)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for value in obj.values():
            if isinstance(value, (dict, list)):
                found = _find(value, key)
                if found is not None:
                    return found
    elif isinstance(obj, list):
        for item in obj:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def _bool(value: Any) -> bool:
    value = _first(value)
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true"))


def _hex(value: Any) -> bytes | None:
    value = _first(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return bytes.fromhex(value.replace(":", ""))
    except ValueError:
        return None


def _time(value: Any) -> int:
    value = _first(value)
    if value is None:
        raise ImportFormatError("no frame.time_epoch")
    try:
        return seconds_to_ns(value)
    except ValueError:
        pass
    try:
        return iso_to_ns(value)
    except ValueError:
        raise ImportFormatError(f"frame.time_epoch {value!r} is not a time") from None


@dataclass
class _WsFrame:
    opcode: int
    fin: bool
    masked: bool | None
    text: str | None = None
    data: bytes | None = None
    close_code: int | None = None
    close_reason: str | None = None


@dataclass
class _Packet:
    number: int
    ts: int
    src: str | None
    dst: str | None
    sport: int | None
    dport: int | None
    stream: str | None
    fin: bool = False
    rst: bool = False
    request: dict[str, str | None] | None = None
    response: dict[str, str | None] | None = None
    frames: list[_WsFrame] = field(default_factory=list)


def _int(value: Any) -> int | None:
    value = _first(value)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- -T json


def _json_packet(layers: Mapping[str, Any]) -> _Packet:
    frame = layers.get("frame") or {}
    ip = layers.get("ip") or layers.get("ipv6") or {}
    tcp = _first(layers.get("tcp")) or {}
    prefix = "ip" if "ip" in layers else "ipv6"
    packet = _Packet(
        number=_int(_find(frame, "frame.number")) or 0,
        ts=_time(_find(frame, "frame.time_epoch")),
        src=_first(_find(ip, f"{prefix}.src")),
        dst=_first(_find(ip, f"{prefix}.dst")),
        sport=_int(_find(tcp, "tcp.srcport")),
        dport=_int(_find(tcp, "tcp.dstport")),
        stream=_first(_find(tcp, "tcp.stream")),
        fin=_bool(_find(tcp, "tcp.flags.fin")),
        rst=_bool(_find(tcp, "tcp.flags.reset")),
    )
    http = _first(layers.get("http"))
    if isinstance(http, dict):
        _http(packet, lambda key: _first(_find(http, key)))
    data = [_hex(_find(d, "data.data")) for d in _listify(layers.get("data"))]
    data_iter = iter(data)
    for ws in _listify(layers.get("websocket")):
        if not isinstance(ws, dict):
            continue
        opcode = _int(_find(ws, "websocket.opcode"))
        if opcode is None:
            raise ImportFormatError(f"websocket.opcode is {_find(ws, 'websocket.opcode')!r}")
        masked = _find(ws, "websocket.mask")
        wf = _WsFrame(opcode, _bool(_find(ws, "websocket.fin")), None if masked is None else _bool(masked))
        text = _first(_find(ws, "websocket.payload.text"))
        if text is None:
            text = _first(_find(ws, "websocket.payload.text_unmask"))
        if opcode == 8:
            wf.close_code = _int(_find(ws, "websocket.payload.close.status_code"))
            reason = _first(_find(ws, "websocket.payload.close.reason"))
            wf.close_reason = reason if isinstance(reason, str) else None
        elif text is not None:
            wf.text = str(text)
        elif opcode in (0, 1, 2):
            raw = _hex(_find(ws, "websocket.unmask_payload")) or _hex(_find(ws, "websocket.payload"))
            wf.data = raw if raw is not None else next(data_iter, None)
        packet.frames.append(wf)
    return packet


# ---------------------------------------------------------------- -T ek


def _ek_packet(layers: Mapping[str, Any]) -> _Packet:
    frame = layers.get("frame") or {}
    ip = layers.get("ip") or {}
    prefix = "ip_ip"
    if not ip and "ipv6" in layers:
        ip, prefix = layers["ipv6"], "ipv6_ipv6"
    tcp = layers.get("tcp") or {}
    packet = _Packet(
        number=_int(frame.get("frame_frame_number")) or 0,
        ts=_time(frame.get("frame_frame_time_epoch")),
        src=_first(ip.get(f"{prefix}_src")),
        dst=_first(ip.get(f"{prefix}_dst")),
        sport=_int(tcp.get("tcp_tcp_srcport")),
        dport=_int(tcp.get("tcp_tcp_dstport")),
        stream=_first(tcp.get("tcp_tcp_stream")),
        fin=_bool(tcp.get("tcp_tcp_flags_fin")),
        rst=_bool(tcp.get("tcp_tcp_flags_reset")),
    )
    http = layers.get("http")
    if isinstance(http, dict):
        _http(packet, lambda key: _first(http.get("http_" + key.replace(".", "_"))))
    ws = layers.get("websocket")
    if isinstance(ws, dict):
        opcodes = _listify(ws.get("websocket_websocket_opcode"))
        fins = _listify(ws.get("websocket_websocket_fin"))
        masks = _listify(ws.get("websocket_websocket_mask"))
        texts = iter(
            _listify(ws.get("websocket_websocket_payload_text"))
            or _listify(ws.get("websocket_websocket_payload_text_unmask"))
        )
        codes = iter(_listify(ws.get("websocket_websocket_payload_close_status_code")))
        reasons = iter(_listify(ws.get("websocket_websocket_payload_close_reason")))
        data_layer = layers.get("data") if isinstance(layers.get("data"), dict) else {}
        assert isinstance(data_layer, dict)
        data = iter(_listify(data_layer.get("data_data_data")))
        n_text = len(_listify(ws.get("websocket_websocket_payload_text")))
        for k, raw_opcode in enumerate(opcodes):
            opcode = _int(raw_opcode)
            if opcode is None:
                raise ImportFormatError(f"websocket.opcode is {raw_opcode!r}")
            masked = masks[k] if k < len(masks) else None
            wf = _WsFrame(opcode, _bool(fins[k]) if k < len(fins) else True, None if masked is None else _bool(masked))
            if opcode == 8:
                wf.close_code = _int(next(codes, None))
                reason = next(reasons, None)
                wf.close_reason = reason if isinstance(reason, str) else None
            elif opcode == 1 or (opcode == 0 and n_text):
                text = next(texts, None)
                wf.text = None if text is None else str(text)
            elif opcode in (0, 2):
                wf.data = _hex(next(data, None))
            packet.frames.append(wf)
    return packet


def _http(packet: _Packet, get: Any) -> None:
    method = get("http.request.method")
    if method is not None:
        packet.request = {
            "method": method,
            "uri": get("http.request.uri"),
            "user_agent": get("http.user_agent"),
            "upgrade": get("http.upgrade"),
        }
    code = get("http.response.code")
    if code is not None:
        packet.response = {"code": code, "phrase": get("http.response.phrase")}


# ---------------------------------------------------------------- reading


def _sniff(text: str) -> str:
    head = text.lstrip()[:1]
    if head == "[":
        return "json"
    if head == "{":
        return "ek"
    raise ImportFormatError("not tshark output: expected -T json (a JSON array) or -T ek (one JSON object a line)")


def _packets(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """``(packet index, layers)`` for each packet, from either output format."""
    if _sniff(text) == "json":
        start = text.index("[")
        try:
            for index, item in iter_json_array(text, start, object_pairs_hook=_pairs_hook):
                layers = _find(item, "layers") if isinstance(item, dict) else None
                if not isinstance(layers, dict):
                    raise ImportFormatError(f"{name}: packet {index}: no '_source.layers'; is this tshark -T json?")
                yield index, ("json", layers)
        except json.JSONDecodeError as exc:
            failed = getattr(exc, "index", None)
            cut = exc.pos >= len(text.rstrip())
            what = "the file ends inside this packet (cut off?)" if cut else f"invalid JSON: {exc.msg}"
            if failed is None:
                raise json_error(exc, name, "tshark JSON") from None
            raise ImportFormatError(f"{name}: packet {failed} (line {exc.lineno}): {what}") from None
        return
    index = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            cut = lineno == len(text.splitlines()) and not text.endswith("\n")
            what = "the file ends inside this packet (cut off?)" if cut else f"invalid JSON: {exc.msg}"
            raise ImportFormatError(f"{name}: packet {index} (line {lineno}): {what}") from None
        if not isinstance(doc, dict) or "index" in doc:
            continue  # the bulk-index line before each packet
        layers = doc.get("layers")
        if not isinstance(layers, dict):
            raise ImportFormatError(f"{name}: line {lineno}: no 'layers'; is this tshark -T ek?")
        yield index, ("ek", layers)
        index += 1


def import_tshark(
    source: PathLike | bytes,
    out: PathLike | None = None,
    *,
    capture_id: str | None = None,
    server_port: int | None = None,
    path: str | None = None,
    on_error: OnError = "raise",
) -> pd.DataFrame:
    """Import WebSocket connections from tshark ``-T json`` or ``-T ek`` output.

    Parameters
    ----------
    source : path or bytes
        The JSON (array) or EK (newline-delimited) file, or its content.
    out : path, optional
        Capture directory to write; without it nothing is written.
    capture_id : str, optional
        Id of the imported capture; a new one by default.
    server_port : int, optional
        authentik's TCP port, to tell directions in streams whose handshake
        was not captured (masking is used otherwise).
    path : str, optional
        Request path for streams whose handshake was not captured (e.g.
        ``/ws/outpost/<pk>/``); :data:`UNKNOWN_PATH` by default.
    on_error : {"raise", "skip"}
        Raise :class:`~wsreplay.exceptions.ImportFormatError` for a packet that
        cannot be read (default), or skip it and list it in
        ``frames.attrs["import"]["errors"]``.

    Returns
    -------
    pandas.DataFrame
        The frames, as :func:`wsreplay.load` returns them; ``attrs["import"]``
        holds the counts (``packets``, ``connections``, ``messages``, ...).

    Examples
    --------
    >>> frames = wsreplay.import_tshark("outposts.json", out="capture/")  # doctest: +SKIP
    """
    data, name = read_bytes(source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{name}: not tshark output: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise ImportFormatError(f"{name}: the file is empty")
    try:
        _sniff(text)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{name}: {exc}") from None
    cid = new_capture_id(capture_id)
    stats: dict[str, Any] = {}
    packets: list[_Packet] = []
    errors: list[str] = []
    with refuse_deep_nesting(name):
        for index, (kind, layers) in _packets(text, name):
            try:
                packets.append(_json_packet(layers) if kind == "json" else _ek_packet(layers))
            except ImportFormatError as exc:
                number = _int(_find(layers.get("frame"), "frame.number")) or _int(
                    (layers.get("frame") or {}).get("frame_frame_number")
                )
                problem = ImportFormatError(f"{name}: packet {index} (frame {number}): {exc}")
                if on_error == "raise":
                    raise problem from None
                errors.append(str(problem))
        rows = tshark_rows(packets, capture_id=cid, server_port=server_port, path=path, stats=stats)
    stats["errors"] = errors
    return finish(rows, out=out, capture_id=cid, source=name, fmt="tshark", stats=stats)


# ---------------------------------------------------------------- streams -> rows


def tshark_rows(
    packets: list[_Packet],
    *,
    capture_id: str | None = None,
    server_port: int | None = None,
    path: str | None = None,
    stats: dict[str, Any] | None = None,
) -> list[Row]:
    """Capture rows from parsed packets: one connection per TCP stream with a WebSocket in it."""
    stats = {} if stats is None else stats
    cid = capture_id or new_id()
    streams: dict[str, list[_Packet]] = {}
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
    stream: list[_Packet], capture_id: str, server_port: int | None, default_path: str | None, stats: dict[str, Any]
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

    def from_client(p: _Packet, frame: _WsFrame | None = None) -> bool:
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
    status = _int(response.response.get("code")) if response and response.response else None
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
