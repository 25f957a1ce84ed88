"""Building the replay scripts of a capture, without I/O.

:func:`build_plan` reads the frames DataFrame of a capture and returns a
:class:`~wsreplay.playback.script.ReplayPlan`: one script per recorded
connection (see :mod:`~wsreplay.playback.script` for what a script holds and
which server frames are replies). Filters (endpoint, outpost, connection, time
window) and the ``--map OLD=NEW`` outpost mapping are applied here; speed is
applied when a driver asks for a time (:func:`scale`).

Nothing here reads a clock, opens a socket or starts a loop.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..protocol import classify_path, outpost_path
from ..timeutil import to_ns
from .script import ABRUPT_CODES, CloseInfo, ConnectionScript, Expected, ReplayPlan, Send, frame_label, is_reply

__all__ = [
    "MAX_SPEED",
    "MIN_SPEED",
    "build_plan",
    "parse_speed",
    "parse_mapping",
    "scale",
]

#: Slowest and fastest finite ``speed`` factors.
MIN_SPEED: Final = 0.1
MAX_SPEED: Final = 1000.0
_PK_RE: Final = re.compile(r"^[^/?#\s]+$")
_COLUMNS: Final = (
    "ts",
    "conn_id",
    "seq",
    "endpoint",
    "path",
    "query",
    "outpost_uuid",
    "instance_uuid",
    "event",
    "direction",
    "opcode",
    "payload",
    "payload_bytes",
    "instruction_name",
    "message_type",
    "close_code",
    "close_reason",
    "status",
    "user_agent",
    "parse_error",
)


def parse_speed(value: str | float | None) -> float:
    """Check a speed factor; ``"max"`` (or ``inf``) means as fast as possible.

    Returns
    -------
    float
        The factor, ``math.inf`` for ``max``.

    Raises
    ------
    ConfigurationError
        If the value is not a number in 0.1..1000 or ``max``.

    Examples
    --------
    >>> parse_speed("2"), parse_speed("max")
    (2.0, inf)
    """
    if value is None:
        return 1.0
    if isinstance(value, str):
        if value.strip().lower() == "max":
            return math.inf
        try:
            value = float(value)
        except ValueError:
            raise ConfigurationError(f"speed {value!r} is not a number; use 0.1 to 1000, or 'max'") from None
    speed = float(value)
    if speed == math.inf:
        return speed
    if not (MIN_SPEED <= speed <= MAX_SPEED):
        raise ConfigurationError(f"speed {speed:g} is out of range; use {MIN_SPEED:g} to {MAX_SPEED:g}, or 'max'")
    return speed


def scale(offset_ns: int, speed: float) -> float:
    """Seconds after the reference point at which an event recorded *offset_ns* later replays."""
    if speed == math.inf:
        return 0.0
    return offset_ns / 1e9 / speed


def parse_mapping(items: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``OLD=NEW`` outpost pk mappings (a dict passes through, checked).

    Raises
    ------
    ConfigurationError
        If an item is not ``OLD=NEW``, a pk holds ``/``, ``?`` or spaces, or an
        old pk is mapped twice.
    """
    if items is None:
        return {}
    pairs: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    else:
        for item in items:
            old, sep, new = item.partition("=")
            if not sep:
                raise ConfigurationError(f"--map {item!r}: expected OLD=NEW (recorded outpost pk = target pk)")
            if old.strip() in {o for o, _ in pairs}:
                raise ConfigurationError(f"--map: outpost {old.strip()} is mapped twice")
            pairs.append((old.strip(), new.strip()))
    for old, new in pairs:
        for pk in (old, new):
            if not _PK_RE.match(pk):
                raise ConfigurationError(f"--map {old}={new}: {pk!r} is not an outpost pk (no '/', '?' or spaces)")
    return dict(pairs)


# --------------------------------------------------------------------------- building


def _none(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        pass
    return value


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _columns(frames: pd.DataFrame) -> dict[str, list[Any]]:
    missing = [c for c in ("ts", "conn_id", "seq", "event", "direction") if c not in frames.columns]
    if missing:
        raise ConfigurationError(f"these frames lack the capture column(s) {missing}; load them with wsreplay.load")
    df = frames.reset_index(drop=True)
    order = df.sort_values(["conn_id", "seq", "ts"], kind="stable").index.to_numpy()
    out: dict[str, list[Any]] = {}
    n = len(df)
    for name in _COLUMNS:
        if name not in df.columns:
            out[name] = [None] * n
            continue
        col = df[name].take(order)
        if name == "ts":
            ts = col
            if not isinstance(ts.dtype, pd.DatetimeTZDtype):
                ts = pd.to_datetime(ts, utc=True)
            out[name] = ts.astype("int64").tolist()
        else:
            values = col.astype(object).tolist()
            for k in np.flatnonzero(col.isna().to_numpy()):
                values[k] = None
            out[name] = values
    return out


def _select(
    starts: dict[str, tuple[int, str | None, str | None]],
    *,
    endpoint: list[str] | None,
    outpost: list[str] | None,
    connection: list[str] | None,
    start: int | None,
    end: int | None,
) -> set[str]:
    selected = set(starts)
    if endpoint is not None:
        bad = [e for e in endpoint if e not in ("outpost", "client", "other")]
        if bad:
            raise ConfigurationError(f"endpoint {bad[0]!r} is not one of outpost, client, other")
        selected = {c for c in selected if starts[c][1] in endpoint}
    if outpost is not None:
        known = {v[2] for v in starts.values() if v[2]}
        unknown = [o for o in outpost if o not in known]
        if unknown:
            raise ConfigurationError(
                f"outpost {unknown[0]} is not in the capture (outposts: {', '.join(sorted(known)) or 'none'})"
            )
        selected = {c for c in selected if starts[c][2] in outpost}
    if connection is not None:
        chosen: set[str] = set()
        for prefix in connection:
            hits = [c for c in starts if c.startswith(prefix)]
            if not hits:
                raise ConfigurationError(f"connection {prefix} is not in the capture")
            if len(hits) > 1:
                raise ConfigurationError(f"connection {prefix} is ambiguous ({len(hits)} connections start with it)")
            chosen.add(hits[0])
        selected &= chosen
    if start is not None:
        selected = {c for c in selected if starts[c][0] >= start}
    if end is not None:
        selected = {c for c in selected if starts[c][0] < end}
    return selected


def build_plan(
    frames: pd.DataFrame,
    *,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    connection: str | Sequence[str] | None = None,
    start: Any = None,
    end: Any = None,
    mapping: Mapping[str, str] | Iterable[str] | None = None,
) -> ReplayPlan:
    """Build the replay scripts of a capture.

    Parameters
    ----------
    frames : pandas.DataFrame
        A capture, as returned by :func:`wsreplay.load`.
    endpoint : str or list of str, optional
        Keep connections of these endpoints (``outpost``, ``client``, ``other``).
    outpost : str or list of str, optional
        Keep connections of these (recorded) outpost pks.
    connection : str or list of str, optional
        Keep these connections (ids or unique prefixes of ids).
    start, end : time, optional
        Keep connections that opened in ``[start, end)`` (whole connections).
    mapping : dict or list of ``"OLD=NEW"``, optional
        Replay recorded outpost *OLD* as outpost *NEW* of the target.

    Returns
    -------
    ReplayPlan

    Raises
    ------
    ConfigurationError
        If a filter or mapping names something the capture does not have, or
        nothing is left to replay.

    Examples
    --------
    >>> from wsreplay.events import ConnectionLog
    >>> from wsreplay.schema import rows_to_table, table_to_frames
    >>> log = ConnectionLog("cap", "/ws/outpost/pk1/", conn_id="c1")
    >>> rows = [log.open(0), log.message(10, "to_server", '{"instruction": 1}'),
    ...         log.message(13, "to_peer", '{"instruction": 0, "args": {}}'), log.close(20, "to_server", code=1000)]
    >>> plan = build_plan(table_to_frames(rows_to_table(rows)), mapping=["pk1=pk2"])
    >>> plan.scripts[0].path, [s.label for s in plan.scripts[0].sends], plan.scripts[0].replies[0].latency_ns
    ('/ws/outpost/pk2/', ['HELLO'], 3)
    """
    cols = _columns(frames)
    conn_ids = cols["conn_id"]
    n = len(conn_ids)
    # first event of each connection (rows are sorted by conn_id, seq)
    starts: dict[str, tuple[int, str | None, str | None]] = {}
    bounds: dict[str, tuple[int, int]] = {}
    i = 0
    while i < n:
        cid = conn_ids[i]
        j = i
        while j < n and conn_ids[j] == cid:
            j += 1
        if cid is not None:
            endpoint_i = cols["endpoint"][i]
            if endpoint_i is None and cols["path"][i] is not None:
                endpoint_i = classify_path(cols["path"][i])[0]
            starts[cid] = (min(cols["ts"][i:j]), endpoint_i, cols["outpost_uuid"][i])
            bounds[cid] = (i, j)
        i = j
    if not starts:
        raise ConfigurationError("the capture holds no connection to replay")
    selected = _select(
        starts,
        endpoint=_as_list(endpoint),
        outpost=_as_list(outpost),
        connection=_as_list(connection),
        start=to_ns(start, "start"),
        end=to_ns(end, "end"),
    )
    if not selected:
        raise ConfigurationError("no connection of the capture matches the filters")
    pk_map = parse_mapping(mapping)
    recorded_pks = {str(starts[c][2]) for c in selected if starts[c][2]}
    for old in pk_map:
        if old not in recorded_pks:
            raise ConfigurationError(
                f"--map {old}={pk_map[old]}: outpost {old} is not among the replayed connections "
                f"(outposts: {', '.join(sorted(recorded_pks)) or 'none'})"
            )
    order = sorted(selected, key=lambda c: (starts[c][0], c))
    start_ns = starts[order[0]][0]
    scripts = []
    notes: list[str] = []
    for cid in order:
        a, b = bounds[cid]
        script = _script(cols, a, b, start_ns, pk_map)
        scripts.append(script)
        notes.extend(f"connection {script.short_id} ({script.path}): {note}" for note in script.notes)
    return ReplayPlan(scripts=tuple(scripts), start_ns=start_ns, mapping=pk_map, notes=tuple(notes))


def _frame_data(opcode: str | None, payload: Any, payload_bytes: Any) -> str | bytes:
    if opcode == "text" and payload is not None:
        return str(payload)
    if payload_bytes is not None:
        return bytes(payload_bytes)
    return "" if payload is None else str(payload)


def _script(cols: dict[str, list[Any]], a: int, b: int, start_ns: int, pk_map: Mapping[str, str]) -> ConnectionScript:
    conn_id = cols["conn_id"][a]
    path = next((cols["path"][k] for k in range(a, b) if cols["path"][k]), "") or ""
    query = next((cols["query"][k] for k in range(a, b) if cols["query"][k]), "") or ""
    endpoint = next((cols["endpoint"][k] for k in range(a, b) if cols["endpoint"][k]), None)
    if endpoint is None:
        endpoint = classify_path(path)[0]
    recorded_pk = next((cols["outpost_uuid"][k] for k in range(a, b) if cols["outpost_uuid"][k]), None)
    if recorded_pk is None and endpoint == "outpost":
        recorded_pk = classify_path(path)[1]
    pk = pk_map.get(recorded_pk, recorded_pk) if recorded_pk else None
    if recorded_pk and pk and pk != recorded_pk:
        path = outpost_path(pk) if path == outpost_path(recorded_pk) else path.replace(recorded_pk, pk)
    instance = next((cols["instance_uuid"][k] for k in range(a, b) if cols["instance_uuid"][k]), None)
    notes: list[str] = []
    events = cols["event"]
    if events[a] != "open" and not (events[a] == "error" and cols["status"][a] is not None):
        notes.append("the capture has no open row for it: replaying from its first recorded event")
    t_open = cols["ts"][a]
    status: int | None = None
    user_agent: str | None = None
    sends: list[Send] = []
    received: list[Expected] = []
    unanswered: deque[int] = deque()
    replies = 0
    close: CloseInfo | None = None
    close_from_error = False
    end = 0
    ts_col, status_col, seq_col, dir_col = cols["ts"], cols["status"], cols["seq"], cols["direction"]
    opcode_col, payload_col, bytes_col = cols["opcode"], cols["payload"], cols["payload_bytes"]
    error_col, name_col, type_col = cols["parse_error"], cols["instruction_name"], cols["message_type"]
    labels: dict[tuple[Any, ...], str] = {}
    for k in range(a, b):
        event = events[k]
        offset = ts_col[k] - t_open
        if offset > end:
            end = offset
        if event == "message":
            opcode = opcode_col[k] or "text"
            payload = payload_col[k]
            data = payload if opcode == "text" and payload is not None else _frame_data(opcode, payload, bytes_col[k])
            parse_error = error_col[k]
            name = name_col[k]
            key = (opcode, name, type_col[k], parse_error is None)
            label = labels.get(key)
            if label is None:
                label = labels[key] = frame_label(endpoint, opcode, name, type_col[k], parse_error)
            if dir_col[k] == "to_server":
                index = len(sends)
                sends.append(
                    Send(index, int(seq_col[k]), offset, opcode, data, label, parse_error is not None, replies)
                )
                if not (endpoint == "outpost" and label == "ACK"):
                    unanswered.append(index)
            else:
                reply = is_reply(endpoint, name, after_peer_frame=bool(sends))
                answers = latency = None
                if reply:
                    replies += 1
                    answers = unanswered.popleft() if unanswered else sends[-1].index
                    latency = offset - sends[answers].offset_ns
                received.append(Expected(int(seq_col[k]), offset, opcode, data, label, reply, answers, latency))
        elif event == "open":
            if status_col[k] is not None:
                status = int(status_col[k])
            user_agent = cols["user_agent"][k] or user_agent
        elif event in ("close", "error"):
            if event == "error" and cols["status"][k] is not None:
                if not sends:
                    status = int(cols["status"][k])
                continue  # a refused handshake, not a close
            if close is not None and not (close_from_error and event == "close"):
                continue
            by = "peer" if cols["direction"][k] == "to_server" else "server"
            code = cols["close_code"][k]
            code = None if code is None else int(code)
            reply_to = None
            if by == "server" and (code is None or code in ABRUPT_CODES) and sends and sends[-1].malformed:
                reply_to = sends[-1].index
            close = CloseInfo(offset, code, cols["close_reason"][k], by, reply_to)
            close_from_error = event == "error"
    if close is None and not (status is not None and status != 101):
        notes.append(
            "no close in the capture (cut or still open when it ended): the replay closes it after its last event"
        )
    return ConnectionScript(
        conn_id=str(conn_id),
        endpoint=str(endpoint),
        path=path,
        query=query,
        outpost_uuid=pk,
        recorded_outpost=recorded_pk,
        instance_uuid=instance,
        user_agent=user_agent,
        open_offset_ns=t_open - start_ns,
        status=status,
        sends=tuple(sends),
        received=tuple(received),
        close=close,
        end_offset_ns=end,
        notes=tuple(notes),
    )
