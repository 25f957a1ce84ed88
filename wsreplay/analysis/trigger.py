"""TRIGGER_UPDATE fan-out: when each connection of an outpost got a configuration push.

authentik sends TRIGGER_UPDATE to every connection of an outpost when its
configuration changes. The frames of one change reach the connections within
a fraction of a second; frames of one outpost less than ``window`` apart
belong to the same **push**, which starts at its first frame. Connections of
the outpost that were open at that moment (opened before it, not yet ended)
but got no frame of the push are listed too, with ``ts`` NaT.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from ._cache import rows_of
from ._common import NO_TIME, NS, IntervalLike, require, seconds, utc
from ._engine import accepts_dask
from ._group import code_extent
from ._rows import C_TRIGGER
from .hello import HELLO_COLUMNS

__all__ = ["trigger_fanout", "TRIGGER_COLUMNS"]

#: Columns :func:`trigger_fanout` reads.
TRIGGER_COLUMNS: Final = HELLO_COLUMNS


@accepts_dask("trigger_fanout")
def trigger_fanout(frames: pd.DataFrame, /, *, window: IntervalLike = 1.0) -> pd.DataFrame:
    """One row per (TRIGGER_UPDATE push, connection of the outpost open at the time).

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load`. Not modified.
    window : float, str or Timedelta
        Frames of an outpost closer than this belong to one push (default 1 s).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``push_ts``, ``outpost_uuid``, ``delay_s``, with columns

        ``outpost_uuid`` : str
        ``push`` : int, number of the push within the outpost (0, 1, ...)
        ``push_ts`` : datetime64[ns, UTC], its first frame
        ``conn_id``, ``instance_uuid`` : str
        ``ts`` : datetime64[ns, UTC], when this connection got it (NaT: never)
        ``delay_s`` : float, ``ts - push_ts`` in seconds (NaN: never)
    """
    require(frames, TRIGGER_COLUMNS, "trigger_fanout")
    gap = round((seconds(window, "window") or 1.0) * NS)
    rows = rows_of(frames, "trigger_fanout")
    trig = np.flatnonzero((rows.cls == C_TRIGGER) & (rows.conn >= 0))
    outpost = rows.outpost[trig]
    order = np.argsort(outpost, kind="stable")
    trig, outpost = trig[order], outpost[order]
    ts = rows.ts[trig]
    n = len(trig)
    new_push = np.ones(n, dtype=bool)
    if n > 1:
        new_push[1:] = (outpost[1:] != outpost[:-1]) | (ts[1:] - ts[:-1] > gap)
    push_global = np.cumsum(new_push) - 1
    push_start = ts[new_push][push_global] if n else ts
    outpost_first = np.ones(n, dtype=bool)
    if n > 1:
        outpost_first[1:] = outpost[1:] != outpost[:-1]
    push_in_outpost = (
        push_global - (np.cumsum(new_push)[np.flatnonzero(outpost_first)] - 1)[np.cumsum(outpost_first) - 1]
    )
    got = pd.DataFrame(
        {
            "g": push_global,
            "outpost": outpost,
            "push": push_in_outpost,
            "push_ts": push_start,
            "conn": rows.conn[trig],
            "ts": ts,
        }
    )
    got = got.drop_duplicates(["g", "conn"], keep="first")

    # connections open when each push started
    known = rows.conn >= 0
    opened, _ = code_extent(rows.conn[known], rows.ts[known], len(rows.conn_codes.categories))
    conn_ids = np.flatnonzero(opened != np.iinfo(np.int64).max)
    conn_open = opened[conn_ids]
    conns = pd.DataFrame(
        {
            "conn": conn_ids,
            "outpost": rows.conn_outpost[conn_ids],
            "opened": conn_open,
            "ended": rows.conn_end[conn_ids],
        }
    )
    pushes = got.drop_duplicates("g")[["g", "outpost", "push", "push_ts"]]
    cand = pushes.merge(conns, on="outpost")
    cand = cand[(cand["opened"] <= cand["push_ts"]) & (cand["push_ts"] < cand["ended"])]
    missed = cand.merge(got[["g", "conn"]], on=["g", "conn"], how="left", indicator=True)
    missed = missed[missed["_merge"] == "left_only"][["g", "outpost", "push", "push_ts", "conn"]]
    missed = missed.assign(ts=NO_TIME)
    allrows = pd.concat([got, missed], ignore_index=True)
    t = allrows["ts"].to_numpy(dtype=np.int64)
    p = allrows["push_ts"].to_numpy(dtype=np.int64)
    conn = allrows["conn"].to_numpy(dtype=np.int64)
    received = t != NO_TIME
    out = pd.DataFrame(
        {
            "outpost_uuid": pd.Series(rows.outpost_codes.values(allrows["outpost"].to_numpy()), dtype="str"),
            "push": allrows["push"].to_numpy(dtype=np.int64),
            "push_ts": utc(p),
            "conn_id": pd.Series(rows.conn_codes.values(conn), dtype="str"),
            "instance_uuid": pd.Series(rows.instance_codes.values(rows.conn_instance[conn]), dtype="str"),
            "ts": utc(t),
            "delay_s": np.where(received, (t - p) / NS, np.nan),
        }
    )
    return out.sort_values(["push_ts", "outpost_uuid", "delay_s"], kind="stable", ignore_index=True)
