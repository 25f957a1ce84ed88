"""The outage table: one row per outage of an instance (or outpost), with its cause.

The definitions (up, down, policies, causes, levels, window) are in
:mod:`wsreplay.analysis.coverage`, which computes the periods; this module
turns them into the DataFrame :func:`wsreplay.outages` returns.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd

from ._common import NS, IntervalLike, SpanLike, TimeLike, utc
from ._engine import accepts_dask
from ._rows import instance_outposts
from .coverage import CAUSES, Coverage, Level, Policy, coverage

__all__ = ["outages"]


@accepts_dask("outages")
def outages(
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
    """One row per outage of an outpost instance (or a whole outpost).

    The precise definitions (up, down, policies, causes, levels, window) are
    under Notes.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`wsreplay.load` (at least the columns
        ``COLUMNS_NEEDED["outages"]``). Not modified.
    level : {"instance", "outpost"}
        One row per outage of a process (``instance_uuid``) or of an outpost
        (down while none of its instances is up).
    factor : float
        An instance stays up ``factor x interval`` after a refresh (authentik: 1.5).
    interval : float, str or Timedelta, optional
        Expected HELLO interval; inferred per instance (median HELLO gap) when omitted.
    policy : {"observed", "authentik"}
        ``"observed"``: a close or a broken connection starts the outage at
        that moment. ``"authentik"``: what authentik's health view showed
        (only refresh timeouts count).
    start, end : time, optional
        Clip the window (ISO string, datetime, Timestamp or epoch seconds).
    span : (time, time), optional
        First and last event of the whole capture, when *frames* hold only a
        part of it (some outposts: a report in outpost groups, a partitioned
        engine). Every part is then judged over the capture's window, and the
        parts concatenated equal one pass over the capture.
        :func:`wsreplay.store.span.capture_span` reads it from the files'
        statistics without reading the rows. Default: the span of *frames*.

    Returns
    -------
    pandas.DataFrame
        Sorted by ``start``, then ``outpost_uuid``, with columns

        ``level`` : str, ``"instance"`` or ``"outpost"``
        ``outpost_uuid`` : str
        ``instance_uuid`` : str, the instance that went away (at outpost
            level: the last one that was up)
        ``start``, ``end`` : datetime64[ns, UTC]
        ``duration_s`` : float, seconds
        ``cause`` : category, one of :data:`CAUSES`
        ``ongoing`` : bool, still down when the window ended (``end`` is the
            window's end)

        ``attrs`` holds ``policy``, ``factor`` and ``parse_errors`` (frames
        that did not decode: counted, never refreshing anything).

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> frames.pipe(wsreplay.outages, level="outpost").groupby("cause", observed=True).size()
    cause
    disconnect         1
    upstream_close    40
    dtype: int64
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
        fn="outages",
    )
    return _outage_frame(cov, factor)


def _outage_frame(cov: Coverage, factor: float) -> pd.DataFrame:
    rows = cov.rows
    if cov.level == "instance":
        inst = cov.group
        outpost = instance_outposts(rows)[inst]
    else:
        inst = cov.instance
        outpost = cov.group
    # ties on start (a server restart closes every connection at once) in outpost uuid order, so
    # that parts of a capture analysed apart and concatenated sort the same as one pass
    names = np.asarray(rows.outpost_codes.categories, dtype=object).astype(str)
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(names, kind="stable")] = np.arange(len(names))
    order = np.lexsort((rank[outpost] if len(names) else outpost, cov.start))
    out = pd.DataFrame(
        {
            "level": pd.Series([cov.level] * len(order), dtype="str"),
            "outpost_uuid": pd.Series(rows.outpost_codes.values(outpost[order]), dtype="str"),
            "instance_uuid": pd.Series(rows.instance_codes.values(inst[order]), dtype="str"),
            "start": utc(cov.start[order]),
            "end": utc(cov.end[order]),
            "duration_s": (cov.end[order] - cov.start[order]) / NS,
            "cause": pd.Categorical.from_codes(cov.cause[order], dtype=pd.CategoricalDtype(list(CAUSES))),
            "ongoing": cov.ongoing[order],
        }
    )
    out.attrs.update({"policy": cov.policy, "factor": factor, "parse_errors": rows.parse_errors})
    return out


def _with_definitions(doc: str | None) -> str:
    """*doc* with the definitions of :mod:`wsreplay.analysis.coverage` as Notes (``wsreplay.outages?`` shows them)."""
    text = importlib.import_module(".coverage", __package__).__doc__ or ""
    defs = text[text.index("Definitions\n-----------\n") + len("Definitions\n-----------\n") :]
    notes = "    Notes\n    -----\n" + "\n".join(("    " + line) if line else "" for line in defs.splitlines())
    doc = doc or ""
    return doc.replace("    Examples\n", notes.rstrip() + "\n\n    Examples\n", 1)


outages.__doc__ = _with_definitions(outages.__doc__)
