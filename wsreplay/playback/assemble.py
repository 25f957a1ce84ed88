"""Turning a capture's rows into connection scripts column-wise, without a Python loop per frame.

:class:`CaptureRows` holds the frames DataFrame as arrays sorted by connection
and ``seq``, with the bounds of each connection. :func:`assemble` computes what
every frame of a script needs (its name, whether a server frame is a reply and
which peer frame it answers, the replies each peer frame waited for) as array
operations over all frames at once, then builds one
:class:`~wsreplay.playback.script.ConnectionScript` per selected connection.
The rules are the ones :mod:`~wsreplay.playback.script` states; only the open,
close and error rows (a few per connection) are read one by one.

Nothing here reads a clock, opens a socket or starts a loop.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ..protocol import classify_path, outpost_path
from .script import ABRUPT_CODES, CloseInfo, ConnectionScript, Expected, Send

__all__ = ["CaptureRows", "assemble"]

_OBJECT_COLUMNS = (
    "conn_id",
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


def _objects(col: pd.Series) -> np.ndarray:
    """A column as an object array, ``None`` for missing (categoricals through their codes: no per-row work)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        categories = np.asarray(col.cat.categories, dtype=object)
        with_none = np.empty(len(categories) + 1, dtype=object)
        with_none[:-1] = categories
        with_none[-1] = None
        return with_none[col.cat.codes.to_numpy()]  # code -1 (missing) picks the None
    values = np.array(col.to_numpy(dtype=object), dtype=object)
    values[pd.isna(col).to_numpy()] = None
    return values


def _first_set(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[Any]:
    """Per connection, the first value that is not None (or None)."""
    n = len(values)
    pos = np.where(values != None, np.arange(n), n)  # noqa: E711 - elementwise over objects
    first = np.minimum.reduceat(pos, starts) if len(starts) else pos[:0]
    return [values[p] if p < e else None for p, e in zip(first.tolist(), ends.tolist())]


def _before(flag: np.ndarray, first: np.ndarray) -> np.ndarray:
    """For each row, how many rows of its connection before it have *flag* (``first``: its connection's first row)."""
    flag = flag.astype(np.int64)
    count = np.cumsum(flag) - flag
    return count - count[first]


@dataclass
class CaptureRows:
    """The frames of a capture as arrays, sorted by connection, ``seq`` and ``ts``.

    Attributes
    ----------
    ts : numpy.ndarray
        Epoch nanoseconds (int64).
    cols : dict
        Other capture columns as object arrays (``None`` for missing).
    conn_ids : list of str
        One per connection, in row order.
    starts, ends : numpy.ndarray
        Row bounds of each connection.
    """

    ts: np.ndarray
    cols: dict[str, np.ndarray]
    conn_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def from_frames(cls, frames: pd.DataFrame) -> CaptureRows:
        """Read a frames DataFrame (:func:`wsreplay.load`)."""
        missing = [c for c in ("ts", "conn_id", "seq", "event", "direction") if c not in frames.columns]
        if missing:
            raise ConfigurationError(f"these frames lack the capture column(s) {missing}; load them with wsreplay.load")
        df = frames.reset_index(drop=True)
        order = df.sort_values(["conn_id", "seq", "ts"], kind="stable").index.to_numpy()
        ts = df["ts"]
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            ts = pd.to_datetime(ts, utc=True)
        n = len(df)
        cols = {
            name: _objects(df[name])[order] if name in df.columns else np.full(n, None, dtype=object)
            for name in _OBJECT_COLUMNS
        }
        seq = df["seq"].to_numpy(dtype=np.float64, na_value=np.nan)[order]
        cols["seq"] = seq
        conn = cols["conn_id"]
        cuts = np.flatnonzero(conn[1:] != conn[:-1]) + 1 if n else np.zeros(0, dtype=np.int64)
        starts = np.r_[0, cuts].astype(np.int64) if n else cuts.astype(np.int64)
        ends = np.r_[cuts, n].astype(np.int64) if n else cuts.astype(np.int64)
        keep = np.array([conn[s] is not None for s in starts.tolist()], dtype=bool)
        starts, ends = starts[keep], ends[keep]
        ids = [str(conn[s]) for s in starts.tolist()]
        return cls(ts.astype("int64").to_numpy()[order], cols, ids, starts, ends)

    def opened(self) -> dict[str, tuple[int, str | None, str | None]]:
        """conn_id -> (first recorded time, endpoint, outpost pk) of its first row, for the filters."""
        first_ts = np.minimum.reduceat(self.ts, self.starts).tolist() if len(self.starts) else []
        out = {}
        endpoint, path, pk = self.cols["endpoint"], self.cols["path"], self.cols["outpost_uuid"]
        for cid, a, t in zip(self.conn_ids, self.starts.tolist(), first_ts):
            ep = endpoint[a]
            if ep is None and path[a] is not None:
                ep = classify_path(path[a])[0]
            out[cid] = (int(t), ep, pk[a])
        return out


@dataclass
class _Frames:
    """Per-message-row fields, as lists, and the bounds of each connection's sends and server frames."""

    sends: list[list[Any]]
    received: list[list[Any]]
    send_bounds: np.ndarray
    recv_bounds: np.ndarray
    sends_before: np.ndarray  # per row: peer frames of its connection before it
    last_send_malformed: np.ndarray  # per row: the last peer frame before it was malformed
    events: np.ndarray  # rows that are not frames (open, close, error), in order


def _frames(rows: CaptureRows, endpoints: list[str]) -> _Frames:
    cols, n = rows.cols, len(rows.ts)
    lengths = rows.ends - rows.starts
    gid = np.repeat(np.arange(len(rows.starts)), lengths)
    ep = np.repeat(np.array(endpoints, dtype=object), lengths)
    first = np.repeat(rows.starts, lengths)
    offset = rows.ts - rows.ts[first]
    event, direction = cols["event"], cols["direction"]
    message = event == "message"
    is_send = message & (direction == "to_server")
    is_recv = message & ~is_send
    opcode = np.where(cols["opcode"] == None, "text", cols["opcode"])  # noqa: E711
    name, mtype, error = cols["instruction_name"], cols["message_type"], cols["parse_error"]
    label = np.select(
        [
            opcode == "binary",
            (ep == "outpost") & (name != None),  # noqa: E711
            (ep == "client") & (mtype != None),  # noqa: E711
            (ep == "outpost") | (ep == "client") | (error != None),  # noqa: E711
        ],
        [np.full(n, "<binary>", dtype=object), name, mtype, np.full(n, "<malformed>", dtype=object)],
        default="<text>",
    )
    sends_before = _before(is_send, first)
    outpost = ep == "outpost"
    reply = is_recv & (sends_before > 0) & np.where(outpost, name == "ACK", ep != "client")
    replies_before = _before(reply, first)
    answerable = is_send & ~(outpost & (label == "ACK"))
    # FIFO: the j-th reply answers the next unanswered peer frame if there is one, else the last peer frame;
    # c_j (peer frames answered so far) = min(c_{j-1} + 1, A_j) = j + min(0, min_{i<=j} (A_i - i))
    r = np.flatnonzero(reply)
    j = replies_before[r] + 1
    avail = _before(answerable, first)[r]
    c = j + np.minimum(0, pd.Series(avail - j).groupby(gid[r]).cummin().to_numpy())
    c_prev = np.where(replies_before[r] == 0, 0, np.r_[0, c[:-1]])
    s_rows = np.flatnonzero(is_send)
    a_rows = np.flatnonzero(answerable)
    group_sends = np.searchsorted(s_rows, rows.starts)
    group_answerable = np.searchsorted(a_rows, rows.starts)
    popped = c > c_prev
    fifo = (
        sends_before[a_rows[np.minimum(group_answerable[gid[r]] + c - 1, max(len(a_rows) - 1, 0))]]
        if len(a_rows)
        else np.zeros(len(r), dtype=np.int64)
    )
    answers = np.where(popped, fifo, sends_before[r] - 1)
    answered_row = s_rows[group_sends[gid[r]] + answers]
    answers_col = np.full(n, None, dtype=object)
    latency_col = np.full(n, None, dtype=object)
    answers_col[r] = answers.tolist()
    latency_col[r] = (offset[r] - offset[answered_row]).tolist()
    data = cols["payload"].copy()
    odd = np.flatnonzero(message & ((opcode != "text") | (data == None)))  # noqa: E711
    for k in odd.tolist():
        data[k] = _frame_data(opcode[k], cols["payload"][k], cols["payload_bytes"][k])
    seq = cols["seq"].astype(np.int64)
    malformed = error != None  # noqa: E711
    pick = s_rows
    sends = [
        sends_before[pick].tolist(),
        seq[pick].tolist(),
        offset[pick].tolist(),
        opcode[pick].tolist(),
        data[pick].tolist(),
        label[pick].tolist(),
        malformed[pick].tolist(),
        replies_before[pick].tolist(),
    ]
    pick = np.flatnonzero(is_recv)
    received = [
        seq[pick].tolist(),
        offset[pick].tolist(),
        opcode[pick].tolist(),
        data[pick].tolist(),
        label[pick].tolist(),
        reply[pick].tolist(),
        answers_col[pick].tolist(),
        latency_col[pick].tolist(),
    ]
    last_malformed = np.zeros(n, dtype=bool)
    if len(s_rows):
        last = np.maximum(np.searchsorted(s_rows, np.arange(n)) - 1, 0)
        last_malformed = malformed[s_rows[last]] & (sends_before > 0)
    return _Frames(
        sends,
        received,
        np.r_[group_sends, len(s_rows)],
        np.r_[np.searchsorted(pick, rows.starts), len(pick)],
        sends_before,
        last_malformed,
        np.flatnonzero(~message),
    )


def _frame_data(opcode: str | None, payload: Any, payload_bytes: Any) -> str | bytes:
    if opcode == "text" and payload is not None:
        return str(payload)
    if payload_bytes is not None:
        return bytes(payload_bytes)
    return "" if payload is None else str(payload)


def assemble(
    rows: CaptureRows, order: Sequence[str], start_ns: int, pk_map: Mapping[str, str]
) -> list[ConnectionScript]:
    """The scripts of the connections in *order* (recorded ids), offsets after *start_ns*."""
    cols = rows.cols
    starts, ends = rows.starts, rows.ends
    names = ("path", "query", "endpoint", "outpost_uuid", "instance_uuid")
    firsts = {name: _first_set(cols[name], starts, ends) for name in names}
    endpoints = [ep or classify_path(path or "")[0] for ep, path in zip(firsts["endpoint"], firsts["path"])]
    frames = _frames(rows, endpoints)
    where = {cid: g for g, cid in enumerate(rows.conn_ids)}
    ends_ns = np.maximum.reduceat(rows.ts, starts) - rows.ts[starts] if len(starts) else starts
    scripts = []
    with _collector_paused():
        for cid in order:
            scripts.append(_script(rows, frames, firsts, endpoints, ends_ns, where[cid], cid, start_ns, pk_map))
    return scripts


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the garbage collector while building one object per frame (then restore it).

    Hundreds of thousands of new objects would trigger its full collections again and again, each
    walking every object of the capture: building the scripts of a large capture took four times longer.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _script(
    rows: CaptureRows,
    frames: _Frames,
    firsts: dict[str, list[Any]],
    endpoints: list[str],
    ends_ns: np.ndarray,
    g: int,
    cid: str,
    start_ns: int,
    pk_map: Mapping[str, str],
) -> ConnectionScript:
    """The script of connection number *g* (see :func:`assemble`)."""
    a, b = int(rows.starts[g]), int(rows.ends[g])
    endpoint = endpoints[g]
    path = firsts["path"][g] or ""
    query = firsts["query"][g] or ""
    recorded_pk = firsts["outpost_uuid"][g]
    if recorded_pk is None and endpoint == "outpost":
        recorded_pk = classify_path(path)[1]
    pk = pk_map.get(recorded_pk, recorded_pk) if recorded_pk else None
    if recorded_pk and pk and pk != recorded_pk:
        path = outpost_path(pk) if path == outpost_path(recorded_pk) else path.replace(recorded_pk, pk)
    s0, s1 = int(frames.send_bounds[g]), int(frames.send_bounds[g + 1])
    r0, r1 = int(frames.recv_bounds[g]), int(frames.recv_bounds[g + 1])
    sends = tuple(map(Send, *(column[s0:s1] for column in frames.sends)))
    received = tuple(map(Expected, *(column[r0:r1] for column in frames.received)))
    status, user_agent, close, notes = _events(rows, frames, a, b)
    t_open = int(rows.ts[a])
    return ConnectionScript(
        conn_id=cid,
        endpoint=str(endpoint),
        path=path,
        query=query,
        outpost_uuid=pk,
        recorded_outpost=recorded_pk,
        instance_uuid=firsts["instance_uuid"][g],
        user_agent=user_agent,
        open_offset_ns=t_open - start_ns,
        status=status,
        sends=sends,
        received=received,
        close=close,
        end_offset_ns=max(int(ends_ns[g]), 0),
        notes=tuple(notes),
    )


def _events(
    rows: CaptureRows, frames: _Frames, a: int, b: int
) -> tuple[int | None, str | None, CloseInfo | None, list[str]]:
    """Handshake status, User-Agent, how it ended, and notes, from a connection's open, close and error rows."""
    cols, ts = rows.cols, rows.ts
    event, status_col = cols["event"], cols["status"]
    notes = []
    if event[a] != "open" and not (event[a] == "error" and status_col[a] is not None):
        notes.append("the capture has no open row for it: replaying from its first recorded event")
    status: int | None = None
    user_agent: str | None = None
    close: CloseInfo | None = None
    close_from_error = False
    lo, hi = np.searchsorted(frames.events, [a, b])
    for k in frames.events[lo:hi].tolist():
        kind = event[k]
        if kind == "open":
            if status_col[k] is not None:
                status = int(status_col[k])
            user_agent = cols["user_agent"][k] or user_agent
        elif kind in ("close", "error"):
            sent = int(frames.sends_before[k])
            if kind == "error" and status_col[k] is not None:
                if not sent:
                    status = int(status_col[k])
                continue  # a refused handshake, not a close
            if close is not None and not (close_from_error and kind == "close"):
                continue
            by = "peer" if cols["direction"][k] == "to_server" else "server"
            code = cols["close_code"][k]
            code = None if code is None else int(code)
            reply_to = None
            if by == "server" and (code is None or code in ABRUPT_CODES) and sent and frames.last_send_malformed[k]:
                reply_to = sent - 1
            close = CloseInfo(int(ts[k] - ts[a]), code, cols["close_reason"][k], by, reply_to)
            close_from_error = kind == "error"
    if close is None and not (status is not None and status != 101):
        notes.append(
            "no close in the capture (cut or still open when it ended): the replay closes it after its last event"
        )
    return status, user_agent, close, notes
