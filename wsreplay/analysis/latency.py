"""ACK latency: how long authentik took to answer each frame an outpost sent.

authentik answers every non-ACK frame an outpost sends (HELLO, and any other
instruction that decoded) with an ACK on the same connection, in order. The
latency of a frame is the time of its ACK minus the time of the frame, both as
the recorder saw them.

Pairing (``pairing=``)
----------------------
``"fifo"`` (default)
    authentik's guarantee: ACKs come back in the order the frames went out, so
    the n-th ACK of a connection answers its n-th frame, pipelined frames
    included. An ACK that arrives when every earlier frame is already answered
    is a duplicate and is ignored (counted in ``attrs["unmatched_acks"]``).
``"next"``
    Each frame takes the first ACK after it and before the connection's next
    frame. Use it for a server that may drop an ACK: a dropped ACK then costs
    one unanswered frame instead of shifting every later pair.

Frames never answered (the connection broke, the capture ended, a server
that dropped it) keep a NaN latency and are counted as unanswered. Frames that
did not decode are not paired (authentik closes the connection on them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import pandas as pd

from ..exceptions import ConfigurationError
from ._common import NO_TIME, NS, categorical, codes, require, utc
from ._group import group_cummax, group_order, run_starts, scatter_order
from ._rows import outpost_rows
from .hello import HELLO_COLUMNS

__all__ = ["ack_latency", "latency_percentiles", "LATENCY_COLUMNS"]

#: Columns :func:`ack_latency` reads (``instruction`` is optional).
LATENCY_COLUMNS: Final = (*HELLO_COLUMNS, "instruction")
_LATENCY_RESULT: Final = ("sent_ts", "latency_s")


def ack_latency(frames: pd.DataFrame, /, *, pairing: Literal["fifo", "next"] = "fifo") -> pd.DataFrame:
    """One row per non-ACK frame an outpost sent, with the ACK that answered it.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load` (at least
        ``COLUMNS_NEEDED["ack_latency"]``). Not modified.
    pairing : {"fifo", "next"}
        How ACKs are paired with frames (see :mod:`wsreplay.analysis.latency`).

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
    >>> lat = frames.pipe(wsreplay.ack_latency)  # doctest: +SKIP
    >>> lat["latency_s"].median()  # doctest: +SKIP
    """
    require(frames, HELLO_COLUMNS, "ack_latency")
    if pairing not in ("fifo", "next"):
        raise ConfigurationError(f"pairing must be 'fifo' or 'next', not {pairing!r}")
    rows = outpost_rows(frames)
    pair_rows = (rows.refresh | rows.ack) & (rows.conn >= 0)
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
    if pairing == "fifo":
        # excess: ACKs beyond the frames sent so far on this connection; its running maximum
        # counts the duplicates, which answer nothing
        d = g_ack - g_req
        d_before = np.repeat(np.where(starts > 0, d[np.maximum(starts - 1, 0)], 0), lengths)
        excess = d - d_before
        if n and int(excess.max()) > 0:
            dup = group_cummax(np.maximum(excess, 0), first)
            prev = np.zeros(n, dtype=np.int64)
            prev[1:] = dup[:-1]
            prev[first] = 0
            matched = is_ack & (dup == prev)
        else:
            dup = np.zeros(n, dtype=np.int64)
            matched = is_ack
        # the n-th matched ACK of a connection answers its n-th frame: its index among all
        # frames in connection order
        target = g_ack - 1 - dup - d_before
    else:
        # the first ACK after each frame, before the next frame
        last_req = np.maximum.accumulate(np.where(is_req, np.arange(n), 0)) if n else np.zeros(0, dtype=np.int64)
        same_round = is_req[last_req] & (conn[last_req] == conn)
        matched = is_ack & same_round & (g_ack - g_ack[last_req] == 1)
        target = g_req - 1
    req_sorted = sel[is_req]
    ack_ts_g = np.full(len(req_sorted), NO_TIME, dtype=np.int64)
    ack_ts_g[target[matched]] = rows.ts[sel[matched]]
    hit = matched

    # back to time order without sorting: the rank of each frame among the requests
    req_mask = rows.refresh & pair_rows
    dest = scatter_order(req_mask, req_sorted)
    req_idx = np.flatnonzero(req_mask)
    ack_ts = np.empty(len(req_idx), dtype=np.int64)
    ack_ts[dest] = ack_ts_g
    sent = rows.ts[req_idx]
    answered = ack_ts != NO_TIME
    latency = np.where(answered, (ack_ts - sent) / NS, np.nan)

    name_c = codes(frames["instruction_name"])
    fpos = req_idx if rows.selection is None else rows.selection[req_idx]
    out = pd.DataFrame(
        {
            "conn_id": categorical(rows.conn[req_idx], rows.conn_codes.categories),
            "outpost_uuid": categorical(rows.outpost[req_idx], rows.outpost_codes.categories),
            "instance_uuid": categorical(rows.instance[req_idx], rows.instance_codes.categories),
            "instruction_name": categorical(name_c.codes[fpos], name_c.categories),
            "sent_ts": utc(sent),
            "ack_ts": utc(ack_ts),
            "latency_s": latency,
        }
    )
    out.attrs.update(
        {
            "unanswered": int((~answered).sum()),
            "unmatched_acks": int(is_ack.sum() - hit.sum()),
            "parse_errors": rows.parse_errors,
        }
    )
    return out


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
    >>> frames.pipe(wsreplay.latency_percentiles, by=None, freq="1h")  # doctest: +SKIP
    """
    lat = data if all(c in data.columns for c in _LATENCY_RESULT) else ack_latency(data)
    qs = [float(x) for x in q]
    if any(not 0 <= x <= 1 for x in qs):
        raise ConfigurationError(f"quantiles must be in [0, 1], not {list(q)}")
    keys: list[str] = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [k for k in keys if k not in lat.columns]
    if missing:
        raise ConfigurationError(f"cannot group ACK latency by {missing}; columns are {list(lat.columns)}")
    groupers: list[object] = list(keys)
    if freq is not None:
        try:
            groupers.append(pd.Grouper(key="sent_ts", freq=pd.tseries.frequencies.to_offset(freq), label="left"))
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"freq={freq!r} is not a pandas frequency ('1min', '1h', ...)") from exc
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
            parts[f"p{x * 100:g}_s"] = grouped.quantile(x)
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
