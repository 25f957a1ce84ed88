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
from ._common import NS, codes, require, utc
from ._rows import outpost_rows
from .hello import HELLO_COLUMNS

__all__ = ["ack_latency", "latency_percentiles", "LATENCY_COLUMNS"]

#: Columns :func:`ack_latency` reads (``instruction`` is optional).
LATENCY_COLUMNS: Final = (*HELLO_COLUMNS, "instruction")
_LATENCY_RESULT: Final = ("sent_ts", "latency_s")


def _group_cumsum(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cumulative sum of *values* restarting where *first* is true (rows sorted by group)."""
    c = np.cumsum(values, dtype=np.int64)
    starts = np.flatnonzero(first)
    base = np.zeros(len(values), dtype=np.int64)
    if len(starts):
        before = np.where(starts > 0, c[starts - 1], 0)
        seg = np.cumsum(first) - 1
        base = before[seg]
    return c - base


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

        ``conn_id``, ``outpost_uuid``, ``instance_uuid`` : str
        ``instruction_name`` : str, ``HELLO`` mostly
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
    sel = np.flatnonzero((rows.refresh | rows.ack) & (rows.conn >= 0))
    conn = rows.conn[sel]
    order = np.argsort(conn, kind="stable")
    sel, conn = sel[order], conn[order]
    is_req = rows.refresh[sel]
    n = len(sel)
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = conn[1:] != conn[:-1]
    c_req = _group_cumsum(is_req.astype(np.int64), first)
    c_ack = _group_cumsum((~is_req).astype(np.int64), first)
    is_ack = ~is_req
    if pairing == "fifo":
        # duplicates: ACKs beyond the frames sent so far (a running maximum of the excess, per connection)
        excess = np.maximum(c_ack - c_req, 0)
        dup_total = pd.Series(excess).groupby(conn, sort=False).cummax().to_numpy(dtype=np.int64) if n else excess
        prev = np.zeros(n, dtype=np.int64)
        if n > 1:
            prev[1:] = dup_total[:-1]
        prev[first] = 0
        matched = is_ack & (dup_total == prev)
        number = c_ack - dup_total  # the frame (1-based, per connection) a matched ACK answers
    else:
        # the first ACK after each frame, before the next frame
        # ACKs already seen in this round = c_ack - c_ack at the round's frame
        req_pos = np.where(is_req, np.arange(n), 0)
        last_req = np.maximum.accumulate(req_pos)
        round_start_acks = c_ack[last_req]
        same_conn_round = (c_req > 0) & (conn[last_req] == conn)
        matched = is_ack & same_conn_round & (c_ack - round_start_acks == 1)
        number = c_req
    width = int(c_req.max()) + 2 if n else 1
    req_key = conn[is_req] * width + c_req[is_req]
    ack_key = conn[matched] * width + number[matched]
    ack_time = rows.ts[sel[matched]]
    pos = np.searchsorted(req_key, ack_key)
    req_idx = sel[is_req]
    ack_ts = np.full(len(req_idx), np.iinfo(np.int64).max, dtype=np.int64)
    hit = pos < len(req_key)
    hit[hit] &= req_key[pos[hit]] == ack_key[hit]
    ack_ts[pos[hit]] = ack_time[hit]
    sent = rows.ts[req_idx]
    answered = ack_ts != np.iinfo(np.int64).max
    latency = np.where(answered, (ack_ts - sent) / NS, np.nan)

    by_time = np.argsort(sent, kind="stable")
    req_idx, sent, ack_ts, latency = req_idx[by_time], sent[by_time], ack_ts[by_time], latency[by_time]
    name_c = codes(frames["instruction_name"])
    fpos = req_idx if rows.selection is None else rows.selection[req_idx]
    names_by_time = name_c.values(name_c.codes[fpos])
    out = pd.DataFrame(
        {
            "conn_id": pd.Series(rows.conn_codes.values(rows.conn[req_idx]), dtype="str"),
            "outpost_uuid": pd.Series(rows.outpost_codes.values(rows.outpost[req_idx]), dtype="str"),
            "instance_uuid": pd.Series(rows.instance_codes.values(rows.instance[req_idx]), dtype="str"),
            "instruction_name": pd.Series(names_by_time, dtype="str"),
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
