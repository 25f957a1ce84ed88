"""Uptime: the share of its observed time each instance (or outpost) was up.

Built on the same definitions as :func:`wsreplay.outages` (see
:mod:`wsreplay.analysis.coverage`): ``down_s`` is the sum of the outages inside
the window, ``observed_s`` runs from the first refresh of the instance (or the
window's start, whichever is later) to the window's end, or to the moment an
instance that shut down cleanly retired.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import NS, IntervalLike, SpanLike, TimeLike, utc
from ._engine import accepts_dask
from ._rows import instance_outposts
from .coverage import Level, Policy, coverage

__all__ = ["uptime"]


@accepts_dask("uptime")
def uptime(
    frames: pd.DataFrame,
    /,
    *,
    level: Level = "instance",
    factor: float = 1.5,
    interval: IntervalLike = None,
    policy: Policy = "observed",
    start: TimeLike = None,
    end: TimeLike = None,
    span: SpanLike = None,
) -> pd.DataFrame:
    """One row per instance (or outpost): observed, up and down time, and the uptime share.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load` (at least
        ``COLUMNS_NEEDED["uptime"]``). Not modified.
    level, factor, interval, policy, start, end, span
        As for :func:`wsreplay.outages`.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``outpost_uuid`` (then ``instance_uuid``), with columns

        ``outpost_uuid`` : str
        ``instance_uuid`` : str (``level="instance"`` only)
        ``instances`` : int, instances seen (``level="outpost"`` only)
        ``start``, ``end`` : datetime64[ns, UTC], the observed window of this row
        ``observed_s``, ``up_s``, ``down_s`` : float, seconds
        ``uptime`` : float, ``up_s / observed_s`` in [0, 1] (NaN when nothing was observed)
        ``observed_share`` : float, ``observed_s`` over the window's length in
            [0, 1]: how much of the window this row's ``uptime`` speaks for (an
            outpost first seen late, or an instance that retired early, has a
            small share; 100 % uptime over 10 % of the window is not 100 % of it)
        ``outages`` : int, outages in the window
        ``longest_outage_s`` : float, seconds (0 without outages)

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> up = frames.pipe(wsreplay.uptime, level="outpost")
    >>> up.nsmallest(2, "uptime")[["outpost_uuid", "uptime", "longest_outage_s"]]  # doctest: +ELLIPSIS
                                outpost_uuid    uptime  longest_outage_s
    35  d9152914-94c5-4f9f-a642-820b0ce121be  0.9299...              63.0
    39  faee4680-c7eb-45f7-a5b1-ff6128f63545  0.9648...              63.0
    """
    cov = coverage(
        frames,
        level=level,
        factor=factor,
        interval=interval,
        policy=policy,
        start=start,
        end=end,
        span=span,
        fn="uptime",
    )
    n_groups = len(cov.g_code)
    pos = pd.Series(np.arange(n_groups), index=cov.g_code)
    if len(cov.group):
        at = pos.reindex(cov.group).to_numpy()
        dur = (cov.end - cov.start).astype(np.float64)
        ok = ~np.isnan(at)
        at_i = at[ok].astype(np.int64)
        down: np.ndarray = np.bincount(at_i, weights=dur[ok], minlength=n_groups)
        count = np.bincount(at_i, minlength=n_groups)
        longest = np.zeros(n_groups)
        np.maximum.at(longest, at_i, dur[ok])
    else:
        down = np.zeros(n_groups, dtype=np.float64)
        count = np.zeros(n_groups, dtype=np.intp)
        longest = np.zeros(n_groups)
    observed = (cov.g_end - cov.g_start).astype(np.float64)
    down = np.minimum(down, observed)
    up = observed - down
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(observed > 0, up / observed, np.nan)
    w_len = float(cov.window[1] - cov.window[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        observed_share = np.clip(observed / w_len, 0.0, 1.0) if w_len > 0 else np.full(n_groups, np.nan)
    rows = cov.rows
    data: dict[str, object] = {}
    if level == "instance":
        data["outpost_uuid"] = pd.Series(rows.outpost_codes.values(instance_outposts(rows)[cov.g_code]), dtype="str")
        data["instance_uuid"] = pd.Series(rows.instance_codes.values(cov.g_code), dtype="str")
    else:
        data["outpost_uuid"] = pd.Series(rows.outpost_codes.values(cov.g_code), dtype="str")
        data["instances"] = cov.g_instances
    data.update(
        {
            "start": utc(cov.g_start),
            "end": utc(cov.g_end),
            "observed_s": observed / NS,
            "up_s": up / NS,
            "down_s": down / NS,
            "uptime": share,
            "observed_share": observed_share,
            "outages": count.astype(np.int64),
            "longest_outage_s": longest / NS,
        }
    )
    out = pd.DataFrame(data)
    keys = ["outpost_uuid", "instance_uuid"] if level == "instance" else ["outpost_uuid"]
    out = out.sort_values(keys, kind="stable", ignore_index=True)
    out.attrs.update({"policy": policy, "factor": factor, "parse_errors": rows.parse_errors})
    return out
