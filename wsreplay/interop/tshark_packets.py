"""Parse tshark's ``-T json`` and ``-T ek`` output into packets: addresses, HTTP handshake, WebSocket frames.

Both formats carry the same fields under different names: ``-T json`` nests
them in layer trees (and repeats keys, kept by :class:`_Many`), ``-T ek``
flattens them to ``<layer>_<layer>_<field>`` keys, one packet a line after
its bulk-index line. Each packet becomes a :class:`Packet`, whatever the
format; :mod:`wsreplay.interop.tshark_streams` turns packets into rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ImportFormatError
from ..timeutil import iso_to_ns
from ._common import iter_json_array, json_error, seconds_to_ns

__all__ = ["Packet", "WsFrame", "sniff_output", "iter_layers", "parse_packet", "frame_number", "as_int"]


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
class WsFrame:
    """One WebSocket frame of a packet: opcode, flags and the payload tshark decoded."""

    opcode: int
    fin: bool
    masked: bool | None
    text: str | None = None
    data: bytes | None = None
    close_code: int | None = None
    close_reason: str | None = None


@dataclass
class Packet:
    """One packet: number, time, TCP endpoints and stream, FIN/RST, the HTTP handshake part and the frames."""

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
    frames: list[WsFrame] = field(default_factory=list)


def as_int(value: Any) -> int | None:
    """A field's (first) value as an integer, ``None`` when it is missing or not a number."""
    value = _first(value)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- -T json


def _json_packet(layers: Mapping[str, Any]) -> Packet:
    frame = layers.get("frame") or {}
    ip = layers.get("ip") or layers.get("ipv6") or {}
    tcp = _first(layers.get("tcp")) or {}
    prefix = "ip" if "ip" in layers else "ipv6"
    packet = Packet(
        number=as_int(_find(frame, "frame.number")) or 0,
        ts=_time(_find(frame, "frame.time_epoch")),
        src=_first(_find(ip, f"{prefix}.src")),
        dst=_first(_find(ip, f"{prefix}.dst")),
        sport=as_int(_find(tcp, "tcp.srcport")),
        dport=as_int(_find(tcp, "tcp.dstport")),
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
        opcode = as_int(_find(ws, "websocket.opcode"))
        if opcode is None:
            raise ImportFormatError(f"websocket.opcode is {_find(ws, 'websocket.opcode')!r}")
        masked = _find(ws, "websocket.mask")
        wf = WsFrame(opcode, _bool(_find(ws, "websocket.fin")), None if masked is None else _bool(masked))
        text = _first(_find(ws, "websocket.payload.text"))
        if text is None:
            text = _first(_find(ws, "websocket.payload.text_unmask"))
        if opcode == 8:
            wf.close_code = as_int(_find(ws, "websocket.payload.close.status_code"))
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


def _ek_packet(layers: Mapping[str, Any]) -> Packet:
    frame = layers.get("frame") or {}
    ip = layers.get("ip") or {}
    prefix = "ip_ip"
    if not ip and "ipv6" in layers:
        ip, prefix = layers["ipv6"], "ipv6_ipv6"
    tcp = layers.get("tcp") or {}
    packet = Packet(
        number=as_int(frame.get("frame_frame_number")) or 0,
        ts=_time(frame.get("frame_frame_time_epoch")),
        src=_first(ip.get(f"{prefix}_src")),
        dst=_first(ip.get(f"{prefix}_dst")),
        sport=as_int(tcp.get("tcp_tcp_srcport")),
        dport=as_int(tcp.get("tcp_tcp_dstport")),
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
            opcode = as_int(raw_opcode)
            if opcode is None:
                raise ImportFormatError(f"websocket.opcode is {raw_opcode!r}")
            masked = masks[k] if k < len(masks) else None
            wf = WsFrame(opcode, _bool(fins[k]) if k < len(fins) else True, None if masked is None else _bool(masked))
            if opcode == 8:
                wf.close_code = as_int(next(codes, None))
                reason = next(reasons, None)
                wf.close_reason = reason if isinstance(reason, str) else None
            elif opcode == 1 or (opcode == 0 and n_text):
                text = next(texts, None)
                wf.text = None if text is None else str(text)
            elif opcode in (0, 2):
                wf.data = _hex(next(data, None))
            packet.frames.append(wf)
    return packet


def _http(packet: Packet, get: Any) -> None:
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


def sniff_output(text: str) -> str:
    """``"json"`` for ``-T json`` output (a JSON array), ``"ek"`` for ``-T ek`` (one object a line)."""
    head = text.lstrip()[:1]
    if head == "[":
        return "json"
    if head == "{":
        return "ek"
    raise ImportFormatError("not tshark output: expected -T json (a JSON array) or -T ek (one JSON object a line)")


def iter_layers(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """``(packet index, (kind, layers))`` for each packet of either format (*kind* as :func:`sniff_output`)."""
    if sniff_output(text) == "json":
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


def parse_packet(kind: str, layers: Mapping[str, Any]) -> Packet:
    """The :class:`Packet` of one packet's layers, as :func:`iter_layers` yields them (*kind* and layers)."""
    return _json_packet(layers) if kind == "json" else _ek_packet(layers)


def frame_number(layers: Mapping[str, Any]) -> int | None:
    """The ``frame.number`` of a packet's layers in either format, to name a packet that cannot be read."""
    return as_int(_find(layers.get("frame"), "frame.number")) or as_int(
        (layers.get("frame") or {}).get("frame_frame_number")
    )
