"""Turn the WebSocket entries of a parsed HAR into capture rows (no I/O of its own).

An entry is a WebSocket handshake if :func:`is_websocket_entry` says so; its
``_webSocketMessages`` (or the messages Playwright attached in a ``.jsonl``
file, read through *resources*) become ``message``/``close``/``error`` rows,
after an ``open`` row for a ``101`` answer or an ``error`` row for a refused
handshake. An entry exported by wsreplay (``_wsreplay.events``) is rebuilt
event by event. :mod:`wsreplay.interop.har` describes the format.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..events import ConnectionLog, new_id
from ..exceptions import ImportFormatError
from ..timeutil import iso_to_ns
from ._common import OnError, Row, describe, header_value, scrub_query, seconds_to_ns

__all__ = ["har_rows", "is_websocket_entry", "url_path", "Resources"]

_DIRECTIONS = {"send": "to_server", "receive": "to_peer"}
#: Message times at or above this many seconds are read as milliseconds (Playwright writes ``wallTimeMs``).
_MS_THRESHOLD_NS = 100_000_000_000 * 1_000_000_000
#: Reads an attached file (Playwright's ``_file``) by name; ``None`` when it is not available.
Resources = Callable[[str], bytes | None]


def _no_resources(_name: str) -> bytes | None:
    return None


def url_path(url: str) -> str:
    """The path of a HAR entry's URL, to name the entry in an error (the URL itself if it has none)."""
    try:
        return urlsplit(url).path or url
    except ValueError:
        return url


def is_websocket_entry(entry: Mapping[str, Any]) -> bool:
    """True if a HAR entry is a WebSocket handshake (with or without messages)."""
    if str(entry.get("_resourceType", "")).lower() == "websocket" or "_webSocketMessages" in entry:
        return True
    request = entry.get("request")
    response = entry.get("response")
    if isinstance(request, Mapping):
        url = request.get("url")
        if isinstance(url, str) and url.lower().startswith(("ws://", "wss://")):
            return True
        if (header_value(request.get("headers"), "Upgrade") or "").lower() == "websocket":
            return True
    return isinstance(response, Mapping) and response.get("status") == 101


def har_rows(
    har: Mapping[str, Any],
    *,
    capture_id: str | None = None,
    on_error: OnError = "raise",
    stats: dict[str, Any] | None = None,
    name: str = "HAR",
    resources: Resources | None = None,
) -> list[Row]:
    """Capture rows of the WebSocket entries of a parsed HAR (no I/O of its own).

    See :func:`import_har` for the parameters; *stats* (a dict) receives the
    counts; *resources* reads attached files by name (Playwright's ``_file``).
    """
    stats = {} if stats is None else stats
    entries = har["log"]["entries"]
    fallback_id = capture_id or _log_capture_id(har) or new_id()
    stats.update(entries=len(entries), connections=0, messages=0, skipped_entries=0, errors=[])
    stats.setdefault("capture_id", fallback_id)
    rows: list[Row] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problem = ImportFormatError(f"{name}: entry {index}: not an object")
        elif not is_websocket_entry(entry):
            stats["skipped_entries"] += 1
            continue
        else:
            try:
                entry_rows = _entry_rows(entry, capture_id, fallback_id, resources or _no_resources)
            except ImportFormatError as exc:
                problem = ImportFormatError(f"{name}: entry {index}{describe(_entry_path(entry))}: {exc}")
            else:
                rows.extend(entry_rows)
                stats["connections"] += 1
                stats["messages"] += sum(1 for r in entry_rows if r["event"] == "message")
                continue
        if on_error == "raise":
            raise problem
        stats["errors"].append(str(problem))
    return rows


def _entry_path(entry: Mapping[str, Any]) -> str | None:
    request = entry.get("request")
    url = request.get("url") if isinstance(request, Mapping) else None
    return url_path(url) if isinstance(url, str) else None


def _log_capture_id(har: Mapping[str, Any]) -> str | None:
    ext = har["log"].get("_wsreplay")
    if isinstance(ext, Mapping) and isinstance(ext.get("capture_id"), str):
        return str(ext["capture_id"])
    return None


def _attached_messages(response: Mapping[str, Any], resources: Resources) -> list[Any] | None:
    """Playwright's ``content: "attach"``: the messages as JSON lines in ``response.content._file``."""
    content = response.get("content")
    file = content.get("_file") if isinstance(content, Mapping) else None
    if not isinstance(file, str) or not file.endswith(".jsonl"):
        return None
    data = resources(file)
    if data is None:
        raise ImportFormatError(
            f"its messages are in the attached file {file!r}, which is not here: "
            "import the .zip Playwright wrote, or put the file beside the .har"
        )
    messages = []
    for lineno, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if line.strip():
            try:
                messages.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ImportFormatError(f"{file} line {lineno}: not JSON: {exc.msg}") from None
    return messages


def _entry_rows(entry: Mapping[str, Any], capture_id: str | None, fallback_id: str, resources: Resources) -> list[Row]:
    request = entry.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("url"), str):
        raise ImportFormatError("no 'request.url'")
    url = request["url"]
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ImportFormatError(f"request.url is not a URL: {exc}") from None
    path = parts.path or "/"
    ext = entry.get("_wsreplay") if isinstance(entry.get("_wsreplay"), Mapping) else {}
    assert isinstance(ext, Mapping)
    cid = capture_id or (ext.get("capture_id") if isinstance(ext.get("capture_id"), str) else None) or fallback_id
    log = ConnectionLog(cid, path, scrub_query(parts.query), conn_id=ext.get("conn_id") or None)
    try:
        started = iso_to_ns(entry.get("startedDateTime"))
    except ValueError as exc:
        raise ImportFormatError(f"startedDateTime: {exc}") from None
    response = entry.get("response") if isinstance(entry.get("response"), Mapping) else {}
    assert isinstance(response, Mapping)
    status = response.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) and status > 0 else None
    user_agent = header_value(request.get("headers"), "User-Agent")

    messages = entry.get("_webSocketMessages")
    if messages is None:
        messages = _attached_messages(response, resources) or []
    if not isinstance(messages, list):
        raise ImportFormatError("'_webSocketMessages' is not a list")
    parsed = [_message(m, j, started) for j, m in enumerate(messages)]
    parsed.sort(key=lambda m: m[0])

    events = ext.get("events")
    if isinstance(events, list) and events:
        return _rows_with_events(log, events, parsed, user_agent)

    rows: list[Row] = []
    first = min([started, *(m[0] for m in parsed)])
    if status == 101 or (not status and parsed):
        rows.append(log.open(first, status=status or None, user_agent=user_agent))
    elif not status:
        reason = response.get("_error") or response.get("_failureText") or "no response to the WebSocket handshake"
        rows.append(log.error(first, str(reason), status=None))
        return rows
    else:
        text = str(response.get("statusText") or "").strip()
        rows.append(log.error(first, f"handshake refused: HTTP {status} {text}".strip(), status=status))
        return rows
    for message in parsed:
        row = _apply(log, message)
        if row is not None:
            rows.append(row)
    return rows


#: (ts, kind, direction, payload, opcode name, close code)
_Message = tuple[int, str, str | None, Any, str | None, int | None]


def _message(msg: Any, j: int, started: int) -> _Message:
    if not isinstance(msg, Mapping):
        raise ImportFormatError(f"message {j} is not an object")
    kind = msg.get("type")
    if kind not in ("send", "receive", "error"):
        raise ImportFormatError(f"message {j} has type {kind!r}; expected 'send' or 'receive'")
    if "time" not in msg:
        raise ImportFormatError(f"message {j} has no 'time'")
    try:
        ts = seconds_to_ns(msg["time"])
    except ValueError:
        raise ImportFormatError(f"message {j}: 'time' {msg['time']!r} is not epoch seconds") from None
    if ts == -1_000_000_000:  # Playwright with omitTiming: no time at all
        ts = started
    elif abs(ts) >= _MS_THRESHOLD_NS:  # Playwright: epoch milliseconds
        ts //= 1000
    if "data" not in msg:
        raise ImportFormatError(f"message {j} has no 'data'")
    data = msg["data"]
    if data is None:
        data = ""
    if not isinstance(data, str):
        raise ImportFormatError(f"message {j}: 'data' is {type(data).__name__}, expected a string")
    if kind == "error":
        return (ts, "error", None, data, None, None)
    direction = _DIRECTIONS[kind]
    if "opcode" not in msg:
        raise ImportFormatError(f"message {j} has no 'opcode'")
    opcode = msg["opcode"]
    if opcode == 1:
        raw = msg.get("_raw")
        if isinstance(raw, str):  # wsreplay export: text that was not valid UTF-8, kept byte for byte
            return (ts, "message", direction, _b64(raw, j), "text", None)
        return (ts, "message", direction, data, "text", None)
    if opcode == 2:
        return (ts, "message", direction, _b64(data, j), "binary", None)
    if opcode == 8:
        payload = _b64_or_none(data)
        code = int.from_bytes(payload[:2], "big") if payload and len(payload) >= 2 else None
        reason = payload[2:].decode("utf-8", "replace") if payload and len(payload) > 2 else None
        if code is None and data.strip().isdigit():
            code = int(data.strip())
        return (ts, "close", direction, reason, None, code)
    if opcode in (9, 10):
        return (ts, "control", direction, None, None, None)
    raise ImportFormatError(f"message {j} has opcode {opcode!r}; expected 1 (text) or 2 (binary)")


def _b64(data: str, j: int) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImportFormatError(f"message {j}: binary 'data' is not valid base64") from None


def _b64_or_none(data: str) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _apply(log: ConnectionLog, message: _Message) -> Row | None:
    ts, kind, direction, payload, opcode, code = message
    if kind == "message":
        assert direction is not None
        return log.message(ts, direction, payload, opcode=opcode)
    if kind == "error":
        return log.error(ts, payload or "WebSocket error", direction=None)
    if kind == "close" and not log.closed:
        assert direction is not None
        return log.close(ts, direction, code=code, reason=payload)
    return None  # pings, pongs, the echo of a close


def _rows_with_events(
    log: ConnectionLog, events: list[Any], messages: list[_Message], user_agent: str | None
) -> list[Row]:
    """Rebuild a connection exported by wsreplay: events at their seq, messages in between."""
    by_seq: dict[int, Mapping[str, Any]] = {}
    for k, event in enumerate(events):
        if not isinstance(event, Mapping) or not isinstance(event.get("seq"), int):
            raise ImportFormatError(f"_wsreplay.events[{k}] has no integer 'seq'")
        by_seq[event["seq"]] = event
    rows: list[Row] = []
    pending = iter(m for m in messages if m[1] != "control")
    total = len(by_seq) + sum(1 for m in messages if m[1] != "control")
    for seq in range(total):
        event = by_seq.get(seq)
        if event is None:
            message = next(pending, None)
            if message is None:
                raise ImportFormatError(f"_wsreplay.events leave seq {seq} without a message")
            row = _apply(log, message)
            if row is not None:
                rows.append(row)
            continue
        try:
            ts = int(event["ts"])
        except (KeyError, TypeError, ValueError):
            raise ImportFormatError(f"_wsreplay event seq {seq} has no integer 'ts'") from None
        kind = event.get("event")
        if kind == "open":
            rows.append(log.open(ts, status=event.get("status"), user_agent=user_agent, peer=event.get("peer")))
        elif kind == "close":
            direction: Any = event.get("direction")
            rows.append(log.close(ts, direction, code=event.get("code"), reason=event.get("reason")))
        elif kind == "error":
            reason: Any = event.get("reason")  # may be null, as in the capture
            rows.append(log.error(ts, reason, status=event.get("status"), direction=event.get("direction")))
        elif kind == "dropped":  # a message a proxy did not forward, kept with its payload
            _, what, to, payload, opcode, _ = _message(event.get("message"), seq, ts)
            if what != "message" or to is None:
                raise ImportFormatError(f"_wsreplay event seq {seq}: a dropped message needs a text or binary frame")
            row = log.message(ts, to, payload, opcode=opcode)
            row["event"] = "dropped"
            rows.append(row)
        else:
            raise ImportFormatError(f"_wsreplay event seq {seq} has unknown kind {kind!r}")
    return rows
