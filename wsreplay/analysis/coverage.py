"""Coverage: what "down" means, and the up/down timeline of each instance (or outpost) it gives.

authentik keeps no history: its health view lists the instances whose state
was refreshed in the last 15 s. A capture keeps every frame, so the same
question can be answered for any moment of it. This module fixes what "down"
means and computes the up/down periods (:func:`coverage`);
:func:`wsreplay.outages` (:mod:`wsreplay.analysis.outage_table`) lists them
and :func:`wsreplay.uptime` (:mod:`wsreplay.analysis.availability`) sums them up.

Definitions
-----------
**Refresh.** A frame an outpost sends to authentik that is not an ACK and whose
instruction decoded (HELLO, and any other instruction; frames that did not
decode never refresh anything, they are only counted). authentik saves the
instance's state on each of them with a timeout.

**Expected interval.** Per instance, the median gap between its consecutive
HELLOs on one connection (robust to the few long gaps an outage leaves),
raised where the local cadence is slower (rules in
:mod:`wsreplay.analysis.hello`): at each HELLO, the median of the gaps in a
window of 5 gaps on each side of the gap that follows it, when that is more
than a quarter longer. A single long gap (an outage) is outvoted by its
neighbours; an interval that grows mid-capture is followed from its first
gap on, so it gives no false ``silent`` outage. An instance without such
gaps takes its outpost's median, then authentik's 10 s.
``interval=`` (seconds, ``"10s"`` or a Timedelta) fixes it instead.

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
``crash``
    (``level="outpost"``) a ``disconnect`` of an instance that never came
    back, after which a new instance came up: the process died (OOM kill,
    node loss: TCP reset, close 1006) and was replaced. Until a successor is
    seen the gap keeps the cause ``disconnect``: a capture cannot tell a
    dead process from a network that stayed down.
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
    One outpost process (``instance_uuid``). An instance *retires* (exits)
    when the connection of its last refresh ended without authentik closing
    it (a clean close 1000 / 1001, a close 1006 or TCP reset, an ``error``
    row) and it never shows up again (no later connection, none still open):
    the time after its exit is not an outage of that instance (its
    successor, a new instance uuid, is another row), as the simulator's
    truth defines it. If it was already down when it exited (it hung, then
    was killed) that outage ends at the exit. An instance whose network
    stays down until the capture ends looks exactly like one that died: it
    retires too (the outpost level still shows the gap).
``level="outpost"``
    Up while any of its instances is up. A new instance uuid is a restart of
    the same outpost, not a new outpost: the gap between the old instance
    going away and the new one's first HELLO is an outage with cause
    ``restart`` (``upgrade`` if the version changed, ``crash`` if the old one
    broke off). Retiring changes nothing here: the outpost is down until a
    successor is up, or until the window ends (``ongoing``).

**Window.** The window is the capture's span (first to last event of
*frames*, or ``span=`` when *frames* are only some outposts of a capture)
clipped by ``start`` / ``end``. Capture boundaries are not outages: time
before an instance's first refresh is unobserved, not down (a capture that
starts while an outpost is down shows nothing of that outage: the outpost is
first seen when it comes back; :func:`wsreplay.uptime`'s ``observed_share``
says so), and nothing past the window counts. Frames filtered with
``load(start=, end=, outpost=)`` shorten the span to the rows they kept,
unless ``span=`` is given: pass the capture's own span
(:func:`wsreplay.store.span.capture_span`) to every part of a capture
analysed in pieces, and the parts add up to one pass.

**Clock steps.** Rows are ordered by ``ts`` as recorded. When the recording
host's clock steps back, the frames stamped after the step interleave with
those before it: gaps across the step look shorter, so a step never makes
an outage; an outage that spans the step is shifted by the step (its
``duration_s`` is the recorded difference, clipped at 0: never negative).

**Partitions.** Everything above depends only on the frames of each
outpost and the window: the result for a set of outposts is the same
whether they are analysed alone (with the capture's ``span=``) or with the
rest of the fleet.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from ._cache import rows_of, shared
from ._common import DEFAULT_INTERVAL_S as _DEFAULT_INTERVAL_S
from ._common import (
    NO_TIME,
    NS,
    IntervalLike,
    SpanLike,
    TimeLike,
    require,
    seconds,
    to_ns,
    ts_ns,
    window,
)
from ._group import group_cummax, run_starts
from ._native import kernels
from ._rows import (
    END_CLEAN,
    END_DISCONNECT,
    END_UPSTREAM,
    OutpostRows,
    instance_exits,
    instance_outposts,
    instance_versions,
    refreshes_by,
)
from .hello import HELLO_COLUMNS, refresh_expiry

__all__ = ["coverage", "coverage_levels", "Coverage", "CAUSES", "LEVELS", "POLICIES", "OUTAGE_COLUMNS"]

Level = Literal["instance", "outpost"]
Policy = Literal["observed", "authentik"]

LEVELS: Final = ("instance", "outpost")
POLICIES: Final = ("observed", "authentik")
#: Values of the ``cause`` column.
CAUSES: Final = ("disconnect", "silent", "restart", "upgrade", "upstream_close", "crash")
#: Columns :func:`outages` and :func:`uptime` read (``close_code`` and ``version`` are optional:
#: without them every close by the outpost counts as a disconnect and restarts are not told
#: apart from upgrades).
OUTAGE_COLUMNS: Final = (*HELLO_COLUMNS, "instruction", "close_code", "version", "parse_error")
_REQUIRED: Final = HELLO_COLUMNS

_SILENT: Final = 0
_UPGRADE: Final = 4
_CRASH: Final = 5
# internal kind code (index) -> index in CAUSES
_CAUSE_OF_KIND: Final = np.zeros(6, dtype=np.int64)
_CAUSE_OF_KIND[[_SILENT, END_DISCONNECT, END_UPSTREAM, END_CLEAN, _UPGRADE, _CRASH]] = [
    CAUSES.index(c) for c in ("silent", "disconnect", "upstream_close", "restart", "upgrade", "crash")
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


def _span_key(span: SpanLike) -> object:
    """*span* as a cache key (epoch ns); an invalid one gets a key of its own (the computation rejects it)."""
    if span is None:
        return None
    try:
        first, last = span
        return (to_ns(first, "span"), to_ns(last, "span"))
    except Exception:
        return ("invalid", id(span))


def _key(
    level: str, factor: float, interval_s: float | None, policy: str, start: TimeLike, end: TimeLike, span: SpanLike
) -> tuple[object, ...]:
    """The cache key of one level's timeline."""
    return ("coverage", level, float(factor), interval_s, policy, to_ns(start, "start"), to_ns(end, "end"),
            _span_key(span))  # fmt: skip


def coverage(
    frames: pd.DataFrame,
    *,
    level: Level = "instance",
    factor: float = 1.5,
    interval: IntervalLike = None,
    policy: Policy = "observed",
    start: TimeLike = None,
    end: TimeLike = None,
    span: SpanLike = None,
    fn: str = "outages",
) -> Coverage:
    """Compute up periods and outages (see the module docstring); vectorised over all rows.

    The result is shared (:mod:`wsreplay.analysis._cache`): ``outages`` and
    ``uptime`` with the same parameters on the same frames compute it once.
    """
    return coverage_levels(
        frames, (level,), factor=factor, interval=interval, policy=policy, start=start, end=end, span=span, fn=fn
    )[level]


def coverage_levels(
    frames: pd.DataFrame,
    levels: tuple[str, ...] = LEVELS,
    *,
    factor: float = 1.5,
    interval: IntervalLike = None,
    policy: Policy = "observed",
    start: TimeLike = None,
    end: TimeLike = None,
    span: SpanLike = None,
    fn: str = "outages",
) -> dict[str, Coverage]:
    """:func:`coverage` at several *levels*, sharing their common part (each instance's refreshes and expiry).

    Each result is shared as :func:`coverage`'s is, so a later ``outages`` or
    ``uptime`` call at one of these levels with the same parameters reuses it.
    """
    require(frames, _REQUIRED, fn)
    for level in levels:
        _check_options(level, policy, factor)
    interval_s = seconds(interval, "interval")
    phase: list[_Refreshes] = []

    def compute(level: str) -> Coverage:
        if not phase:
            phase.append(_refreshes(frames, float(factor), interval_s, fn))
        return _coverage(frames, phase[0], level, policy, start, end, span)

    key = (float(factor), interval_s, policy, start, end, span)
    return {level: shared(frames, _key(level, *key), functools.partial(compute, level)) for level in levels}


@dataclass(frozen=True)
class _Refreshes:
    """What every level's timeline starts from: the refreshes grouped by instance, and when each expires."""

    rows: OutpostRows
    r: np.ndarray  # refresh rows of a known instance and connection, grouped by instance (time order within)
    inst: np.ndarray
    t: np.ndarray
    conn: np.ndarray
    expiry: np.ndarray  # when each refresh's state expires (ns): t + factor x interval
    last_t: np.ndarray  # per instance: the time of its last refresh
    exited: np.ndarray
    exit_at: np.ndarray


def _refreshes(frames: pd.DataFrame, factor: float, interval_s: float | None, fn: str) -> _Refreshes:
    rows = rows_of(frames, fn)
    n_inst = len(rows.instance_codes.categories)
    # refreshes grouped by instance (time order within): one counting sort of their instance codes
    counts, r, t, conn, is_hello = refreshes_by(rows, rows.instance, n_inst)
    inst = np.repeat(np.arange(n_inst, dtype=np.int64), counts)
    # how long each refresh keeps its instance up (the expected interval: see hello.py)
    if interval_s is None:
        e = refresh_expiry(rows, inst, t, conn, is_hello, factor, _DEFAULT_INTERVAL_S)
    else:
        e = np.full(len(r), round(interval_s * factor * NS), dtype=np.int64)
    del is_hello
    e += t
    # the connection of each instance's last refresh, and whether the instance exited after it
    last_conn = np.full(n_inst, -1, dtype=np.int64)
    last_t = np.full(n_inst, NO_TIME, dtype=np.int64)
    if len(r):
        ends_run = np.ones(len(r), dtype=bool)
        ends_run[:-1] = inst[1:] != inst[:-1]
        last_conn[inst[ends_run]] = conn[ends_run]
        last_t[inst[ends_run]] = t[ends_run]
    exited, exit_at = instance_exits(rows, last_conn)
    return _Refreshes(rows, r, inst, t, conn, e, last_t, exited, exit_at)


def _up_periods(
    g: np.ndarray, t: np.ndarray, conn: np.ndarray, e: np.ndarray, conn_end: np.ndarray, observed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Up periods of refreshes grouped by *g* (time order within); *e* (their expiry, ns) is updated in place.

    Returns ``by_conn`` (the connection ended before the state expired; with
    *observed* the period then ends there: ``e = max(conn_end, t)``),
    ``first`` (the refresh starts its group), ``cm`` (the running maximum of
    *e* in the group) and ``gap`` (the refresh came after everything before it
    in its group expired). One pass in C when the kernels were compiled, else
    :func:`_up_periods_numpy`.
    """
    if kernels is None:
        return _up_periods_numpy(g, t, conn, e, conn_end, observed)
    n = len(g)
    by_conn, first, gap = (np.empty(n, dtype=np.bool_) for _ in range(3))
    cm = np.empty(n, dtype=np.int64)
    g, t, conn, conn_end = (np.ascontiguousarray(a, dtype=np.int64) for a in (g, t, conn, conn_end))
    kernels.up_periods(g, t, conn, e, conn_end, observed, by_conn, first, cm, gap)
    return by_conn, first, cm, gap


def _up_periods_numpy(
    g: np.ndarray, t: np.ndarray, conn: np.ndarray, e: np.ndarray, conn_end: np.ndarray, observed: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_up_periods` in numpy."""
    cend = conn_end[conn]
    by_conn = cend <= e  # the connection ended before the state expired
    if observed:
        np.maximum(cend, t, out=cend)
        np.copyto(e, cend, where=by_conn)
    del cend
    first = run_starts(g)
    cm = group_cummax(e, first)
    # gaps between up periods: a refresh that comes after everything before it in its group expired
    gap = np.zeros(len(g), dtype=bool)
    if len(g) > 1:
        np.greater(t[1:], cm[:-1], out=gap[1:])
        gap &= ~first
    return by_conn, first, cm, gap


def _coverage(
    frames: pd.DataFrame,
    ref: _Refreshes,
    level: str,
    policy: str,
    start: TimeLike,
    end: TimeLike,
    span: SpanLike,
) -> Coverage:
    w0, w1 = window(ts_ns(frames), start, end, span)
    rows = ref.rows
    n_inst = len(rows.instance_codes.categories)
    r, inst, t, conn = ref.r, ref.inst, ref.t, ref.conn
    last_t, exited, exit_at = ref.last_t, ref.exited, ref.exit_at
    g = inst
    if level == "outpost":
        # grouped by outpost instead, in time order within each
        at_row = np.empty(len(rows.ts), dtype=np.int64)
        at_row[r] = ref.expiry
        n_outposts = len(rows.outpost_codes.categories)
        counts, r, t, conn, _ = refreshes_by(rows, rows.outpost, n_outposts)
        inst, g = rows.instance[r], np.repeat(np.arange(n_outposts, dtype=np.int64), counts)
        e = at_row[r]
        del at_row
    else:
        e = ref.expiry.copy()  # the policy below writes into it; other levels still need it

    # each refresh keeps the instance up until its state expires, or (observed) its connection ends;
    # the running maximum of that per group, and the gaps between up periods
    by_conn, first, cm, gap = _up_periods(g, t, conn, e, rows.conn_end, policy == "observed")
    n = len(r)
    last = np.ones(n, dtype=bool)
    if n > 1:
        last[:-1] = first[1:]

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

    k = np.flatnonzero(gap)
    j = holder(k - 1)
    o_group, o_inst, o_start, o_end = g[k], inst[j], cm[k - 1], t[k]
    o_kind = kind(j)
    if level == "outpost":
        replaced = inst[k] != inst[j]
        versions = instance_versions(frames, rows)
        v_before, v_after = versions[inst[j]], versions[inst[k]]
        upgraded = (o_kind == END_CLEAN) & replaced & (v_before >= 0) & (v_after >= 0)
        upgraded &= v_before != v_after
        o_kind = np.where(upgraded, _UPGRADE, o_kind)
        # the instance that went away never refreshed again, and its process exited: it crashed
        crashed = (o_kind == END_DISCONNECT) & replaced & exited[inst[j]] & (last_t[inst[j]] < t[k])
        o_kind = np.where(crashed, _CRASH, o_kind)

    # the end of each group: down until the window ends, or (instance level) retired at its exit,
    # with an outage up to the exit when it was down before it (hung, then killed)
    lk = np.flatnonzero(last)
    lj = holder(lk)
    l_cm, l_kind = cm[lk], kind(lj)
    if level == "instance":
        retired = exited[g[lk]]
        l_end = np.where(retired, np.maximum(exit_at[g[lk]], l_cm), w1)
    else:
        retired = np.zeros(len(lk), dtype=bool)
        l_end = np.full(len(lk), w1, dtype=np.int64)
    trailing = (l_cm < l_end) & (l_cm < w1)
    tk = lk[trailing]
    o_group = np.concatenate([o_group, g[tk]])
    o_inst = np.concatenate([o_inst, inst[lj[trailing]]])
    o_start = np.concatenate([o_start, l_cm[trailing]])
    o_end = np.concatenate([o_end, l_end[trailing]])
    o_kind = np.concatenate([o_kind, l_kind[trailing]])

    # clip to the window
    s_clip = np.maximum(o_start, w0)
    e_clip = np.minimum(o_end, w1)
    keep = e_clip > s_clip
    ongoing = o_end >= w1

    g_code = g[first]
    g_start = np.maximum(t[first], w0)
    g_end = np.where(retired, np.minimum(l_end, w1), w1)
    g_keep = g_end > g_start
    if level == "instance":
        g_inst = np.ones(len(g_code), dtype=np.int64)
    else:
        seen = np.flatnonzero(np.bincount(inst, minlength=n_inst))
        per_outpost = np.bincount(instance_outposts(rows)[seen], minlength=len(rows.outpost_codes.categories))
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
