"""Import the WebSocket connections of a mitmproxy flow file (``mitmdump -w``).

A flow file is a sequence of tnetstring-serialised flow states (see
:mod:`wsreplay.interop.tnetstring`); mitmproxy itself is not needed to read it.
Two shapes of WebSocket flows exist:

* flow format 12 and later (mitmproxy 7+): an ``http`` flow whose
  ``websocket`` object holds ``messages`` -- each
  ``[opcode, from_client, content, timestamp, dropped(, injected)]`` --
  and ``closed_by_client``, ``close_code``, ``close_reason``, ``timestamp_end``;
* before that (mitmproxy 6 and older): the handshake is an ``http`` flow and a
  separate ``websocket`` flow points to it through
  ``metadata.websocket_handshake``, with ``messages``
  ``[opcode, from_client, content, timestamp, killed]`` and ``close_sender``.

``from_client`` frames go ``to_server``. A message mitmproxy did not forward
(its ``dropped`` flag, ``killed`` before mitmproxy 7: an addon called
``drop()``/``kill()``) becomes a ``dropped`` row: payload and decoded columns
as for a ``message``, but the analyses and replay leave it out, since the
other side never received it. The handshake gives the path, the
query string (credential-like parameters dropped), the status, the
User-Agent and the client address; no other header is read. A handshake
refused before the upgrade (a WebSocket ``Upgrade`` answered 403, or no answer)
becomes an ``error`` row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..events import ConnectionLog, new_id
from ..exceptions import ImportFormatError
from ._common import OnError, PathLike, Row, describe, finish, header_value, new_capture_id, read_bytes, scrub_query
from .tnetstring import iter_values

__all__ = ["import_mitm", "mitm_rows", "read_flows"]


def read_flows(data: bytes, name: str = "flow file") -> list[dict[str, Any]]:
    """Parse a flow file's bytes into flow state dicts (keys as ``str``).

    Raises
    ------
    ImportFormatError
        Naming the flow (from 0) and the byte where the data breaks.
    """
    flows: list[dict[str, Any]] = []
    it = iter_values(data)
    start = 0
    while True:
        try:
            item = next(it, None)
        except ImportFormatError as exc:
            cut = "the data ends at byte" in str(exc)
            what = "the file ends inside this flow (cut off?)" if cut else str(exc)
            raise ImportFormatError(f"{name}: flow {len(flows)} (starting at byte {start}): {what}") from None
        if item is None:
            return flows
        offset, value, start = item
        if not isinstance(value, dict):
            raise ImportFormatError(
                f"{name}: flow {len(flows)} (starting at byte {offset}) is a {type(value).__name__}, "
                "not a flow; is this a mitmproxy flow file?"
            )
        flows.append(value)


def import_mitm(
    source: PathLike | bytes,
    out: PathLike | None = None,
    *,
    capture_id: str | None = None,
    on_error: OnError = "raise",
) -> pd.DataFrame:
    """Import the WebSocket connections of a mitmproxy flow file.

    Parameters
    ----------
    source : path or bytes
        A ``.mitm`` / ``.flows`` file written by ``mitmdump -w`` or saved from
        mitmproxy/mitmweb (or its content).
    out : path, optional
        Capture directory to write; without it nothing is written.
    capture_id : str, optional
        Id of the imported capture; a new one by default.
    on_error : {"raise", "skip"}
        Raise :class:`~wsreplay.exceptions.ImportFormatError` for a flow that
        cannot be read (default), or skip it and list it in
        ``frames.attrs["import"]["errors"]``.

    Returns
    -------
    pandas.DataFrame
        The frames, as :func:`wsreplay.load` returns them; ``attrs["import"]``
        holds the counts.

    Examples
    --------
    >>> frames = wsreplay.import_mitm("outposts.mitm", out="capture/")
    >>> frames.attrs["import"]["connections"], frames.attrs["import"]["messages"]
    (5, 16)
    """
    data, name = read_bytes(source)
    if not data.strip():
        raise ImportFormatError(f"{name}: the file is empty")
    if not data[:1].isdigit():
        raise ImportFormatError(f"{name}: not a mitmproxy flow file (it should start with a tnetstring length)")
    flows = read_flows(data, name)
    cid = new_capture_id(capture_id)
    stats: dict[str, Any] = {}
    rows = mitm_rows(flows, capture_id=cid, on_error=on_error, stats=stats, name=name)
    return finish(rows, out=out, capture_id=cid, source=name, fmt="mitm", stats=stats)


def mitm_rows(
    flows: Sequence[Mapping[str, Any]],
    *,
    capture_id: str | None = None,
    on_error: OnError = "raise",
    stats: dict[str, Any] | None = None,
    name: str = "flow file",
) -> list[Row]:
    """Capture rows of the WebSocket flows among parsed flow states (no I/O)."""
    stats = {} if stats is None else stats
    cid = capture_id or new_id()
    stats.update(flows=len(flows), connections=0, messages=0, dropped=0, skipped_flows=0, errors=[])
    handshakes = {
        _text(f.get("id")): f
        for f in flows
        if _text(f.get("type")) == "http" and isinstance(f.get("metadata"), Mapping) and f["metadata"].get("websocket")
    }
    rows: list[Row] = []
    for index, flow in enumerate(flows):
        kind = _text(flow.get("type"))
        websocket: Mapping[str, Any] | None = None
        handshake: Mapping[str, Any] = flow
        old_style = False
        if kind == "http" and isinstance(flow.get("websocket"), Mapping):
            websocket = flow["websocket"]
        elif kind == "websocket":  # flow format < 12
            meta = flow.get("metadata") if isinstance(flow.get("metadata"), Mapping) else {}
            assert isinstance(meta, Mapping)
            handshake = handshakes.get(_text(meta.get("websocket_handshake")), {}) or {}
            websocket = flow
            old_style = True
        elif kind == "http" and _is_refused_upgrade(flow) and _text(flow.get("id")) not in handshakes:
            websocket = None
        else:
            stats["skipped_flows"] += 1
            continue
        try:
            flow_rows = _flow_rows(flow, handshake, websocket, old_style, cid)
        except ImportFormatError as exc:
            problem = ImportFormatError(f"{name}: flow {index}{describe(_path(handshake))}: {exc}")
            if on_error == "raise":
                raise problem from None
            stats["errors"].append(str(problem))
            continue
        rows.extend(flow_rows)
        stats["connections"] += 1
        stats["messages"] += sum(1 for r in flow_rows if r["event"] == "message")
        stats["dropped"] += sum(1 for r in flow_rows if r["event"] == "dropped")
    return rows


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _request(flow: Mapping[str, Any]) -> Mapping[str, Any]:
    request = flow.get("request")
    return request if isinstance(request, Mapping) else {}


def _path(flow: Mapping[str, Any]) -> str | None:
    path = _text(_request(flow).get("path"))
    return path.split("?", 1)[0] if path else None


def _is_refused_upgrade(flow: Mapping[str, Any]) -> bool:
    request = _request(flow)
    if (header_value(request.get("headers"), "Upgrade") or "").lower() != "websocket":
        return False
    response = flow.get("response")
    return not isinstance(response, Mapping) or response.get("status_code") != 101


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImportFormatError(f"{what} is {value!r}, expected epoch seconds")
    return float(value)


def _ns(seconds: float) -> int:
    from ._common import seconds_to_ns

    return seconds_to_ns(seconds)


def _peer(flow: Mapping[str, Any]) -> str | None:
    conn = flow.get("client_conn")
    if not isinstance(conn, Mapping):
        return None
    address = conn.get("peername") or conn.get("address")
    if isinstance(address, Mapping):  # flow format < 2
        address = address.get("address")
    if isinstance(address, (list, tuple)) and len(address) >= 2:
        host = _text(address[0]) or str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return None


def _flow_rows(
    flow: Mapping[str, Any],
    handshake: Mapping[str, Any],
    websocket: Mapping[str, Any] | None,
    old_style: bool,
    capture_id: str,
) -> list[Row]:
    request = _request(handshake)
    raw_path = _text(request.get("path"))
    if not raw_path:
        raise ImportFormatError("the handshake request has no path")
    path, _, query = raw_path.partition("?")
    log = ConnectionLog(capture_id, path, scrub_query(query))
    user_agent = header_value(request.get("headers"), "User-Agent")
    response = handshake.get("response")
    response = response if isinstance(response, Mapping) else None
    status = response.get("status_code") if response else None
    started = request.get("timestamp_start")
    error = flow.get("error") if isinstance(flow.get("error"), Mapping) else None

    messages = websocket.get("messages") if websocket is not None else []
    if messages is None:
        messages = []
    if not isinstance(messages, list):
        raise ImportFormatError("websocket.messages is not a list")
    parsed = [_message(m, j) for j, m in enumerate(messages)]
    parsed.sort(key=lambda m: m[0])

    if started is None:
        started = parsed[0][0] / 1e9 if parsed else None
    if started is None:
        raise ImportFormatError("the handshake request has no timestamp_start")
    open_ns = _ns(_number(started, "request.timestamp_start"))
    if parsed:
        open_ns = min(open_ns, parsed[0][0])
    rows: list[Row] = []
    if websocket is None or (status is not None and status != 101):
        if status is not None:
            reason = _text(response.get("reason")) if response else None
            text = f"handshake refused: HTTP {status} {reason or ''}".strip()
        else:
            text = (_text(error.get("msg")) if error else None) or "no response to the WebSocket handshake"
        rows.append(log.error(open_ns, text, status=status))
        return rows

    rows.append(log.open(open_ns, status=status, user_agent=user_agent, peer=_peer(handshake) or _peer(flow)))
    for ts, direction, content, opcode, dropped in parsed:
        if opcode in (1, 2):
            row = log.message(ts, direction, content, opcode="text" if opcode == 1 else "binary")
            if dropped:  # never forwarded: the other side did not get it
                row["event"] = "dropped"
            rows.append(row)

    last = rows[-1]["ts"]
    if old_style:
        sender = _text(websocket.get("close_sender"))
        closed_by_client: bool | None = None if sender is None else sender == "client"
        end = None
    else:
        closed_by_client = websocket.get("closed_by_client")
        end = websocket.get("timestamp_end")
    code = websocket.get("close_code")
    reason = _text(websocket.get("close_reason"))
    if closed_by_client is not None or code is not None:
        end_ns = _ns(_number(end, "websocket.timestamp_end")) if end is not None else last
        direction = "to_server" if closed_by_client else "to_peer"
        code = code if isinstance(code, int) else None
        rows.append(log.close(max(end_ns, last), direction, code=code, reason=reason))
    elif error is not None:
        at = error.get("timestamp")
        err_ns = _ns(_number(at, "error.timestamp")) if at is not None else last
        rows.append(log.error(max(err_ns, last), _text(error.get("msg")) or "connection error"))
    return rows


def _message(message: Any, j: int) -> tuple[int, str, bytes, int, bool]:
    """``(ts, direction, content, opcode, dropped)`` of one message state.

    The fifth item, when present, is ``dropped`` (mitmproxy 7+: ``WebSocketMessage.drop()``)
    or ``killed`` (mitmproxy 3 to 6: ``kill()``): mitmproxy did not forward the message.
    """
    if not isinstance(message, (list, tuple)) or len(message) < 4:
        raise ImportFormatError(f"message {j} is not [opcode, from_client, content, timestamp, ...]")
    opcode, from_client, content, timestamp = message[:4]
    dropped = message[4] if len(message) > 4 else False
    if not isinstance(dropped, bool):
        raise ImportFormatError(f"message {j}: dropped is {dropped!r}, expected true or false")
    if not isinstance(opcode, int) or isinstance(opcode, bool):
        raise ImportFormatError(f"message {j} has opcode {opcode!r}; expected 1 (text) or 2 (binary)")
    if not isinstance(from_client, bool):
        raise ImportFormatError(f"message {j}: from_client is {from_client!r}, expected true or false")
    if isinstance(content, str):  # flow files written by mitmproxy < 5 under Python 2 conversion
        content = content.encode("utf-8", "surrogateescape")
    if not isinstance(content, bytes):
        raise ImportFormatError(f"message {j}: content is {type(content).__name__}, expected bytes")
    if timestamp is None:
        raise ImportFormatError(f"message {j} has no timestamp")
    ts = _ns(_number(timestamp, f"message {j} timestamp"))
    return ts, "to_server" if from_client else "to_peer", content, opcode, dropped
