"""The replay's own capture, kept cheaply while the replay runs and turned into one table at the end.

At full speed, building a decoded capture row (a dict of 30 columns) for every
frame costs about as much as sending the frame. A :class:`ConnectionRecording`
therefore keeps one small tuple per frame (time, ``seq``, direction, data,
opcode) and the few event rows (open, close, error) of its
:class:`~wsreplay.events.ConnectionLog`. :func:`recordings_table` builds the
capture table of many recordings at once: each distinct payload is decoded
once, by :meth:`ConnectionLog.message <wsreplay.events.ConnectionLog.message>`
itself (so the rows are the ones the log would have built), and the per-frame
columns are filled as arrays. :func:`observed_connections` summarises the same
recordings for the comparison, only when a comparison asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from ..events import ConnectionLog
from ..schema import COLUMNS, SCHEMA, rows_to_table
from .observe import ObservedConnection, Observer

__all__ = ["ConnectionRecording", "recordings_table", "observed_connections"]

Frame = tuple[int, int, str, str | bytes, str | None]  # ts, seq, direction, data, opcode
_PER_FRAME = ("ts", "seq", "direction")
_PER_CONNECTION = ("capture_id", "conn_id", "endpoint", "path", "query", "outpost_uuid", "instance_uuid")


class ConnectionRecording:
    """The capture rows of one replayed connection, recorded cheaply (see the module docstring).

    Parameters
    ----------
    log : ConnectionLog
        The connection's log: event rows come from it, and it numbers the frames.
    """

    __slots__ = ("frames", "log", "rows")

    def __init__(self, log: ConnectionLog) -> None:
        self.log = log
        #: Rows built by the log: open, close, error (and frames seen before the instance is known).
        self.rows: list[dict[str, Any]] = []
        #: One tuple per frame recorded the cheap way.
        self.frames: list[Frame] = []

    def add(self, row: dict[str, Any]) -> None:
        """Keep a row the log built (an open, close or error row)."""
        self.rows.append(row)

    def summary(self) -> tuple[int | None, int, int, int | None, str | None]:
        """``(status, sent, received, close_code, closed_by)`` of the connection, from its rows and frames."""
        status = close_code = closed_by = None
        sent = sum(1 for f in self.frames if f[2] == "to_server")
        received = len(self.frames) - sent
        for row in self.rows:
            event = row["event"]
            if event == "message":
                if row["direction"] == "to_server":
                    sent += 1
                else:
                    received += 1
            elif event in ("open", "error") and row.get("status") is not None:
                status = row["status"]
            elif event == "close" and closed_by is None:
                close_code = row.get("close_code")
                closed_by = "peer" if row.get("direction") == "to_server" else "server"
        return status, sent, received, close_code, closed_by

    def message(self, ts: int, direction: str, data: str | bytes, opcode: str | None = None) -> None:
        """Record a frame, as ``log.message(ts, direction, data, opcode=opcode)`` would."""
        log = self.log
        if log.instance_uuid is None and log.endpoint == "outpost":
            # this frame may be the HELLO that names the instance, which the log carries onto later rows
            self.rows.append(log.message(ts, direction, data, opcode=opcode))
            return
        self.frames.append((ts, log.seq, direction, data, opcode))
        log.seq += 1


def _decoded_rows(recordings: list[ConnectionRecording]) -> tuple[list[dict[str, Any]], list[int]]:
    """One row per distinct (endpoint, opcode, data), as the log builds it, and each frame's index into them."""
    templates: dict[tuple[str, str | None, str | bytes], int] = {}
    rows: list[dict[str, Any]] = []
    scratch: dict[str, ConnectionLog] = {}
    index: list[int] = []
    for rec in recordings:
        endpoint = rec.log.endpoint
        for _ts, _seq, _direction, data, opcode in rec.frames:
            key = (endpoint, opcode, data)
            k = templates.get(key)
            if k is None:
                log = scratch.get(endpoint)
                if log is None:
                    log = scratch[endpoint] = ConnectionLog("", rec.log.path, cache=rec.log.cache)
                k = templates[key] = len(rows)
                rows.append(log.message(0, "to_peer", data, opcode=opcode))
            index.append(k)
    return rows, index


def recordings_table(recordings: Iterable[ConnectionRecording]) -> pa.Table:
    """The capture table (exactly :data:`~wsreplay.schema.SCHEMA`) of some recordings, rows unsorted."""
    recs = list(recordings)
    events = rows_to_table([row for rec in recs for row in rec.rows])
    templates, index = _decoded_rows(recs)
    if not index:
        return events
    frames = rows_to_table(templates).take(pa.array(index, type=pa.int64()))
    per_frame: dict[str, list[Any]] = {name: [] for name in _PER_FRAME}
    per_conn: dict[str, list[Any]] = {name: [] for name in _PER_CONNECTION}
    for rec in recs:
        n = len(rec.frames)
        if not n:
            continue
        ts, seq, direction, _data, _opcode = zip(*rec.frames, strict=True)
        per_frame["ts"].extend(ts)
        per_frame["seq"].extend(seq)
        per_frame["direction"].extend(direction)
        log = rec.log
        for name in _PER_CONNECTION:
            per_conn[name].extend([getattr(log, name)] * n)
    for name, values in (*per_frame.items(), *per_conn.items()):
        i = frames.schema.get_field_index(name)
        frames = frames.set_column(i, SCHEMA.field(i), pa.array(values, type=COLUMNS[name]))
    return pa.concat_tables([events, frames])


def observed_connections(recordings: Mapping[str, ConnectionRecording]) -> dict[str, ObservedConnection]:
    """Recorded conn_id -> what its replayed connection saw (its rows in the order the driver saw them)."""
    observed: dict[str, ObservedConnection] = {}
    for conn_id, rec in recordings.items():
        table = recordings_table([rec]).sort_by([("seq", "ascending")])
        table = table.set_column(0, "ts", table.column("ts").cast(pa.int64()))  # exact ns, not datetimes
        observer = Observer()
        for row in table.to_pylist():
            observer.add(row)
        if observer.obs is not None:
            observed[conn_id] = observer.obs
    return observed
