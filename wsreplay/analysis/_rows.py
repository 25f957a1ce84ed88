"""The outpost rows of a capture, as flat numpy arrays (read once per analysis call).

:class:`OutpostRows` selects the rows of the outpost endpoint and gives every
row the instance of its connection (the ``open`` row of an old outpost that
only names itself in its first HELLO gets it too), plus the masks the analysis
functions share: HELLOs, frames that refresh authentik's state, ACKs, and the
end of each connection with how it ended; and, per instance, its version
(:func:`instance_versions`) and whether and when it exited (:func:`instance_exits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np
import pandas as pd

from ._common import NO_TIME, Codes, codes, is_sorted, parse_error_count, require_decoded, ts_ns
from ._group import group_order
from ._native import kernels, parts

__all__ = [
    "OutpostRows",
    "outpost_rows",
    "END_NONE",
    "END_DISCONNECT",
    "END_UPSTREAM",
    "END_CLEAN",
    "CLEAN_CLOSE_CODES",
    "instance_outposts",
    "instance_versions",
    "instance_exits",
    "refreshes_by",
    "C_HELLO",
    "C_REQ",
    "C_ACK",
    "C_TRIGGER",
    "C_OTHER",
    "C_CLOSE",
    "C_ERROR",
]

#: How a connection ended.
END_NONE: Final = 0  # still open at the end of the capture
END_DISCONNECT: Final = 1  # broke: close 1006 / no close frame, an error row, or an abnormal peer close
END_UPSTREAM: Final = 2  # authentik closed it (e.g. 1012 on a server restart)
END_CLEAN: Final = 3  # the outpost closed it cleanly (1000 / 1001): the process exits

#: Close codes an outpost sends when its process shuts down.
CLEAN_CLOSE_CODES: Final = (1000, 1001)

# row classes (``OutpostRows.cls``); refreshes first so that ``cls <= C_REQ`` selects them
C_HELLO: Final = 0  # HELLO sent to authentik
C_REQ: Final = 1  # any other decoded non-ACK frame sent to authentik
C_ACK: Final = 2  # ACK sent by authentik
C_TRIGGER: Final = 3  # TRIGGER_UPDATE sent by authentik
C_OTHER: Final = 4  # other messages, open rows
C_CLOSE: Final = 5
C_ERROR: Final = 6


@dataclass(frozen=True)
class OutpostRows:
    """Flat arrays over the outpost-endpoint rows of a frames DataFrame (in ``ts`` order).

    Attributes
    ----------
    ts : int64 ns per row
    conn, instance, outpost : int codes per row (``-1``: unknown)
    conn_codes, instance_codes, outpost_codes : Codes giving the values of the codes
    cls : uint8 class per row (``C_HELLO``, ``C_REQ``, ``C_ACK``, ...)
    refresh : rows that refresh authentik's state: non-ACK frames sent to the server
        whose instruction decoded (computed on first use, like ``hello`` and ``ack``)
    hello : HELLO frames sent to the server
    ack : ACK frames sent by authentik
    conn_end, conn_end_kind : per connection code, when and how it ended
        (:data:`NO_TIME` / :data:`END_NONE` while open)
    conn_instance, conn_outpost : per connection code, its instance / outpost code
    """

    ts: np.ndarray
    conn: np.ndarray
    instance: np.ndarray
    outpost: np.ndarray
    conn_codes: Codes
    instance_codes: Codes
    outpost_codes: Codes
    cls: np.ndarray
    conn_end: np.ndarray
    conn_end_kind: np.ndarray
    conn_instance: np.ndarray
    conn_outpost: np.ndarray
    selection: np.ndarray | None
    parse_errors: int

    @cached_property
    def refresh(self) -> np.ndarray:
        """Rows that refresh authentik's state (HELLO and other decoded non-ACK frames to it)."""
        return self.cls <= C_REQ

    @cached_property
    def hello(self) -> np.ndarray:
        """HELLO frames sent to authentik."""
        return self.cls == C_HELLO

    @cached_property
    def ack(self) -> np.ndarray:
        """ACK frames sent by authentik."""
        return self.cls == C_ACK

    def positions(self, mask: np.ndarray) -> np.ndarray:
        """Positions in the original frames of the rows where *mask* is true."""
        idx = np.flatnonzero(mask)
        return idx if self.selection is None else self.selection[idx]


def _per_conn(conn: np.ndarray, values: np.ndarray, n_conn: int, cheap: np.ndarray, present: np.ndarray) -> np.ndarray:
    """For each connection code, one non-negative value seen on its rows (``-1`` if none).

    Looks at the *cheap* rows first (open / close / error: a handful per
    connection, and they carry the connection's outpost and instance), then
    only at the rows of the connections still unresolved.
    """
    out = np.full(n_conn, -1, dtype=np.int64)
    idx = np.flatnonzero(cheap & (values >= 0) & (conn >= 0))
    out[conn[idx]] = values[idx]
    missing = present & (out < 0)
    if missing.any():
        need = missing[np.where(conn >= 0, conn, 0)] & (conn >= 0) & (values >= 0)
        idx = np.flatnonzero(need)
        out[conn[idx]] = values[idx]
    return out


def outpost_rows(frames: pd.DataFrame, fn: str = "analysis") -> OutpostRows:
    """Read the outpost rows of *frames* into :class:`OutpostRows` (the frame is not modified).

    Raises :class:`~wsreplay.exceptions.UndecodedFramesError` for frames whose
    messages were never decoded (see :func:`~wsreplay.analysis._common.require_decoded`).
    """
    outpost_all = codes(frames["outpost_uuid"])
    keep = outpost_all.codes >= 0
    sel: np.ndarray | None = None if bool(keep.all()) else np.flatnonzero(keep)
    ts = ts_ns(frames) if sel is None else ts_ns(frames)[sel]
    if not is_sorted(ts):
        order = np.argsort(ts, kind="stable")
        sel = order if sel is None else sel[order]
        ts = ts[order]

    def take(a: np.ndarray) -> np.ndarray:
        return a if sel is None else a[sel]

    conn_c = codes(frames["conn_id"])
    inst_c = codes(frames["instance_uuid"])
    conn = take(conn_c.codes)
    inst_row = take(inst_c.codes)
    outpost = take(outpost_all.codes)
    n_conn = len(conn_c.categories)

    event_c = codes(frames["event"])
    dir_c = codes(frames["direction"])
    name_c = codes(frames["instruction_name"])
    event = take(event_c.codes)
    name_codes = take(name_c.codes)
    if not bool((name_codes[:4096] >= 0).any()) and not bool((name_codes >= 0).any()):
        require_decoded(frames, "instruction_name", "outpost", fn)
    cls = _classify(event, take(dir_c.codes), name_codes, event_c, dir_c, name_c)
    unknown_code = name_c.code_of("UNKNOWN")
    if "instruction" in frames.columns and unknown_code >= 0:
        # an instruction number out of range is named UNKNOWN but did not decode
        odd = np.flatnonzero(name_codes == unknown_code)
        pos = odd if sel is None else sel[odd]
        bad = ~np.asarray(frames["instruction"].iloc[pos].notna(), dtype=bool)
        cls[odd[bad & (cls[odd] <= C_REQ)]] = C_OTHER
    not_message = event != event_c.code_of("message")

    present = connections_seen(conn, n_conn)
    conn_instance = _per_conn(conn, inst_row, n_conn, not_message, present)
    conn_outpost = _per_conn(conn, outpost, n_conn, not_message, present)
    unknown = inst_row < 0
    if unknown.any():
        instance = inst_row.astype(np.int64)
        fix = unknown & (conn >= 0)
        instance[fix] = conn_instance[conn[fix]]
    else:
        instance = inst_row

    # how and when each connection ended: its first close / error row
    ends = np.flatnonzero(cls >= C_CLOSE)
    ends = ends[conn[ends] >= 0]
    conn_end = np.full(n_conn, NO_TIME, dtype=np.int64)
    conn_end_kind = np.full(n_conn, END_NONE, dtype=np.int8)
    if len(ends):
        kind = np.full(len(ends), END_DISCONNECT, dtype=np.int8)
        if "close_code" in frames.columns:
            pos = ends if sel is None else sel[ends]
            code = frames["close_code"].iloc[pos].to_numpy(dtype="float64", na_value=np.nan)
        else:
            code = np.full(len(ends), np.nan)
        closed = cls[ends] == C_CLOSE
        by_peer = take(dir_c.codes)[ends] == dir_c.code_of("to_server")
        upstream = closed & ~by_peer & ~np.isnan(code) & (code != 1006)
        clean = closed & by_peer & np.isin(code, CLEAN_CLOSE_CODES)
        kind[upstream] = END_UPSTREAM
        kind[clean] = END_CLEAN
        first = ends[::-1]
        conn_end[conn[first]] = ts[first]
        conn_end_kind[conn[first]] = kind[::-1]

    return OutpostRows(
        ts=ts,
        conn=conn,
        instance=instance,
        outpost=outpost,
        conn_codes=conn_c,
        instance_codes=inst_c,
        outpost_codes=outpost_all,
        cls=cls,
        conn_end=conn_end,
        conn_end_kind=conn_end_kind,
        conn_instance=conn_instance,
        conn_outpost=conn_outpost,
        selection=sel,
        parse_errors=parse_error_count(frames),
    )


def connections_seen(conn: np.ndarray, n_conn: int) -> np.ndarray:
    """Per connection code, whether any row has it (*conn*: codes per row, ``-1`` unknown)."""
    if kernels is not None:
        present = np.zeros(n_conn, dtype=bool)
        kernels.take_codes(np.ascontiguousarray(conn), None, None, present, parts(len(conn)))
        return present
    # the extra last slot takes the rows of unknown connection (code -1)
    present = np.zeros(n_conn + 1, dtype=bool)
    present[conn] = True
    return present[:n_conn]


def instance_outposts(rows: OutpostRows) -> np.ndarray:
    """Outpost code per instance code (``-1``: unknown), from the connections."""
    out = np.full(len(rows.instance_codes.categories), -1, dtype=np.int64)
    ok = (rows.conn_instance >= 0) & (rows.conn_outpost >= 0)
    out[rows.conn_instance[ok]] = rows.conn_outpost[ok]
    return out


def _classify(
    event: np.ndarray, direction: np.ndarray, name: np.ndarray, event_c: Codes, dir_c: Codes, name_c: Codes
) -> np.ndarray:
    """The class of each row from its event, direction and instruction codes (one table lookup)."""
    n_e, n_d, n_n = len(event_c.categories) + 1, len(dir_c.categories) + 1, len(name_c.categories) + 1
    events = [None, *event_c.categories]
    dirs = [None, *dir_c.categories]
    names = [None, *name_c.categories]
    table = np.full((n_e, n_d, n_n), C_OTHER, dtype=np.uint8)
    for i, ev in enumerate(events):
        if ev == "close":
            table[i] = C_CLOSE
        elif ev == "error":
            table[i] = C_ERROR
        elif ev == "message":
            for j, d in enumerate(dirs):
                for k, nm in enumerate(names):
                    if d == "to_server" and nm is not None and nm != "ACK":
                        table[i, j, k] = C_HELLO if nm == "HELLO" else C_REQ
                    elif d == "to_peer" and nm == "ACK":
                        table[i, j, k] = C_ACK
                    elif d == "to_peer" and nm == "TRIGGER_UPDATE":
                        table[i, j, k] = C_TRIGGER
    if kernels is not None:
        out = np.empty(len(event), dtype=np.uint8)
        kernels.classify(*(np.ascontiguousarray(a) for a in (event, direction, name)), table, out, parts(len(out)))
        return out
    idx: np.ndarray[Any, Any] = event.astype(np.int16 if table.size < 32_000 else np.int32)
    idx += 1
    idx *= n_d
    idx += direction
    idx += 1
    idx *= n_n
    idx += name
    idx += 1
    return table.reshape(-1)[idx]


def instance_versions(frames: pd.DataFrame, rows: OutpostRows) -> np.ndarray:
    """Version code per instance code (its last HELLO's version; ``-1`` unknown)."""
    n_inst = len(rows.instance_codes.categories)
    out = np.full(n_inst, -1, dtype=np.int64)
    if "version" not in frames.columns:
        return out
    pos = rows.positions(rows.hello)
    ver = codes(frames["version"]).codes[pos]
    inst = rows.instance[rows.hello]
    ok = (ver >= 0) & (inst >= 0)
    out[inst[ok]] = ver[ok]
    return out


def instance_exits(rows: OutpostRows, last_conn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per instance code: whether it exited (retired) and when (ns).

    An instance exits when the connection of its last refresh ended without
    a close from authentik (a clean close by the outpost, a close 1006 / TCP
    reset, an error row) and no connection of the instance ends later or is
    still open at the end of the capture (it never shows up again).
    """
    n_inst = len(last_conn)
    ci = rows.conn_instance
    kind = rows.conn_end_kind
    ok = ci >= 0
    ended = ok & (kind != END_NONE)
    latest = np.full(n_inst, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(latest, ci[ended], rows.conn_end[ended])
    still_open = np.zeros(n_inst, dtype=bool)
    still_open[ci[ok & (kind == END_NONE)]] = True
    has = last_conn >= 0
    lc = np.where(has, last_conn, 0)
    at = np.where(has, rows.conn_end[lc], NO_TIME)
    exited = has & np.isin(kind[lc], (END_DISCONNECT, END_CLEAN)) & ~still_open & (latest <= at)
    return exited, at


def refreshes_by(
    rows: OutpostRows, key: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The refresh rows of a known instance and connection, grouped by *key* (codes ``0 .. n_keys-1``).

    Returns per key its number of rows, and per row (key order, time order
    within) its position, ``ts``, connection code and whether it is a HELLO.
    Rows whose key is ``-1`` are left out. One counting sort in C when the
    kernels were compiled (:mod:`wsreplay.analysis._native`), else
    :func:`_refreshes_by_numpy`.
    """
    if kernels is None:
        return _refreshes_by_numpy(rows, key, n_keys)
    # per part of the rows (a thread each), the rows of each key
    counts = np.empty((parts(len(rows.ts)), n_keys), dtype=np.int64)
    m = kernels.count_refreshes(key, rows.instance, rows.cls, rows.conn, counts)
    r, t, conn = (np.empty(m, dtype=np.int64) for _ in range(3))
    hello = np.empty(m, dtype=np.bool_)
    kernels.group_refreshes(key, rows.instance, rows.cls, rows.conn, rows.ts, counts, r, t, conn, hello)
    return counts.sum(axis=0), r, t, conn, hello


def _refreshes_by_numpy(
    rows: OutpostRows, key: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`refreshes_by` in numpy: a radix sort of the keys of the refresh rows, then gathers."""
    r_time = np.flatnonzero(rows.refresh & (rows.instance >= 0) & (rows.conn >= 0) & (key >= 0))
    k = key[r_time]
    r = r_time[group_order(k)]
    counts = np.bincount(k, minlength=n_keys).astype(np.int64)
    return counts, r, rows.ts[r], rows.conn[r].astype(np.int64), rows.cls[r] == C_HELLO
