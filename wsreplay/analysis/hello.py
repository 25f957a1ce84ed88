"""HELLO intervals: how regularly each outpost instance says it is alive.

An outpost sends HELLO right after connecting, then every 10 s (authentik's
``OUTPOST_HELLO_INTERVAL``). The gap between two HELLOs of an instance is its
*HELLO interval*. The **expected interval** :func:`wsreplay.outages` judges a
HELLO by (unless told ``interval=``) follows the local cadence, so that an
interval that changes mid-capture is no outage:

* the *base* interval of an instance is the median of its gaps between
  consecutive HELLOs on one connection (robust to the few long gaps an outage
  leaves); an instance without such a gap takes its outpost's median, then
  authentik's 10 s (never a fleet-wide value: the result for an outpost
  depends on its own frames only, so analysing a capture outpost group by
  outpost group gives the same answer);
* the expected interval *at a HELLO* is the median of the instance's
  same-connection gaps in a window of :data:`LOCAL_GAPS` gaps on each side
  of the gap that follows it (that gap included; the window spans the
  instance's connections) when that is longer than the base by more than a
  quarter, else the base. A single long gap (an outage) is outvoted by its
  neighbours; after the interval grows, the gaps on the new side are the
  majority from the first one on (once it has lasted more than
  :data:`LOCAL_GAPS` gaps: a shorter stretch of slow HELLOs is outvoted like
  an outage, and its long gaps are silent outages). Jitter moves a window's median far less
  than a quarter, and the base (a median over every gap) is the steadier
  estimate. A shorter local cadence never lowers the expected interval:
  that would turn the shrunken gaps of a clock step (two seconds of frames
  stamped twice) into outages; a silent outage after the interval shrank is
  judged by the base. A HELLO that ends its connection is judged by the
  window around the gap before it.

The window is computed only where it can matter: for the HELLOs whose next
gap is longer than ``factor`` x the base, or that end their connection (a
handful per outage). Every other HELLO is followed by the next one within
``factor`` x the base, which the expected interval is never below: it
counts as up for that long, and its up period runs into the next one's.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from ._cache import rows_of
from ._common import NS, categorical, require, utc
from ._engine import accepts_dask
from ._group import group_order, run_starts
from ._native import kernels, parts
from ._rows import OutpostRows, instance_outposts

__all__ = [
    "hello_intervals",
    "expected_intervals",
    "intervals_from_sorted",
    "refresh_expiry",
    "HELLO_COLUMNS",
    "LOCAL_GAPS",
]

#: Gaps on each side of the judged gap in the window of the expected interval.
LOCAL_GAPS: Final = 5
#: The local window's median replaces the base interval only when it differs by more than this share.
_TOLERANCE: Final = 0.25
#: Candidates handled per block when computing the local windows (bounds memory).
_BLOCK: Final = 1 << 18

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


def _valid_gaps(
    inst: np.ndarray, ts: np.ndarray, conn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For HELLOs sorted by instance then time: which gaps are usable, and their positions, gaps and instances.

    A gap is usable when the HELLO before it is of the same instance, came over
    the same connection and is earlier. Returns ``valid`` (bool per HELLO) and,
    per usable gap in order, ``v_pos``, ``v_gap`` (ns) and ``v_inst``. One pass
    in C when the kernels were compiled, else :func:`_valid_gaps_numpy`.
    """
    if kernels is None:
        return _valid_gaps_numpy(inst, ts, conn)
    n = len(inst)
    inst, ts, conn = (np.ascontiguousarray(a, dtype=np.int64) for a in (inst, ts, conn))
    valid = np.empty(n, dtype=np.bool_)
    v_pos, v_gap, v_inst = (np.empty(n, dtype=np.int64) for _ in range(3))
    m = kernels.valid_gaps(inst, ts, conn, valid, v_pos, v_gap, v_inst)
    return valid, v_pos[:m], v_gap[:m], v_inst[:m]


def _valid_gaps_numpy(
    inst: np.ndarray, ts: np.ndarray, conn: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_valid_gaps` in numpy."""
    gap, valid = _gaps(inst, ts, conn)
    valid &= gap > 0
    v_pos = np.flatnonzero(valid)
    return valid, v_pos, gap[v_pos], inst[v_pos]


def _run_medians(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The median (float) of each run ``values[starts[r]:starts[r + 1]]`` of int64 *values* (runs not empty).

    A quickselect per run in C, the runs cut into parts on threads, when the
    kernels were compiled; else a loop of ``np.partition`` per run (per
    instance, not per frame: np.median's own overhead is most of the cost for
    short runs).
    """
    out = np.empty(len(starts), dtype=np.float64)
    if kernels is not None:
        values, starts = np.ascontiguousarray(values, np.int64), np.ascontiguousarray(starts, np.int64)
        kernels.run_medians(values, starts, out, parts(len(values)))
        return out
    ends = np.append(starts[1:], len(values)) if len(starts) else starts
    for r, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        n = e - s
        k = n // 2
        if n % 2:
            out[r] = float(np.partition(values[s:e], k)[k])
        else:
            part = np.partition(values[s:e], (k - 1, k))
            out[r] = (float(part[k - 1]) + float(part[k])) / 2
    return out


def _hello_gaps(rows: OutpostRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HELLO row positions (sorted by instance, then time), gap to the previous HELLO (ns), same-connection flag."""
    idx = np.flatnonzero(rows.hello & (rows.instance >= 0))
    idx = idx[group_order(rows.instance[idx])]
    gap, same_conn = _gaps(rows.instance[idx], rows.ts[idx], rows.conn[idx])
    return idx, gap, same_conn


def _base_intervals(
    rows: OutpostRows, v_inst: np.ndarray, v_gap: np.ndarray, starts: np.ndarray, default_s: float
) -> np.ndarray:
    """Base interval (s) per instance code from its usable gaps (*v_inst* sorted; *starts*: run starts)."""
    n_inst = len(rows.instance_codes.categories)
    out = np.full(n_inst, np.nan)
    if len(v_inst) == 0:
        out[:] = default_s
        return out
    # gaps are grouped by instance: one median per run
    out[v_inst[starts]] = _run_medians(v_gap, starts) / NS
    missing = np.isnan(out)
    if missing.any():
        # fallbacks: the outpost's median, then the default (never a fleet-wide value: see above)
        inst_outpost = instance_outposts(rows)
        gaps_s = v_gap / NS
        by_outpost = pd.Series(gaps_s).groupby(inst_outpost[v_inst], sort=False).median()
        out[missing] = by_outpost.reindex(inst_outpost[missing]).to_numpy()
        out[np.isnan(out)] = default_s
    return out


def intervals_from_sorted(
    rows: OutpostRows, inst: np.ndarray, ts: np.ndarray, conn: np.ndarray, default_s: float
) -> np.ndarray:
    """Base interval per instance code from HELLOs sorted by instance then time (see the module docstring)."""
    _, _, v_gap, v_inst = _valid_gaps(inst, ts, conn)
    return _base_intervals(rows, v_inst, v_gap, np.flatnonzero(run_starts(v_inst)), default_s)


def refresh_expiry(
    rows: OutpostRows,
    inst: np.ndarray,
    ts: np.ndarray,
    conn: np.ndarray,
    is_hello: np.ndarray,
    factor: float,
    default_s: float,
) -> np.ndarray:
    """How long (ns) each refresh keeps its instance up: ``factor`` x its expected interval.

    *inst*, *ts*, *conn*, *is_hello* describe refreshes sorted by instance,
    then time. HELLOs get the expected interval of the module docstring (the
    local window where it can matter); other refreshes the instance's base
    interval.
    """
    all_hello = bool(is_hello.all())
    h = None if all_hello else np.flatnonzero(is_hello)
    h_inst = inst if h is None else inst[h]
    n = len(h_inst)
    # HELLO positions whose gap (to the previous one) is usable, with the gap and instance
    valid, v_pos, v_gap, v_inst = _valid_gaps(h_inst, ts if h is None else ts[h], conn if h is None else conn[h])
    starts = np.flatnonzero(run_starts(v_inst))
    base = _base_intervals(rows, v_inst, v_gap, starts, default_s)
    base_exp = np.round(base * factor * NS).astype(np.int64)
    expiry = base_exp[inst]
    if n == 0 or len(v_pos) == 0:
        return expiry
    # candidates: HELLOs whose next gap is long (window centred on that gap) ...
    lengths = np.diff(np.append(starts, len(v_inst)))
    long_next = v_gap > np.repeat(base_exp[v_inst[starts]], lengths)
    centre_a = np.flatnonzero(long_next)
    cand_a = v_pos[centre_a] - 1
    # ... and HELLOs that end their connection (window centred on the last usable gap before them)
    ends_conn = np.ones(n, dtype=bool)
    ends_conn[:-1] = ~valid[1:]
    cand_b = np.flatnonzero(ends_conn)
    centre_b = np.searchsorted(v_pos, cand_b, side="right") - 1
    ok = centre_b >= 0
    cand_b, centre_b = cand_b[ok], centre_b[ok]
    ok = v_inst[centre_b] == h_inst[cand_b]
    cand = np.concatenate([cand_a, cand_b[ok]])
    centre = np.concatenate([centre_a, centre_b[ok]])
    if len(cand) == 0:
        return expiry
    local = np.empty(len(cand))
    offsets = np.arange(-LOCAL_GAPS, LOCAL_GAPS + 1)
    for lo in range(0, len(cand), _BLOCK):
        c = centre[lo : lo + _BLOCK]
        idx = c[:, None] + offsets[None, :]
        inside = (idx >= 0) & (idx < len(v_pos))
        idx = np.clip(idx, 0, len(v_pos) - 1)
        vals = v_gap[idx].astype(np.float64)
        vals[~inside | (v_inst[idx] != v_inst[c][:, None])] = np.nan
        local[lo : lo + _BLOCK] = np.nanmedian(vals, axis=1)
    # the base stands unless the local cadence is longer by more than a quarter (jitter moves a
    # median far less; a grown interval more); a shorter local cadence never lowers it
    b = base[h_inst[cand]] * NS
    local = np.where(local > (1 + _TOLERANCE) * b, local, b)
    expiry[cand if h is None else h[cand]] = np.round(local * factor).astype(np.int64)
    return expiry


def expected_intervals(rows: OutpostRows, default_s: float) -> np.ndarray:
    """Expected HELLO interval (seconds) per instance code.

    The median gap between consecutive HELLOs of the instance on one
    connection; an instance with no such gap takes its outpost's median, then
    *default_s*.
    """
    idx = np.flatnonzero(rows.hello & (rows.instance >= 0))
    idx = idx[group_order(rows.instance[idx])]
    return intervals_from_sorted(rows, rows.instance[idx], rows.ts[idx], rows.conn[idx], default_s)


@accepts_dask("hello_intervals")
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
    >>> frames = wsreplay.load("sample_captures/incident")  # authentik restarts at 00:15
    >>> medians = frames.pipe(wsreplay.hello_intervals).groupby("instance_uuid", observed=True)["interval_s"].median()
    >>> medians.round().value_counts()  # 45 processes, all at authentik's 10 s
    interval_s
    10.0    45
    Name: count, dtype: int64
    """
    require(frames, HELLO_COLUMNS, "hello_intervals")
    rows = rows_of(frames, "hello_intervals")
    idx, gap, same_conn = _hello_gaps(rows)
    first = gap < 0
    out = pd.DataFrame(
        {
            "outpost_uuid": categorical(rows.outpost[idx], rows.outpost_codes.categories),
            "instance_uuid": categorical(rows.instance[idx], rows.instance_codes.categories),
            "conn_id": categorical(rows.conn[idx], rows.conn_codes.categories),
            "ts": utc(rows.ts[idx], owned=True),
            "interval_s": np.where(first, np.nan, gap / NS),
            "reconnected": ~first & ~same_conn,
        },
        copy=False,  # every column is a new array of this call
    )
    # rows are grouped by instance in time order; order the instances by (outpost, instance)
    key = pd.MultiIndex.from_arrays([out["outpost_uuid"].astype("str"), out["instance_uuid"].astype("str")])
    order = np.lexsort((np.arange(len(out)), key.codes[1], key.codes[0])) if len(out) else np.zeros(0, dtype=int)
    return out.take(order).reset_index(drop=True)
