"""ACK latency: how long authentik took to answer each frame an outpost sent.

authentik answers every non-ACK frame an outpost sends (HELLO, and any other
instruction that decoded) with an ACK on the same connection. The latency of a
frame is the time of its ACK minus the time of the frame, both as the recorder
saw them.

Pairing (``pairing=``)
----------------------
``"next"`` (default)
    Each frame is paired with the first ACK after it and before the next
    non-ACK frame on that connection (rows of one connection in ``ts``
    order). A frame with no ACK in that span is unanswered; every ACK after
    the first one in that span, and an ACK before any frame, is unmatched.
    So a server that drops an ACK costs one unanswered frame, and one that
    sends an ACK twice one unmatched ACK: neither shifts any later pair.
    Pipelined frames (a second frame sent before the first was answered)
    leave the first one unanswered.
``"fifo"``
    authentik's ordering guarantee taken at its word: the n-th ACK of a
    connection answers its n-th frame, pipelined frames included (an ACK that
    arrives when every earlier frame is already answered is a duplicate and is
    ignored). Right for pipelined traffic from a correct server only: one
    dropped ACK shifts every later pair of the connection by one frame.

Frames never answered (the connection broke, the capture ended, a server
that dropped it) keep a NaN latency and are counted in ``attrs["unanswered"]``;
ACKs that answer nothing are counted in ``attrs["unmatched_acks"]``. Frames
that did not decode are not paired (authentik closes the connection on them).

**Clock steps.** Rows are ordered by ``ts`` as recorded. If the recording
host's clock steps back, an ACK stamped after the step can sort before the
frame it answers: that frame is then unanswered and the ACK unmatched. A
latency is never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd
from pandas.tseries.offsets import BaseOffset

from ..exceptions import ConfigurationError
from ._cache import rows_of
from ._common import NO_TIME, NS, categorical_take, codes, require, utc
from ._engine import accepts_dask
from ._group import group_cummax, group_order, run_starts, scatter_order
from ._native import kernels, parts
from ._quantiles import fleet_percentiles, quantile_columns
from ._rows import OutpostRows
from .hello import HELLO_COLUMNS

__all__ = ["ack_latency", "latency_percentiles", "fleet_latency_percentiles", "LATENCY_COLUMNS"]

#: Columns :func:`ack_latency` reads (``instruction`` is optional).
LATENCY_COLUMNS: Final = (*HELLO_COLUMNS, "instruction")
_LATENCY_RESULT: Final = ("sent_ts", "latency_s")


def _fifo_fast(rows: OutpostRows, req_idx: np.ndarray, ack_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair each connection's k-th ACK with its k-th frame, for the connections where that is right.

    Right for FIFO pairing when each ACK came after its frame (authentik's
    normal case). Returns the ACK time of each frame of *req_idx*
    (:data:`NO_TIME`: none) and a mask of the connections where the
    assumption failed (to redo with the general algorithm).
    """
    n_conn = len(rows.conn_codes.categories)
    conn_r, conn_a = rows.conn[req_idx], rows.conn[ack_idx]
    n_r = np.bincount(conn_r, minlength=n_conn)
    n_a = np.bincount(conn_a, minlength=n_conn)
    start_r = np.cumsum(n_r) - n_r
    start_a = np.cumsum(n_a) - n_a
    # ACKs grouped by connection, in time order within each
    o_a = group_order(conn_a)
    conn_sorted = conn_a[o_a]
    ack_time = rows.ts[ack_idx[o_a]]
    del o_a
    # the ACK at sorted position j of connection c is its k-th (k = j - start_a[c]) and answers the
    # connection's k-th frame, at position start_r[c] + k of the frames grouped by connection
    target = np.arange(len(ack_idx), dtype=np.int64)
    target += np.repeat(start_r - start_a, n_a)
    bad = np.zeros(n_conn, dtype=bool)
    excess = n_a > n_r
    if bool(excess.any()):
        valid = target < (start_r + n_r)[conn_sorted]
        target, ack_time, conn_sorted = target[valid], ack_time[valid], conn_sorted[valid]
    # frames grouped by connection -> their index in time order
    o_r = group_order(conn_r)
    req_pos = o_r[target]
    early = ack_time < rows.ts[req_idx[req_pos]]
    del o_r, target
    if early.any():
        bad[conn_sorted[early]] = True
    out = np.full(len(req_idx), NO_TIME, dtype=np.int64)
    out[req_pos] = ack_time
    return out, bad


def _pair_general(rows: OutpostRows, pair_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """FIFO pairing of the frames and ACKs of *pair_rows* (any connections).

    Returns the frame rows, their ACK times and how many ACKs were used.
    """
    sel = np.flatnonzero(pair_rows)
    conn = rows.conn[sel]
    order = group_order(conn)
    sel, conn = sel[order], conn[order]
    is_req = rows.refresh[sel]
    is_ack = ~is_req
    n = len(sel)
    first = run_starts(conn)
    # global running counts; per-connection counts are these minus their value before the run
    g_req = np.cumsum(is_req, dtype=np.int64)
    g_ack = np.arange(1, n + 1, dtype=np.int64) - g_req
    starts = np.flatnonzero(first)
    lengths = np.diff(np.append(starts, n))
    # excess: ACKs beyond the frames sent so far on this connection; its running maximum
    # counts the duplicates, which answer nothing
    d = g_ack - g_req
    d_before = np.repeat(np.where(starts > 0, d[np.maximum(starts - 1, 0)], 0), lengths)
    dup = group_cummax(np.maximum(d - d_before, 0), first)
    prev = np.zeros(n, dtype=np.int64)
    if n > 1:
        prev[1:] = dup[:-1]
    prev[first] = 0
    matched = is_ack & (dup == prev)
    # the n-th matched ACK of a connection answers its n-th frame: its index among all
    # frames in connection order
    target = g_ack - 1 - dup - d_before
    req_sorted = sel[is_req]
    ack_ts_g = np.full(len(req_sorted), NO_TIME, dtype=np.int64)
    ack_ts_g[target[matched]] = rows.ts[sel[matched]]
    req_rows, ack_ts = _to_time_order(rows, req_sorted, ack_ts_g)
    return req_rows, ack_ts, int(matched.sum())


def _to_time_order(rows: OutpostRows, req_sorted: np.ndarray, ack_ts_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame rows grouped by connection and their ACK times -> both in time (row) order, without sorting."""
    req_mask = np.zeros(len(rows.ts), dtype=bool)
    req_mask[req_sorted] = True
    dest = scatter_order(req_mask, req_sorted)
    ack_ts = np.empty(len(req_sorted), dtype=np.int64)
    ack_ts[dest] = ack_ts_g
    return np.flatnonzero(req_mask), ack_ts


#: Rows looked ahead, one vectorised pass each, for the next row of a frame's connection
#: before the frames still unresolved are paired by sorting their connections' rows.
_LOOKAHEAD: Final = 16


#: What a pairing gives: per frame (``refresh`` row of known connection, time order) its row, its time,
#: its ACK's time (NO_TIME: none) and the latency (s, NaN: none); and how many ACKs it used and saw.
_Paired = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]


def _pair(rows: OutpostRows, pairing: str) -> _Paired:
    """Pair frames with ACKs (rules in the module docstring): in one C pass for ``"next"`` when compiled."""
    if pairing == "next" and kernels is not None:
        return _pair_next_c(rows)
    req_mask = rows.refresh & (rows.conn >= 0)
    ack_mask = rows.ack & (rows.conn >= 0)
    req_idx = np.flatnonzero(req_mask)
    if pairing == "fifo":
        ack_ts, bad = _fifo_fast(rows, req_idx, np.flatnonzero(ack_mask))
        matched_acks = int((ack_ts != NO_TIME).sum())
        if bad.any():
            # connections where an ACK came before the frame it would answer (a duplicate or a
            # stray ACK): pair them with the general algorithm
            in_bad = bad[np.where(rows.conn >= 0, rows.conn, 0)]
            sub_req, sub_ack, sub_matched = _pair_general(rows, (req_mask | ack_mask) & in_bad)
            at = np.searchsorted(req_idx, sub_req)
            matched_acks += sub_matched - int((ack_ts[at] != NO_TIME).sum())
            ack_ts[at] = sub_ack
    else:
        ack_ts, matched_acks = _pair_next_numpy(rows)
    sent = rows.ts[req_idx]
    diff = ack_ts - sent  # int64 first: float64 cannot hold epoch nanoseconds exactly
    latency = diff.astype(np.float64)
    del diff
    latency /= NS
    latency[ack_ts == NO_TIME] = np.nan
    return req_idx, sent, ack_ts, latency, matched_acks, int(ack_mask.sum())


def _pair_next_c(rows: OutpostRows) -> _Paired:
    """:func:`_pair` ``"next"`` in one backward pass in C (:mod:`wsreplay.analysis._kernels`): the same result."""
    assert kernels is not None
    # how many frames (refresh rows of known connection): counted by the grouping kernel, on threads
    conn = np.ascontiguousarray(rows.conn)
    n_conn = len(rows.conn_codes.categories)
    counts = np.empty((parts(len(conn)), n_conn), dtype=np.int64)
    m = kernels.count_refreshes(conn, conn, rows.cls, conn, counts)
    req_idx, sent, ack_ts = (np.empty(m, dtype=np.int64) for _ in range(3))
    latency = np.empty(m, dtype=np.float64)
    # each part of the rows paired on its own thread (the frames of each part: its slots in the outputs)
    part_frames = counts.sum(axis=1)
    answered, n_acks = kernels.pair_next(conn, rows.cls, rows.ts, n_conn, part_frames, ack_ts, req_idx, sent, latency)
    return req_idx, sent, ack_ts, latency, answered, n_acks


def _pair_next_numpy(rows: OutpostRows) -> tuple[np.ndarray, int]:
    """``"next"`` pairing in numpy: the ACK time of each frame (time order), and ACKs used.

    Among a connection's frames and ACKs in time order, a frame is answered
    by the row right after it when that row is an ACK. That row is found
    without sorting: it is usually a few rows further in time order (an ACK
    comes within milliseconds), so each pass compares every unresolved
    frame's connection with that of the row *k* places ahead (*k* = 1, 2, ...,
    :data:`_LOOKAHEAD`); a frame that is the last row of its connection has
    none. The few left (an answer that came late, a connection that went
    quiet) are paired by sorting the rows of their connections only.
    """
    known = rows.conn >= 0
    pair = np.flatnonzero((rows.refresh | rows.ack) & known)  # time order
    conn = rows.conn[pair]
    is_req = rows.refresh[pair]
    n = len(pair)
    nxt = np.full(n, -1, dtype=np.int64)  # index (in pair) of the next row of the same connection
    last = np.full(len(rows.conn_codes.categories), -1, dtype=np.int64)
    last[conn] = np.arange(n, dtype=np.int64)  # the last row of each connection (the last write wins)
    todo = np.flatnonzero(is_req)
    todo = todo[todo != last[conn[todo]]]  # a connection's last row has no next one
    for k in range(1, _LOOKAHEAD + 1):
        if not len(todo):
            break
        ahead = todo + k  # < n: every row in todo has a later row of its connection
        hit = conn[ahead] == conn[todo]
        nxt[todo[hit]] = ahead[hit]
        todo = todo[~hit]
    if len(todo):
        # the rest: the rows of their connections, grouped by connection (time order within)
        sub = np.flatnonzero(np.isin(conn, np.unique(conn[todo])))
        sub = sub[group_order(conn[sub])]
        follows = np.zeros(len(sub), dtype=bool)
        np.equal(conn[sub[1:]], conn[sub[:-1]], out=follows[:-1])
        nxt_sub = np.full(len(sub), -1, dtype=np.int64)
        nxt_sub[:-1] = np.where(follows[:-1], sub[1:], -1)
        at = np.full(n, -1, dtype=np.int64)
        at[sub] = nxt_sub
        nxt[todo] = at[todo]
    req_next = nxt[is_req]
    del nxt
    answered = req_next >= 0
    answered[answered] = ~is_req[req_next[answered]]
    ack_ts = np.full(len(req_next), NO_TIME, dtype=np.int64)
    ack_ts[answered] = rows.ts[pair[req_next[answered]]]
    return ack_ts, int(np.count_nonzero(answered))


@accepts_dask("ack_latency")
def ack_latency(frames: pd.DataFrame, /, *, pairing: Literal["next", "fifo"] = "next") -> pd.DataFrame:
    """One row per non-ACK frame an outpost sent, with the ACK that answered it.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load` (at least
        ``COLUMNS_NEEDED["ack_latency"]``). Not modified.
    pairing : {"next", "fifo"}
        How ACKs are paired with frames. ``"next"`` (default): each frame with
        the first ACK after it and before the connection's next frame, so a
        missing or doubled ACK shifts nothing; ``"fifo"``: the n-th ACK answers
        the n-th frame (pipelined traffic from a server that never drops an
        ACK). The rules are in :mod:`wsreplay.analysis.latency`.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``sent_ts``, with columns

        ``conn_id``, ``outpost_uuid``, ``instance_uuid`` : category
        ``instruction_name`` : category, ``HELLO`` mostly
        ``sent_ts`` : datetime64[ns, UTC], when the frame was seen
        ``ack_ts`` : datetime64[ns, UTC], when its ACK was seen (NaT: none)
        ``latency_s`` : float, seconds (NaN: never answered)

        ``attrs`` holds ``unanswered`` (frames without ACK), ``unmatched_acks``
        (duplicate or unexpected ACKs) and ``parse_errors``.

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> lat = frames.pipe(wsreplay.ack_latency)
    >>> print(round(float(lat["latency_s"].median()), 3))
    0.003
    """
    require(frames, HELLO_COLUMNS, "ack_latency")
    if pairing not in ("fifo", "next"):
        raise ConfigurationError(f"pairing must be 'fifo' or 'next', not {pairing!r}")
    rows = rows_of(frames, "ack_latency")
    req_idx, sent, ack_ts, latency, matched_acks, n_acks = _pair(rows, pairing)
    unanswered = int(np.count_nonzero(np.isnan(latency)))

    name_c = codes(frames["instruction_name"])
    fpos = req_idx if rows.selection is None else rows.selection[req_idx]
    out = pd.DataFrame(
        {
            "conn_id": categorical_take(rows.conn, req_idx, rows.conn_codes.categories),
            "outpost_uuid": categorical_take(rows.outpost, req_idx, rows.outpost_codes.categories),
            "instance_uuid": categorical_take(rows.instance, req_idx, rows.instance_codes.categories),
            "instruction_name": categorical_take(name_c.codes, fpos, name_c.categories),
            "sent_ts": utc(sent, owned=True),
            "ack_ts": utc(ack_ts, owned=True),
            "latency_s": latency,
        },
        copy=False,  # every column is a new array of this call: pandas need not copy them again
    )
    out.attrs.update(
        {
            "unanswered": unanswered,
            "unmatched_acks": n_acks - matched_acks,
            "parse_errors": rows.parse_errors,
        }
    )
    return out


@accepts_dask("latency_percentiles")
def latency_percentiles(
    data: pd.DataFrame,
    /,
    *,
    by: str | Sequence[str] | None = "outpost_uuid",
    freq: str | pd.Timedelta | None = None,
    q: Sequence[float] = (0.5, 0.9, 0.99),
) -> pd.DataFrame:
    """ACK latency percentiles per group and/or over time.

    Parameters
    ----------
    data : pandas.DataFrame
        Frames (:func:`wsreplay.load`) or the result of :func:`ack_latency`
        (recognised by its ``sent_ts`` / ``latency_s`` columns). Not modified.
    by : str or list of str, optional
        Columns of :func:`ack_latency`'s result to group by (``"outpost_uuid"``,
        ``"instance_uuid"``, ``"conn_id"``, ``"instruction_name"``); ``None``
        for the whole fleet.
    freq : str or Timedelta, optional
        Also bin by ``sent_ts`` (``"1min"``, ``"1h"``...): percentiles over time.
    q : sequence of float
        Quantiles in [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per group (and time bin, column ``time``: the bin's start), with
        ``frames`` (frames sent), ``answered``, ``unanswered``, ``mean_s``,
        ``max_s``, and ``p50_s``, ``p90_s``, ... one per quantile (seconds,
        over answered frames).

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> frames.pipe(wsreplay.latency_percentiles, by=None, freq="10min")[["time", "frames", "p50_s", "p99_s"]]
                           time  frames  p50_s  p99_s
    0 2026-01-01 00:00:00+00:00    2689  0.003  0.003
    1 2026-01-01 00:10:00+00:00    2434  0.003  0.003
    2 2026-01-01 00:20:00+00:00    2702  0.003  0.003
    """
    lat = data if all(c in data.columns for c in _LATENCY_RESULT) else ack_latency(data)
    qs = _quantiles(q)
    keys: list[str] = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [k for k in keys if k not in lat.columns]
    if missing:
        raise ConfigurationError(f"cannot group ACK latency by {missing}; columns are {list(lat.columns)}")
    groupers: list[object] = list(keys)
    offset = _offset(freq)
    if offset is not None:
        groupers.append(pd.Grouper(key="sent_ts", freq=offset, label="left"))
    if not keys:
        fast = _fleet_table([lat], offset, qs)
        if fast is not None:
            return fast
    frame = lat[[*keys, "sent_ts", "latency_s"]]
    if not groupers:
        frame = frame.assign(_all=0)
        groupers = ["_all"]
    try:
        grouped = frame.groupby(groupers, observed=True, sort=True)["latency_s"]
        parts = {
            "frames": grouped.size(),
            "answered": grouped.count(),
            "mean_s": grouped.mean(),
            "max_s": grouped.max(),
        }
        for x in qs:
            parts[quantile_columns([x])[0]] = grouped.quantile(x)
    except ValueError as exc:
        raise ConfigurationError(f"freq={freq!r} is not a pandas frequency ('1min', '1h', ...)") from exc
    out = pd.DataFrame(parts)
    out.insert(2, "unanswered", out["frames"] - out["answered"])
    out = out.reset_index()
    if "_all" in out.columns:
        out = out.drop(columns="_all")
    if freq is not None:
        out = out.rename(columns={"sent_ts": "time"})
    return out


def _quantiles(q: Sequence[float]) -> list[float]:
    qs = [float(x) for x in q]
    if any(not 0 <= x <= 1 for x in qs):
        raise ConfigurationError(f"quantiles must be in [0, 1], not {list(q)}")
    return qs


def _offset(freq: str | pd.Timedelta | None) -> BaseOffset | None:
    if freq is None:
        return None
    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"freq={freq!r} is not a pandas frequency ('1min', '1h', ...)") from exc


def _fleet_table(pieces: Sequence[pd.DataFrame], offset: BaseOffset | None, qs: list[float]) -> pd.DataFrame | None:
    """The ``by=None`` table of the rows of *pieces* by the numpy kernel, or None where pandas must compute it."""
    arrays = [(p["sent_ts"], p["latency_s"].to_numpy(dtype=np.float64, na_value=np.nan)) for p in pieces]
    out = fleet_percentiles(arrays, offset, qs)
    if out is not None:
        out.insert(3 if offset is not None else 2, "unanswered", out["frames"] - out["answered"])
    return out


def fleet_latency_percentiles(
    pieces: Sequence[pd.DataFrame], /, *, freq: str | pd.Timedelta | None = None, q: Sequence[float] = (0.5, 0.9, 0.99)
) -> pd.DataFrame:
    """``latency_percentiles(pd.concat(pieces), by=None, freq=freq, q=q)``, without concatenating the pieces.

    For a report's outpost groups: each piece is one group's :func:`ack_latency`
    result (at least ``sent_ts`` and ``latency_s``), best in time order (a
    piece in time order is binned without sorting). The fleet's 60 M latencies
    of a week are never copied into one frame.
    """
    qs = _quantiles(q)
    offset = _offset(freq)
    fast = _fleet_table(pieces, offset, qs)
    if fast is not None:
        return fast
    whole = pd.concat([p[["sent_ts", "latency_s"]] for p in pieces], ignore_index=True) if pieces else None
    if whole is None:
        whole = pd.DataFrame({"sent_ts": pd.Series(dtype="datetime64[ns, UTC]"), "latency_s": pd.Series(dtype=float)})
    return latency_percentiles(whole, by=None, freq=freq, q=q)
