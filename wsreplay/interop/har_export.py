"""Export a capture as a HAR 1.2 file that Chrome DevTools and Playwright open.

One entry per WebSocket connection, shaped like the entries DevTools writes
for WebSockets: a ``GET`` of the ``ws://`` URL answered ``101``,
``_resourceType: "websocket"``, and the frames in ``_webSocketMessages``
(``send`` = peer to authentik, ``receive`` = authentik to peer, ``time`` in
epoch seconds, opcode 1 text or 2 binary with base64 data). A refused
handshake is an entry with its HTTP status and no messages.

What HAR has no field for (connection ids, close codes, error rows, the
peer address, exact nanosecond times) goes into a ``_wsreplay`` object per
entry, which viewers ignore and :func:`wsreplay.import_har` reads back, so
capture -> HAR -> import gives the same frames.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

from .. import __version__
from ..exceptions import CaptureFormatError, ConfigurationError
from ..schema import FORMAT_VERSION
from ._common import PathLike

__all__ = ["export_har", "frames_to_har"]

_COLUMNS = [
    "capture_id",
    "conn_id",
    "seq",
    "path",
    "query",
    "event",
    "direction",
    "opcode",
    "payload",
    "payload_bytes",
    "close_code",
    "close_reason",
    "status",
    "user_agent",
    "peer",
]


def export_har(
    capture: PathLike | pd.DataFrame,
    path: PathLike,
    *,
    base_url: str = "ws://authentik",
    start: Any = None,
    end: Any = None,
    endpoint: str | list[str] | None = None,
    outpost: str | list[str] | None = None,
) -> Path:
    """Write a capture's connections as a HAR file.

    Parameters
    ----------
    capture : path or DataFrame
        A capture directory or file, or frames as :func:`wsreplay.load` returns them.
    path : path
        The ``.har`` file to write.
    base_url : str
        Scheme and host for the entries' URLs (captures store only paths):
        ``ws://authentik.example.com``; ``http(s)://`` becomes ``ws(s)://``.
    start, end, endpoint, outpost
        Filters passed to :func:`wsreplay.load` when *capture* is a path.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> wsreplay.export_har("sample_captures/recorded", "capture.har", base_url="wss://auth.example.com")
    PosixPath('capture.har')
    """
    if isinstance(capture, pd.DataFrame):
        frames = capture
    else:
        from ..store import load

        frames = load(capture, start=start, end=end, endpoint=endpoint, outpost=outpost)
    har = frames_to_har(frames, base_url=base_url)
    target = Path(path)
    if target.is_dir():
        raise ConfigurationError(f"{target} is a directory; give the .har file to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(har, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    tmp.replace(target)
    return target


def _ws_base(base_url: str) -> tuple[str, str]:
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigurationError(f"base_url {base_url!r} must look like ws://host or https://host")
    return f"{scheme}://{parts.netloc}", parts.netloc


def _iso_ms(ns: int) -> str:
    seconds, ms = divmod(ns // 1_000_000, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def _records(frames: pd.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in ("ts", "conn_id", "seq", "event") if c not in frames.columns]
    if missing:
        raise CaptureFormatError(f"cannot export: the frames lack column(s) {', '.join(missing)}")
    df = frames.reset_index(drop=True)
    cols = [c for c in _COLUMNS if c in df.columns]
    sub = df[cols].astype(object)
    sub = sub.where(df[cols].notna(), None)
    records: list[dict[str, Any]] = sub.to_dict("records")  # type: ignore[assignment]
    ts = pd.DatetimeIndex(df["ts"]).as_unit("ns").asi8
    for record, t in zip(records, ts, strict=True):
        record["ts"] = int(t)
        for col in _COLUMNS:
            record.setdefault(col, None)
    return records


def frames_to_har(frames: pd.DataFrame, *, base_url: str = "ws://authentik") -> dict[str, Any]:
    """The HAR document (a dict) for a frames DataFrame; see :func:`export_har`."""
    base, host = _ws_base(base_url)
    connections: dict[str, list[dict[str, Any]]] = {}
    for record in _records(frames):
        connections.setdefault(str(record["conn_id"]), []).append(record)
    entries = []
    for rows in connections.values():
        rows.sort(key=lambda r: (r["seq"], r["ts"]))
        entries.append(_entry(rows, base, host))
    entries.sort(key=lambda e: e["_wsreplay"]["start"])
    capture_ids = sorted({str(e["_wsreplay"]["capture_id"]) for e in entries if e["_wsreplay"]["capture_id"]})
    log: dict[str, Any] = {
        "version": "1.2",
        "creator": {"name": "wsreplay", "version": __version__},
        "pages": [],
        "entries": entries,
        "_wsreplay": {"format_version": FORMAT_VERSION},
    }
    if len(capture_ids) == 1:
        log["_wsreplay"]["capture_id"] = capture_ids[0]
    return {"log": log}


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _entry(rows: list[dict[str, Any]], base: str, host: str) -> dict[str, Any]:
    first = rows[0]
    opened = next((r for r in rows if r["event"] == "open"), None)
    head = opened or first
    path = str(head["path"] or "/")
    query = str(head["query"] or "")
    url = base + path + (f"?{query}" if query else "")
    start_ns = head["ts"] if opened else min(r["ts"] for r in rows)
    end_ns = max(r["ts"] for r in rows)
    duration_ms = max(end_ns - start_ns, 0) / 1e6

    refused = next((r for r in rows if r["event"] == "error"), None) if opened is None else None
    if opened is not None:
        status = int(opened["status"]) if opened["status"] is not None else 101
    elif refused is not None and refused["status"] is not None:
        status = int(refused["status"])
    else:
        status = 101 if any(r["event"] == "message" for r in rows) else 0

    user_agent = head["user_agent"]
    request_headers = [
        {"name": "Host", "value": host},
        {"name": "Upgrade", "value": "websocket"},
        {"name": "Connection", "value": "Upgrade"},
        {"name": "Sec-WebSocket-Version", "value": "13"},
    ]
    if user_agent:
        request_headers.append({"name": "User-Agent", "value": str(user_agent)})
    response_headers = (
        [{"name": "Upgrade", "value": "websocket"}, {"name": "Connection", "value": "Upgrade"}] if status == 101 else []
    )

    messages = []
    events = []
    for r in rows:
        if r["event"] == "message":
            messages.append(_message(r))
            continue
        event = {
            "seq": int(r["seq"]),
            "event": r["event"],
            "ts": r["ts"],
            "direction": r["direction"],
            "code": None if r["close_code"] is None else int(r["close_code"]),
            "reason": r["close_reason"],
            "status": None if r["status"] is None else int(r["status"]),
            "peer": r["peer"],
            # a message a proxy did not forward: not in _webSocketMessages (DevTools would show it as sent)
            "message": _message(r) if r["event"] == "dropped" else None,
        }
        events.append({k: v for k, v in event.items() if v is not None})

    return {
        "startedDateTime": _iso_ms(start_ns),
        "time": duration_ms,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": request_headers,
            "queryString": [{"name": k, "value": v} for k, v in parse_qsl(query, keep_blank_values=True)],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": _reason_phrase(status) if status else "",
            "httpVersion": "HTTP/1.1" if status else "",
            "headers": response_headers,
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1 if status == 101 else 0,
            "_transferSize": 0,
            "_error": None if refused is None else refused["close_reason"],
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "ssl": -1,
            "connect": -1,
            "send": 0,
            "wait": duration_ms,
            "receive": 0,
            "_blocked_queueing": -1,
        },
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
        "_wsreplay": {
            "capture_id": first["capture_id"],
            "conn_id": first["conn_id"],
            "start": start_ns,
            "events": events,
        },
    }


def _message(r: dict[str, Any]) -> dict[str, Any]:
    kind = "send" if r["direction"] == "to_server" else "receive"
    time = (r["ts"] + 500) // 1000 / 1e6  # microseconds: the precision of DevTools' own times
    payload, raw = r["payload"], r["payload_bytes"]
    if r["opcode"] == "binary":
        return {"type": kind, "time": time, "opcode": 2, "data": base64.b64encode(raw or b"").decode("ascii")}
    if payload is None and raw is not None:  # text that was not valid UTF-8: show it, keep the bytes
        return {
            "type": kind,
            "time": time,
            "opcode": 1,
            "data": bytes(raw).decode("utf-8", "replace"),
            "_raw": base64.b64encode(raw).decode("ascii"),
        }
    return {"type": kind, "time": time, "opcode": 1, "data": payload or ""}
