"""Outages: when was an outpost (or one of its processes) down, for how long, and why.

authentik keeps no history: its health view lists the instances whose state
was refreshed in the last 15 s. A capture keeps every frame, so the same
question can be answered for any moment of it. This module fixes what "down"
means; :func:`wsreplay.uptime` sums it up.

Definitions
-----------
**Refresh.** A frame an outpost sends to authentik that is not an ACK and whose
instruction decoded (HELLO, and any other instruction; frames that did not
decode never refresh anything, they are only counted). authentik saves the
instance's state on each of them with a timeout.

**Expected interval.** Per instance, the median gap between its consecutive
HELLOs on one connection (robust to the few long gaps an outage leaves); an
instance with too few HELLOs takes its outpost's median, then the fleet's.
``interval=`` (seconds, ``"10s"`` or a Timedelta) gives it instead.
authentik's is 10 s.

**Up.** An instance is up from a refresh until ``factor x interval`` after it
(default ``factor=1.5``: authentik's own cache expiry, 15 s) unless another
refresh arrives in that time, which extends it.

**Policies.**

``policy="authentik"``
    Exactly what authentik's health view would have shown: an instance is
    listed while a refresh is younger than ``factor x interval``, whatever
    happens to its socket.
``policy="observed"`` (default)
    Also uses what the capture saw: a close or a broken connection ends the
    up period at that moment, so an outage starts when the connection ended,
    not when authentik's cache expired. It ends, as in both policies, with the
    next refresh (a reconnect's first HELLO).

**Down.** An outage is a gap between up periods: from the moment the last up
period ended to the next refresh.

**Causes** (column ``cause``), from how the connection that carried the last
refresh before the gap behaved:

``disconnect``
    The connection broke (close 1006 / no close frame, an ``error`` row, or an
    abnormal close by the outpost) before the state expired.
``upstream_close``
    authentik closed the connection (e.g. 1012 when the server restarts).
``restart``
    The outpost closed cleanly (1000 / 1001): its process shut down.
``upgrade``
    (``level="outpost"``) a ``restart`` after which the instance that came
    back is a new one running another version than the one that shut down.
``silent``
    The connection stayed open (or its end is not in the capture) but no
    refresh came within ``factor x interval``: a hung process or a network
    that black-holes packets. The outage starts when the state expired, in
    both policies.

Outages still running when the window ends are reported up to the window's
end with ``ongoing=True`` (their duration is a lower bound). There is no
``capture_end`` cause: the end of a capture ends the observation, not the
outpost, so such an outage keeps the cause that started it.

**Levels.**

``level="instance"``
    One outpost process (``instance_uuid``). An instance that shut down
    cleanly (``restart``) and never came back has *retired*: the time after
    it is not an outage of that instance (its successor, a new instance
    uuid, is another row).
``level="outpost"``
    Up while any of its instances is up. A new instance uuid is a restart of
    the same outpost, not a new outpost: the gap between the old instance
    going away and the new one's first HELLO is an outage with cause
    ``restart`` (``upgrade`` if the version changed).

**Window.** The window is the capture's span (first to last event of
*frames*) clipped by ``start`` / ``end``. Capture boundaries are not outages:
time before an instance's first refresh is unobserved, not down, and nothing
past the window counts. Frames filtered with ``load(start=, end=, outpost=)``
shorten the span to the rows they kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from ._common import DEFAULT_INTERVAL_S as _DEFAULT_INTERVAL_S
from ._common import (
    NS,
    IntervalLike,
    TimeLike,
    codes,
    require,
    seconds,
    ts_ns,
    utc,
    window,
)
from ._group import group_cummax, group_order, run_starts
from ._rows import C_HELLO, END_CLEAN, END_DISCONNECT, END_UPSTREAM, OutpostRows, instance_outposts, outpost_rows
from .hello import HELLO_COLUMNS, intervals_from_sorted

__all__ = ["outages", "coverage", "Coverage", "CAUSES", "LEVELS", "POLICIES", "OUTAGE_COLUMNS"]

Level = Literal["instance", "outpost"]
Policy = Literal["observed", "authentik"]

LEVELS: Final = ("instance", "outpost")
POLICIES: Final = ("observed", "authentik")
#: Values of the ``cause`` column.
CAUSES: Final = ("disconnect", "silent", "restart", "upgrade", "upstream_close")
#: Columns :func:`outages` and :func:`uptime` read (``close_code`` and ``version`` are optional:
#: without them every close by the outpost counts as a disconnect and restarts are not told
#: apart from upgrades).
OUTAGE_COLUMNS: Final = (*HELLO_COLUMNS, "instruction", "close_code", "version", "parse_error")
_REQUIRED: Final = HELLO_COLUMNS

_SILENT: Final = 0
_UPGRADE: Final = 4
# internal kind code (index) -> index in CAUSES
_CAUSE_OF_KIND: Final = np.zeros(5, dtype=np.int64)
_CAUSE_OF_KIND[[_SILENT, END_DISCONNECT, END_UPSTREAM, END_CLEAN, _UPGRADE]] = [
    CAUSES.index(c) for c in ("silent", "disconnect", "upstream_close", "restart", "upgrade")
]


@dataclass(frozen=True)
class Coverage:
    """Up/down periods of a capture at one level (the engine behind outages and uptime)."""

    level: str
    policy: str
    rows: OutpostRows
    #: outages: group code, instance code (who went away), start/end ns, cause index, ongoing
    group: np.ndarray
    instance: np.ndarray
    start: np.ndarray
    end: np.ndarray
    cause: np.ndarray
    ongoing: np.ndarray
    #: observed window per group: group code, first/last ns, instance count
    g_code: np.ndarray
    g_start: np.ndarray
    g_end: np.ndarray
    g_instances: np.ndarray
    g_outpost: np.ndarray
    window: tuple[int, int]

    def group_values(self, idx: np.ndarray) -> np.ndarray:
        """Uuid strings of group codes (instance or outpost uuids)."""
        c = self.rows.instance_codes if self.level == "instance" else self.rows.outpost_codes
        return c.values(idx)


def _check_options(level: str, policy: str, factor: float) -> None:
    from ..exceptions import ConfigurationError

    if level not in LEVELS:
        raise ConfigurationError(f"level must be one of {LEVELS}, not {level!r}")
    if policy not in POLICIES:
        raise ConfigurationError(f"policy must be one of {POLICIES}, not {policy!r}")
    if not (isinstance(factor, (int, float)) and np.isfinite(factor) and factor > 0):
        raise ConfigurationError(f"factor must be a positive number, not {factor!r}")


def _instance_versions(frames: pd.DataFrame, rows: OutpostRows) -> np.ndarray:
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


def coverage(
    frames: pd.DataFrame,
    *,
    level: Level = "instance",
    factor: float = 1.5,
    interval: IntervalLike = None,
    policy: Policy = "observed",
    start: TimeLike = None,
    end: TimeLike = None,
    fn: str = "outages",
) -> Coverage:
    """Compute up periods and outages (see the module docstring); vectorised over all rows."""
    require(frames, _REQUIRED, fn)
    _check_options(level, policy, factor)
    interval_s = seconds(interval, "interval")
    w0, w1 = window(ts_ns(frames), start, end)
    rows = outpost_rows(frames)
    n_inst = len(rows.instance_codes.categories)

    # refreshes grouped by instance (time order within), which also gives the HELLO intervals
    r_time = np.flatnonzero(rows.refresh & (rows.instance >= 0) & (rows.conn >= 0))
    r = r_time[group_order(rows.instance[r_time])]
    inst = rows.instance[r]
    t = rows.ts[r]
    conn = rows.conn[r]
    if interval_s is None:
        h = rows.cls[r] == C_HELLO
        inst_interval = intervals_from_sorted(rows, inst[h], t[h], conn[h], _DEFAULT_INTERVAL_S)
    else:
        inst_interval = np.full(n_inst, interval_s)
    expiry = np.round(inst_interval * factor * NS).astype(np.int64)
    g = inst
    if level == "outpost":
        # grouped by outpost instead, in time order within each
        r = r_time[group_order(rows.outpost[r_time])]
        inst, t, conn, g = rows.instance[r], rows.ts[r], rows.conn[r], rows.outpost[r]

    # each refresh keeps the instance up until its state expires, or (observed) its connection ends
    e = expiry[inst]
    e += t
    cend = rows.conn_end[conn]
    by_conn = cend <= e  # the connection ended before the state expired
    if policy == "observed":
        np.maximum(cend, t, out=cend)
        np.copyto(e, cend, where=by_conn)
    del cend

    n = len(r)
    first = run_starts(g)
    last = np.ones(n, dtype=bool)
    if n > 1:
        last[:-1] = first[1:]
    cm = group_cummax(e, first)

    def holder(pos: np.ndarray) -> np.ndarray:
        """The refresh whose up period reaches furthest, among those up to *pos* in its group."""
        out = pos.copy()
        off = e[pos] != cm[pos]
        if off.any():
            newmax = np.flatnonzero(e == cm)
            out[off] = newmax[np.searchsorted(newmax, pos[off], side="right") - 1]
        return out

    def kind(j: np.ndarray) -> np.ndarray:
        """How the up period of refresh *j* ended (connection end kind, or silent)."""
        return np.where(by_conn[j], rows.conn_end_kind[conn[j]], _SILENT).astype(np.int64)

    # gaps between up periods: a refresh that comes after everything before it in its group expired
    gap = np.zeros(n, dtype=bool)
    if n > 1:
        np.greater(t[1:], cm[:-1], out=gap[1:])
        gap &= ~first
    k = np.flatnonzero(gap)
    j = holder(k - 1)
    o_group, o_inst, o_start, o_end = g[k], inst[j], cm[k - 1], t[k]
    o_kind = kind(j)
    if level == "outpost":
        versions = _instance_versions(frames, rows)
        v_before, v_after = versions[inst[j]], versions[inst[k]]
        upgraded = (o_kind == END_CLEAN) & (inst[k] != inst[j]) & (v_before >= 0) & (v_after >= 0)
        upgraded &= v_before != v_after
        o_kind = np.where(upgraded, _UPGRADE, o_kind)

    # the end of each group: retired (instance shut down cleanly) or down until the window ends
    lk = np.flatnonzero(last)
    lj = holder(lk)
    l_cm, l_kind = cm[lk], kind(lj)
    retired = (l_kind == END_CLEAN) if level == "instance" else np.zeros(len(lk), dtype=bool)
    trailing = ~retired & (l_cm < w1)
    tk = lk[trailing]
    o_group = np.concatenate([o_group, g[tk]])
    o_inst = np.concatenate([o_inst, inst[lj[trailing]]])
    o_start = np.concatenate([o_start, l_cm[trailing]])
    o_end = np.concatenate([o_end, np.full(len(tk), w1, dtype=np.int64)])
    o_kind = np.concatenate([o_kind, l_kind[trailing]])

    # clip to the window
    s_clip = np.maximum(o_start, w0)
    e_clip = np.minimum(o_end, w1)
    keep = e_clip > s_clip
    ongoing = o_end >= w1

    g_code = g[first]
    g_start = np.maximum(t[first], w0)
    g_end = np.where(retired, np.minimum(l_cm, w1), w1)
    g_keep = g_end > g_start
    if level == "instance":
        g_inst = np.ones(len(g_code), dtype=np.int64)
    else:
        seen = np.flatnonzero(np.bincount(inst, minlength=n_inst))
        per_outpost = np.bincount(_instance_outpost(rows)[seen], minlength=len(rows.outpost_codes.categories))
        g_inst = per_outpost[g_code]
    g_outpost = rows.outpost[r[first]]

    cause_idx = _CAUSE_OF_KIND[o_kind]
    return Coverage(
        level=level,
        policy=policy,
        rows=rows,
        group=o_group[keep],
        instance=o_inst[keep],
        start=s_clip[keep],
        end=e_clip[keep],
        cause=cause_idx[keep],
        ongoing=ongoing[keep],
        g_code=g_code[g_keep],
        g_start=g_start[g_keep],
        g_end=g_end[g_keep],
        g_instances=np.asarray(g_inst, dtype=np.int64)[g_keep],
        g_outpost=g_outpost[g_keep],
        window=(w0, w1),
    )


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

    Returns
    -------
    pandas.DataFrame
        Sorted by ``start``, with columns

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
    >>> frames.pipe(wsreplay.outages, level="outpost").groupby("cause", observed=True).size()  # doctest: +SKIP
    """
    cov = coverage(
        frames, level=level, factor=factor, interval=interval, policy=policy, start=start, end=end, fn="outages"
    )
    return _outage_frame(cov, factor)


def _outage_frame(cov: Coverage, factor: float) -> pd.DataFrame:
    rows = cov.rows
    if cov.level == "instance":
        inst = cov.group
        outpost = _instance_outpost(rows)[inst]
    else:
        inst = cov.instance
        outpost = cov.group
    order = np.lexsort((outpost, cov.start))
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


def _instance_outpost(rows: OutpostRows) -> np.ndarray:
    """Outpost code per instance code."""
    return instance_outposts(rows)


def _with_definitions(doc: str | None) -> str:
    """*doc* with the module's definitions as its Notes section (so ``wsreplay.outages?`` shows them)."""
    text = __doc__ or ""
    defs = text[text.index("Definitions\n-----------\n") + len("Definitions\n-----------\n") :]
    notes = "    Notes\n    -----\n" + "\n".join(("    " + line) if line else "" for line in defs.splitlines())
    doc = doc or ""
    return doc.replace("    Examples\n", notes.rstrip() + "\n\n    Examples\n", 1)


outages.__doc__ = _with_definitions(outages.__doc__)
