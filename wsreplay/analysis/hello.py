"""HELLO intervals: how regularly each outpost instance says it is alive.

An outpost sends HELLO right after connecting, then every 10 s (authentik's
``OUTPOST_HELLO_INTERVAL``). The gap between two HELLOs of an instance is its
*HELLO interval*; the **expected interval** of an instance is the median of its
gaps between HELLOs on the same connection (robust to the few long gaps an
outage leaves), which is what :func:`wsreplay.outages` uses unless told
``interval=``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from ._common import NS, categorical, require, utc
from ._group import group_order, run_starts
from ._rows import OutpostRows, instance_outposts, outpost_rows

__all__ = ["hello_intervals", "expected_intervals", "intervals_from_sorted", "HELLO_COLUMNS"]

#: Columns :func:`hello_intervals` reads.
HELLO_COLUMNS: Final = (
    "ts",
    "conn_id",
    "outpost_uuid",
    "instance_uuid",
    "event",
    "direction",
    "instruction_name",
)


def _gaps(inst: np.ndarray, ts: np.ndarray, conn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For HELLOs sorted by instance then time: gap to the previous HELLO of the instance (ns, -1
    for its first) and whether that one came over the same connection."""
    n = len(inst)
    gap = np.full(n, -1, dtype=np.int64)
    same_conn = np.zeros(n, dtype=bool)
    if n > 1:
        same_inst = inst[1:] == inst[:-1]
        np.subtract(ts[1:], ts[:-1], out=gap[1:])
        gap[1:][~same_inst] = -1
        same_conn[1:] = same_inst & (conn[1:] == conn[:-1])
    return gap, same_conn


def _hello_gaps(rows: OutpostRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HELLO row positions (sorted by instance, then time), gap to the previous HELLO (ns), same-connection flag."""
    idx = np.flatnonzero(rows.hello & (rows.instance >= 0))
    idx = idx[group_order(rows.instance[idx])]
    gap, same_conn = _gaps(rows.instance[idx], rows.ts[idx], rows.conn[idx])
    return idx, gap, same_conn


def intervals_from_sorted(
    rows: OutpostRows, inst: np.ndarray, ts: np.ndarray, conn: np.ndarray, default_s: float
) -> np.ndarray:
    """Expected interval per instance code from HELLOs sorted by instance then time (see below)."""
    n_inst = len(rows.instance_codes.categories)
    out = np.full(n_inst, np.nan)
    gap, same_conn = _gaps(inst, ts, conn)
    ok = same_conn & (gap > 0)
    if not ok.any():
        out[:] = default_s
        return out
    inst = inst[ok]
    gaps = gap[ok]
    # HELLOs are grouped by instance: one median per run (a loop per instance, not per frame)
    starts = np.flatnonzero(run_starts(inst))
    ends = np.append(starts[1:], len(inst))
    for s, e in zip(starts.tolist(), ends.tolist()):
        out[inst[s]] = float(np.median(gaps[s:e])) / NS
    missing = np.isnan(out)
    if missing.any():
        # fallbacks: the outpost's median, then everyone's
        inst_outpost = instance_outposts(rows)
        gaps_s = gaps / NS
        by_outpost = pd.Series(gaps_s).groupby(inst_outpost[inst], sort=False).median()
        out[missing] = by_outpost.reindex(inst_outpost[missing]).to_numpy()
        out[np.isnan(out)] = float(np.median(gaps_s))
    return out


def expected_intervals(rows: OutpostRows, default_s: float) -> np.ndarray:
    """Expected HELLO interval (seconds) per instance code.

    The median gap between consecutive HELLOs of the instance on one
    connection; an instance with no such gap takes its outpost's median, then
    the median over all instances, then *default_s*.
    """
    idx = np.flatnonzero(rows.hello & (rows.instance >= 0))
    idx = idx[group_order(rows.instance[idx])]
    return intervals_from_sorted(rows, rows.instance[idx], rows.ts[idx], rows.conn[idx], default_s)


def hello_intervals(frames: pd.DataFrame, /) -> pd.DataFrame:
    """One row per HELLO an outpost sent, with the gap since the instance's previous HELLO.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load` (at least
        :data:`HELLO_COLUMNS`). Not modified.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``outpost_uuid``, ``instance_uuid``, ``ts``, with columns

        ``outpost_uuid``, ``instance_uuid``, ``conn_id`` : category
        ``ts`` : datetime64[ns, UTC], when the recorder saw the HELLO
        ``interval_s`` : float, seconds since the instance's previous HELLO
            (NaN for its first)
        ``reconnected`` : bool, the previous HELLO came over another connection
            (the gap then spans a reconnect)

        HELLOs whose instance is unknown (an old outpost's HELLO without
        ``uuid`` on a connection without ``instance_uuid``) are left out.

    Examples
    --------
    >>> frames.pipe(wsreplay.hello_intervals).groupby("instance_uuid")["interval_s"].median()  # doctest: +SKIP
    """
    require(frames, HELLO_COLUMNS, "hello_intervals")
    rows = outpost_rows(frames)
    idx, gap, same_conn = _hello_gaps(rows)
    first = gap < 0
    out = pd.DataFrame(
        {
            "outpost_uuid": categorical(rows.outpost[idx], rows.outpost_codes.categories),
            "instance_uuid": categorical(rows.instance[idx], rows.instance_codes.categories),
            "conn_id": categorical(rows.conn[idx], rows.conn_codes.categories),
            "ts": utc(rows.ts[idx]),
            "interval_s": np.where(first, np.nan, gap / NS),
            "reconnected": ~first & ~same_conn,
        }
    )
    # rows are grouped by instance in time order; order the instances by (outpost, instance)
    key = pd.MultiIndex.from_arrays([out["outpost_uuid"].astype("str"), out["instance_uuid"].astype("str")])
    order = np.lexsort((np.arange(len(out)), key.codes[1], key.codes[0])) if len(out) else np.zeros(0, dtype=int)
    return out.take(order).reset_index(drop=True)
